import Testing
import NVMeSpec

@Suite struct IdentifyNamespaceTests {
    typealias IN = IdentifyNamespace

    /// NVMe 1.4 Figure 249, byte ranges as printed there.
    static var pins: [FieldPin<IN>] {
        var p: [FieldPin<IN>] = [
            .int("nsze 7:0", 0, 8, \.nsze),
            .int("ncap 15:8", 8, 8, \.ncap),
            .int("nuse 23:16", 16, 8, \.nuse),
            .int("nsfeat 24", 24, 1, \.nsfeat),
            .int("nlbaf 25", 25, 1, \.nlbaf),
            .int("flbas 26", 26, 1, \.flbas),
            .int("mc 27", 27, 1, \.mc),
            .int("dpc 28", 28, 1, \.dpc),
            .int("dps 29", 29, 1, \.dps),
            .int("nmic 30", 30, 1, \.nmic),
            .int("rescap 31", 31, 1, \.rescap),
            .int("fpi 32", 32, 1, \.fpi),
            .int("dlfeat 33", 33, 1, \.dlfeat),
            .int("nawun 35:34", 34, 2, \.nawun),
            .int("nawupf 37:36", 36, 2, \.nawupf),
            .int("nacwu 39:38", 38, 2, \.nacwu),
            .int("nabsn 41:40", 40, 2, \.nabsn),
            .int("nabo 43:42", 42, 2, \.nabo),
            .int("nabspf 45:44", 44, 2, \.nabspf),
            .int("noiob 47:46", 46, 2, \.noiob),
            .int("nvmcap 63:48", 48, 16, \.nvmcap),
            .int("npwg 65:64", 64, 2, \.npwg),
            .int("npwa 67:66", 66, 2, \.npwa),
            .int("npdg 69:68", 68, 2, \.npdg),
            .int("npda 71:70", 70, 2, \.npda),
            .int("nows 73:72", 72, 2, \.nows),
            .int("mssrl 75:74 (NVMe 2.0)", 74, 2, \.mssrl),
            .int("mcl 79:76 (NVMe 2.0)", 76, 4, \.mcl),
            .int("msrc 80 (NVMe 2.0)", 80, 1, \.msrc),
            .int("anagrpid 95:92", 92, 4, \.anagrpid),
            .int("nsattr 99", 99, 1, \.nsattr),
            .int("nvmsetid 101:100", 100, 2, \.nvmsetid),
            .int("endgid 103:102", 102, 2, \.endgid),
            FieldPin("nguid 119:104", 104, pattern(104, 16)) { $0.nguid = pattern(104, 16) },
            FieldPin("eui64 127:120", 120, pattern(120, 8)) { $0.eui64 = pattern(120, 8) },
        ]
        // LBAF0 at 131:128 ... LBAF15 at 191:188.
        for i in 0 ..< 16 {
            let f = LBAFormat(ms: UInt16(0x100 + i), lbads: UInt8(9 + i), rp: UInt8(i % 4))
            let expected = [UInt8(i), 0x01, UInt8(9 + i), UInt8(i % 4)]
            p.append(FieldPin("lbaf\(i)", 128 + 4 * i, expected) { $0.lbaf[i] = f })
        }
        return p
    }

    @Test func fieldOffsets() {
        checkPins(IN(), Self.pins)
    }

    @Test func lbaFormatBits() {
        // MS 15:0, LBADS 23:16, RP 25:24; bits 31:26 reserved.
        #expect(LBAFormat(ms: 0xABCD, lbads: 0, rp: 0).raw == 0x0000_ABCD)
        #expect(LBAFormat(ms: 0, lbads: 12, rp: 0).raw == 0x000C_0000)
        #expect(LBAFormat(ms: 0, lbads: 0, rp: 3).raw == 0x0300_0000)
        #expect(LBAFormat(ms: 0, lbads: 0, rp: 0xFF).raw == 0x0300_0000) // masked
        #expect(LBAFormat(raw: 0xFFFF_FFFF) == LBAFormat(ms: 0xFFFF, lbads: 0xFF, rp: 3))
        #expect(LBAFormat(ms: 8, lbads: 9, rp: 2).bytes == [0x08, 0x00, 0x09, 0x02])
        #expect(LBAFormat(bytes: [0x08, 0x00, 0x09, 0x02]) == LBAFormat(ms: 8, lbads: 9, rp: 2))
        #expect(LBAFormat(lbads: 9).dataSize == 512 && LBAFormat(lbads: 12).dataSize == 4096)
        #expect(LBAFormat().dataSize == 0)
        checkShortPrefixes(LBAFormat(ms: 16, lbads: 12, rp: 1))
    }

    @Test func formattedLBAFormat() {
        var ns = IN()
        ns.lbaf[0] = LBAFormat(lbads: 9)
        ns.lbaf[1] = LBAFormat(ms: 8, lbads: 12)
        ns.flbas = 0x11
        #expect(ns.formattedLBAFormatIndex == 1)
        #expect(ns.extendedMetadata)
        #expect(ns.formattedLBAFormat == LBAFormat(ms: 8, lbads: 12))
        ns.flbas = 0x00
        #expect(!ns.extendedMetadata && ns.formattedLBAFormat.dataSize == 512)
        ns.lbaf = [] // out of range index gives an empty format, no crash
        #expect(ns.formattedLBAFormat == LBAFormat())
        #expect(IN(bytes: ns.bytes)?.lbaf.count == 16)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(IN(), Self.pins)
        checkShortPrefixes(full)
        #expect(IN.size == 4096)
        let b = full.bytes
        #expect(b[81 ..< 92].allSatisfy { $0 == 0 } && b[192 ..< 4096].allSatisfy { $0 == 0 })
    }
}
