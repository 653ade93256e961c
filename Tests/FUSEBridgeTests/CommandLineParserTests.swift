@testable import FUSEBridge
import NVMeSpec
import Testing

/// The `cmd` file's line syntax: `admin|io opcode=N [key=value...]`.
@Suite("cmd line parser")
struct CommandLineParserTests {
    static let maxTransfer = 8192

    static func sqe(_ build: (inout SubmissionQueueEntry) -> Void) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry()
        build(&e)
        return e
    }

    static func parse(_ line: String) throws(CommandSyntaxError) -> PassthroughCommand {
        try PassthroughCommand.parse(Substring(line), maxTransfer: maxTransfer)
    }

    @Test(arguments: [
        ("admin opcode=6", PassthroughCommand(admin: true, sqe: sqe { $0.opcode = 6 }, dataIn: 0, dataOut: nil)),
        ("io opcode=0x02", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 2 }, dataIn: 0, dataOut: nil)),
        ("admin\topcode=0x06\t\tcdw10=1   data-in=4096",
         PassthroughCommand(admin: true, sqe: sqe { $0.opcode = 6; $0.cdw10 = 1 }, dataIn: 4096, dataOut: nil)),
        ("admin cdw10=1 opcode=6", PassthroughCommand(admin: true, sqe: sqe { $0.opcode = 6; $0.cdw10 = 1 }, dataIn: 0, dataOut: nil)),
        // every key once, at its largest value
        ("io opcode=0xff nsid=0xffffffff fuse=3 cdw2=4294967295 cdw3=0xffffffff cdw10=1 cdw11=2 cdw12=3 cdw13=4 "
            + "cdw14=5 cdw15=0xffffffff mptr=0xffffffffffffffff prp1=0x1000 prp2=18446744073709551615",
         PassthroughCommand(admin: false, sqe: sqe {
             $0.opcode = 0xFF; $0.nsid = .max; $0.fuse = 3; $0.cdw2 = .max; $0.cdw3 = .max
             $0.cdw10 = 1; $0.cdw11 = 2; $0.cdw12 = 3; $0.cdw13 = 4; $0.cdw14 = 5; $0.cdw15 = .max
             $0.mptr = .max; $0.prp1 = 0x1000; $0.prp2 = .max
         }, dataIn: 0, dataOut: nil)),
        // slba is cdw10-11, nlb cdw12 bits 15:0
        ("io opcode=2 nsid=1 slba=0x1_2345_6789 nlb=7 data-in=4096",
         PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 2; $0.nsid = 1; $0.cdw10 = 0x2345_6789; $0.cdw11 = 1; $0.cdw12 = 7 },
                            dataIn: 4096, dataOut: nil)),
        ("io opcode=2 slba=0xffffffffffffffff nlb=0xffff",
         PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 2; $0.cdw10 = .max; $0.cdw11 = .max; $0.cdw12 = 0xFFFF },
                            dataIn: 0, dataOut: nil)),
        // nlb keeps cdw12's upper bits (FUA, ...) whichever comes first
        ("io opcode=1 cdw12=0x40000000 nlb=3",
         PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1; $0.cdw12 = 0x4000_0003 }, dataIn: 0, dataOut: nil)),
        ("io opcode=1 nlb=3 cdw12=0x40000000",
         PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1; $0.cdw12 = 0x4000_0003 }, dataIn: 0, dataOut: nil)),
        // data
        ("io opcode=1 data-out=00ff7FaB", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1 }, dataIn: 0,
                                                            dataOut: [0x00, 0xFF, 0x7F, 0xAB])),
        ("io opcode=1 data-out=", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1 }, dataIn: 0, dataOut: [])),
        ("io opcode=1 data-out-zeros=3", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1 }, dataIn: 0, dataOut: [0, 0, 0])),
        ("io opcode=1 data-out-zeros=8192",
         PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 1 }, dataIn: 0, dataOut: [UInt8](repeating: 0, count: 8192))),
        ("io opcode=2 data-in=0", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 2 }, dataIn: 0, dataOut: nil)),
        ("io opcode=2 data-in=0x2000", PassthroughCommand(admin: false, sqe: sqe { $0.opcode = 2 }, dataIn: 8192, dataOut: nil)),
    ] as [(String, PassthroughCommand)])
    func accepted(_ line: String, _ expected: PassthroughCommand) throws {
        #expect(try Self.parse(line) == expected)
    }

    @Test func dataOutAtMaxTransfer() throws {
        let hex = String(repeating: "a5", count: Self.maxTransfer)
        let c = try Self.parse("io opcode=1 data-out=" + hex)
        #expect(c.dataOut == [UInt8](repeating: 0xA5, count: Self.maxTransfer))
    }

    static let dataOutRule = "data-out: an even number of hex digits, at most 8192 bytes"

    @Test(arguments: [
        ("", "empty command"),
        ("opcode=6", "a command starts with 'admin' or 'io', not 'opcode=6'"),
        ("Admin opcode=6", "a command starts with 'admin' or 'io', not 'Admin'"),
        ("nvm opcode=1", "a command starts with 'admin' or 'io', not 'nvm'"),
        ("admin", "opcode= is required"),
        ("admin nsid=1", "opcode= is required"),
        ("admin opcode", "'opcode' is not key=value"),
        ("admin opcode=6 data-in", "'data-in' is not key=value"),
        ("admin opcode=6 =5", "unknown key ''"),
        ("admin opcode=6 cdw16=0", "unknown key 'cdw16'"),
        ("admin opcode=6 OPCODE=6", "unknown key 'OPCODE'"),
        ("admin opcode=6 cid=1", "unknown key 'cid'"),
        ("admin opcode=6 psdt=1", "unknown key 'psdt'"),
        // numbers
        ("admin opcode=", "opcode: '' is not a 0x hex or decimal number"),
        ("admin opcode=0x", "opcode: '0x' is not a 0x hex or decimal number"),
        ("admin opcode=six", "opcode: 'six' is not a 0x hex or decimal number"),
        ("admin opcode=-1", "opcode: '-1' is not a 0x hex or decimal number"),
        ("admin opcode=6=6", "opcode: '6=6' is not a 0x hex or decimal number"),
        ("admin opcode=6 nsid=1g", "nsid: '1g' is not a 0x hex or decimal number"),
        ("admin opcode=6 slba=18446744073709551616", "slba: '18446744073709551616' is not a 0x hex or decimal number"),
        // ranges
        ("admin opcode=256", "opcode: 256 is too large"),
        ("admin opcode=0x100", "opcode: 0x100 is too large"),
        ("admin opcode=6 fuse=4", "fuse: 4 is too large"),
        ("admin opcode=6 nsid=0x100000000", "nsid: 0x100000000 is too large"),
        ("admin opcode=6 cdw2=4294967296", "cdw2: 4294967296 is too large"),
        ("admin opcode=6 cdw3=4294967296", "cdw3: 4294967296 is too large"),
        ("admin opcode=6 cdw10=4294967296", "cdw10: 4294967296 is too large"),
        ("admin opcode=6 cdw11=4294967296", "cdw11: 4294967296 is too large"),
        ("admin opcode=6 cdw12=4294967296", "cdw12: 4294967296 is too large"),
        ("admin opcode=6 cdw13=4294967296", "cdw13: 4294967296 is too large"),
        ("admin opcode=6 cdw14=4294967296", "cdw14: 4294967296 is too large"),
        ("admin opcode=6 cdw15=4294967296", "cdw15: 4294967296 is too large"),
        ("io opcode=2 nlb=65536", "nlb: 65536 is too large"),
        ("io opcode=2 data-in=8193", "data-in: 8193 is too large"),
        ("io opcode=1 data-out-zeros=8193", "data-out-zeros: 8193 is too large"),
        // data-out's hex
        ("io opcode=1 data-out=0", dataOutRule),
        ("io opcode=1 data-out=abc", dataOutRule),
        ("io opcode=1 data-out=" + String(repeating: "00", count: 8193), dataOutRule),
        ("io opcode=1 data-out=0g", "data-out: '0g...' is not hex"),
        ("io opcode=1 data-out=0x00", "data-out: '0x00...' is not hex"),
        ("io opcode=1 data-out=00_1", "data-out: '00_1...' is not hex"),
        // one way to give each thing
        ("admin opcode=6 opcode=7", "opcode given twice"),
        ("admin opcode=6 nsid=1 nsid=1", "nsid given twice"),
        ("admin opcode=6 cdw10=1 cdw10=2", "cdw10 given twice"),
        ("io opcode=2 data-in=512 data-in=512", "data-in given twice"),
        ("io opcode=1 data-out=00 data-out=11", "data-out given twice"),
        ("io opcode=2 slba=1 cdw10=2", "slba is cdw10-11: give one or the other"),
        ("io opcode=2 cdw11=2 slba=1", "slba is cdw10-11: give one or the other"),
        ("io opcode=2 data-in=512 data-out=00", "data-in, data-out and data-out-zeros cannot be combined"),
        ("io opcode=2 data-out-zeros=512 data-in=512", "data-in, data-out and data-out-zeros cannot be combined"),
        ("io opcode=1 data-out=00 data-out-zeros=1", "data-in, data-out and data-out-zeros cannot be combined"),
        ("io opcode=2 data-in=0 data-out=00", "data-in, data-out and data-out-zeros cannot be combined"),
    ])
    func refused(_ line: String, _ reason: String) {
        let error = #expect(throws: CommandSyntaxError.self) { try Self.parse(line) }
        #expect(error?.description == reason)
    }

    @Test func maxTransferBoundsFollowTheParameter() throws {
        #expect(try PassthroughCommand.parse("io opcode=2 data-in=512", maxTransfer: 512).dataIn == 512)
        #expect(throws: CommandSyntaxError.self) { try PassthroughCommand.parse("io opcode=2 data-in=513", maxTransfer: 512) }
        #expect(try PassthroughCommand.parse("io opcode=1 data-out=0102", maxTransfer: 2).dataOut == [1, 2])
        #expect(throws: CommandSyntaxError.self) { try PassthroughCommand.parse("io opcode=1 data-out=010203", maxTransfer: 2) }
    }
}
