@testable import FUSEBridge
import Glibc
import Testing

/// `Text`: the number syntax of register and doorbell writes, and the
/// formatters shared by the device's files.
@Suite("Text parsing and formatting")
struct TextTests {
    // MARK: parseNumber

    @Test(arguments: [
        ("0", 0), ("7", 7), ("42", 42), ("0042", 42), ("4096", 4096),
        ("0x0", 0), ("0x1f", 0x1F), ("0X1F", 0x1F), ("0xAbCdEf", 0xAB_CDEF), ("0x00000001", 1),
        ("0x0046_0001", 0x46_0001), ("1_000", 1000), ("0x_1", 1), ("1_", 1),
        ("4294967295", 0xFFFF_FFFF), ("0x100000000", 0x1_0000_0000),
        ("18446744073709551615", UInt64.max), ("0xffffffffffffffff", UInt64.max), ("0xFFFF_FFFF_FFFF_FFFF", UInt64.max),
        ("0x0000000000000000000000001", 1),  // leading zeros do not count towards overflow
    ] as [(String, UInt64)])
    func numberAccepted(_ text: String, _ expected: UInt64) throws {
        #expect(try Text.parseNumber(Substring(text)) == expected)
    }

    @Test(arguments: [
        // malformed: empty, prefix only, separators only, signs, blanks, junk, other radixes
        ("", Text.NumberError.malformed), ("0x", .malformed), ("0X", .malformed), ("_", .malformed),
        ("0x_", .malformed), ("__", .malformed), ("-1", .malformed), ("+1", .malformed), (" 1", .malformed),
        ("1 ", .malformed), ("1\n", .malformed), ("12a", .malformed), ("0xg", .malformed), ("0x1.5", .malformed),
        ("1e3", .malformed), ("x10", .malformed), ("0b101", .malformed), ("00x1", .malformed), ("0o7", .malformed),
        ("1,000", .malformed), ("\u{FF11}", .malformed), ("\u{0663}", .malformed),
        // above UInt64.max
        ("18446744073709551616", .tooLarge), ("99999999999999999999999", .tooLarge),
        ("0x10000000000000000", .tooLarge), ("0x1_0000_0000_0000_0000", .tooLarge),
        // junk after an overflow is still junk
        ("99999999999999999999x", .malformed),
    ] as [(String, Text.NumberError)])
    func numberRefused(_ text: String, _ error: Text.NumberError) {
        #expect(throws: error) { try Text.parseNumber(Substring(text)) }
    }

    @Test func numberOfASubstringInTheMiddle() throws {
        let line = "cdw10=0x20 rest"
        let value = line[line.index(line.startIndex, offsetBy: 6)..<line.index(line.startIndex, offsetBy: 10)]
        #expect(try Text.parseNumber(value) == 0x20)
    }

    // MARK: parseValue

    @Test(arguments: [
        ("0x1000\n", UInt64(UInt32.max), 0x1000), ("42", UInt64(UInt32.max), 42), ("  42  ", UInt64(UInt32.max), 42),
        ("\t7\r\n", UInt64(UInt32.max), 7), ("7\r\n", UInt64(UInt32.max), 7), ("1\n\n", UInt64(UInt32.max), 1),
        ("0xffffffff", UInt64(UInt32.max), 0xFFFF_FFFF), ("4294967295\n", UInt64(UInt32.max), 0xFFFF_FFFF),
        ("0", 0, 0), ("65535", 0xFFFF, 0xFFFF),
        ("18446744073709551615\n", .max, .max), ("0x0046_0001\n", UInt64(UInt32.max), 0x46_0001),
    ] as [(String, UInt64, UInt64)])
    func valueAccepted(_ text: String, _ max: UInt64, _ expected: UInt64) throws {
        #expect(try Text.parseValue(text, max: max) == expected)
    }

    @Test(arguments: [
        // malformed: EINVAL
        ("", UInt64(UInt32.max), EINVAL), ("\n", UInt64(UInt32.max), EINVAL), ("   \t\r\n", UInt64(UInt32.max), EINVAL),
        ("abc\n", UInt64(UInt32.max), EINVAL), ("1 2\n", UInt64(UInt32.max), EINVAL), ("0x\n", UInt64(UInt32.max), EINVAL),
        ("-1\n", UInt64(UInt32.max), EINVAL), ("_\n", UInt64(UInt32.max), EINVAL), ("0x1g", UInt64(UInt32.max), EINVAL),
        ("1\u{0}", UInt64(UInt32.max), EINVAL), ("99999999999999999999x", .max, EINVAL),
        // well-formed but too large: ERANGE
        ("0x100000000", UInt64(UInt32.max), ERANGE), ("4294967296\n", UInt64(UInt32.max), ERANGE),
        ("1", 0, ERANGE), ("0x10000", 0xFFFF, ERANGE),
        ("18446744073709551616\n", .max, ERANGE), ("0x10000000000000000", .max, ERANGE),
    ] as [(String, UInt64, Int32)])
    func valueRefused(_ text: String, _ max: UInt64, _ errno: Int32) {
        #expect(throws: FileError(errno)) { try Text.parseValue(text, max: max) }
    }

    // MARK: trim

    @Test(arguments: [
        ("", ""), (" ", ""), (" \t\r\n", ""), ("a", "a"), ("  a b  ", "a b"), ("\ta\t", "a"),
        ("a\n", "a"), ("a\r\n", "a"), ("\r\na\r\n\r\n", "a"), ("a\n\nb", "a\n\nb"),
        ("\u{A0}a", "\u{A0}a"),  // only space, tab, CR and LF are blanks
    ])
    func trim(_ text: String, _ expected: String) {
        #expect(Text.trim(Substring(text)) == Substring(expected))
    }

    // MARK: formatters

    @Test func hexFixedWidth() {
        #expect(Text.hex(UInt32(0), digits: 8) == "0x00000000")
        #expect(Text.hex(UInt32(0x46_0001), digits: 8) == "0x00460001")
        #expect(Text.hex(UInt64.max, digits: 16) == "0xffffffffffffffff")
        #expect(Text.hex(UInt8(0xAB), digits: 2) == "0xab")
        #expect(Text.hex(0x1234, digits: 2) == "0x1234")  // wider when the value needs it
        #expect(Text.hex(5, digits: 0) == "0x5")
    }

    @Test func hexMinimal() {
        #expect(Text.hex(0) == "0x0")
        #expect(Text.hex(UInt8(255)) == "0xff")
        #expect(Text.hex(UInt64(0x8000000000)) == "0x8000000000")
    }

    /// Golden lines from `xxd` 2022-01-14 for the same bytes.
    @Test(arguments: [
        ([], ""),
        (Array("ab".utf8), "00000000: 6162                                     ab\n"),
        (Array("Hello".utf8), "00000000: 4865 6c6c 6f                             Hello\n"),
        (Array("0123456789abcdefX".utf8),
         "00000000: 3031 3233 3435 3637 3839 6162 6364 6566  0123456789abcdef\n"
            + "00000010: 58                                       X\n"),
        ([0x00, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF], "00000000: 001f 207e 7f80 ff                        .. ~...\n"),
    ] as [([UInt8], String)])
    func xxd(_ bytes: [UInt8], _ expected: String) {
        #expect(Text.xxd(bytes) == expected)
    }

    @Test func xxdOfAPageHasOneLinePer16BytesWithRunningOffsets() {
        let dump = Text.xxd([UInt8](repeating: 0x41, count: 4096))
        let lines = dump.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 257 && lines.last == "")
        #expect(lines[0] == "00000000: 4141 4141 4141 4141 4141 4141 4141 4141  AAAAAAAAAAAAAAAA")
        #expect(lines[255] == "00000ff0: 4141 4141 4141 4141 4141 4141 4141 4141  AAAAAAAAAAAAAAAA")
        #expect(lines.dropLast().allSatisfy { $0.count == 67 })
    }

    @Test(arguments: [
        (0, "0.000000"), (999, "0.000000"), (1000, "0.000001"), (1_999_999_999, "1.999999"),
        (123_456_789_012, "123.456789"), (UInt64.max, "18446744073.709551"),
    ] as [(UInt64, String)])
    func timestamp(_ nanoseconds: UInt64, _ expected: String) {
        #expect(Text.timestamp(nanoseconds: nanoseconds) == expected)
    }

    @Test func yesNoAndPadding() {
        #expect(Text.yesNo(true) == "yes" && Text.yesNo(false) == "no")
        #expect("ab".padding(4) == "ab  ")
        #expect("abcd".padding(4) == "abcd")
        #expect("abcdef".padding(4) == "abcdef")
        #expect("".padding(0) == "")
    }
}
