import Testing
import NVMeSpec

@Suite struct PowerStateDescriptorTests {
    typealias PSD = PowerStateDescriptor

    /// NVMe 1.4 Figure 248 (bit ranges converted to bytes within the descriptor).
    static var pins: [FieldPin<PSD>] { [
        .int("mp (15:0)", 0, 2, \.mp),
        FieldPin("mxps (24) + nops (25)", 3, [0x03]) { $0.mxps = true; $0.nops = true },
        .int("enlat (63:32)", 4, 4, \.enlat),
        .int("exlat (95:64)", 8, 4, \.exlat),
        FieldPin("rrt (100:96)", 12, [0x15]) { $0.rrt = 0x15 },
        FieldPin("rrl (108:104)", 13, [0x0B]) { $0.rrl = 0x0B },
        FieldPin("rwt (116:112)", 14, [0x1F]) { $0.rwt = 0x1F },
        FieldPin("rwl (124:120)", 15, [0x11]) { $0.rwl = 0x11 },
        .int("idlp (143:128)", 16, 2, \.idlp),
        FieldPin("ips (151:150)", 18, [0x80]) { $0.ips = 2 },
        .int("actp (175:160)", 20, 2, \.actp),
        FieldPin("apw (178:176) + aps (183:182)", 22, [0x45]) { $0.apw = 5; $0.aps = 1 },
    ] }

    @Test func fieldOffsets() {
        checkPins(PSD(), Self.pins)
    }

    @Test func singleFlagBits() {
        var p = PSD()
        p.mxps = true
        #expect(p.bytes[3] == 0x01)
        p = PSD()
        p.nops = true
        #expect(p.bytes[3] == 0x02)
        p = PSD()
        p.aps = 3
        #expect(p.bytes[22] == 0xC0)
        p = PSD()
        p.apw = 7
        #expect(p.bytes[22] == 0x07)
    }

    @Test func subFieldsAreMaskedBothWays() {
        var p = PSD()
        p.rrt = 0xFF; p.rrl = 0xFF; p.rwt = 0xFF; p.rwl = 0xFF; p.ips = 0xFF; p.apw = 0xFF; p.aps = 0xFF
        let b = p.bytes
        #expect(Array(b[12 ..< 16]) == [0x1F, 0x1F, 0x1F, 0x1F])
        #expect(b[18] == 0xC0 && b[22] == 0xC7)
        // Reserved bits set on the wire are dropped on decode.
        let decoded = PSD(bytes: [UInt8](repeating: 0xFF, count: 32))
        #expect(decoded?.rrt == 0x1F && decoded?.rwl == 0x1F && decoded?.ips == 3 && decoded?.apw == 7 && decoded?.aps == 3)
        #expect(decoded?.mxps == true && decoded?.nops == true)
        #expect(decoded?.bytes[2] == 0 && decoded?.bytes[19] == 0 && decoded?.bytes[31] == 0)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(PSD(), Self.pins)
        checkShortPrefixes(full)
        let p = PSD(mp: 2500, enlat: 16, exlat: 4, rrt: 1, rrl: 2, rwt: 3, rwl: 4)
        #expect(PSD(bytes: p.bytes) == p)
        #expect(PSD.size == 32)
    }
}
