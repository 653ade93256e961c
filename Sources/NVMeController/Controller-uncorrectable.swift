import BlockIO
import NVMeSpec

import Glibc

/// Write Uncorrectable (NVMe 1.4 §6.16): marked LBAs, the Reads they fail,
/// the writes that clear them, and their sidecar file (`UncorrectableFile`).
/// The marks are controller state, guarded by the controller lock.
extension NVMeController {
    /// Write Uncorrectable (04h): marks [SLBA, SLBA + NLB] (CDW12 bits 15:0,
    /// 0's based). No data moves (the PRPs are ignored). Checked as a Write:
    /// a read-only namespace is Namespace Write Protected, a range past the
    /// namespace LBA Out of Range. With a sidecar file the command completes
    /// once the marks are on stable storage.
    func writeUncorrectable(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        if let bad = checkRange(req, ns, op: .write, write: true, dataLength: nil) { return bad }
        let nlb = UInt64(c.nlb) + 1
        // Cached data of the range is gone with it (docs/WRITE-CACHE.md).
        ns.writeCache?.discard(start: c.slba << UInt64(ns.lbads), end: (c.slba + nlb) << UInt64(ns.lbads))
        guard ns.uncorrectableMarks.insert(start: c.slba, end: c.slba + nlb) else { return .success }
        if tracing {
            traceEvent(.writeUncor, [("cid", "\(req.cid)"), ("nsid", "\(ns.nsid)"), ("slba", "\(c.slba)"), ("nlb", "\(nlb)"),
                                     ("marked", "\(ns.uncorrectableMarks.count)")])
        }
        return saveUncorrectable(req, ns) ? nil : .success
    }

    /// The status of a Read, Compare or Verify of [slba, slba + nlb] (in
    /// bounds) that touches a marked LBA: Unrecovered Read Error (§6.16;
    /// DNR clear, as the other media errors), the error log's LBA being the
    /// first marked one. Nil when no LBA of the range is marked.
    func uncorrectableStatus(_ req: Request, _ ns: Namespace, slba: UInt64, nlb: UInt64, op: AIOOperation) -> NVMeStatus? {
        guard let lba = ns.firstUncorrectable(slba: slba, nlb: nlb) else { return nil }
        ns.accounting.failed(ns.accounting.start(op, bytes: 0))
        req.errorLBA = lba
        if tracing { traceEvent(.uncorrectableRead, [("cid", "\(req.cid)"), ("nsid", "\(ns.nsid)"), ("lba", "\(lba)")]) }
        return NVMeStatus.unrecoveredReadError
    }

    /// A command writing [slba, slba + nlb) (Write, Write Zeroes, Dataset
    /// Management deallocate) clears the marks there; the sidecar file is
    /// rewritten as one more AIO of the command. One branch when nothing is
    /// marked.
    func clearUncorrectable(_ req: Request, _ ns: Namespace, slba: UInt64, nlb: UInt64) {
        if ns.uncorrectableMarks.isEmpty { return }
        guard ns.uncorrectableMarks.remove(start: slba, end: slba + nlb) else { return }
        if tracing {
            traceEvent(.uncorrectableCleared, [("cid", "\(req.cid)"), ("nsid", "\(ns.nsid)"), ("slba", "\(slba)"),
                                               ("nlb", "\(nlb)"), ("marked", "\(ns.uncorrectableMarks.count)")])
        }
        _ = saveUncorrectable(req, ns)
    }

    /// Rewrites `ns`'s sidecar file off the lock, on the format queue, as
    /// an AIO of `req` (a failure is the command's Write Fault). The step
    /// records the marks as they are when it runs, so the last of several
    /// queued steps writes the latest. Returns false when the namespace
    /// keeps its marks in memory only.
    func saveUncorrectable(_ req: Request, _ ns: Namespace) -> Bool {
        guard ns.uncorrectableFile != nil else { return false }
        let step = BlockingStep(name: "uncorrectable-marks", queue: formatQueue) { [weak self] in
            guard let self else { return ECANCELED }
            return self.writeUncorrectableFile(ns)
        }
        submitAIO(req, nsid: ns.nsid, AIO(operation: .write, offset: 0, length: 0), on: step, area: .metadata)
        return true
    }

    /// Blocking, without the lock: records `ns`'s current marks in its file.
    func writeUncorrectableFile(_ ns: Namespace) -> Int32 {
        guard let file = ns.uncorrectableFile else { return 0 }
        let (marks, lbads) = locked { (ns.uncorrectableMarks, ns.lbads) }
        let err = file.save(marks, lbads: lbads)
        if err != 0 { logger.error("namespace \(ns.nsid): cannot record its uncorrectable marks in \(file.path): errno \(err)") }
        return err
    }

    /// Format NVM clears every mark of `ns` (under the lock); the file is
    /// removed on the format queue, before the format's next step runs there.
    func clearUncorrectableOnFormat(_ ns: Namespace) {
        guard !ns.uncorrectableMarks.isEmpty else { return }
        ns.uncorrectableMarks.removeAll()
        guard ns.uncorrectableFile != nil else { return }
        formatQueue.async { [weak self] in _ = self?.writeUncorrectableFile(ns) }
    }

    /// LBAs of namespace `nsid` marked by Write Uncorrectable (`info`'s
    /// `uncorrectable`); nil for an unknown namespace.
    public func uncorrectableCount(_ nsid: UInt32) -> UInt64? {
        lock.withLock { namespace(nsid)?.uncorrectableMarks.count }
    }
}
