import BlockIO
import NVMeSpec

/// One fused Compare and Write (NVMe 1.4 §4.12, §6.2.1) from fetch to the
/// Write's completion. While it is listed in `fusedOperations` its LBA range
/// is locked: I/O commands touching the range that arrive later wait in
/// `deferredCommands`, and the operation itself starts only once no command
/// that was already running on the range has AIOs left (docs/ARCHITECTURE.md,
/// "Fused Compare and Write"). Guarded by the controller lock.
final class FusedOperation: @unchecked Sendable {
    let compare: Request
    let write: Request
    let namespace: Namespace
    /// LBAs [lowerBound, upperBound).
    let range: Range<UInt64>
    /// Commands with AIOs on the range when the pair was fetched.
    var blockers: [(request: Request, generation: UInt64)] = []
    /// The Compare has been dispatched.
    var started = false

    init(compare: Request, write: Request, namespace: Namespace, range: Range<UInt64>) {
        self.compare = compare; self.write = write; self.namespace = namespace; self.range = range
    }
}

extension NVMeController {
    /// FUSE (CDW0 bits 9:8) of a command that is not half of a well-formed
    /// pair: a first (01b) whose next entry is not a second in the same
    /// doorbell update, or a second (10b) without its first, is Command
    /// Aborted due to Missing Fused Command; 11b is reserved: Invalid Field,
    /// DNR clear, as QEMU answers any fused bits.
    func unpairedFuseStatus(_ req: Request) -> NVMeStatus {
        let fuse = req.cmd.fuse
        guestError(.invalidFuse, [("cid", "\(req.cid)"), ("fuse", "\(fuse)")])
        return fuse == 3 ? NVMeStatus.invalidField : NVMeStatus.missingFused
    }

    /// Whether the entry at the SQ head, a fused first (FUSE 01b), has its
    /// second right after it within the doorbell update (the tail), and a
    /// free request for it. §4.12: the pair is adjacent, wrapping at the end
    /// of the queue, and one tail update covers both.
    /// - Returns: the second entry, nil when there is none (the first is
    ///   then unpaired), or `.stall` when a second is there but no request
    ///   slot is free for it yet.
    func fusedSecond(_ sq: SubmissionQueue) -> FusedPeek {
        let next = (sq.head + 1) % sq.size
        guard next != sq.tail else { return .none }
        let addr = sq.base &+ UInt64(next) &* 64
        guard let p = space.pointer(addr, length: 64),
              let second = SubmissionQueueEntry(bytes: UnsafeRawBufferPointer(start: p, count: 64)) else { return .none }
        guard second.fuse == 2 else { return .none }
        return sq.free.count >= 2 ? .second(second) : .stall
    }

    enum FusedPeek { case none, stall, second(SubmissionQueueEntry) }

    /// Both halves of a pair were fetched: checks them (§4.12, §6.2.1) and
    /// locks their range. Every path completes both requests exactly once.
    func fusedCompareAndWrite(_ first: Request, _ second: Request) {
        let a = first.cmd, b = second.cmd
        if tracing {
            traceEvent(.fusedPair, [("sqid", "\(first.sqid)"), ("cid1", "\(a.cid)"), ("cid2", "\(b.cid)"), ("nsid", hex(a.nsid)),
                                    ("slba", "\(a.slba)"), ("nlb", "\(UInt32(a.nlb) + 1)")])
        }
        // The NVM command set's one fused operation is Compare then Write (§6.2).
        guard NVMOpcode(a.opcode) == .compare, NVMOpcode(b.opcode) == .write else {
            guestError(.fusedMismatch, [("opc1", hex(a.opcode)), ("opc2", hex(b.opcode))])
            finish(first, status: .missingFused)
            finish(second, status: .missingFused)
            return
        }
        // §4.12: the LBA range is the same for both; otherwise Invalid Field.
        guard a.nsid == b.nsid, a.slba == b.slba, a.nlb == b.nlb else {
            guestError(.fusedRange, [("nsid1", hex(a.nsid)), ("slba1", "\(a.slba)"), ("nlb1", "\(a.nlb)"),
                                     ("nsid2", hex(b.nsid)), ("slba2", "\(b.slba)"), ("nlb2", "\(b.nlb)")])
            finish(first, status: NVMeStatus.invalidField.withDNR)
            finish(second, status: NVMeStatus.invalidField.withDNR)
            return
        }
        // The namespace checks of any I/O command: a failing Compare aborts the Write.
        let ns: Namespace
        switch ioNamespace(first) {
        case .failure(let status):
            finish(first, status: status)
            finish(second, status: .failedFused)
            return
        case .success(let n): ns = n
        }
        let start = a.slba
        let (end, overflow) = start.addingReportingOverflow(UInt64(a.nlb) + 1)
        let op = FusedOperation(compare: first, write: second, namespace: ns, range: start..<(overflow ? .max : end))
        first.fused = op
        second.fused = op
        op.blockers = overlappingRequestsInFlight(op)
        fusedOperations.append(op)
        startFusedNoLongerBlocked()
    }

    /// The LBAs an I/O command may touch, for the fused range lock: its
    /// SLBA/NLB, the whole namespace for the commands whose ranges are in
    /// host memory (Dataset Management, Copy), none for Flush.
    static func lockedRange(of cmd: SubmissionQueueEntry) -> Range<UInt64>? {
        switch NVMOpcode(cmd.opcode) {
        case .flush: return nil
        case .read, .write, .compare, .writeZeroes, .verify, .writeUncorrectable:
            let (end, overflow) = cmd.slba.addingReportingOverflow(UInt64(cmd.nlb) + 1)
            return cmd.slba..<(overflow ? .max : end)
        default: return 0..<UInt64.max
        }
    }

    /// The fused operation an I/O command on `ns` has to wait for, if any.
    func blockingFusedOperation(_ cmd: SubmissionQueueEntry, _ ns: Namespace) -> FusedOperation? {
        guard let range = Self.lockedRange(of: cmd) else { return nil }
        return fusedOperations.first { $0.namespace === ns && $0.range.overlaps(range) }
    }

    /// I/O commands other than the pair with AIOs on the pair's range.
    func overlappingRequestsInFlight(_ op: FusedOperation) -> [(request: Request, generation: UInt64)] {
        var found: [(request: Request, generation: UInt64)] = []
        for sq in activeSQs where sq.sqid != 0 {
            for r in sq.outstandingRequests where r !== op.compare && r !== op.write && !r.aios.isEmpty {
                guard r.cmd.nsid == op.namespace.nsid || r.cmd.nsid == Self.broadcastNSID,
                      let range = Self.lockedRange(of: r.cmd), range.overlaps(op.range) else { continue }
                found.append((r, r.generation))
            }
        }
        return found
    }

    /// Starts every fused operation whose range no longer has older I/O in
    /// flight and no older fused operation overlapping it (call after an AIO
    /// completed or an operation ended).
    func startFusedNoLongerBlocked() {
        var index = 0
        while index < fusedOperations.count {
            let op = fusedOperations[index]
            index += 1
            if op.started { continue }
            op.blockers.removeAll { $0.request.generation != $0.generation || $0.request.aios.isEmpty }
            guard op.blockers.isEmpty else { continue }
            let older = fusedOperations[..<(index - 1)]
            guard !older.contains(where: { $0.namespace === op.namespace && $0.range.overlaps(op.range) }) else { continue }
            op.started = true
            if let status = detachedSinceFetch(op) {
                finish(op.compare, status: status)
            } else if let busy = formatInProgress(op.compare, op.namespace) {
                finish(op.compare, status: busy)
            } else if let status = compare(op.compare, op.namespace) {
                finish(op.compare, status: status)
            }
            // `finish` may have ended operations: restart the scan.
            index = 0
        }
    }

    /// Called by `finish` for a request of a fused operation: the Compare's
    /// status decides whether the Write runs (§6.2.1: a failed Compare
    /// aborts it, and the LBAs are not modified); the Write's completion ends
    /// the operation and lets the commands waiting for its range run.
    func fusedRequestFinished(_ req: Request, _ op: FusedOperation, status: NVMeStatus) {
        req.fused = nil
        guard req === op.compare, op.write.fused != nil else { return endFused(op) }
        if !status.isSuccess {
            finish(op.write, status: .failedFused)
        } else if let detached = detachedSinceFetch(op) {
            finish(op.write, status: detached)
        } else if let busy = formatInProgress(op.write, op.namespace) {
            finish(op.write, status: busy)
        } else if let s = readWrite(op.write, op.namespace, write: true) {
            finish(op.write, status: s)
        }
    }

    /// A half about to start whose namespace was detached or deleted (Namespace
    /// Attachment or Management, docs/NAMESPACES.md) since the pair was
    /// fetched gets what an I/O command on an inactive NSID gets: Invalid
    /// Field in Command; nothing reaches the namespace's storage.
    func detachedSinceFetch(_ op: FusedOperation) -> NVMeStatus? {
        guard namespace(op.namespace.nsid) !== op.namespace else { return nil }
        guestError(.inactiveNs, [("nsid", hex(op.namespace.nsid))])
        return NVMeStatus.invalidField.withDNR
    }

    /// The operation's range is unlocked.
    func endFused(_ op: FusedOperation) {
        op.compare.fused = nil
        op.write.fused = nil
        fusedOperations.removeAll { $0 === op }
        rangesUnlocked()
    }

    /// Waiting fused operations may start, and deferred commands are
    /// dispatched again in arrival order (any still blocked waits again).
    func rangesUnlocked() {
        startFusedNoLongerBlocked()
        guard !deferredCommands.isEmpty else { return }
        let waiting = deferredCommands
        deferredCommands.removeAll()
        for req in waiting {
            // The Write of a fused pair that waited for a write-back of its
            // range (docs/WRITE-CACHE.md) goes again as its pair's Write.
            if let op = req.fused, req === op.write {
                if let status = readWrite(req, op.namespace, write: true) { finish(req, status: status) }
            } else if let status = ioCommand(req) {
                finish(req, status: status)
            }
        }
    }

    /// The SQ is being deleted (or the controller reset): its deferred
    /// commands and the operations not yet started are dropped without a
    /// completion; an operation whose Compare runs ends with it, one whose
    /// Write runs with the Write.
    func dropFusedAndDeferred(of sq: SubmissionQueue) {
        deferredCommands.removeAll { $0.sq === sq }
        var dropped = false
        for op in fusedOperations where op.compare.sq === sq {
            if !op.started {
                op.compare.fused = nil
                op.write.fused = nil
                fusedOperations.removeAll { $0 === op }
                dropped = true
            } else if op.compare.fused != nil {
                op.write.fused = nil
            }
        }
        if dropped { rangesUnlocked() }
    }
}
