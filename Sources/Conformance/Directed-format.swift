import NVMeSpec

/// Directed Format NVM scenarios (NVMe 1.4 §5.23; docs/FORMAT.md): every
/// advertised LBA format with MSET, PI and PIL variations, each followed by
/// Identify Namespace and I/O on the new format; the statuses; the data
/// after a format; the Changed Namespace List and its notice; and, on a
/// device with two namespaces, formats of every namespace (NSID FFFFFFFFh)
/// and of a read-only one.
extension DirectedTable {
    /// A Format NVM command; CDW10: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9.
    static func formatNVM(nsid: UInt32 = 1, lbaf: Int, mset: Bool = false, pi: UInt32 = 0, pil: Bool = false,
                          ses: UInt32 = 0) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: 0x80, nsid: nsid,
                             cdw10: UInt32(lbaf) | (mset ? 0x10 : 0) | pi << 5 | (pil ? 0x100 : 0) | ses << 9)
    }

    /// The Identify Namespace fields a format sets (§5.15.2.1): size,
    /// capacity and utilization, the format and protection, and the progress.
    static let formatFields: Set<String> = ["nsze", "ncap", "nuse", "flbas", "dps", "fpi"]

    /// Identify Namespace `nsid`; records `label.status` and each of `formatFields` as `label.name`.
    static func observeFormat(_ s: Session, _ label: String, nsid: UInt32 = 1) throws {
        guard let e = try s.command(label, Cmd.identify(cns: 0, nsid: nsid), dw0: false), e.status.isSuccess else { return }
        let b = try s.peek(L.data, 4096)
        for f in FieldTable.identifyNamespace.fields where formatFields.contains(f.name) {
            s.record("\(label).\(f.name)", FieldTable.format(Array(b[f.offset..<(f.offset + f.length)]), text: false))
        }
    }

    /// Reads `count` blocks of namespace `nsid` (no metadata) and records the data's digest.
    static func readData(_ s: Session, _ label: String, nsid: UInt32 = 1, slba: UInt64, count: Int, lbaSize: Int = 512) throws {
        try s.poke(L.data2, [UInt8](repeating: 0xEE, count: count * lbaSize))
        guard let e = try s.command(label, Cmd.read(nsid: nsid, slba: slba, blocks: count, prp1: L.data2,
                                                    prp2: count * lbaSize > 4096 ? L.data2 + 0x1000 : 0), qid: 1),
              e.status.isSuccess else { return }
        try s.observeData(label + ".data", L.data2, count * lbaSize)
    }

    /// One way of asking for an LBA format: MSET, PI type and PIL, and the
    /// tag that names it (`s`eparate or `e`xtended, `-piN`, `f` PI first,
    /// `-pil` PIL without PI).
    struct FormatVariant: Sendable {
        var tag: String
        var mset: Bool
        var pi: UInt32
        var pil: Bool
    }

    /// The variations tried on an LBA format with `ms` bytes of metadata.
    static func formatVariants(ms: UInt16) -> [FormatVariant] {
        if ms == 0 {
            return [FormatVariant(tag: "plain", mset: false, pi: 0, pil: false),
                    FormatVariant(tag: "mset-pil", mset: true, pi: 0, pil: true)]
        }
        return [FormatVariant(tag: "s", mset: false, pi: 0, pil: false),
                FormatVariant(tag: "e-pil", mset: true, pi: 0, pil: true),
                FormatVariant(tag: "s-pi1", mset: false, pi: 1, pil: false),
                FormatVariant(tag: "e-pi2f", mset: true, pi: 2, pil: true),
                FormatVariant(tag: "s-pi3f", mset: false, pi: 3, pil: true),
                FormatVariant(tag: "e-pi1", mset: true, pi: 1, pil: false)]
    }

    /// Formats to LBA format `lbaf` as `v` asks, then Identify Namespace,
    /// Reads of the new format's first and 1000th blocks (zeroed data,
    /// deallocated metadata), a Write (PRACT when there is PI, else the
    /// host's metadata) and Reads back (raw, and checked when there is PI).
    static func formatAndUse(_ s: Session, lbaf: Int, _ v: FormatVariant) throws {
        let t = v.tag
        guard let e = try s.command("\(t).format", formatNVM(lbaf: lbaf, mset: v.mset, pi: v.pi, pil: v.pil)),
              e.status.isSuccess else { return }
        try observeFormat(s, "\(t).ns1")
        let advertised = NamespaceFormat.lbaFormats[lbaf]
        guard let type = ProtectionType(rawValue: UInt8(v.pi)) else { return }
        let f = NamespaceFormat(lbads: advertised.lbads, ms: advertised.ms, extended: v.mset && advertised.ms > 0,
                                pi: type, piFirst: v.pil && type != .none)
        let h = MetadataHost(s: s, f: f)
        try h.read("\(t).read-after-format", slba: 0, count: 2)
        try h.read("\(t).read-1000-after-format", slba: 1000, count: 2)
        if h.hasPI {
            try h.read("\(t).read-after-format-checked", slba: 0, count: 2, h.prchk(P.allChecks, slba: 0))
            try h.write("\(t).write-pract", slba: 8, h.blocks(slba: 8, count: 2, seed: UInt8(lbaf)),
                        P(prinfo: P.pract, ilbrt: 8, lbat: 0x1234))
            try h.read("\(t).read-checked", slba: 8, count: 2, h.prchk(P.allChecks, slba: 8))
            try h.read("\(t).read-pract", slba: 8, count: 2, h.prchk(P.allChecks, slba: 8, pract: true))
        } else {
            try h.write("\(t).write", slba: 8, h.blocks(slba: 8, count: 2, seed: UInt8(lbaf)))
        }
        try h.read("\(t).read", slba: 8, count: 2)
    }

    static var twoNamespaces: DeviceConfiguration { var c = DeviceConfiguration(); c.secondNamespace = .init(); return c }
    static var secondReadOnly: DeviceConfiguration {
        var c = DeviceConfiguration(); c.secondNamespace = .init(readOnly: true); return c
    }

    static var format: [Scenario] {
        // One scenario per LBA format, named with its data and metadata sizes
        // (`format-lbaf5-4096+8`): each variation formats the namespace left by the one before.
        NamespaceFormat.lbaFormats.enumerated().map { lbaf, advertised in
            Scenario("format-lbaf\(lbaf)-\(1 << Int(advertised.lbads))" + (advertised.ms > 0 ? "+\(advertised.ms)" : "")) { s in
                try s.bringUp()
                for v in formatVariants(ms: advertised.ms) { try formatAndUse(s, lbaf: lbaf, v) }
            }
        } + [
            Scenario("format-status") { s in
                try s.bringUp()
                for lbaf in 8...15 { try s.command("lbaf\(lbaf)", formatNVM(lbaf: lbaf)) }
                for pi: UInt32 in 1...7 {
                    try s.command("pi\(pi)-lbaf0", formatNVM(lbaf: 0, pi: pi))
                    try s.command("pi\(pi)-lbaf4", formatNVM(lbaf: 4, pi: pi))
                }
                for pi: UInt32 in 4...7 {
                    try s.command("pi\(pi)-lbaf1", formatNVM(lbaf: 1, pi: pi))
                    try s.command("pi\(pi)-lbaf7", formatNVM(lbaf: 7, pi: pi))
                }
                try s.command("pi4-lbaf8", formatNVM(lbaf: 8, pi: 4))
                // Which check comes first: LBAF, PI or SES.
                try s.command("lbaf8-ses3", formatNVM(lbaf: 8, ses: 3))
                try s.command("pi1-lbaf0-ses3", formatNVM(lbaf: 0, pi: 1, ses: 3))
                try s.command("pi4-lbaf1-ses3", formatNVM(lbaf: 1, pi: 4, ses: 3))
                for (label, nsid) in nsids where nsid != 0xFFFF_FFFF { try s.command(label, formatNVM(nsid: nsid, lbaf: 0)) }
                try observeFormat(s, "ns1-after-refusals")
                // Formats that succeed on both devices, each seen through Identify Namespace.
                // SES 1 and 2 erase; 3-7 are reserved (each label says `ses-reserved`).
                for ses: UInt32 in 1...7 {
                    let label = ses <= 2 ? "ses\(ses)" : "ses-reserved-\(ses)"
                    try s.command(label, formatNVM(lbaf: ses % 2 == 1 ? 4 : 0, ses: ses))
                    try observeFormat(s, "ns1-after-\(label)")
                }
                try s.command("nsid-ffffffff", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 4))
                try observeFormat(s, "ns1-after-nsid-ffffffff")
                try s.command("cdw11-15-set", SubmissionQueueEntry(opcode: 0x80, nsid: 1, cdw10: 0, cdw11: 0xFFFF_FFFF,
                                                                   cdw12: 0xFFFF_FFFF, cdw13: 0xFFFF_FFFF))
                try observeFormat(s, "ns1-after-cdw11-15")
            },
            Scenario("format-zeroed") { s in
                // The base image's blocks hold a pattern; one written block too.
                try s.bringUp()
                try s.poke(L.data, pattern(4096, 9))
                try s.command("write", Cmd.write(slba: 4000, blocks: 8), qid: 1)
                for (label, lba) in [("lba0", UInt64(0)), ("lba4000", 4000), ("lba8191", 8191)] {
                    try readData(s, "\(label)-before", slba: lba, count: 1)
                }
                try s.command("format-same", formatNVM(lbaf: 0))
                for (label, lba) in [("lba0", UInt64(0)), ("lba4000", 4000), ("lba8191", 8191)] {
                    try readData(s, "\(label)-after", slba: lba, count: 1)
                }
                try s.command("write-again", Cmd.write(slba: 4000, blocks: 8), qid: 1)
                try s.command("format-4096", formatNVM(lbaf: 4))
                try readData(s, "lba500-4096", slba: 500, count: 2, lbaSize: 4096)
                try readData(s, "lba1023-4096", slba: 1023, count: 1, lbaSize: 4096)
                try s.command("read-lba1024-4096", Cmd.read(slba: 1024, blocks: 1, prp1: L.data2), qid: 1)
                try s.command("read-lba8191-after-4096", Cmd.read(slba: 8191, blocks: 1, prp1: L.data2), qid: 1)
            },
            // Namespace Attribute Changed notices enabled (AEC bit 8), then not.
            Scenario("format-changed-ns-aec") { s in
                try s.enable()
                try s.command("set-aec-nan", Cmd.setFeatures(fid: 0x0B, value: 0x100))
                let aer = try s.submit(SubmissionQueueEntry(opcode: 0x0C))
                try s.command("format", formatNVM(lbaf: 0))
                try s.recordPending("aer-after-format", cid: aer)
                try changedNamespaceLog(s, "changed-ns-log")
                try changedNamespaceLog(s, "changed-ns-log-again")
                let aer2 = try s.submit(SubmissionQueueEntry(opcode: 0x0C))
                try s.command("format-again", formatNVM(lbaf: 4))
                try s.recordPending("aer-after-format-again", cid: aer2)
                try changedNamespaceLog(s, "changed-ns-log-rae", rae: true)
                try s.command("set-aec-off", Cmd.setFeatures(fid: 0x0B, value: 0))
                try s.command("format-aec-off", formatNVM(lbaf: 0))
                try changedNamespaceLog(s, "changed-ns-log-after-aec-off")
            },
            Scenario("format-changed-ns-no-aec") { s in
                try s.enable()
                try s.command("get-aec", Cmd.getFeatures(fid: 0x0B))
                let aer = try s.submit(SubmissionQueueEntry(opcode: 0x0C))
                try s.command("format", formatNVM(lbaf: 4))
                try s.recordPending("aer-after-format", cid: aer)
                try changedNamespaceLog(s, "changed-ns-log")
            },
            // Two namespaces: every namespace (FFFFFFFFh), one of them, refusals.
            Scenario("format-two-ns", configuration: twoNamespaces) { s in
                try s.bringUp()
                try s.command("nsid-ffffffff-lbaf4", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 4))
                try observeFormat(s, "ns1-after-nsid-ffffffff")
                try observeFormat(s, "ns2-after-nsid-ffffffff", nsid: 2)
                try readData(s, "ns1-lba0", slba: 0, count: 1, lbaSize: 4096)
                try readData(s, "ns2-lba0", nsid: 2, slba: 0, count: 1, lbaSize: 4096)
                try s.command("nsid2-lbaf0", formatNVM(nsid: 2, lbaf: 0))
                try observeFormat(s, "ns1-after-nsid2")
                try observeFormat(s, "ns2-after-nsid2", nsid: 2)
                try s.command("nsid3-inactive", formatNVM(nsid: 3, lbaf: 0))
                try s.command("nsid-ffffffff-lbaf8", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 8))
                try s.command("nsid-ffffffff-pi1-lbaf0", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 0, pi: 1))
                try s.command("nsid-ffffffff-pi4-lbaf1", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 1, pi: 4))
                try observeFormat(s, "ns1-after-refusals")
                try observeFormat(s, "ns2-after-refusals", nsid: 2)
                try changedNamespaceLog(s, "changed-ns-log")
                try s.command("nsid-ffffffff-ses-reserved-3", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 0, ses: 3))
                try observeFormat(s, "ns1-after-ses-reserved")
                try observeFormat(s, "ns2-after-ses-reserved", nsid: 2)
            },
            // Namespace 2 read-only: alone, and with namespace 1 (FFFFFFFFh).
            Scenario("format-read-only", configuration: secondReadOnly) { s in
                try s.bringUp()
                try s.command("nsid2", formatNVM(nsid: 2, lbaf: 0))
                try observeFormat(s, "ns2-after-nsid2", nsid: 2)
                try readData(s, "ns2-lba0-after-nsid2", nsid: 2, slba: 0, count: 1)
                try s.command("nsid-ffffffff", formatNVM(nsid: 0xFFFF_FFFF, lbaf: 4))
                try observeFormat(s, "ns1-after-nsid-ffffffff")
                try readData(s, "ns1-lba0-after-nsid-ffffffff", slba: 0, count: 1)
            },
        ]
    }

    /// Reads the Changed Namespace List (log page 04h, §5.14.1.4) and records
    /// its status and the first NSIDs (zero-terminated).
    static func changedNamespaceLog(_ s: Session, _ label: String, rae: Bool = false) throws {
        guard let e = try s.command(label, Cmd.getLogPage(lid: 4, numd: 1024, rae: rae), dw0: false), e.status.isSuccess else {
            return
        }
        let b = try s.peek(L.data, 4096)
        var ids: [String] = []
        for i in 0..<4 {
            let v = UInt32(b[4 * i]) | UInt32(b[4 * i + 1]) << 8 | UInt32(b[4 * i + 2]) << 16 | UInt32(b[4 * i + 3]) << 24
            if v == 0 { break }
            ids.append(Session.hex32(v))
        }
        s.record(label + ".nsids", ids.isEmpty ? "empty" : ids.joined(separator: " "))
    }
}
