import NVMeSpec

/// A host on a namespace with metadata (NVMe 1.4 §8.2) and end-to-end
/// protection (§8.3): builds Read, Write and Compare commands with their
/// data and metadata laid out as the format says (extended LBA or a buffer
/// of its own at MPTR), their PI and PRINFO, and records what comes back.
/// Guest memory: data written from `L.data`, read into `L.data2`; separate
/// metadata written from 14xxxxxh, read into 1Cxxxxxh; PRP lists and SGL
/// descriptors from `L.lists`.
struct MetadataHost {
    typealias L = Session.Layout
    let s: Session
    let f: NamespaceFormat

    static let writeMetadata: UInt64 = 0x140_0000
    static let readMetadata: UInt64 = 0x1C0_0000
    static let writeList = L.lists, readList = L.lists + 0x1000, descriptor = L.lists + 0x2000

    /// The blocks of one transfer: each block's data and metadata.
    struct Blocks {
        var data: [[UInt8]]
        var metadata: [[UInt8]]
    }

    /// PRINFO (CDW12 bits 29:26: PRACT, then PRCHK guard, application tag,
    /// reference tag) and the expected tags (CDW14 ILBRT, CDW15 LBATM:LBAT).
    struct Protection {
        static let pract: UInt8 = 8, guardCheck: UInt8 = 4, appCheck: UInt8 = 2, refCheck: UInt8 = 1, allChecks: UInt8 = 7
        var prinfo: UInt8 = 0
        var ilbrt: UInt32 = 0
        var lbat: UInt16 = 0
        var lbatm: UInt16 = 0xFFFF
        var pract: Bool { prinfo & Self.pract != 0 }
    }

    /// How the command points at its buffers: PRPs with MPTR at the metadata
    /// buffer (or at `mptr`), or PSDT 10b — SGL1 a Data Block, MPTR the
    /// address of one SGL descriptor of `sglType` for the metadata buffer,
    /// `sglLengthDelta` bytes longer or shorter, at `descriptor + sglOffset`
    /// (type 3, Last Segment: a segment holding one Data Block for it).
    struct Pointers {
        var sgl = false
        var mptr: UInt64?
        var sglLengthDelta = 0
        var sglType: UInt8 = 0
        var sglOffset: UInt64 = 0
    }

    var piLength: Int { ProtectionInformation.size }
    var hasPI: Bool { f.pi != .none }

    /// Whether the metadata crosses the bus: not when PRACT is set and the
    /// metadata is exactly the PI (NVMe 1.4 §8.3.1; docs/METADATA.md).
    func metadataTransferred(_ p: Protection) -> Bool { !(hasPI && p.pract && f.ms == 8) }

    /// Bytes of the data buffer for `count` blocks.
    func dataLength(_ count: Int, _ p: Protection) -> Int {
        count * (f.lbaSize + (f.extended && metadataTransferred(p) ? Int(f.ms) : 0))
    }
    /// Bytes of the separate metadata buffer.
    func metadataLength(_ count: Int, _ p: Protection) -> Int {
        !f.extended && metadataTransferred(p) ? count * Int(f.ms) : 0
    }

    // MARK: block contents

    /// Distinct data and metadata for each block; the PI tuple (if any) is
    /// the one a host computes for `slba` with `app` (types 1 and 2:
    /// reference tag ILBRT + i, type 3: ILBRT).
    func blocks(slba: UInt64, count: Int, seed: UInt8, app: UInt16 = 0x1234, ilbrt: UInt32? = nil) -> Blocks {
        var b = Blocks(data: [], metadata: [])
        let ref = ilbrt ?? UInt32(truncatingIfNeeded: slba)
        for i in 0..<count {
            b.data.append(DirectedTable.pattern(f.lbaSize, seed &+ UInt8(truncatingIfNeeded: i &* 17)))
            var md = (0..<Int(f.ms)).map { UInt8(truncatingIfNeeded: 0xA0 &+ Int(seed) &+ i &* 31 &+ $0) }
            if hasPI {
                setPI(&md, data: b.data[i], app: app, ref: f.pi == .type3 ? ref : ref &+ UInt32(i))
            }
            b.metadata.append(md)
        }
        return b
    }

    /// Stores the tuple (guard over the data and, when the PI is the last
    /// eight bytes of more, the metadata before it; docs/METADATA.md).
    func setPI(_ md: inout [UInt8], data: [UInt8], app: UInt16, ref: UInt32, guardTag: UInt16? = nil) {
        let at = f.piOffset
        var crc = data.withUnsafeBytes { CRC16T10DIF.checksum($0) }
        if at > 0 { crc = md[0..<at].withUnsafeBytes { CRC16T10DIF.update(crc, $0) } }
        let g = guardTag ?? crc
        md.replaceSubrange(at..<(at + piLength), with: [UInt8(g >> 8), UInt8(g & 0xFF), UInt8(app >> 8), UInt8(app & 0xFF),
                                                         UInt8(ref >> 24), UInt8((ref >> 16) & 0xFF), UInt8((ref >> 8) & 0xFF),
                                                         UInt8(ref & 0xFF)])
    }

    /// Overwrites byte `offset` of block `block`'s PI tuple (0-1 guard,
    /// 2-3 application tag, 4-7 reference tag) with `value`.
    func corrupt(_ b: inout Blocks, block: Int, piByte offset: Int, _ value: UInt8) {
        guard hasPI else { return }
        b.metadata[block][f.piOffset + offset] = value
    }

    // MARK: buffers

    /// PRP1/PRP2 for a contiguous, page-aligned buffer, with a PRP list at `list` when needed.
    func prps(_ address: UInt64, _ length: Int, list: UInt64) throws -> (UInt64, UInt64) {
        let pages = (length + 4095) / 4096
        if pages <= 1 { return (address, 0) }
        if pages == 2 { return (address, address + 0x1000) }
        try s.poke64(list, (1..<pages).map { address + 0x1000 * UInt64($0) })
        return (address, list)
    }

    /// The command: opcode, range, PRINFO, tags and the pointers to
    /// `data` (and `metadata`) for `count` blocks.
    func command(_ opcode: UInt8, slba: UInt64, count: Int, _ p: Protection, _ ptr: Pointers,
                 data: UInt64, metadata: UInt64, list: UInt64) throws -> SubmissionQueueEntry {
        var e = Cmd.rw(opcode, slba: slba, blocks: count)
        e.cdw12 |= UInt32(p.prinfo & 0xF) << 26
        e.cdw14 = p.ilbrt
        e.cdw15 = UInt32(p.lbatm) << 16 | UInt32(p.lbat)
        let length = dataLength(count, p)
        if ptr.sgl {
            e = Cmd.withSGL(e, Cmd.sgl(data, UInt32(length), type: 0))
            e.psdt = 2
            let mdLength = max(0, count * Int(f.ms) + ptr.sglLengthDelta)
            var first = Cmd.sgl(metadata, UInt32(mdLength), type: ptr.sglType)
            if ptr.sglType == 3 {
                // A Last Segment descriptor whose segment holds the Data Block.
                try s.poke(Self.descriptor + 0x100, Cmd.sglBytes([Cmd.sgl(metadata, UInt32(mdLength), type: 0)]))
                first = Cmd.sgl(Self.descriptor + 0x100, 16, type: 3)
            }
            try s.poke(Self.descriptor + ptr.sglOffset, Cmd.sglBytes([first]))
            e.mptr = Self.descriptor + ptr.sglOffset
        } else {
            (e.prp1, e.prp2) = try prps(data, length, list: list)
            e.mptr = ptr.mptr ?? metadata
        }
        return e
    }

    /// Places `b` in the write buffers as the format and PRACT say.
    func stage(_ b: Blocks, _ p: Protection) throws {
        var data: [UInt8] = [], md: [UInt8] = []
        for i in 0..<b.data.count {
            data += b.data[i]
            if f.extended && metadataTransferred(p) { data += b.metadata[i] } else { md += b.metadata[i] }
        }
        try s.poke(L.data, data)
        if metadataLength(b.data.count, p) > 0 { try s.poke(Self.writeMetadata, md) }
    }

    // MARK: commands

    @discardableResult
    func write(_ label: String, slba: UInt64, _ b: Blocks, _ p: Protection = Protection(), _ ptr: Pointers = Pointers())
        throws -> CompletionQueueEntry? {
        try stage(b, p)
        let e = try command(0x01, slba: slba, count: b.data.count, p, ptr, data: L.data, metadata: Self.writeMetadata,
                            list: Self.writeList)
        return try s.command(label, e, qid: 1)
    }

    /// Compares `b` (staged as a Write would be) with the medium.
    func compare(_ label: String, slba: UInt64, _ b: Blocks, _ p: Protection = Protection()) throws {
        try stage(b, p)
        try s.command(label, try command(0x05, slba: slba, count: b.data.count, p, Pointers(), data: L.data,
                                         metadata: Self.writeMetadata, list: Self.writeList), qid: 1)
    }

    /// Reads `count` blocks into buffers filled with EEh first; on success
    /// records the data's digest (`label.data`) and each block's metadata
    /// as it reached the host (`label.md<i>`; EEh bytes: not transferred).
    /// A failed Read's buffers are not compared: nvmefs transfers the data
    /// before it checks the PI (docs/METADATA.md), QEMU checks first.
    func read(_ label: String, slba: UInt64, count: Int, _ p: Protection = Protection(), _ ptr: Pointers = Pointers()) throws {
        let length = dataLength(count, p)
        try s.poke(L.data2, [UInt8](repeating: 0xEE, count: length))
        try s.poke(Self.readMetadata, [UInt8](repeating: 0xEE, count: count * Int(f.ms)))
        let e = try command(0x02, slba: slba, count: count, p, ptr, data: L.data2, metadata: Self.readMetadata,
                            list: Self.readList)
        guard let c = try s.command(label, e, qid: 1), c.status.isSuccess else { return }
        let buffer = try s.peek(L.data2, length)
        let separate = try s.peek(Self.readMetadata, count * Int(f.ms))
        let ms = Int(f.ms)
        var data: [UInt8] = []
        for i in 0..<count {
            let md: [UInt8]
            if f.extended && metadataTransferred(p) {
                let at = i * (f.lbaSize + ms)
                data += buffer[at..<(at + f.lbaSize)]
                md = Array(buffer[(at + f.lbaSize)..<(at + f.lbaSize + ms)])
            } else {
                data += buffer[(i * f.lbaSize)..<((i + 1) * f.lbaSize)]
                md = Array(separate[(i * ms)..<((i + 1) * ms)])
            }
            s.record("\(label).md\(i)", QTestProtocol.hexDigits(md))
        }
        s.record(label + ".data", Session.digest(data))
    }

    /// PRINFO with `checks` and the tags a host expects for `slba`. On a
    /// type 3 namespace the reference tag check is dropped unless
    /// `keepReferenceCheck`: the scenarios probe it on its own, so that the
    /// other checks stay comparable.
    func prchk(_ checks: UInt8, slba: UInt64, app: UInt16 = 0x1234, ilbrt: UInt32? = nil, pract: Bool = false,
               keepReferenceCheck: Bool = false) -> Protection {
        let c = f.pi == .type3 && !keepReferenceCheck ? checks & ~Protection.refCheck : checks
        return Protection(prinfo: c | (pract ? Protection.pract : 0), ilbrt: ilbrt ?? UInt32(truncatingIfNeeded: slba), lbat: app)
    }
}

/// Directed scenarios on namespaces with metadata and end-to-end protection
/// (NVMe 1.4 §8.2, §8.3; docs/METADATA.md), each run on every format of
/// `metadataFormats`.
extension DirectedTable {
    /// The formats, with the tag that ends each scenario's name: data+metadata
    /// size, `s`eparate or `e`xtended, PI type, `f` when the PI is the first
    /// eight bytes.
    public static let metadataFormats: [(tag: String, format: NamespaceFormat)] = [
        ("512+8s-pi1", NamespaceFormat(lbads: 9, ms: 8, extended: false, pi: .type1)),
        ("512+16s-pi1", NamespaceFormat(lbads: 9, ms: 16, extended: false, pi: .type1)),
        ("4096+16e-pi2f", NamespaceFormat(lbads: 12, ms: 16, extended: true, pi: .type2, piFirst: true)),
        ("512+64s", NamespaceFormat(lbads: 9, ms: 64)),
        ("4096+8e-pi3", NamespaceFormat(lbads: 12, ms: 8, extended: true, pi: .type3)),
    ]

    typealias P = MetadataHost.Protection

    /// One scenario per format: `name-TAG`.
    static func onEveryFormat(_ name: String, _ body: @escaping @Sendable (MetadataHost) throws -> Void) -> [Scenario] {
        metadataFormats.map { tag, format in
            var c = DeviceConfiguration()
            c.namespaceFormat = format
            return Scenario("\(name)-\(tag)", configuration: c) { s in
                try s.bringUp()
                try body(MetadataHost(s: s, f: format))
            }
        }
    }

    static var metadata: [Scenario] {
        onEveryFormat("md-identify") { h in
            try h.s.command("cns0-nsid1", Cmd.identify(cns: 0, nsid: 1), dw0: false)
            FieldTable.identifyNamespace.observe(h.s, "ns1", try h.s.peek(L.data, 4096))
        }
        + onEveryFormat("md-pract") { h in
            // PRACT on a Write: the controller generates the PI (the host's
            // PI bytes, if transferred, are replaced); read back raw, checked, stripped.
            var b = h.blocks(slba: 16, count: 4, seed: 1)
            for i in 0..<4 { h.corrupt(&b, block: i, piByte: 0, 0x5A) }
            try h.write("write-pract", slba: 16, b, P(prinfo: P.pract, ilbrt: 16, lbat: 0x1234))
            try h.read("read-raw", slba: 16, count: 4)
            try h.read("read-checked", slba: 16, count: 4, h.prchk(P.allChecks, slba: 16))
            try h.read("read-pract-checked", slba: 16, count: 4, h.prchk(P.allChecks, slba: 16, pract: true))
            try h.read("read-pract-nochecks", slba: 16, count: 4, P(prinfo: P.pract))
            try h.read("read-wrong-app", slba: 16, count: 4, h.prchk(P.appCheck, slba: 16, app: 0x4321))
            var masked = h.prchk(P.appCheck, slba: 16, app: 0x12FF)
            masked.lbatm = 0xFF00
            try h.read("read-app-masked", slba: 16, count: 4, masked)
            try h.read("read-wrong-ilbrt", slba: 16, count: 4, h.prchk(P.refCheck, slba: 16, ilbrt: 17))
            try h.read("read-wrong-ilbrt-guard-only", slba: 16, count: 4, h.prchk(P.guardCheck, slba: 16, ilbrt: 17))
            // PRACT and every PRCHK on a Write: the generated PI is what is written.
            try h.write("write-pract-checks", slba: 20, h.blocks(slba: 20, count: 2, seed: 2),
                        h.prchk(P.allChecks, slba: 20, app: 0x0BAD, pract: true))
            try h.read("read-after-pract-checks", slba: 20, count: 2, h.prchk(P.allChecks, slba: 20, app: 0x0BAD))
            try h.write("write-pract-ilbrt-other", slba: 24, h.blocks(slba: 24, count: 2, seed: 3),
                        P(prinfo: P.pract, ilbrt: 0x10000, lbat: 7))
            try h.read("read-after-ilbrt-other", slba: 24, count: 2)
            try h.write("write-pract-refcheck-ilbrt-other", slba: 26, h.blocks(slba: 26, count: 2, seed: 4),
                        P(prinfo: P.pract | P.refCheck, ilbrt: 0x10000, lbat: 7))
        }
        + onEveryFormat("md-prchk") { h in
            // Host PI with every check on a Write: good, then one bad field each.
            let good = h.blocks(slba: 32, count: 4, seed: 5)
            try h.write("write-good", slba: 32, good, h.prchk(P.allChecks, slba: 32))
            try h.read("read-good", slba: 32, count: 4, h.prchk(P.allChecks, slba: 32))
            for (name, byte, check) in [("guard", 0, P.guardCheck), ("app", 3, P.appCheck), ("ref", 7, P.refCheck)] {
                var bad = good
                h.corrupt(&bad, block: 2, piByte: byte, bad.metadata[2][h.f.piOffset + byte] ^ 0x01)
                try h.write("write-bad-\(name)", slba: 32, bad, h.prchk(P.allChecks, slba: 32))
                try h.write("write-bad-\(name)-other-checks", slba: 32, bad, h.prchk(P.allChecks & ~check, slba: 32))
                try h.read("read-after-bad-\(name)", slba: 32, count: 4, h.prchk(P.allChecks, slba: 32))
            }
            // Stored PI corrupted through Writes without checks, then Reads with checks.
            var stored = h.blocks(slba: 40, count: 4, seed: 6)
            h.corrupt(&stored, block: 1, piByte: 1, stored.metadata[1][h.f.piOffset + 1] ^ 0x80)
            h.corrupt(&stored, block: 2, piByte: 2, 0x99)
            h.corrupt(&stored, block: 3, piByte: 6, 0x77)
            try h.write("write-corrupt", slba: 40, stored)
            try h.read("read-nochecks", slba: 40, count: 4)
            for (name, check) in [("guard", P.guardCheck), ("app", P.appCheck), ("ref", P.refCheck)] {
                try h.read("read-check-\(name)", slba: 40, count: 4, h.prchk(check, slba: 40))
                try h.read("read-check-\(name)-block0", slba: 40, count: 1, h.prchk(check, slba: 40))
            }
            // Escapes: application tag FFFFh (types 1 and 2), with reference tag FFFFFFFFh (type 3).
            var escape = h.blocks(slba: 48, count: 2, seed: 7)
            for i in 0..<2 {
                h.corrupt(&escape, block: i, piByte: 0, 0xDE)
                h.corrupt(&escape, block: i, piByte: 2, 0xFF)
                h.corrupt(&escape, block: i, piByte: 3, 0xFF)
            }
            try h.write("write-escape-app-checked", slba: 48, escape, h.prchk(P.allChecks, slba: 48))
            try h.write("write-escape-app", slba: 48, escape)
            try h.read("read-escape-app-checked", slba: 48, count: 2, h.prchk(P.allChecks, slba: 48))
            for i in 0..<2 { for k in 4..<8 { h.corrupt(&escape, block: i, piByte: k, 0xFF) } }
            try h.write("write-escape-both-checked", slba: 48, escape, h.prchk(P.allChecks, slba: 48))
            try h.write("write-escape-both", slba: 48, escape)
            try h.read("read-escape-both-checked", slba: 48, count: 2, h.prchk(P.allChecks, slba: 48))
            // ILBRT other than SLBA's low 32 bits with the reference tag checked (type 1: Invalid Protection Information).
            let other = h.blocks(slba: 56, count: 2, seed: 8, ilbrt: 1000)
            try h.write("write-ilbrt-other-refcheck", slba: 56, other, h.prchk(P.allChecks, slba: 56, ilbrt: 1000))
            try h.write("write-ilbrt-other-norefcheck", slba: 56, other, h.prchk(P.guardCheck | P.appCheck, slba: 56, ilbrt: 1000))
            try h.read("read-ilbrt-other-refcheck", slba: 56, count: 2, h.prchk(P.refCheck, slba: 56, ilbrt: 1000))
            try h.read("read-ilbrt-other-norefcheck", slba: 56, count: 2, h.prchk(P.guardCheck, slba: 56, ilbrt: 1000))
            // The reference tag check alone with the right tags (type 3: ILBRT on every block).
            try h.write("write-refcheck", slba: 58, h.blocks(slba: 58, count: 2, seed: 14),
                        h.prchk(P.refCheck, slba: 58, keepReferenceCheck: true))
            try h.read("read-refcheck", slba: 58, count: 2, h.prchk(P.refCheck, slba: 58, keepReferenceCheck: true))
        }
        + onEveryFormat("md-copy") { h in
            // Copy (19h, NVMe 2.0 NVM Command Set §3.2.2), format 0 entries at
            // `lists + 4000h`: data and metadata reach the destination.
            let entries = MetadataHost.writeList + 0x4000
            let nsze = UInt64(4 << 20) >> UInt64(h.f.lbads)
            func copy(_ label: String, to sdlba: UInt64, _ ranges: [(UInt64, Int)], nr: Int? = nil,
                      format: UInt32 = 0) throws {
                let list = ranges.map { CopySourceRange(slba: $0.0, nlb: UInt16(truncatingIfNeeded: $0.1 - 1)) }
                try h.s.poke(entries, CopySourceRange.encodeList(list))
                var e = Cmd.rw(0x19, slba: sdlba, blocks: 1, prp1: entries)
                e.cdw12 = UInt32((nr ?? ranges.count) - 1) | format << 8
                try h.s.command(label, e, qid: 1)
            }
            try h.write("write-a", slba: 80, h.blocks(slba: 80, count: 4, seed: 20))
            try h.write("write-b", slba: 90, h.blocks(slba: 90, count: 2, seed: 21))
            try copy("copy-two-ranges", to: 100, [(80, 4), (90, 2)])
            try h.read("read-destination", slba: 100, count: 6)
            try copy("copy-overlapping", to: 82, [(80, 4)])
            try h.read("read-overlapping", slba: 80, count: 6)
            try copy("copy-format-1", to: 100, [(80, 1)], format: 1)
            try copy("copy-129-ranges", to: 100, [(80, 1)], nr: 129)
            try copy("copy-129-blocks-one-range", to: 100, [(0, 129)])
            try copy("copy-129-blocks-two-ranges", to: 200, [(0, 100), (120, 29)])
            try copy("copy-source-past-end", to: 100, [(80, 1), (nsze - 1, 2)])
            try copy("copy-destination-past-end", to: nsze - 3, [(80, 2), (84, 2)])
        }
        + onEveryFormat("md-zeroes") { h in
            func wz(_ label: String, slba: UInt64, count: Int, _ p: P) throws {
                var e = Cmd.rw(0x08, slba: slba, blocks: count, prp1: 0)
                e.cdw12 |= UInt32(p.prinfo) << 26
                e.cdw14 = p.ilbrt
                e.cdw15 = UInt32(p.lbatm) << 16 | UInt32(p.lbat)
                try h.s.command(label, e, qid: 1)
            }
            try h.write("write-pract", slba: 64, h.blocks(slba: 64, count: 8, seed: 9), P(prinfo: P.pract, ilbrt: 64, lbat: 0x1234))
            // Without PRACT: data and metadata zeroed (NVMe 1.4 §6.17: the PI too).
            try wz("wz", slba: 64, count: 4, P())
            try h.read("read-after-wz", slba: 64, count: 4)
            try h.read("read-after-wz-checked", slba: 64, count: 4, h.prchk(P.allChecks, slba: 64, app: 0))
            // With PRACT: the PI of a zeroed block.
            try wz("wz-pract", slba: 68, count: 4, P(prinfo: P.pract, ilbrt: 68, lbat: 0x5A5A))
            try h.read("read-after-wz-pract", slba: 68, count: 4)
            try h.read("read-after-wz-pract-checked", slba: 68, count: 4, h.prchk(P.allChecks, slba: 68, app: 0x5A5A))
            try wz("wz-pract-ilbrt-other", slba: 72, count: 2, P(prinfo: P.pract, ilbrt: 5000, lbat: 1))
            try h.read("read-after-wz-ilbrt-other", slba: 72, count: 2)
            try wz("wz-prchk", slba: 74, count: 2, P(prinfo: P.allChecks, ilbrt: 74))
            try wz("wz-pract-prchk", slba: 74, count: 2, P(prinfo: P.pract | P.guardCheck, ilbrt: 74))
            // Dataset Management deallocate, then reads with every check (NVMe 1.4 §6.7).
            try h.write("dsm-write-pract", slba: 200, h.blocks(slba: 200, count: 8, seed: 10), P(prinfo: P.pract, ilbrt: 200, lbat: 9))
            // One range (§6.7): context attributes, length in blocks (8), SLBA (200).
            var range = [UInt8](repeating: 0, count: 16)
            range[4] = 8
            range[8] = 200
            try h.s.poke(L.lists + 0x3000, range)
            try h.s.command("dsm-deallocate", SubmissionQueueEntry(opcode: 0x09, nsid: 1, prp1: L.lists + 0x3000, cdw10: 0, cdw11: 4),
                            qid: 1)
            try h.read("dsm-read", slba: 200, count: 8)
            try h.read("dsm-read-checked", slba: 200, count: 8, h.prchk(P.allChecks, slba: 200, app: 9))
        }
        + onEveryFormat("md-compare") { h in
            let b = h.blocks(slba: 80, count: 4, seed: 11)
            try h.write("write", slba: 80, b)
            try h.compare("compare-same", slba: 80, b)
            try h.compare("compare-same-checked", slba: 80, b, h.prchk(P.allChecks, slba: 80))
            try h.compare("compare-pract", slba: 80, b, P(prinfo: P.pract, ilbrt: 80, lbat: 0x1234))
            var data = b
            data.data[1][100] ^= 0x10
            try h.compare("compare-data-differs", slba: 80, data)
            var md = b
            md.metadata[2][0] ^= 0x10
            try h.compare("compare-md-first-byte-differs", slba: 80, md)
            var last = b
            last.metadata[3][Int(h.f.ms) - 1] ^= 0x10
            try h.compare("compare-md-last-byte-differs", slba: 80, last)
            var app = b
            h.corrupt(&app, block: 0, piByte: 3, 0x55)
            try h.compare("compare-pi-app-differs", slba: 80, app)
            try h.compare("compare-pi-app-differs-checked", slba: 80, app, h.prchk(P.appCheck, slba: 80))
            // Stored guard corrupted, then Compare with the guard checked.
            var bad = b
            h.corrupt(&bad, block: 1, piByte: 0, bad.metadata[1][h.f.piOffset] ^ 0xFF)
            try h.write("write-bad-guard", slba: 80, bad)
            try h.compare("compare-stored-bad-guard-checked", slba: 80, bad, h.prchk(P.guardCheck, slba: 80))
            try h.compare("compare-stored-bad-guard-unchecked", slba: 80, bad)
        }
        + onEveryFormat("md-pointers") { h in
            typealias Ptr = MetadataHost.Pointers
            let b = h.blocks(slba: 96, count: 4, seed: 12)
            let check = h.prchk(P.allChecks, slba: 96)
            try h.write("write", slba: 96, b, check)
            try h.read("read-mptr-plus-2", slba: 96, count: 4, check, Ptr(mptr: MetadataHost.readMetadata + 2))
            try h.read("read-mptr-plus-4", slba: 96, count: 4, check, Ptr(mptr: MetadataHost.readMetadata + 4))
            try h.write("write-mptr-plus-2", slba: 100, b, P(), Ptr(mptr: MetadataHost.writeMetadata + 2))
            try h.read("read-mptr-unmapped", slba: 96, count: 4, check, Ptr(mptr: GuestMemory.unmapped))
            try h.write("write-mptr-unmapped", slba: 100, b, P(), Ptr(mptr: GuestMemory.unmapped))
            try h.read("read-mptr-ram-end", slba: 96, count: 4, check, Ptr(mptr: UInt64(GuestMemory.size) - 8))
            try h.read("read-pract-mptr-unmapped", slba: 96, count: 4, h.prchk(P.allChecks, slba: 96, pract: true),
                       Ptr(mptr: GuestMemory.unmapped))
            // PSDT 10b: SGL1 a Data Block, MPTR the address of one SGL descriptor (NVMe 1.4 §4.2, §4.4).
            try h.write("write-sgl", slba: 104, h.blocks(slba: 104, count: 4, seed: 13), h.prchk(P.allChecks, slba: 104),
                        Ptr(sgl: true))
            try h.read("read-sgl", slba: 104, count: 4, h.prchk(P.allChecks, slba: 104), Ptr(sgl: true))
            try h.read("read-sgl-short", slba: 104, count: 4, P(), Ptr(sgl: true, sglLengthDelta: -1))
            try h.read("read-sgl-long", slba: 104, count: 4, P(), Ptr(sgl: true, sglLengthDelta: 8))
            try h.read("read-sgl-descriptor-plus-8", slba: 104, count: 4, P(), Ptr(sgl: true, sglOffset: 8))
            try h.read("read-sgl-descriptor-plus-4", slba: 104, count: 4, P(), Ptr(sgl: true, sglOffset: 4))
            try h.read("read-sgl-last-segment", slba: 104, count: 4, P(), Ptr(sgl: true, sglType: 3))
            try h.read("read-sgl-type-f", slba: 104, count: 4, P(), Ptr(sgl: true, sglType: 0xF))
        }
    }
}
