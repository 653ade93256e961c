import Foundation
import NVMeSpec

/// A minimal host driver over a `ConformanceDevice` that records what it sees.
/// Guest memory layout (both devices): admin SQ 0x100000, admin CQ 0x101000,
/// I/O SQ q at 0x200000 + 0x10000·q, I/O CQ q at 0x600000 + 0x10000·q, data
/// buffers from `Layout.data` (0x1000000) up.
public final class Session {
    public enum Layout {
        public static let asq: UInt64 = 0x10_0000
        public static let acq: UInt64 = 0x10_1000
        public static func sq(_ q: UInt16) -> UInt64 { 0x20_0000 + 0x1_0000 * UInt64(q) }
        public static func cq(_ q: UInt16) -> UInt64 { 0x60_0000 + 0x1_0000 * UInt64(q) }
        public static let data: UInt64 = 0x100_0000
        public static let data2: UInt64 = 0x180_0000
        public static let lists: UInt64 = 0x200_0000
    }
    public enum Register {
        public static let cap = 0x00, vs = 0x08, intms = 0x0C, intmc = 0x10, cc = 0x14, csts = 0x1C
        public static let nssr = 0x20, aqa = 0x24, asq = 0x28, acq = 0x30, cmbloc = 0x38, cmbsz = 0x3C
        public static func sqTail(_ q: UInt16) -> Int { 0x1000 + 8 * Int(q) }
        public static func cqHead(_ q: UInt16) -> Int { 0x1000 + 8 * Int(q) + 4 }
    }

    struct QueueState {
        var sqBase: UInt64 = 0, cqBase: UInt64 = 0, sqSize = 0, cqSize = 0, cqid: UInt16 = 0
        var sqTail = 0, cqHead = 0, phase = true
    }

    public let device: any ConformanceDevice
    public private(set) var observations: [Observation] = []
    var keys: Set<String> = []
    var sqs: [UInt16: QueueState] = [:]
    var cqs: [UInt16: QueueState] = [:]
    var nextCID: UInt16 = 1
    /// CQEs reaped while waiting for another command id, by cid.
    var early: [UInt16: CompletionQueueEntry] = [:]
    /// Real-time bound on waiting for one completion.
    public var completionTimeout: Double = 5

    public init(device: any ConformanceDevice) { self.device = device }

    // MARK: observations

    public func record(_ key: String, _ value: String) {
        var k = key, i = 2
        while keys.contains(k) { k = "\(key)#\(i)"; i += 1 }
        keys.insert(k)
        observations.append(Observation(k, value))
    }

    public static func hex32(_ v: UInt32) -> String { String(format: "0x%08x", v) }
    public static func hex64(_ v: UInt64) -> String { String(format: "0x%016llx", v) }
    public static func describe(_ s: NVMeStatus) -> String {
        String(format: "sct %d sc 0x%02x dnr %d more %d (%@)", Int(s.type.rawValue), Int(s.code),
               s.dnr ? 1 : 0, s.more ? 1 : 0, s.kind.name)
    }

    // MARK: registers and memory

    public func reg32(_ offset: Int) throws -> UInt32 { try device.read32(offset) }
    public func reg64(_ offset: Int) throws -> UInt64 { try device.read64(offset) }
    public func write32(_ offset: Int, _ v: UInt32) throws { try device.write32(offset, v) }
    public func write64(_ offset: Int, _ v: UInt64) throws { try device.write64(offset, v) }
    public func observe32(_ label: String, _ offset: Int, mask: UInt32 = 0xFFFF_FFFF) throws {
        record(label, Self.hex32(try device.read32(offset) & mask))
    }
    /// CAP field by field (NVMe 1.4 §3.1.1, Figure 68), so that one differing bit is one observation.
    public func observeCAP(_ label: String = "cap") throws {
        let v = try device.read64(Register.cap)
        for (name, shift, bits) in [("mqes", 0, 16), ("cqr", 16, 1), ("ams", 17, 2), ("to", 24, 8), ("dstrd", 32, 4),
                                    ("nssrs", 36, 1), ("css", 37, 8), ("bps", 45, 1), ("mpsmin", 48, 4), ("mpsmax", 52, 4),
                                    ("pmrs", 56, 1), ("cmbs", 57, 1)] {
            record("\(label).\(name)", String(format: "0x%llx", (v >> UInt64(shift)) & ((1 << UInt64(bits)) - 1)))
        }
        let known: UInt64 = 0x03FF_3FFF_0F07_FFFF | 0x00FF_0000_0000_0000
        record("\(label).reserved", String(format: "0x%016llx", v & ~known))
    }
    public func observe64(_ label: String, _ offset: Int) throws { record(label, Self.hex64(try device.read64(offset))) }
    public func poke(_ address: UInt64, _ bytes: [UInt8]) throws { try device.memWrite(address, bytes) }
    public func peek(_ address: UInt64, _ count: Int) throws -> [UInt8] { try device.memRead(address, count) }
    public func poke64(_ address: UInt64, _ values: [UInt64]) throws {
        var b = [UInt8](); b.reserveCapacity(values.count * 8)
        for v in values { for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        try poke(address, b)
    }

    /// Lets the device run until `condition` holds or the timeout passes.
    func waitFor(_ maxTime: Double, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(maxTime)
        while true {
            if try condition() { return true }
            if Date() > deadline { return false }
            try device.advance()
        }
    }

    // MARK: bring-up

    /// Programs AQA/ASQ/ACQ, writes CC and waits for CSTS.RDY or CFS; records CSTS as `label`.
    public func enable(_ label: String = "enable.csts", asqEntries: Int = 64, acqEntries: Int = 64,
                       asq: UInt64 = Layout.asq, acq: UInt64 = Layout.acq, cc: UInt32 = 0x46_0001) throws {
        try poke(acq, [UInt8](repeating: 0, count: acqEntries * 16))
        try write32(Register.aqa, UInt32(acqEntries - 1) << 16 | UInt32(asqEntries - 1))
        try write64(Register.asq, asq)
        try write64(Register.acq, acq)
        try write32(Register.cc, cc)
        _ = try waitFor(1) { try reg32(Register.csts) & 3 != 0 }
        record(label, Self.hex32(try reg32(Register.csts)))
        sqs = [0: QueueState(sqBase: asq, sqSize: asqEntries, cqid: 0)]
        cqs = [0: QueueState(cqBase: acq, cqSize: acqEntries)]
        early = [:]
    }

    /// Clears CC.EN and waits for CSTS.RDY to clear; records CSTS.
    public func disable(_ label: String = "disable.csts") throws {
        let cc = try reg32(Register.cc)
        try write32(Register.cc, cc & ~1)
        _ = try waitFor(1) { try reg32(Register.csts) & 1 == 0 }
        record(label, Self.hex32(try reg32(Register.csts)))
        sqs = [:]; cqs = [:]
    }

    // MARK: commands

    /// Writes `sqe` at the SQ tail with a fresh command id and rings the doorbell.
    @discardableResult
    public func submit(_ sqe: SubmissionQueueEntry, qid: UInt16 = 0) throws -> UInt16 {
        try submit([sqe], qid: qid).first ?? 0
    }

    /// Places the entries one after another and rings the tail doorbell
    /// once for all of them (a fused pair, NVMe 1.4 §4.12); returns their CIDs.
    public func submit(_ entries: [SubmissionQueueEntry], qid: UInt16) throws -> [UInt16] {
        guard var q = sqs[qid] else { return [] }
        var cids: [UInt16] = []
        for sqe in entries {
            var e = sqe
            e.cid = nextCID
            nextCID = nextCID == 0xFFF0 ? 1 : nextCID + 1
            try poke(q.sqBase + UInt64(q.sqTail) * 64, e.bytes)
            q.sqTail = (q.sqTail + 1) % q.sqSize
            cids.append(e.cid)
        }
        sqs[qid] = q
        try write32(Register.sqTail(qid), UInt32(q.sqTail))
        return cids
    }

    /// Takes the next new CQE of completion queue `cqid`, ringing its head doorbell.
    func reapOne(_ cqid: UInt16) throws -> CompletionQueueEntry? {
        guard var q = cqs[cqid] else { return nil }
        guard let e = CompletionQueueEntry(bytes: try peek(q.cqBase + UInt64(q.cqHead) * 16, 16)), e.phase == q.phase else {
            return nil
        }
        q.cqHead += 1
        if q.cqHead == q.cqSize { q.cqHead = 0; q.phase.toggle() }
        cqs[cqid] = q
        try write32(Register.cqHead(cqid), UInt32(q.cqHead))
        return e
    }

    /// Waits for the completion of `cid` submitted to SQ `qid`.
    public func wait(cid: UInt16, qid: UInt16 = 0, timeout: Double? = nil) throws -> CompletionQueueEntry? {
        guard cid != 0, let cqid = sqs[qid]?.cqid else { return nil }
        var found: CompletionQueueEntry?
        _ = try waitFor(timeout ?? completionTimeout) {
            if let e = early.removeValue(forKey: cid) { found = e; return true }
            while let e = try reapOne(cqid) {
                if e.cid == cid { found = e; return true }
                early[e.cid] = e
            }
            return false
        }
        return found
    }

    /// Records a completion (or its absence) under `label`.
    public func recordCompletion(_ label: String, _ e: CompletionQueueEntry?, dw0: Bool = true) {
        guard let e else { record(label + ".status", "no completion"); return }
        record(label + ".status", Self.describe(e.status))
        if dw0 { record(label + ".dw0", Self.hex32(e.dw0)) }
    }

    /// Submits, waits and records `label.status` and `label.dw0`.
    @discardableResult
    public func command(_ label: String, _ sqe: SubmissionQueueEntry, qid: UInt16 = 0, dw0: Bool = true) throws -> CompletionQueueEntry? {
        guard sqs[qid] != nil else { record(label + ".status", "no queue \(qid)"); return nil }
        let cid = try submit(sqe, qid: qid)
        let e = try wait(cid: cid, qid: qid)
        recordCompletion(label, e, dw0: dw0)
        return e
    }

    /// After a few device steps: whether `cid` completed; records `label.status` ("none" if not).
    public func recordPending(_ label: String, cid: UInt16, qid: UInt16 = 0) throws {
        let e = try wait(cid: cid, qid: qid, timeout: 0.05)
        if let e { recordCompletion(label, e) } else { record(label + ".status", "none") }
    }

    // MARK: queue helpers

    public func createCQ(_ label: String, qid: UInt16, entries: Int, vector: UInt16 = 0, ien: Bool = false,
                         pc: Bool = true, base: UInt64? = nil) throws -> CompletionQueueEntry? {
        let b = base ?? Layout.cq(qid)
        if entries > 0 && entries <= 4096 && b < UInt64(GuestMemory.size) {
            try poke(b, [UInt8](repeating: 0, count: entries * 16))
        }
        let e = try command(label, SubmissionQueueEntry(opcode: 0x05, prp1: b,
                                                        cdw10: UInt32(truncatingIfNeeded: entries - 1) << 16 | UInt32(qid),
                                                        cdw11: UInt32(vector) << 16 | (ien ? 2 : 0) | (pc ? 1 : 0)))
        if let e, e.status.isSuccess { cqs[qid] = QueueState(cqBase: b, cqSize: entries) }
        return e
    }

    public func createSQ(_ label: String, qid: UInt16, entries: Int, cqid: UInt16, pc: Bool = true, qprio: UInt32 = 0,
                         base: UInt64? = nil) throws -> CompletionQueueEntry? {
        let b = base ?? Layout.sq(qid)
        let e = try command(label, SubmissionQueueEntry(opcode: 0x01, prp1: b,
                                                        cdw10: UInt32(truncatingIfNeeded: entries - 1) << 16 | UInt32(qid),
                                                        cdw11: UInt32(cqid) << 16 | qprio << 1 | (pc ? 1 : 0)))
        if let e, e.status.isSuccess { sqs[qid] = QueueState(sqBase: b, sqSize: entries, cqid: cqid) }
        return e
    }

    public func deleteSQ(_ label: String, qid: UInt16) throws {
        let e = try command(label, SubmissionQueueEntry(opcode: 0x00, cdw10: UInt32(qid)))
        if let e, e.status.isSuccess { sqs[qid] = nil }
    }
    public func deleteCQ(_ label: String, qid: UInt16) throws {
        let e = try command(label, SubmissionQueueEntry(opcode: 0x04, cdw10: UInt32(qid)))
        if let e, e.status.isSuccess { cqs[qid] = nil }
    }

    /// Enable plus I/O queue pair 1 (vector 0, interrupts disabled: completions are polled).
    public func bringUp(entries: Int = 64) throws {
        try enable()
        _ = try createCQ("bringup.createcq1", qid: 1, entries: entries)
        _ = try createSQ("bringup.createsq1", qid: 1, entries: entries, cqid: 1)
    }

    // MARK: data

    /// Records a digest of `count` bytes at `address`: equal digests mean equal bytes.
    public func observeData(_ label: String, _ address: UInt64, _ count: Int) throws {
        record(label, Self.digest(try peek(address, count)))
    }

    /// FNV-1a 64 and the first bytes, enough to tell buffers apart and see what is there.
    public static func digest(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        if bytes.allSatisfy({ $0 == 0 }) { return "zero x\(bytes.count)" }
        return String(format: "fnv %016llx ", h) + QTestProtocolHex.prefix(bytes, 16)
    }
}

enum QTestProtocolHex {
    static func prefix(_ bytes: [UInt8], _ n: Int) -> String {
        QTestProtocol.hexDigits(Array(bytes.prefix(n))) + (bytes.count > n ? "..." : "")
    }
}

// MARK: - command builders (NVMe 1.4 §5 and §6)

public enum Cmd {
    public static func identify(cns: UInt8, nsid: UInt32 = 0, cntid: UInt16 = 0, prp1: UInt64 = Session.Layout.data,
                                prp2: UInt64 = 0) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: 0x06, nsid: nsid, prp1: prp1, prp2: prp2, cdw10: UInt32(cntid) << 16 | UInt32(cns))
    }
    public static func getLogPage(lid: UInt8, numd: Int, nsid: UInt32 = 0xFFFF_FFFF, offset: UInt64 = 0, rae: Bool = false,
                                  lsp: UInt8 = 0, prp1: UInt64 = Session.Layout.data, prp2: UInt64 = 0) -> SubmissionQueueEntry {
        let n = UInt32(numd - 1)
        return SubmissionQueueEntry(opcode: 0x02, nsid: nsid, prp1: prp1, prp2: prp2,
                                    cdw10: (n & 0xFFFF) << 16 | (rae ? 1 << 15 : 0) | UInt32(lsp & 0xF) << 8 | UInt32(lid),
                                    cdw11: n >> 16,
                                    cdw12: UInt32(truncatingIfNeeded: offset), cdw13: UInt32(truncatingIfNeeded: offset >> 32))
    }
    public static func getFeatures(fid: UInt8, sel: UInt8 = 0, nsid: UInt32 = 0, cdw11: UInt32 = 0,
                                   prp1: UInt64 = Session.Layout.data) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: 0x0A, nsid: nsid, prp1: prp1, cdw10: UInt32(sel & 7) << 8 | UInt32(fid), cdw11: cdw11)
    }
    public static func setFeatures(fid: UInt8, value: UInt32, save: Bool = false, nsid: UInt32 = 0,
                                   prp1: UInt64 = Session.Layout.data) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: 0x09, nsid: nsid, prp1: prp1, cdw10: (save ? 1 << 31 : 0) | UInt32(fid), cdw11: value)
    }
    public static func rw(_ opcode: UInt8, nsid: UInt32 = 1, slba: UInt64, blocks: Int, prp1: UInt64 = Session.Layout.data,
                          prp2: UInt64 = 0) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: opcode, nsid: nsid, prp1: prp1, prp2: prp2)
        e.slba = slba
        e.nlb = UInt16(truncatingIfNeeded: blocks - 1)
        return e
    }
    public static func read(nsid: UInt32 = 1, slba: UInt64, blocks: Int, prp1: UInt64 = Session.Layout.data, prp2: UInt64 = 0) -> SubmissionQueueEntry {
        rw(0x02, nsid: nsid, slba: slba, blocks: blocks, prp1: prp1, prp2: prp2)
    }
    public static func write(nsid: UInt32 = 1, slba: UInt64, blocks: Int, prp1: UInt64 = Session.Layout.data, prp2: UInt64 = 0) -> SubmissionQueueEntry {
        rw(0x01, nsid: nsid, slba: slba, blocks: blocks, prp1: prp1, prp2: prp2)
    }
    /// An SGL descriptor (NVMe 1.4 §4.4, Figure 114): address, length, type in bits 7:4 and subtype in 3:0 of byte 15.
    public static func sgl(_ address: UInt64, _ length: UInt32, type: UInt8, subtype: UInt8 = 0) -> (UInt64, UInt64) {
        (address, UInt64(length) | UInt64(type << 4 | subtype) << 56)
    }
    public static func withSGL(_ e: SubmissionQueueEntry, _ d: (UInt64, UInt64)) -> SubmissionQueueEntry {
        var e = e
        e.psdt = 1
        e.prp1 = d.0
        e.prp2 = d.1
        return e
    }
    public static func sglBytes(_ ds: [(UInt64, UInt64)]) -> [UInt8] {
        var b = [UInt8]()
        for d in ds { for v in [d.0, d.1] { for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } } }
        return b
    }
}
