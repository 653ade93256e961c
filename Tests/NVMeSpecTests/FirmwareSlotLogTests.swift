import Testing
import NVMeSpec

@Suite struct FirmwareSlotLogTests {
    typealias F = FirmwareSlotLog

    /// NVMe 1.4 Figure 197: AFI at 0, FRS1..FRS7 at 15:8 ... 63:56.
    static var pins: [FieldPin<F>] {
        var p: [FieldPin<F>] = [.int("afi 0", 0, 1, \.afi)]
        for slot in 1 ... 7 {
            let text = "FW\(slot).0"
            let expected = Array(text.utf8) + Array(repeating: 0x20, count: 8 - text.utf8.count)
            p.append(FieldPin("frs\(slot)", 8 * slot, expected) { $0.frs[slot - 1] = text })
        }
        return p
    }

    @Test func fieldOffsets() {
        checkPins(F(), Self.pins)
    }

    @Test func afiBits() {
        // Bits 2:0 active slot, 6:4 next slot.
        var f = F()
        f.activeSlot = 3
        #expect(f.afi == 0x03)
        f.nextSlot = 5
        #expect(f.afi == 0x53)
        f.activeSlot = 0xFF
        #expect(f.afi == 0x57)
        #expect(F(activeSlot: 1, nextSlot: 2, revisions: []).afi == 0x21)
        let d = F(bytes: [0x74] + [UInt8](repeating: 0, count: 511))
        #expect(d?.activeSlot == 4 && d?.nextSlot == 7)
    }

    @Test func emptySlotsAreZero() {
        let f = F(activeSlot: 1, revisions: ["1.0"])
        let b = f.bytes
        #expect(Array(b[8 ..< 16]) == Array("1.0".utf8) + [0x20, 0x20, 0x20, 0x20, 0x20])
        #expect(b[16 ..< 512].allSatisfy { $0 == 0 })
        let d = F(bytes: b)
        #expect(d?.frs == ["1.0", "", "", "", "", "", ""])
        #expect(d?.revision(slot: 1) == "1.0" && d?.revision(slot: 2) == "" && d?.revision(slot: 8) == "")
        #expect(d?.revision(slot: 0) == "")
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(F(), Self.pins)
        checkShortPrefixes(full)
        #expect(F.size == 512)
        #expect(full.bytes[1 ..< 8].allSatisfy { $0 == 0 } && full.bytes[64...].allSatisfy { $0 == 0 })
    }
}
