import Testing
import NVMeSpec

@Suite struct SubmissionQueueEntryTests {
    typealias SQE = SubmissionQueueEntry

    /// NVMe 1.4 Figure 104/105: the common command format.
    static var pins: [FieldPin<SQE>] { [
        .int("opcode (CDW0 7:0)", 0, 1, \.opcode),
        FieldPin("fuse (CDW0 9:8)", 1, [0x02]) { $0.fuse = 2 },
        .int("cid (CDW0 31:16)", 2, 2, \.cid),
        .int("nsid (CDW1)", 4, 4, \.nsid),
        .int("cdw2", 8, 4, \.cdw2),
        .int("cdw3", 12, 4, \.cdw3),
        .int("mptr (CDW4-5)", 16, 8, \.mptr),
        .int("prp1 (CDW6-7)", 24, 8, \.prp1),
        .int("prp2 (CDW8-9)", 32, 8, \.prp2),
        .int("cdw10", 40, 4, \.cdw10),
        .int("cdw11", 44, 4, \.cdw11),
        .int("cdw12", 48, 4, \.cdw12),
        .int("cdw13", 52, 4, \.cdw13),
        .int("cdw14", 56, 4, \.cdw14),
        .int("cdw15", 60, 4, \.cdw15),
    ] }

    @Test func fieldOffsets() {
        checkPins(SQE(), Self.pins)
    }

    @Test func psdtIsFlagsBits7to6() {
        // PSDT is CDW0 bits 15:14, i.e. bits 7:6 of byte 1; FUSE bits 1:0.
        var sqe = SQE()
        sqe.psdt = 1
        #expect(sqe.bytes[1] == 0x40)
        sqe.psdt = 2
        sqe.fuse = 1
        #expect(sqe.bytes[1] == 0x81)
        #expect(SQE(bytes: sqe.bytes)?.psdt == 2)
        #expect(SQE(bytes: sqe.bytes)?.fuse == 1)
        // Reserved bits 13:10 of CDW0 are ignored on decode and zero on encode.
        var raw = [UInt8](repeating: 0, count: 64)
        raw[1] = 0x3C
        let decoded = SQE(bytes: raw)
        #expect(decoded?.fuse == 0 && decoded?.psdt == 0)
        #expect(decoded?.bytes[1] == 0)
    }

    @Test func slbaAndNlbHelpers() {
        var sqe = SQE()
        sqe.cdw12 = 0xABCD_0000
        sqe.slba = 0x1122_3344_5566_7788
        sqe.nlb = 0x00FF
        let b = sqe.bytes
        #expect(Array(b[40 ..< 48]) == le(0x1122_3344_5566_7788, 8))
        #expect(Array(b[48 ..< 52]) == [0xFF, 0x00, 0xCD, 0xAB]) // NLB keeps CDW12 31:16
        #expect(sqe.cdw10 == 0x5566_7788 && sqe.cdw11 == 0x1122_3344)
    }

    @Test func goldenReadCommand() {
        // Read (02h), CID 0x1234, NSID 1, PRP1 0x0000_0001_0000_2000, SLBA 0x10, NLB 7 (8 blocks).
        let golden: [UInt8] = [
            0x02, 0x00, 0x34, 0x12, 0x01, 0x00, 0x00, 0x00, // CDW0, CDW1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CDW2, CDW3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // MPTR
            0x00, 0x20, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // PRP1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // PRP2
            0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CDW10, CDW11 (SLBA)
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CDW12 (NLB), CDW13
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // CDW14, CDW15
        ]
        var sqe = SQE(opcode: NVMOpcode.read.rawValue, cid: 0x1234, nsid: 1, prp1: 0x1_0000_2000)
        sqe.slba = 0x10
        sqe.nlb = 7
        #expect(sqe.bytes == golden)
        #expect(SQE(bytes: golden) == sqe)
    }

    @Test func goldenSGLWriteWithEveryDword() {
        // Fused first, PSDT 01b, every dword distinct.
        let golden: [UInt8] = [
            0x01, 0x41, 0xEF, 0xBE, 0x04, 0x03, 0x02, 0x01,
            0x08, 0x07, 0x06, 0x05, 0x0C, 0x0B, 0x0A, 0x09,
            0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
            0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21,
            0x38, 0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31,
            0x43, 0x42, 0x41, 0x40, 0x47, 0x46, 0x45, 0x44,
            0x4B, 0x4A, 0x49, 0x48, 0x4F, 0x4E, 0x4D, 0x4C,
            0x53, 0x52, 0x51, 0x50, 0x57, 0x56, 0x55, 0x54,
        ]
        var sqe = SQE()
        sqe.opcode = 0x01; sqe.fuse = 1; sqe.psdt = 1; sqe.cid = 0xBEEF; sqe.nsid = 0x0102_0304
        sqe.cdw2 = 0x0506_0708; sqe.cdw3 = 0x090A_0B0C; sqe.mptr = 0x1112_1314_1516_1718
        sqe.prp1 = 0x2122_2324_2526_2728; sqe.prp2 = 0x3132_3334_3536_3738
        sqe.cdw10 = 0x4041_4243; sqe.cdw11 = 0x4445_4647; sqe.cdw12 = 0x4849_4A4B
        sqe.cdw13 = 0x4C4D_4E4F; sqe.cdw14 = 0x5051_5253; sqe.cdw15 = 0x5455_5657
        #expect(sqe.bytes == golden)
        #expect(SQE(bytes: golden) == sqe)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(SQE(), Self.pins)
        checkShortPrefixes(full)
        var withPSDT = full
        withPSDT.psdt = 2
        #expect(SQE(bytes: withPSDT.bytes) == withPSDT)
        #expect(SQE.size == 64)
    }
}
