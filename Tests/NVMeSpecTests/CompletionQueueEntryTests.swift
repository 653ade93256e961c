import Testing
import NVMeSpec

@Suite struct CompletionQueueEntryTests {
    typealias CQE = CompletionQueueEntry

    /// NVMe 1.4 Figure 124: DW0, DW1, DW2 (SQHD, SQID), DW3 (CID, P, status).
    static var pins: [FieldPin<CQE>] { [
        .int("dw0", 0, 4, \.dw0),
        .int("dw1", 4, 4, \.dw1),
        .int("sqhd (DW2 15:0)", 8, 2, \.sqhd),
        .int("sqid (DW2 31:16)", 10, 2, \.sqid),
        .int("cid (DW3 15:0)", 12, 2, \.cid),
        FieldPin("phase (DW3 bit 16)", 14, [0x01]) { $0.phase = true },
    ] }

    @Test func fieldOffsets() {
        checkPins(CQE(), Self.pins)
    }

    @Test func statusFieldIsDW3Bits31to17() {
        // Status 0x7FFF (every bit) occupies bits 15:1 of bytes 15:14, leaving P clear.
        let cqe = CQE(status: NVMeStatus(raw: 0x7FFF))
        #expect(Array(cqe.bytes[14 ..< 16]) == [0xFE, 0xFF])
        #expect(Array(cqe.bytes[0 ..< 14]) == Array(repeating: 0, count: 14))
        // SC in bits 24:17, SCT in 27:25, CRD 29:28, More 30, DNR 31 of DW3.
        let dnr = CQE(status: NVMeStatus(raw: 0x4000)).bytes
        #expect(dnr[15] == 0x80)
        let more = CQE(status: NVMeStatus(raw: 0x2000)).bytes
        #expect(more[15] == 0x40)
        let sct = CQE(status: NVMeStatus(type: .mediaError, code: 0)).bytes
        #expect(sct[15] == 0x04) // SCT 2 << 9 of the 16-bit field = bit 10 → byte 15 bit 2
        let sc = CQE(status: NVMeStatus(raw: 0x0081)).bytes
        #expect(sc[14] == 0x02 && sc[15] == 0x01)
    }

    @Test func golden() {
        // DW0 DEADBEEF, SQHD 5, SQID 1, CID 0x42, P 1, status Invalid Field with DNR (0x4002).
        let golden: [UInt8] = [0xEF, 0xBE, 0xAD, 0xDE, 0x00, 0x00, 0x00, 0x00,
                               0x05, 0x00, 0x01, 0x00, 0x42, 0x00, 0x05, 0x80]
        let cqe = CQE(dw0: 0xDEAD_BEEF, sqhd: 5, sqid: 1, cid: 0x42, phase: true, status: NVMeStatus.invalidField.withDNR)
        #expect(cqe.bytes == golden)
        let decoded = CQE(bytes: golden)
        #expect(decoded == cqe)
        #expect(decoded?.status.dnr == true)
        #expect(decoded?.status.kind == .invalidField)
        #expect(decoded?.phase == true)
    }

    @Test func shortPrefixesAndRoundTrip() {
        var full = checkPins(CQE(), Self.pins)
        full.status = NVMeStatus(type: .commandSpecific, code: 0x0C, more: true, dnr: true)
        #expect(CQE(bytes: full.bytes) == full)
        checkShortPrefixes(full)
        #expect(CQE.size == 16)
    }
}
