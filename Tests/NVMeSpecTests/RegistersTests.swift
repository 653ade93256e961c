import Testing
import NVMeSpec

@Suite struct RegistersTests {
    @Test func registerOffsets() {
        // NVMe 1.4 Figure 78.
        #expect(RegisterOffset.cap == 0x00 && RegisterOffset.vs == 0x08 && RegisterOffset.intms == 0x0C)
        #expect(RegisterOffset.intmc == 0x10 && RegisterOffset.cc == 0x14 && RegisterOffset.csts == 0x1C)
        #expect(RegisterOffset.nssr == 0x20 && RegisterOffset.aqa == 0x24 && RegisterOffset.asq == 0x28)
        #expect(RegisterOffset.acq == 0x30 && RegisterOffset.cmbloc == 0x38 && RegisterOffset.cmbsz == 0x3C)
        #expect(RegisterOffset.doorbellBase == 0x1000)
    }

    @Test func doorbellOffsets() {
        // §3.1.24/25: SQyTDBL at 1000h + (2y × (4 << DSTRD)), CQyHDBL at 1000h + ((2y + 1) × (4 << DSTRD)).
        #expect(RegisterOffset.sqTailDoorbell(0) == 0x1000)
        #expect(RegisterOffset.cqHeadDoorbell(0) == 0x1004)
        #expect(RegisterOffset.sqTailDoorbell(1) == 0x1008)
        #expect(RegisterOffset.cqHeadDoorbell(1) == 0x100C)
        #expect(RegisterOffset.sqTailDoorbell(64) == 0x1200)
        #expect(RegisterOffset.sqTailDoorbell(1, dstrd: 1) == 0x1010)
        #expect(RegisterOffset.cqHeadDoorbell(1, dstrd: 2) == 0x1000 + 3 * 16)
        #expect(RegisterOffset.cqHeadDoorbell(65535) == 0x1000 + 131071 * 4)
    }

    @Test func capabilities() {
        // §3.1.1, Figure 79.
        checkBits({ ControllerCapabilities(raw: $0) }, raw: \.raw, registerBits: 64, [
            BitPin("mqes", 15, 0, \.mqes), BitPin("cqr", 16, \.cqr), BitPin("ams", 18, 17, \.ams),
            BitPin("to", 31, 24, \.to), BitPin("dstrd", 35, 32, \.dstrd), BitPin("nssrs", 36, \.nssrs),
            BitPin("css", 44, 37, \.css), BitPin("bps", 45, \.bps), BitPin("mpsmin", 51, 48, \.mpsmin),
            BitPin("mpsmax", 55, 52, \.mpsmax), BitPin("pmrs", 56, \.pmrs), BitPin("cmbs", 57, \.cmbs),
        ])
    }

    @Test func configuration() {
        // §3.1.5, Figure 83.
        checkBits({ ControllerConfiguration(raw: UInt32($0)) }, raw: { UInt64($0.raw) }, registerBits: 32, [
            BitPin("en", 0, \.en), BitPin("css", 6, 4, \.css), BitPin("mps", 10, 7, \.mps),
            BitPin("ams", 13, 11, \.ams), BitPin("shn", 15, 14, \.shn), BitPin("iosqes", 19, 16, \.iosqes),
            BitPin("iocqes", 23, 20, \.iocqes),
        ])
        var cc = ControllerConfiguration(raw: 0)
        #expect(cc.pageSize == 4096)
        cc.mps = 4
        #expect(cc.pageSize == 65536)
    }

    @Test func status() {
        // §3.1.6, Figure 84.
        checkBits({ ControllerStatus(raw: UInt32($0)) }, raw: { UInt64($0.raw) }, registerBits: 32, [
            BitPin("rdy", 0, \.rdy), BitPin("cfs", 1, \.cfs), BitPin("shst", 3, 2, \.shst),
            BitPin("nssro", 4, \.nssro), BitPin("pp", 5, \.pp),
        ])
    }

    @Test func adminQueueAttributes() {
        // §3.1.8, Figure 86.
        checkBits({ AdminQueueAttributes(raw: UInt32($0)) }, raw: { UInt64($0.raw) }, registerBits: 32, [
            BitPin("asqs", 11, 0, \.asqs), BitPin("acqs", 27, 16, \.acqs),
        ])
    }

    @Test func cmbSize() {
        // §3.1.12, Figure 90.
        checkBits({ CMBSize(raw: UInt32($0)) }, raw: { UInt64($0.raw) }, registerBits: 32, [
            BitPin("sqs", 0, \.sqs), BitPin("cqs", 1, \.cqs), BitPin("lists", 2, \.lists),
            BitPin("rds", 3, \.rds), BitPin("wds", 4, \.wds), BitPin("szu", 11, 8, \.szu),
            BitPin("sz", 31, 12, \.sz),
        ])
        var s = CMBSize(raw: 0)
        s.szu = 2 // 1 MiB units
        s.sz = 3
        #expect(s.bytes == 3 << 20)
        s.szu = 0
        s.sz = 5
        #expect(s.bytes == 5 * 4096)
    }

    @Test func cmbLocation() {
        // §3.1.11, Figure 89: BIR 2:0, OFST 31:12 (read only here).
        #expect(CMBLocation(raw: 0x0000_0007).bir == 7)
        #expect(CMBLocation(raw: 0xFFFF_FFF8).bir == 0)
        #expect(CMBLocation(raw: 0xFFFF_F000).ofst == 0xFFFFF)
        #expect(CMBLocation(raw: 0x0000_0FFF).ofst == 0)
        #expect(CMBLocation(raw: 0x0001_2002).ofst == 0x12 && CMBLocation(raw: 0x0001_2002).bir == 2)
    }

    @Test func version() {
        // §3.1.2, Figure 80: MJR 31:16, MNR 15:8, TER 7:0.
        #expect(Version.v1_4.raw == 0x0001_0400)
        let v = Version(raw: 0xABCD_1234)
        #expect(v.major == 0xABCD && v.minor == 0x12 && v.tertiary == 0x34)
        #expect(Version(major: 2, minor: 1, tertiary: 3).raw == 0x0002_0103)
    }
}
