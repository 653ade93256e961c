import Testing
import NVMeSpec

@Suite struct DatasetManagementRangeTests {
    typealias R = DatasetManagementRange

    /// NVMe 1.4 §6.7 range definition: context attributes 3:0, length 7:4, SLBA 15:8.
    static var pins: [FieldPin<R>] { [
        .int("context attributes 3:0", 0, 4, \.cattr),
        .int("length in logical blocks 7:4", 4, 4, \.nlb),
        .int("starting LBA 15:8", 8, 8, \.slba),
    ] }

    @Test func fieldOffsets() {
        checkPins(R(), Self.pins)
    }

    @Test func golden() {
        let r = R(slba: 0x1_0000_0010, nlb: 256, cattr: 0x0400_0000)
        #expect(r.bytes == [0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00,
                            0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00])
    }

    @Test func rangeLists() {
        let ranges = (0 ..< 5).map { R(slba: UInt64($0) * 1000, nlb: UInt32($0 + 1)) }
        let bytes = R.encodeRanges(ranges)
        #expect(bytes.count == 80)
        #expect(Array(bytes[16 ..< 32]) == ranges[1].bytes)
        #expect(bytes.withUnsafeBytes { R.decodeRanges($0, count: 5) } == ranges)
        #expect(bytes.withUnsafeBytes { R.decodeRanges($0, count: 3) } == Array(ranges.prefix(3)))
        #expect(bytes.withUnsafeBytes { R.decodeRanges($0, count: 6) } == nil)
        #expect(bytes.dropLast().withUnsafeBytes { R.decodeRanges($0, count: 5) } == nil)
        #expect(bytes.withUnsafeBytes { R.decodeRanges($0, count: 0) } == [])
        #expect(R.maxRanges == 256)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(R(), Self.pins)
        checkShortPrefixes(full)
        #expect(R.size == 16)
    }
}
