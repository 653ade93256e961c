import NVMeSpec

/// The directed table: one scenario per area, each a short sequence whose
/// every completion, chosen register and returned field is an observation.
public enum DirectedTable {
    typealias L = Session.Layout
    typealias R = Session.Register

    public static var all: [Scenario] {
        registers + queues + identify + logs + features + misc + io + dataPointers + cmb + metadata + format + doorbellBuffers
    }

    // MARK: registers and controller state (NVMe 1.4 §3.1, §7.6)

    static let registers: [Scenario] = [
        Scenario("reg-reset-values") { s in
            try s.observeCAP()
            try s.observe32("vs", R.vs)
            for (n, o) in [("intms", R.intms), ("cc", R.cc), ("csts", R.csts), ("aqa", R.aqa), ("cmbloc", R.cmbloc), ("cmbsz", R.cmbsz)] {
                try s.observe32(n, o)
            }
            try s.observe64("asq", R.asq)
            try s.observe64("acq", R.acq)
        },
        Scenario("reg-enable") { s in
            try s.enable()
            try s.observe32("cc", R.cc)
            try s.observe32("aqa", R.aqa)
            try s.observe64("asq", R.asq)
            try s.observe64("acq", R.acq)
            try s.command("identify-after-enable", Cmd.identify(cns: 1), dw0: false)
        },
        Scenario("reg-intms-intmc") { s in
            try s.enable()
            try s.write32(R.intms, 0x5)
            try s.observe32("intms-after-set", R.intms)
            try s.observe32("intmc-after-set", R.intmc)
            try s.write32(R.intmc, 0x1)
            try s.observe32("intms-after-clear", R.intms)
        },
        Scenario("reg-enable-misaligned-asq") { s in try s.enable(asq: L.asq + 0x10); try s.observe32("cc", R.cc) },
        Scenario("reg-enable-misaligned-acq") { s in try s.enable(acq: L.acq + 0x100) },
        Scenario("reg-enable-iosqes-0") { s in try s.enable(cc: 0x40_0001) },
        Scenario("reg-enable-iocqes-0") { s in try s.enable(cc: 0x06_0001) },
        Scenario("reg-enable-mps-max") { s in try s.enable(cc: 0x46_0001 | 0xF << 7) },
        Scenario("reg-enable-css-7") { s in try s.enable(cc: 0x46_0001 | 0x7 << 4) },
        Scenario("reg-enable-ams-wrr") { s in try s.enable(cc: 0x46_0001 | 0x1 << 11) },
        Scenario("reg-enable-aqa-1") { s in
            try s.enable(asqEntries: 2, acqEntries: 2)
            try s.command("identify", Cmd.identify(cns: 1), dw0: false)
        },
        Scenario("reg-enable-acq-unmapped") { s in
            try s.enable(acq: GuestMemory.unmapped)
            let cid = try s.submit(Cmd.identify(cns: 1))
            try s.recordPending("identify", cid: cid)
            try s.observe32("csts-after-command", R.csts)
        },
        Scenario("reg-shutdown-normal") { s in
            try s.bringUp()
            try s.write32(R.cc, 0x46_0001 | 1 << 14)
            _ = try s.waitFor(1) { try s.reg32(R.csts) & 0xC == 0x8 }
            try s.observe32("csts-after-shn", R.csts)
            try s.observe32("cc-after-shn", R.cc)
            try s.command("identify-after-shutdown", Cmd.identify(cns: 1), dw0: false)
            try s.disable()
            try s.observe32("cc-after-disable", R.cc)
            try s.enable("reenable.csts")
        },
        Scenario("reg-shutdown-abrupt") { s in
            try s.bringUp()
            try s.write32(R.cc, 0x46_0001 | 2 << 14)
            _ = try s.waitFor(1) { try s.reg32(R.csts) & 0xC == 0x8 }
            try s.observe32("csts-after-shn", R.csts)
            try s.disable()
        },
        Scenario("reg-disable-enable") { s in
            try s.bringUp()
            try s.disable()
            try s.observe32("aqa-after-disable", R.aqa)
            try s.observe64("asq-after-disable", R.asq)
            try s.enable("reenable.csts")
            try s.command("sq1-gone", Cmd.read(slba: 0, blocks: 1), qid: 0)
            _ = try s.createCQ("createcq1-again", qid: 1, entries: 16)
        },
        Scenario("reg-doorbell-invalid") { s in
            try s.bringUp()
            try s.write32(R.sqTail(5), 1)          // a queue that does not exist
            try s.write32(R.cqHead(1), 40)         // a head past the tail
            try s.write32(R.sqTail(1), 64)         // a tail beyond the queue size
            try s.observe32("csts", R.csts)
            try s.command("identify-after", Cmd.identify(cns: 1), dw0: false)
        },
        Scenario("reg-nssr") { s in
            try s.bringUp()
            try s.write32(R.nssr, 0x4E56_4D65)
            _ = try s.waitFor(0.2) { false }
            try s.observe32("csts-after-nssr", R.csts)
            try s.observe32("cc-after-nssr", R.cc)
        },
    ]

    // MARK: queue management (NVMe 1.4 §5.3-§5.6)

    static let queues: [Scenario] = [
        Scenario("createcq-status") { s in
            try s.enable()
            // Each failing case uses its own queue id, so that a case one device accepts cannot change the next.
            _ = try s.createCQ("qid0", qid: 0, entries: 16)
            _ = try s.createCQ("qid-max+1", qid: 65, entries: 16)
            _ = try s.createCQ("qid-ffff", qid: 0xFFFF, entries: 16, base: L.cq(9))
            _ = try s.createCQ("size0", qid: 1, entries: 1)
            _ = try s.createCQ("size-mqes+2", qid: 2, entries: 2049)
            _ = try s.createCQ("size-65536", qid: 3, entries: 65536)
            _ = try s.createCQ("base-misaligned", qid: 4, entries: 16, base: L.cq(4) + 0x10)
            _ = try s.createCQ("base-unmapped", qid: 5, entries: 16, base: GuestMemory.unmapped)
            _ = try s.createCQ("vector-65-ien", qid: 6, entries: 16, vector: 65, ien: true)
            _ = try s.createCQ("vector-65-noien", qid: 7, entries: 16, vector: 65, ien: false)
            _ = try s.createCQ("vector-2048-ien", qid: 8, entries: 16, vector: 2048, ien: true)
            _ = try s.createCQ("pc0", qid: 9, entries: 16, pc: false)
            _ = try s.createCQ("ok-vector-1", qid: 10, entries: 16, vector: 1, ien: true)
            _ = try s.createCQ("exists", qid: 10, entries: 16)
            _ = try s.createCQ("ok-qid-64-2048-entries", qid: 64, entries: 2048, base: 0x300_0000)
            var e = SubmissionQueueEntry(opcode: 0x05, prp1: L.cq(11), cdw10: 15 << 16 | 11, cdw11: 1)
            e.psdt = 1
            try s.command("psdt1", e)
        },
        Scenario("createsq-status") { s in
            try s.enable()
            _ = try s.createCQ("cq1", qid: 1, entries: 16)
            _ = try s.createSQ("qid0", qid: 0, entries: 16, cqid: 1)
            _ = try s.createSQ("qid-max+1", qid: 65, entries: 16, cqid: 1)
            _ = try s.createSQ("cqid0", qid: 2, entries: 16, cqid: 0)
            _ = try s.createSQ("cqid-missing", qid: 3, entries: 16, cqid: 2)
            _ = try s.createSQ("cqid-max+1", qid: 4, entries: 16, cqid: 65)
            _ = try s.createSQ("size0", qid: 5, entries: 1, cqid: 1)
            _ = try s.createSQ("size-mqes+2", qid: 6, entries: 2049, cqid: 1)
            _ = try s.createSQ("base-misaligned", qid: 7, entries: 16, cqid: 1, base: L.sq(7) + 0x40)
            _ = try s.createSQ("base-unmapped", qid: 8, entries: 16, cqid: 1, base: GuestMemory.unmapped)
            _ = try s.createSQ("pc0", qid: 9, entries: 16, cqid: 1, pc: false)
            _ = try s.createSQ("qprio-3", qid: 10, entries: 16, cqid: 1, qprio: 3)
            _ = try s.createSQ("ok", qid: 1, entries: 16, cqid: 1)
            _ = try s.createSQ("exists", qid: 1, entries: 16, cqid: 1)
            _ = try s.createSQ("ok-shared-cq", qid: 11, entries: 16, cqid: 1)
            try s.command("read-on-shared-cq", Cmd.read(slba: 0, blocks: 1), qid: 11)
            var e = SubmissionQueueEntry(opcode: 0x01, prp1: L.sq(12), cdw10: 15 << 16 | 12, cdw11: 1 << 16 | 1)
            e.psdt = 1
            try s.command("psdt1", e)
        },
        Scenario("delete-queues") { s in
            try s.bringUp()
            try s.deleteCQ("delete-cq-with-sq", qid: 1)
            try s.deleteSQ("delete-sq-missing", qid: 7)
            try s.deleteCQ("delete-cq-missing", qid: 7)
            try s.deleteSQ("delete-sq0", qid: 0)
            try s.deleteCQ("delete-cq0", qid: 0)
            try s.deleteSQ("delete-sq-max+1", qid: 65)
            try s.deleteCQ("delete-cq-ffff", qid: 0xFFFF)
            try s.deleteSQ("delete-sq1", qid: 1)
            try s.deleteSQ("delete-sq1-again", qid: 1)
            try s.deleteCQ("delete-cq1", qid: 1)
            _ = try s.createCQ("recreate-cq1", qid: 1, entries: 8)
            _ = try s.createSQ("recreate-sq1", qid: 1, entries: 8, cqid: 1)
            try s.command("read-after-recreate", Cmd.read(slba: 0, blocks: 1), qid: 1)
        },
        Scenario("queue-wrap") { s in
            try s.enable()
            _ = try s.createCQ("cq1", qid: 1, entries: 4)
            _ = try s.createSQ("sq1", qid: 1, entries: 4, cqid: 1)
            for i in 0..<10 { try s.command("read\(i)", Cmd.read(slba: UInt64(i), blocks: 1), qid: 1) }
            try s.observeData("data", L.data, 512)
        },
    ]

    // MARK: Identify (NVMe 1.4 §5.15)

    static let identify: [Scenario] = [
        Scenario("identify-controller") { s in
            try s.enable()
            try s.command("cns1", Cmd.identify(cns: 1), dw0: false)
            FieldTable.identifyController.observe(s, "ctrl", try s.peek(L.data, 4096))
            try s.command("cns1-nsid1", Cmd.identify(cns: 1, nsid: 1), dw0: false)
            try s.command("cns1-nsid-ffffffff", Cmd.identify(cns: 1, nsid: 0xFFFF_FFFF), dw0: false)
        },
        Scenario("identify-namespace") { s in
            try s.enable()
            try s.command("cns0-nsid1", Cmd.identify(cns: 0, nsid: 1), dw0: false)
            FieldTable.identifyNamespace.observe(s, "ns1", try s.peek(L.data, 4096))
            for (label, nsid) in [("nsid0", UInt32(0)), ("nsid2", 2), ("nsid256", 256), ("nsid257", 257),
                                  ("nsid-fffffffe", 0xFFFF_FFFE), ("nsid-ffffffff", 0xFFFF_FFFF)] {
                try s.poke(L.data, [UInt8](repeating: 0xAA, count: 4096))
                try s.command("cns0-\(label)", Cmd.identify(cns: 0, nsid: nsid), dw0: false)
                try s.observeData("cns0-\(label).data", L.data, 4096)
            }
        },
        Scenario("identify-nslist") { s in
            try s.enable()
            for (label, nsid) in [("nsid0", UInt32(0)), ("nsid1", 1), ("nsid2", 2), ("nsid-fffffffe", 0xFFFF_FFFE),
                                  ("nsid-ffffffff", 0xFFFF_FFFF)] {
                try s.poke(L.data, [UInt8](repeating: 0xAA, count: 4096))
                try s.command("cns2-\(label)", Cmd.identify(cns: 2, nsid: nsid), dw0: false)
                try s.observeData("cns2-\(label).data", L.data, 4096)
            }
        },
        Scenario("identify-descriptors") { s in
            try s.enable()
            for (label, nsid) in [("nsid1", UInt32(1)), ("nsid0", 0), ("nsid2", 2), ("nsid-ffffffff", 0xFFFF_FFFF)] {
                try s.poke(L.data, [UInt8](repeating: 0xAA, count: 4096))
                try s.command("cns3-\(label)", Cmd.identify(cns: 3, nsid: nsid), dw0: false)
                let d = try s.peek(L.data, 4096)
                // Descriptors: NIDT, NIDL, 2 reserved, NID; a zero NIDT ends the list.
                var off = 0, i = 0
                while off + 4 <= 4096 && d[off] != 0 && i < 8 {
                    let len = Int(d[off + 1])
                    s.record("cns3-\(label).desc\(i)", QTestProtocol.hexDigits(Array(d[off..<min(4096, off + 4 + len)])))
                    off += 4 + len; i += 1
                }
                s.record("cns3-\(label).count", "\(i)")
            }
        },
        Scenario("identify-other-cns") { s in
            try s.enable()
            for cns: UInt8 in [0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x1F, 0x20, 0xFF] {
                try s.command(String(format: "cns%02x", cns), Cmd.identify(cns: cns, nsid: cns == 0x11 ? 1 : 0), dw0: false)
            }
            try s.command("cns0x10-nsid1", Cmd.identify(cns: 0x10, nsid: 1), dw0: false)
            try s.command("cns0x11-nsid2", Cmd.identify(cns: 0x11, nsid: 2), dw0: false)
        },
        Scenario("identify-data-pointer") { s in
            try s.enable()
            try s.command("prp1-offset-800-prp2", Cmd.identify(cns: 1, prp1: L.data + 0x800, prp2: L.data2), dw0: false)
            try s.observeData("prp1-offset-800-prp2.first", L.data + 0x800, 0x800)
            try s.observeData("prp1-offset-800-prp2.second", L.data2, 0x800)
            try s.command("prp1-offset-no-prp2", Cmd.identify(cns: 1, prp1: L.data + 0x800, prp2: 0), dw0: false)
            try s.command("prp1-offset-prp2-unmapped", Cmd.identify(cns: 1, prp1: L.data + 0x800, prp2: GuestMemory.unmapped), dw0: false)
            try s.command("prp1-offset-prp2-misaligned", Cmd.identify(cns: 1, prp1: L.data + 0x800, prp2: L.data2 + 4), dw0: false)
            try s.command("prp1-unmapped", Cmd.identify(cns: 1, prp1: GuestMemory.unmapped), dw0: false)
            try s.command("prp1-not-dword-aligned", Cmd.identify(cns: 1, prp1: L.data + 2), dw0: false)
            try s.command("prp1-zero", Cmd.identify(cns: 1, prp1: 0), dw0: false)
            for psdt: UInt8 in 1...3 {
                var e = Cmd.identify(cns: 1)
                e.psdt = psdt
                try s.command("psdt\(psdt)", e, dw0: false)
            }
            var sgl = Cmd.withSGL(Cmd.identify(cns: 1), Cmd.sgl(L.data, 4096, type: 0))
            try s.command("sgl-data-block", sgl, dw0: false)
            sgl.psdt = 2
            try s.command("sgl-psdt2", sgl, dw0: false)
        },
    ]

    // MARK: Get Log Page (NVMe 1.4 §5.14)

    static let logs: [Scenario] = [
        Scenario("log-smart") { s in
            try s.bringUp()
            try s.command("write", Cmd.write(slba: 0, blocks: 8), qid: 1)
            try s.command("read", Cmd.read(slba: 0, blocks: 16), qid: 1)
            try s.command("lid2", Cmd.getLogPage(lid: 2, numd: 128), dw0: false)
            FieldTable.smart.observe(s, "smart", try s.peek(L.data, 512))
            for (label, nsid) in [("nsid0", UInt32(0)), ("nsid1", 1), ("nsid2", 2), ("nsid-fffffffe", 0xFFFF_FFFE)] {
                try s.command("lid2-\(label)", Cmd.getLogPage(lid: 2, numd: 128, nsid: nsid), dw0: false)
            }
            try s.command("lid2-offset-256", Cmd.getLogPage(lid: 2, numd: 64, offset: 256), dw0: false)
            try s.command("lid2-offset-512", Cmd.getLogPage(lid: 2, numd: 1, offset: 512), dw0: false)
            try s.command("lid2-offset-513", Cmd.getLogPage(lid: 2, numd: 1, offset: 513), dw0: false)
            try s.command("lid2-offset-2", Cmd.getLogPage(lid: 2, numd: 1, offset: 2), dw0: false)
            try s.command("lid2-numd-1024", Cmd.getLogPage(lid: 2, numd: 1024, prp2: L.data2), dw0: false)
            try s.command("lid2-rae", Cmd.getLogPage(lid: 2, numd: 128, rae: true), dw0: false)
            try s.command("lid2-lsp1", Cmd.getLogPage(lid: 2, numd: 128, lsp: 1), dw0: false)
        },
        Scenario("log-error") { s in
            try s.bringUp()
            try s.command("provoke-invalid-ns", Cmd.read(nsid: 9, slba: 0, blocks: 1), qid: 1)
            try s.command("provoke-lba-range", Cmd.read(slba: 9000, blocks: 1), qid: 1)
            try s.command("lid1", Cmd.getLogPage(lid: 1, numd: 64), dw0: false)
            let b = try s.peek(L.data, 256)
            for i in 0..<2 { FieldTable.errorEntry.observe(s, "entry\(i)", Array(b[(64 * i)..<(64 * i + 64)])) }
            try s.command("lid1-nsid1", Cmd.getLogPage(lid: 1, numd: 16, nsid: 1), dw0: false)
            try s.command("lid1-offset-64", Cmd.getLogPage(lid: 1, numd: 16, offset: 64), dw0: false)
            try s.command("lid1-offset-big", Cmd.getLogPage(lid: 1, numd: 16, offset: 64 * 64), dw0: false)
        },
        Scenario("log-firmware-slot") { s in
            try s.enable()
            try s.command("lid3", Cmd.getLogPage(lid: 3, numd: 128), dw0: false)
            FieldTable.firmwareSlot.observe(s, "fw", try s.peek(L.data, 512))
            try s.command("lid3-nsid1", Cmd.getLogPage(lid: 3, numd: 128, nsid: 1), dw0: false)
            try s.command("lid3-offset-513", Cmd.getLogPage(lid: 3, numd: 1, offset: 516), dw0: false)
        },
        Scenario("log-changed-ns") { s in
            try s.enable()
            try s.command("lid4", Cmd.getLogPage(lid: 4, numd: 1024), dw0: false)
            try s.observeData("lid4.data", L.data, 4096)
            try s.command("lid4-nsid0", Cmd.getLogPage(lid: 4, numd: 1024, nsid: 0), dw0: false)
            try s.command("lid4-offset-4096", Cmd.getLogPage(lid: 4, numd: 1, offset: 4096), dw0: false)
        },
        Scenario("log-effects") { s in
            try s.enable()
            try s.command("lid5", Cmd.getLogPage(lid: 5, numd: 1024), dw0: false)
            let b = try s.peek(L.data, 2048)
            s.observeDwords("effects", b) { i in i < 256 ? String(format: "acs%02x", i) : String(format: "iocs%02x", i - 256) }
            try s.command("lid5-nsid1", Cmd.getLogPage(lid: 5, numd: 1024, nsid: 1), dw0: false)
            try s.command("lid5-offset-4092", Cmd.getLogPage(lid: 5, numd: 1, offset: 4092), dw0: false)
            try s.command("lid5-offset-4096", Cmd.getLogPage(lid: 5, numd: 1, offset: 4096), dw0: false)
        },
        Scenario("log-other-lids") { s in
            try s.enable()
            for lid: UInt8 in [0x00, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x70, 0x80, 0x81, 0xC0, 0xFF] {
                try s.command(String(format: "lid%02x", lid), Cmd.getLogPage(lid: lid, numd: 16), dw0: false)
            }
            var e = Cmd.getLogPage(lid: 2, numd: 128)
            e.psdt = 1
            try s.command("psdt1", e, dw0: false)
            try s.command("unmapped-buffer", Cmd.getLogPage(lid: 2, numd: 128, prp1: GuestMemory.unmapped), dw0: false)
        },
    ]

    // MARK: Get/Set Features (NVMe 1.4 §5.9, §5.21)

    static let featureIDs: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
                                      0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x7F, 0x80,
                                      0x81, 0x82, 0x83, 0x84, 0xC0, 0xFF]

    static let features: [Scenario] = [
        Scenario("features-get") { s in
            try s.enable()
            for fid in featureIDs {
                for sel: UInt8 in 0...3 where fid != 0x0E || sel == 3 {
                    let cdw11: UInt32 = fid == 0x09 ? 1 : 0
                    try s.command(String(format: "fid%02x-sel%d", fid, sel), Cmd.getFeatures(fid: fid, sel: sel, cdw11: cdw11))
                }
            }
            try s.command("fid0e-sel0", Cmd.getFeatures(fid: 0x0E, sel: 0), dw0: true)
            try s.command("sel4", Cmd.getFeatures(fid: 0x07, sel: 4))
            try s.command("sel7", Cmd.getFeatures(fid: 0x07, sel: 7))
        },
        Scenario("features-get-nsid") { s in
            try s.enable()
            for fid: UInt8 in [0x02, 0x04, 0x05, 0x06, 0x07, 0x0B] {
                for (label, nsid) in [("nsid1", UInt32(1)), ("nsid2", 2), ("nsid-fffffffe", 0xFFFF_FFFE),
                                      ("nsid-ffffffff", 0xFFFF_FFFF), ("nsid257", 257)] {
                    try s.command(String(format: "fid%02x-%@", fid, label), Cmd.getFeatures(fid: fid, nsid: nsid))
                }
            }
        },
        Scenario("features-set") { s in
            try s.enable()
            let values: [(UInt8, UInt32)] = [(0x01, 0x0302_0103), (0x02, 0x0), (0x02, 0x1F), (0x04, 0x150), (0x04, 0x1_0150),
                                             (0x04, 0x0010_0150), (0x04, 0x0020_0150), (0x04, 0x0030_0150), (0x04, 0x0009_0150),
                                             (0x05, 0x1_0010), (0x06, 0x1), (0x06, 0x0), (0x08, 0x0105), (0x09, 0x1_0001),
                                             (0x09, 0x1_0041), (0x0A, 1), (0x0B, 0x0000_0100), (0x0B, 0xFFFF_FFFF),
                                             (0x0C, 1), (0x0F, 1000), (0x10, 0), (0x11, 0), (0x80, 0), (0x81, 1)]
            for (fid, v) in values {
                let label = String(format: "set-fid%02x-%08x", fid, v)
                try s.command(label, Cmd.setFeatures(fid: fid, value: v))
                try s.command(label + "-get", Cmd.getFeatures(fid: fid, sel: 0, cdw11: fid == 0x09 ? 1 : 0))
            }
            for fid: UInt8 in [0x01, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0E] {
                try s.command(String(format: "save-fid%02x", fid), Cmd.setFeatures(fid: fid, value: 0, save: true))
            }
            for fid: UInt8 in [0x01, 0x04, 0x08, 0x0B] {
                try s.command(String(format: "fid%02x-default", fid), Cmd.getFeatures(fid: fid, sel: 1))
                try s.command(String(format: "fid%02x-saved", fid), Cmd.getFeatures(fid: fid, sel: 2))
            }
            try s.poke(L.data, [1, 0, 0, 0, 0, 0, 0, 0])
            try s.command("set-timestamp", Cmd.setFeatures(fid: 0x0E, value: 0))
            try s.command("set-timestamp-unmapped", Cmd.setFeatures(fid: 0x0E, value: 0, prp1: GuestMemory.unmapped))
            try s.command("set-fid05-nsid1", Cmd.setFeatures(fid: 0x05, value: 0, nsid: 1))
            try s.command("set-fid05-nsid2", Cmd.setFeatures(fid: 0x05, value: 0, nsid: 2))
            try s.command("set-fid05-nsid-ffffffff", Cmd.setFeatures(fid: 0x05, value: 0, nsid: 0xFFFF_FFFF))
            try s.command("set-fid04-nsid1", Cmd.setFeatures(fid: 0x04, value: 0x150, nsid: 1))
        },
        Scenario("features-number-of-queues") { s in
            try s.enable()
            try s.command("get-nq", Cmd.getFeatures(fid: 0x07))
            try s.command("set-nq-ffff", Cmd.setFeatures(fid: 0x07, value: 0xFFFF_FFFF))
            try s.command("set-nq-3-3", Cmd.setFeatures(fid: 0x07, value: 0x0003_0003))
            try s.command("get-nq-after", Cmd.getFeatures(fid: 0x07))
            _ = try s.createCQ("createcq1", qid: 1, entries: 16)
            try s.command("set-nq-after-queue", Cmd.setFeatures(fid: 0x07, value: 0x0001_0001))
            _ = try s.createCQ("createcq-10", qid: 10, entries: 16)
        },
        Scenario("features-vwc") { s in
            try s.bringUp()
            try s.command("get-vwc", Cmd.getFeatures(fid: 0x06))
            try s.command("set-vwc-0", Cmd.setFeatures(fid: 0x06, value: 0))
            try s.command("get-vwc-after", Cmd.getFeatures(fid: 0x06))
            try s.command("flush", SubmissionQueueEntry(opcode: 0x00, nsid: 1), qid: 1)
            try s.command("set-vwc-1", Cmd.setFeatures(fid: 0x06, value: 1))
        },
    ]

    // MARK: Abort, AER, Keep Alive, opcodes (NVMe 1.4 §5.1, §5.2, §5.16)

    static let misc: [Scenario] = [
        Scenario("abort") { s in
            try s.bringUp()
            try s.command("abort-missing-cid", SubmissionQueueEntry(opcode: 0x08, cdw10: 0x1234 << 16 | 1))
            try s.command("abort-missing-sq", SubmissionQueueEntry(opcode: 0x08, cdw10: 0x1234 << 16 | 9))
            try s.command("abort-admin-sq", SubmissionQueueEntry(opcode: 0x08, cdw10: 0x1 << 16 | 0))
            let aer = try s.submit(SubmissionQueueEntry(opcode: 0x0C))
            try s.command("abort-aer", SubmissionQueueEntry(opcode: 0x08, cdw10: UInt32(aer) << 16 | 0))
            try s.recordPending("aer-after-abort", cid: aer)
        },
        Scenario("aer") { s in
            try s.enable()
            var cids: [UInt16] = []
            for _ in 0..<5 { cids.append(try s.submit(SubmissionQueueEntry(opcode: 0x0C))) }
            for (i, c) in cids.enumerated() { try s.recordPending("aer\(i)", cid: c) }
            // Temperature threshold below the current temperature: a SMART event.
            try s.command("set-temp-threshold-low", Cmd.setFeatures(fid: 0x04, value: 0x0100))
            for (i, c) in cids.prefix(4).enumerated() { try s.recordPending("aer\(i)-after-event", cid: c) }
            try s.command("smart-log-rae0", Cmd.getLogPage(lid: 2, numd: 128), dw0: false)
            try s.command("set-temp-threshold-high", Cmd.setFeatures(fid: 0x04, value: 0x0FFF))
        },
        Scenario("aer-invalid-doorbell") { s in
            try s.enable()
            let aer = try s.submit(SubmissionQueueEntry(opcode: 0x0C))
            try s.write32(R.sqTail(3), 1)
            try s.recordPending("aer-after-bad-doorbell", cid: aer)
            try s.command("error-log", Cmd.getLogPage(lid: 1, numd: 16), dw0: false)
            try s.observe32("csts", R.csts)
        },
        Scenario("keep-alive") { s in
            try s.enable()
            try s.command("keep-alive", SubmissionQueueEntry(opcode: 0x18))
            try s.command("get-kato", Cmd.getFeatures(fid: 0x0F))
        },
        Scenario("admin-opcodes") { s in
            try s.enable()
            for op: UInt8 in [0x03, 0x07, 0x0B, 0x0D, 0x0E, 0x10, 0x11, 0x14, 0x15, 0x19, 0x1A, 0x1C, 0x1D, 0x1E, 0x1F,
                              0x7C, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x86, 0xC0, 0xFF] {
                try s.command(String(format: "op%02x", op), SubmissionQueueEntry(opcode: op, nsid: 1))
            }
            var fused = Cmd.identify(cns: 1)
            fused.fuse = 1
            try s.command("identify-fused-first", fused, dw0: false)
        },
        Scenario("io-opcodes") { s in
            try s.bringUp()
            for op: UInt8 in [0x03, 0x04, 0x06, 0x07, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x14, 0x15,
                              0x19, 0x7F, 0x80, 0xFF] {
                try s.command(String(format: "op%02x", op), SubmissionQueueEntry(opcode: op, nsid: 1), qid: 1)
            }
            try s.command("admin-opcode-on-io-queue", Cmd.identify(cns: 1), qid: 1)
        },
    ]

    // MARK: NVM commands (NVMe 1.4 §6)

    static func pattern(_ n: Int, _ seed: UInt8) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ Int(seed) &+ ($0 >> 9)) }
    }

    static let nsids: [(String, UInt32)] = [("nsid0", 0), ("nsid2", 2), ("nsid257", 257), ("nsid-fffffffe", 0xFFFF_FFFE),
                                            ("nsid-ffffffff", 0xFFFF_FFFF)]

    static let io: [Scenario] = [
        Scenario("io-read-write") { s in
            try s.bringUp()
            try s.poke(L.data, pattern(4096, 1))
            try s.command("write-0-8", Cmd.write(slba: 0, blocks: 8), qid: 1)
            try s.poke(L.data2, [UInt8](repeating: 0, count: 4096))
            try s.command("read-0-8", Cmd.read(slba: 0, blocks: 8, prp1: L.data2), qid: 1)
            try s.observeData("read-0-8.data", L.data2, 4096)
            try s.command("read-last", Cmd.read(slba: 8191, blocks: 1, prp1: L.data2), qid: 1)
            try s.observeData("read-last.data", L.data2, 512)
            try s.command("read-past-end", Cmd.read(slba: 8191, blocks: 2), qid: 1)
            try s.command("read-slba-nsze", Cmd.read(slba: 8192, blocks: 1), qid: 1)
            try s.command("read-slba-huge", Cmd.read(slba: 0xFFFF_FFFF_FFFF_FFFF, blocks: 1), qid: 1)
            try s.command("write-past-end", Cmd.write(slba: 8190, blocks: 3), qid: 1)
            for (l, n) in nsids {
                try s.command("read-\(l)", Cmd.read(nsid: n, slba: 0, blocks: 1), qid: 1)
                try s.command("write-\(l)", Cmd.write(nsid: n, slba: 0, blocks: 1), qid: 1)
            }
            var fua = Cmd.write(slba: 16, blocks: 1); fua.cdw12 |= 1 << 30
            try s.command("write-fua", fua, qid: 1)
            var lr = Cmd.read(slba: 16, blocks: 1); lr.cdw12 |= 1 << 31
            try s.command("read-limited-retry", lr, qid: 1)
            var prinfo = Cmd.read(slba: 16, blocks: 1); prinfo.cdw12 |= 0xF << 26
            try s.command("read-prinfo", prinfo, qid: 1)
            var dsm = Cmd.read(slba: 16, blocks: 1); dsm.cdw13 = 0xFF
            try s.command("read-dsm-hints", dsm, qid: 1)
            var cdw2 = Cmd.read(slba: 16, blocks: 1); cdw2.cdw2 = 0xFFFF_FFFF; cdw2.mptr = 0x1234
            try s.command("read-reserved-and-mptr", cdw2, qid: 1)
        },
        Scenario("io-mdts") { s in
            try s.bringUp()
            // 512 KiB = MDTS (2^7 × 4 KiB): PRP1 + a PRP list of 127 entries.
            try s.poke64(L.lists, (1..<128).map { L.data + 0x1000 * UInt64($0) })
            try s.command("read-1024-blocks", Cmd.read(slba: 0, blocks: 1024, prp1: L.data, prp2: L.lists), qid: 1)
            try s.observeData("read-1024-blocks.data", L.data, 1024 * 512)
            try s.command("read-1032-blocks", Cmd.read(slba: 0, blocks: 1032, prp1: L.data, prp2: L.lists), qid: 1)
            try s.command("write-1032-blocks", Cmd.write(slba: 0, blocks: 1032, prp1: L.data, prp2: L.lists), qid: 1)
            try s.command("read-65536-blocks", Cmd.read(slba: 0, blocks: 65536, prp1: L.data, prp2: L.lists), qid: 1)
            var wz = Cmd.rw(0x08, slba: 0, blocks: 2048)
            wz.prp1 = 0
            try s.command("write-zeroes-2048-blocks", wz, qid: 1)
            try s.command("read-after-write-zeroes", Cmd.read(slba: 2047, blocks: 1, prp1: L.data2), qid: 1)
            try s.observeData("read-after-write-zeroes.data", L.data2, 512)
            try s.command("compare-1032-blocks", Cmd.rw(0x05, slba: 0, blocks: 1032, prp1: L.data, prp2: L.lists), qid: 1)
        },
        Scenario("io-flush") { s in
            try s.bringUp()
            try s.command("flush-nsid1", SubmissionQueueEntry(opcode: 0x00, nsid: 1), qid: 1)
            for (l, n) in nsids { try s.command("flush-\(l)", SubmissionQueueEntry(opcode: 0x00, nsid: n), qid: 1) }
        },
        Scenario("io-write-zeroes") { s in
            try s.bringUp()
            try s.command("wz-10-8", Cmd.rw(0x08, slba: 10, blocks: 8, prp1: 0), qid: 1)
            try s.command("read-10-8", Cmd.read(slba: 10, blocks: 8), qid: 1)
            try s.observeData("read-10-8.data", L.data, 4096)
            var deac = Cmd.rw(0x08, slba: 20, blocks: 8, prp1: 0); deac.cdw12 |= 1 << 25
            try s.command("wz-deac", deac, qid: 1)
            try s.command("read-20-8", Cmd.read(slba: 20, blocks: 8), qid: 1)
            try s.observeData("read-20-8.data", L.data, 4096)
            try s.command("wz-past-end", Cmd.rw(0x08, slba: 8190, blocks: 4, prp1: 0), qid: 1)
            try s.command("wz-65536", Cmd.rw(0x08, slba: 0, blocks: 65536, prp1: 0), qid: 1)
            for (l, n) in nsids { try s.command("wz-\(l)", Cmd.rw(0x08, nsid: n, slba: 0, blocks: 1, prp1: 0), qid: 1) }
        },
        Scenario("io-dsm") { s in
            try s.bringUp()
            func range(_ slba: UInt64, _ nlb: UInt32, _ attr: UInt32 = 0) -> [UInt8] {
                var b = [UInt8](repeating: 0, count: 16)
                for i in 0..<4 { b[i] = UInt8(truncatingIfNeeded: attr >> (8 * UInt32(i))) }
                for i in 0..<4 { b[4 + i] = UInt8(truncatingIfNeeded: nlb >> (8 * UInt32(i))) }
                for i in 0..<8 { b[8 + i] = UInt8(truncatingIfNeeded: slba >> (8 * UInt64(i))) }
                return b
            }
            func dsm(_ nr: Int, ad: Bool, nsid: UInt32 = 1) -> SubmissionQueueEntry {
                SubmissionQueueEntry(opcode: 0x09, nsid: nsid, prp1: L.lists, cdw10: UInt32(nr - 1), cdw11: ad ? 4 : 0)
            }
            try s.poke(L.lists, range(200, 16) + range(400, 8) + [UInt8](repeating: 0, count: 4096 - 32))
            try s.command("deallocate-2", dsm(2, ad: true), qid: 1)
            try s.command("read-200", Cmd.read(slba: 200, blocks: 8), qid: 1)
            try s.observeData("read-200.data", L.data, 4096)
            try s.command("no-ad", dsm(2, ad: false), qid: 1)
            try s.command("idr-idw", SubmissionQueueEntry(opcode: 0x09, nsid: 1, prp1: L.lists, cdw10: 0, cdw11: 3), qid: 1)
            try s.poke(L.lists, range(8190, 8))
            try s.command("range-past-end", dsm(1, ad: true), qid: 1)
            try s.poke(L.lists, range(0, 0))
            try s.command("range-nlb0", dsm(1, ad: true), qid: 1)
            try s.command("nr-256", dsm(256, ad: true), qid: 1)
            try s.command("unmapped-list", SubmissionQueueEntry(opcode: 0x09, nsid: 1, prp1: GuestMemory.unmapped, cdw10: 0, cdw11: 4), qid: 1)
            for (l, n) in nsids { try s.command("dsm-\(l)", dsm(1, ad: true, nsid: n), qid: 1) }
        },
        Scenario("io-compare") { s in
            try s.bringUp()
            try s.poke(L.data, [UInt8](repeating: 0, count: 4096))
            try s.command("compare-equal", Cmd.rw(0x05, slba: 100, blocks: 8), qid: 1)
            try s.poke(L.data + 700, [1])
            try s.command("compare-differs", Cmd.rw(0x05, slba: 100, blocks: 8), qid: 1)
            try s.command("compare-past-end", Cmd.rw(0x05, slba: 8191, blocks: 2), qid: 1)
            try s.command("compare-unmapped", Cmd.rw(0x05, slba: 100, blocks: 1, prp1: GuestMemory.unmapped), qid: 1)
            for (l, n) in nsids { try s.command("compare-\(l)", Cmd.rw(0x05, nsid: n, slba: 100, blocks: 1), qid: 1) }
            var fused1 = Cmd.rw(0x05, slba: 100, blocks: 1); fused1.fuse = 1
            var fused2 = Cmd.write(slba: 100, blocks: 1); fused2.fuse = 2
            let c1 = try s.submit(fused1, qid: 1)
            let c2 = try s.submit(fused2, qid: 1)
            s.recordCompletion("fused-compare", try s.wait(cid: c1, qid: 1))
            s.recordCompletion("fused-write", try s.wait(cid: c2, qid: 1))
            var lone = Cmd.write(slba: 100, blocks: 1); lone.fuse = 2
            try s.command("fused-second-alone", lone, qid: 1)
            // The pair in one doorbell write (§4.12): the Compare matches (the block is zeros).
            try s.poke(L.data, [UInt8](repeating: 0, count: 512))
            let pair = try s.submit([fused1, fused2], qid: 1)
            s.recordCompletion("fused-pair-compare", try s.wait(cid: pair[0], qid: 1))
            s.recordCompletion("fused-pair-write", try s.wait(cid: pair[1], qid: 1))
        },
        Scenario("io-verify-copy-uncorrectable") { s in
            try s.bringUp()
            try s.command("verify", Cmd.rw(0x0C, slba: 0, blocks: 8, prp1: 0), qid: 1)
            try s.command("verify-past-end", Cmd.rw(0x0C, slba: 8191, blocks: 2, prp1: 0), qid: 1)
            try s.command("write-uncorrectable", Cmd.rw(0x04, slba: 300, blocks: 1, prp1: 0), qid: 1)
            try s.command("read-uncorrectable", Cmd.read(slba: 300, blocks: 1), qid: 1)
            try s.command("write-over-uncorrectable", Cmd.write(slba: 300, blocks: 1), qid: 1)
        },
    ]

    // MARK: PRP and SGL data pointers (NVMe 1.4 §4.3, §4.4)

    static let dataPointers: [Scenario] = [
        Scenario("prp") { s in
            try s.bringUp()
            try s.poke(L.data, pattern(0x4000, 7))
            try s.command("read-offset-200-two-pages", Cmd.read(slba: 0, blocks: 8, prp1: L.data + 0x200, prp2: L.data2), qid: 1)
            try s.observeData("read-offset-200-two-pages.first", L.data + 0x200, 0xE00)
            try s.observeData("read-offset-200-two-pages.second", L.data2, 0x200)
            try s.command("read-offset-no-prp2", Cmd.read(slba: 0, blocks: 8, prp1: L.data + 0x200, prp2: 0), qid: 1)
            try s.command("read-prp2-offset", Cmd.read(slba: 0, blocks: 16, prp1: L.data, prp2: L.data2 + 0x200), qid: 1)
            try s.command("read-prp1-unaligned-2", Cmd.read(slba: 0, blocks: 1, prp1: L.data + 2), qid: 1)
            try s.command("read-prp1-unmapped", Cmd.read(slba: 0, blocks: 1, prp1: GuestMemory.unmapped), qid: 1)
            try s.command("write-prp1-unmapped", Cmd.write(slba: 0, blocks: 1, prp1: GuestMemory.unmapped), qid: 1)
            try s.command("read-straddles-ram-end", Cmd.read(slba: 0, blocks: 16, prp1: UInt64(GuestMemory.size) - 0x1000,
                                                              prp2: UInt64(GuestMemory.size)), qid: 1)
            // Three pages: PRP2 is a list.
            try s.poke64(L.lists, [L.data2, L.data2 + 0x2000])
            try s.command("read-list-3-pages", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: L.lists), qid: 1)
            try s.observeData("read-list-3-pages.third", L.data2 + 0x2000, 0x1000)
            try s.command("read-list-offset-8", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: L.lists + 8), qid: 1)
            try s.command("read-list-misaligned-4", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: L.lists + 4), qid: 1)
            try s.poke64(L.lists + 0x100, [L.data2 + 0x10, L.data2 + 0x2000])
            try s.command("read-list-entry-offset", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: L.lists + 0x100), qid: 1)
            try s.poke64(L.lists + 0x200, [GuestMemory.unmapped, L.data2])
            try s.command("read-list-entry-unmapped", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: L.lists + 0x200), qid: 1)
            try s.command("read-list-unmapped", Cmd.read(slba: 0, blocks: 24, prp1: L.data, prp2: GuestMemory.unmapped), qid: 1)
            // A list whose last entry of the page chains to the next list page.
            let tail = L.lists + 0x1000 - 8
            try s.poke64(tail, [L.lists + 0x3000])
            try s.poke64(L.lists + 0x3000, [L.data2, L.data2 + 0x1000, L.data2 + 0x2000])
            try s.command("read-list-chained", Cmd.read(slba: 0, blocks: 32, prp1: L.data, prp2: tail), qid: 1)
            try s.poke64(tail, [L.lists + 0x3008])
            try s.command("read-list-chain-offset", Cmd.read(slba: 0, blocks: 32, prp1: L.data, prp2: tail), qid: 1)
            try s.poke64(tail, [tail])
            try s.command("read-list-chain-loop", Cmd.read(slba: 0, blocks: 32, prp1: L.data, prp2: tail), qid: 1)
        },
        Scenario("sgl") { s in
            try s.bringUp()
            try s.command("identify-sgls", Cmd.identify(cns: 1), dw0: false)
            try s.poke(L.data2, pattern(0x2000, 3))
            typealias D = (UInt64, UInt64)
            let rd = Cmd.read(slba: 0, blocks: 8)
            let wr = Cmd.write(slba: 40, blocks: 8)
            try s.command("read-data-block", Cmd.withSGL(rd, Cmd.sgl(L.data2, 4096, type: 0)), qid: 1)
            try s.observeData("read-data-block.data", L.data2, 4096)
            try s.command("read-data-block-short", Cmd.withSGL(rd, Cmd.sgl(L.data2, 2048, type: 0)), qid: 1)
            try s.command("read-data-block-long", Cmd.withSGL(rd, Cmd.sgl(L.data2, 8192, type: 0)), qid: 1)
            try s.command("read-data-block-unmapped", Cmd.withSGL(rd, Cmd.sgl(GuestMemory.unmapped, 4096, type: 0)), qid: 1)
            try s.command("write-data-block", Cmd.withSGL(wr, Cmd.sgl(L.data2, 4096, type: 0)), qid: 1)
            // Last segment of two data blocks.
            try s.poke(L.lists, Cmd.sglBytes([Cmd.sgl(L.data2 + 0x3000, 1024, type: 0), Cmd.sgl(L.data2 + 0x5000, 3072, type: 0)]))
            try s.command("read-last-segment", Cmd.withSGL(rd, Cmd.sgl(L.lists, 32, type: 3)), qid: 1)
            try s.observeData("read-last-segment.first", L.data2 + 0x3000, 1024)
            try s.observeData("read-last-segment.second", L.data2 + 0x5000, 3072)
            // Segment → last segment.
            try s.poke(L.lists + 0x100, Cmd.sglBytes([Cmd.sgl(L.data2 + 0x3000, 2048, type: 0), Cmd.sgl(L.lists + 0x200, 16, type: 3)]))
            try s.poke(L.lists + 0x200, Cmd.sglBytes([Cmd.sgl(L.data2 + 0x6000, 2048, type: 0)]))
            try s.command("read-segment-chain", Cmd.withSGL(rd, Cmd.sgl(L.lists + 0x100, 32, type: 2)), qid: 1)
            try s.observeData("read-segment-chain.second", L.data2 + 0x6000, 2048)
            // Bit bucket in a read: the first 512 bytes are discarded.
            try s.poke(L.lists + 0x300, Cmd.sglBytes([Cmd.sgl(0, 512, type: 1), Cmd.sgl(L.data2 + 0x7000, 3584, type: 0)]))
            try s.command("read-bit-bucket", Cmd.withSGL(rd, Cmd.sgl(L.lists + 0x300, 32, type: 3)), qid: 1)
            try s.observeData("read-bit-bucket.data", L.data2 + 0x7000, 3584)
            try s.command("write-bit-bucket", Cmd.withSGL(wr, Cmd.sgl(L.lists + 0x300, 32, type: 3)), qid: 1)
            try s.command("read-bit-bucket-only", Cmd.withSGL(rd, Cmd.sgl(0, 4096, type: 1)), qid: 1)
            // Errors.
            try s.command("type-invalid-f", Cmd.withSGL(rd, Cmd.sgl(L.data2, 4096, type: 0xF)), qid: 1)
            try s.command("keyed-data-block", Cmd.withSGL(rd, Cmd.sgl(L.data2, 4096, type: 4)), qid: 1)
            try s.command("data-block-subtype-1", Cmd.withSGL(rd, Cmd.sgl(L.data2, 4096, type: 0, subtype: 1)), qid: 1)
            try s.command("segment-unmapped", Cmd.withSGL(rd, Cmd.sgl(GuestMemory.unmapped, 32, type: 3)), qid: 1)
            try s.command("segment-length-0", Cmd.withSGL(rd, Cmd.sgl(L.lists, 0, type: 3)), qid: 1)
            try s.command("segment-length-not-16", Cmd.withSGL(rd, Cmd.sgl(L.lists, 24, type: 3)), qid: 1)
            try s.poke(L.lists + 0x400, Cmd.sglBytes([Cmd.sgl(L.data2, 2048, type: 0), Cmd.sgl(L.lists + 0x500, 16, type: 2)]))
            try s.command("last-segment-holds-segment", Cmd.withSGL(rd, Cmd.sgl(L.lists + 0x400, 32, type: 3)), qid: 1)
            try s.poke(L.lists + 0x600, Cmd.sglBytes([Cmd.sgl(L.data2, 2048, type: 0)]))
            try s.command("segment-too-short-for-transfer", Cmd.withSGL(rd, Cmd.sgl(L.lists + 0x600, 16, type: 3)), qid: 1)
            // Not run: a segment descriptor pointing at itself (QEMU 7.2 never completes it; D-sgl-segment-loop).
            var p2 = Cmd.withSGL(rd, Cmd.sgl(L.data2, 4096, type: 0)); p2.psdt = 2
            try s.command("psdt2-io", p2, qid: 1)
            var p3 = p2; p3.psdt = 3
            try s.command("psdt3-io", p3, qid: 1)
            try s.command("flush-with-sgl", Cmd.withSGL(SubmissionQueueEntry(opcode: 0x00, nsid: 1), Cmd.sgl(0, 0, type: 0)), qid: 1)
        },
    ]

    // MARK: Controller Memory Buffer (NVMe 1.4 §3.1.11, §3.1.12, §4.7)

    static var cmbConfiguration: DeviceConfiguration { var c = DeviceConfiguration(); c.cmbMiB = 1; return c }

    static let cmb: [Scenario] = [
        Scenario("cmb", configuration: cmbConfiguration) { s in
            try s.observeCAP()
            try s.observe32("cmbloc", R.cmbloc)
            try s.observe32("cmbsz", R.cmbsz)
            guard let base = s.device.cmbBase else { s.record("cmb", "none"); return }
            // CMBMSC (offset 50h): CRE makes CMBLOC/CMBSZ valid, CMSE with CBA enables the memory space.
            try s.write64(0x50, 1)
            try s.observe32("cmbloc-after-cre", R.cmbloc)
            try s.observe32("cmbsz-after-cre", R.cmbsz)
            try s.write64(0x50, base | 3)
            try s.observe64("cmbmsc", 0x50)
            try s.bringUp()
            try s.poke(base, pattern(4096, 9))
            try s.observeData("cmb-readback", base, 4096)
            try s.command("write-from-cmb", Cmd.write(slba: 50, blocks: 8, prp1: base), qid: 1)
            try s.command("read-to-cmb", Cmd.read(slba: 50, blocks: 8, prp1: base + 0x1000), qid: 1)
            try s.observeData("read-to-cmb.data", base + 0x1000, 4096)
            _ = try s.createCQ("createcq2-in-cmb", qid: 2, entries: 16, base: base + 0x4000)
            _ = try s.createSQ("createsq2-in-cmb", qid: 2, entries: 16, cqid: 1, base: base + 0x8000)
            try s.command("read-via-cmb-sq", Cmd.read(slba: 0, blocks: 1), qid: 2)
            try s.command("mixed-cmb-and-ram", Cmd.read(slba: 0, blocks: 16, prp1: base + 0x1000, prp2: L.data), qid: 1)
        },
    ]
}
