import Testing
import NVMeSpec

@Suite struct CommandsSupportedAndEffectsLogTests {
    typealias C = CommandsSupportedAndEffectsLog

    /// NVMe 1.4 Figure 200: ACS n at 4n, IOCS n at 1024 + 4n.
    static var pins: [FieldPin<C>] {
        var p: [FieldPin<C>] = []
        for op in 0 ..< 256 {
            let a = UInt32(0x0100_0000) | UInt32(op) << 8 | 1
            p.append(FieldPin("acs\(op)", 4 * op, le(UInt128(a), 4)) { $0.acs[op] = CommandEffects(raw: a) })
            let i = UInt32(0x0200_0000) | UInt32(op) << 8 | 3
            p.append(FieldPin("iocs\(op)", 1024 + 4 * op, le(UInt128(i), 4)) { $0.iocs[op] = CommandEffects(raw: i) })
        }
        return p
    }

    @Test func fieldOffsets() {
        checkPins(C(), Self.pins)
    }

    @Test func effectBits() {
        // Figure 201: CSUPP 0, LBCC 1, NCC 2, NIC 3, CCC 4, CSE 18:16, USS 19.
        checkBits({ CommandEffects(raw: UInt32($0)) }, raw: { UInt64($0.raw) }, registerBits: 32, [
            BitPin("csupp", 0, \.csupp), BitPin("lbcc", 1, \.lbcc), BitPin("ncc", 2, \.ncc),
            BitPin("nic", 3, \.nic), BitPin("ccc", 4, \.ccc), BitPin("cse", 18, 16, \.cse),
            BitPin("uss", 19, \.uss),
        ])
        #expect(CommandEffects(csupp: true, lbcc: true, ncc: true, nic: true, ccc: true, cse: 2).raw == 0x0002_001F)
        #expect(CommandEffects().raw == 1)
        #expect(CommandEffects.supported.raw == 1 && CommandEffects.supportedLBCC.raw == 3)
    }

    @Test func opcodeSubscripts() {
        var log = C()
        log[admin: .identify] = .supported
        log[io: .write] = .supportedLBCC
        let b = log.bytes
        #expect(Array(b[24 ..< 28]) == [1, 0, 0, 0]) // ACS6 at 27:24
        #expect(Array(b[1028 ..< 1032]) == [3, 0, 0, 0]) // IOCS1 at 1031:1028
        let d = C(bytes: b)
        #expect(d?[admin: .identify].csupp == true)
        #expect(d?[io: .write].lbcc == true)
        #expect(d?[io: .read].csupp == false)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(C(), Self.pins)
        checkShortPrefixes(full)
        #expect(C.size == 4096)
        #expect(full.bytes[2048...].allSatisfy { $0 == 0 })
    }
}
