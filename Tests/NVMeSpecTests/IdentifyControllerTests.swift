import Testing
import NVMeSpec

@Suite struct IdentifyControllerTests {
    typealias IC = IdentifyController

    static func ascii(_ s: String, _ width: Int) -> [UInt8] {
        Array(s.utf8) + Array(repeating: 0x20, count: width - s.utf8.count)
    }

    /// NVMe 1.4 Figure 247, byte ranges as printed there.
    static var pins: [FieldPin<IC>] {
        var p: [FieldPin<IC>] = [
            .int("vid 1:0", 0, 2, \.vid),
            .int("ssvid 3:2", 2, 2, \.ssvid),
            FieldPin("sn 23:4", 4, ascii("SN0123456789", 20)) { $0.sn = "SN0123456789" },
            FieldPin("mn 63:24", 24, ascii("QEMU NVMe Ctrl", 40)) { $0.mn = "QEMU NVMe Ctrl" },
            FieldPin("fr 71:64", 64, ascii("1.0", 8)) { $0.fr = "1.0" },
            .int("rab 72", 72, 1, \.rab),
            FieldPin("ieee 75:73", 73, [0x00, 0x54, 0x52]) { $0.ieee = 0x525400 },
            .int("cmic 76", 76, 1, \.cmic),
            .int("mdts 77", 77, 1, \.mdts),
            .int("cntlid 79:78", 78, 2, \.cntlid),
            .int("ver 83:80", 80, 4, \.ver),
            .int("rtd3r 87:84", 84, 4, \.rtd3r),
            .int("rtd3e 91:88", 88, 4, \.rtd3e),
            .int("oaes 95:92", 92, 4, \.oaes),
            .int("ctratt 99:96", 96, 4, \.ctratt),
            .int("rrls 101:100", 100, 2, \.rrls),
            .int("cntrltype 111", 111, 1, \.cntrltype),
            FieldPin("fguid 127:112", 112, pattern(112, 16)) { $0.fguid = pattern(112, 16) },
            .int("crdt1 129:128", 128, 2, \.crdt1),
            .int("crdt2 131:130", 130, 2, \.crdt2),
            .int("crdt3 133:132", 132, 2, \.crdt3),
            .int("nvmsr 253", 253, 1, \.nvmsr),
            .int("vwci 254", 254, 1, \.vwci),
            .int("mec 255", 255, 1, \.mec),
            .int("oacs 257:256", 256, 2, \.oacs),
            .int("acl 258", 258, 1, \.acl),
            .int("aerl 259", 259, 1, \.aerl),
            .int("frmw 260", 260, 1, \.frmw),
            .int("lpa 261", 261, 1, \.lpa),
            .int("elpe 262", 262, 1, \.elpe),
            .int("npss 263", 263, 1, \.npss),
            .int("avscc 264", 264, 1, \.avscc),
            .int("apsta 265", 265, 1, \.apsta),
            .int("wctemp 267:266", 266, 2, \.wctemp),
            .int("cctemp 269:268", 268, 2, \.cctemp),
            .int("mtfa 271:270", 270, 2, \.mtfa),
            .int("hmpre 275:272", 272, 4, \.hmpre),
            .int("hmmin 279:276", 276, 4, \.hmmin),
            .int("tnvmcap 295:280", 280, 16, \.tnvmcap),
            .int("unvmcap 311:296", 296, 16, \.unvmcap),
            .int("rpmbs 315:312", 312, 4, \.rpmbs),
            .int("edstt 317:316", 316, 2, \.edstt),
            .int("dsto 318", 318, 1, \.dsto),
            .int("fwug 319", 319, 1, \.fwug),
            .int("kas 321:320", 320, 2, \.kas),
            .int("hctma 323:322", 322, 2, \.hctma),
            .int("mntmt 325:324", 324, 2, \.mntmt),
            .int("mxtmt 327:326", 326, 2, \.mxtmt),
            .int("sanicap 331:328", 328, 4, \.sanicap),
            .int("hmminds 335:332", 332, 4, \.hmminds),
            .int("hmmaxd 337:336", 336, 2, \.hmmaxd),
            .int("nsetidmax 339:338", 338, 2, \.nsetidmax),
            .int("endgidmax 341:340", 340, 2, \.endgidmax),
            .int("anatt 342", 342, 1, \.anatt),
            .int("anacap 343", 343, 1, \.anacap),
            .int("anagrpmax 347:344", 344, 4, \.anagrpmax),
            .int("nanagrpid 351:348", 348, 4, \.nanagrpid),
            .int("pels 355:352", 352, 4, \.pels),
            .int("sqes 512", 512, 1, \.sqes),
            .int("cqes 513", 513, 1, \.cqes),
            .int("maxcmd 515:514", 514, 2, \.maxcmd),
            .int("nn 519:516", 516, 4, \.nn),
            .int("oncs 521:520", 520, 2, \.oncs),
            .int("fuses 523:522", 522, 2, \.fuses),
            .int("fna 524", 524, 1, \.fna),
            .int("vwc 525", 525, 1, \.vwc),
            .int("awun 527:526", 526, 2, \.awun),
            .int("awupf 529:528", 528, 2, \.awupf),
            .int("nvscc 530", 530, 1, \.nvscc),
            .int("nwpc 531", 531, 1, \.nwpc),
            .int("acwu 533:532", 532, 2, \.acwu),
            .int("ocfs 535:534 (NVMe 2.0)", 534, 2, \.ocfs),
            .int("sgls 539:536", 536, 4, \.sgls),
            .int("mnan 543:540", 540, 4, \.mnan),
            FieldPin("subnqn 1023:768", 768, Array("nqn.2019-08.org.qemu:nvmefs".utf8) + Array(repeating: 0, count: 256 - 27)) {
                $0.subnqn = "nqn.2019-08.org.qemu:nvmefs"
            },
            .int("ioccsz 1795:1792", 1792, 4, \.ioccsz),
            .int("iorcsz 1799:1796", 1796, 4, \.iorcsz),
            .int("icdoff 1801:1800", 1800, 2, \.icdoff),
            .int("fcatt 1802", 1802, 1, \.fcatt),
            .int("msdbd 1803", 1803, 1, \.msdbd),
            .int("ofcs 1805:1804", 1804, 2, \.ofcs),
        ]
        // PSD0 at 2079:2048 ... PSD31 at 3071:3040: MP at the start, RWL at byte 15 of each.
        for i in 0 ..< 32 {
            let base = 2048 + 32 * i
            let mp = pattern(base, 2)
            p.append(FieldPin("psd\(i).mp", base, mp) { $0.psd[i].mp = value(mp) })
            p.append(FieldPin("psd\(i).enlat", base + 4, le(UInt128(i + 1) * 1000, 4)) { $0.psd[i].enlat = UInt32(i + 1) * 1000 })
            p.append(FieldPin("psd\(i).rwl", base + 15, [UInt8(i % 31 + 1)]) { $0.psd[i].rwl = UInt8(i % 31 + 1) })
        }
        return p
    }

    @Test func fieldOffsets() {
        checkPins(IC(), Self.pins)
    }

    @Test func stringsArePaddedAndTrimmed() {
        var c = IC()
        c.sn = "abc"
        c.mn = String(repeating: "M", count: 50) // longer than 40: truncated
        c.fr = "12345678"
        let b = c.bytes
        #expect(Array(b[4 ..< 24]) == Array("abc".utf8) + Array(repeating: 0x20, count: 17))
        #expect(Array(b[24 ..< 64]) == Array(repeating: UInt8(ascii: "M"), count: 40))
        #expect(Array(b[64 ..< 72]) == Array("12345678".utf8))
        let d = IC(bytes: b)
        #expect(d?.sn == "abc" && d?.mn == String(repeating: "M", count: 40) && d?.fr == "12345678")
        // An empty identity encodes as spaces (QEMU style) and decodes as "".
        #expect(Array(IC().bytes[4 ..< 72]) == Array(repeating: 0x20, count: 68))
        #expect(IC(bytes: IC().bytes)?.sn == "")
        // Devices that NUL-pad decode the same.
        var raw = [UInt8](repeating: 0, count: 4096)
        raw.replaceSubrange(4 ..< 7, with: Array("xyz".utf8))
        #expect(IC(bytes: raw)?.sn == "xyz")
    }

    @Test func subnqnIsNulTerminated() {
        var c = IC()
        c.subnqn = String(repeating: "q", count: 300)
        let b = c.bytes
        #expect(b[768 + 254] == UInt8(ascii: "q"))
        #expect(b[768 + 255] == 0) // always terminated
        #expect(IC(bytes: b)?.subnqn.count == 255)
    }

    @Test func powerStateArrayIsAlways32() {
        var c = IC()
        c.psd = [PowerStateDescriptor(mp: 2500)]
        let d = IC(bytes: c.bytes)
        #expect(d?.psd.count == 32)
        #expect(d?.psd[0].mp == 2500 && d?.psd[1] == PowerStateDescriptor())
        c.psd = Array(repeating: PowerStateDescriptor(mp: 1), count: 40) // extras ignored
        #expect(c.bytes.count == 4096)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(IC(), Self.pins)
        checkShortPrefixes(full)
        #expect(IC.size == 4096)
        // Vendor specific area 4095:3072 and reserved bytes stay zero.
        let b = full.bytes
        #expect(b[3072 ..< 4096].allSatisfy { $0 == 0 })
        #expect(b[102 ..< 111].allSatisfy { $0 == 0 } && b[356 ..< 512].allSatisfy { $0 == 0 })
    }
}
