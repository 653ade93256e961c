import BlockIO
import HostMemory
import NVMeSpec

// The I/O fast path (docs/ARCHITECTURE.md, "Locking").
//
// Every path of the controller runs under its lock held exclusively, except
// the two steps of a plain Read or Write on an I/O queue: the SQ tail
// doorbell that fetches and dispatches it, and the completion of its AIO.
// These hold the lock shared, so the commands of different queues run at
// once, and take the lock of the queue's CQ, which guards that CQ, its SQs
// and their requests against the other fast paths of the same queues. A
// path holding the lock exclusively excludes every fast path, so it sees
// and changes queue state as before.
//
// What a fast path may change: its queues and their requests, the
// fast-path counters of those queues, the doorbell value of its SQ (one
// cache line each), objects that lock themselves (block accounting, host
// memory pins, backends) and its own effects batch. Everything else it only
// reads. Anything else a command or completion needs — an error status,
// tracing, a fused pair, a format, a write cache, metadata, uncorrectable
// marks, interrupt coalescing, shadow doorbells, an Abort — sends it to the
// exclusive path, before anything was changed.

extension NVMeController {
    // MARK: - The SQ tail doorbell

    /// An SQ tail doorbell write of an I/O queue, done under the shared
    /// lock: stores the tail and dispatches the plain Reads and Writes at
    /// the head. False, having done nothing, when the write needs the
    /// exclusive path (`mmioWrite` then takes it). An entry the fast path
    /// cannot run ends it there; the exclusive path fetches from that
    /// entry on.
    func fastSQTailDoorbell(offset: Int, value: UInt32) -> Bool {
        // Shard by the doorbell's index (the SQ's id when it is one).
        let shard = offset >> 3
        lock.lockShared(shard)
        guard let sq = fastDoorbellQueue(offset: offset, value: value) else {
            lock.unlockShared(shard)
            return false
        }
        let frames = EffectsNesting.frames()
        let depth = EffectsNesting.enter(self, frames)
        var batch = takeBatch(frames, depth: depth)
        sq.lock.lock()
        sq.fastDoorbellWrites += 1
        doorbellValues[2 * Int(sq.sqid)] = value
        sq.lastDoorbell = value
        sq.tail = Int(value)
        let fetchedAll = fastFetch(sq, into: &batch)
        sq.lock.unlock()
        lock.unlockShared(shard)
        // The rest, from the entry that stopped the fast path: nested in
        // this frame, its effects come back to this thread's batch loop.
        if !fetchedAll { locked { _ = fetch(from: sq, burst: Int.max) } }
        endFast(&batch, frames, depth: depth)
        EffectsNesting.leave(self, frames)
        return true
    }

    /// The SQ an aligned 4-byte write at `offset` rings the tail doorbell
    /// of, when the fast path may take the write: an existing I/O SQ, a
    /// valid tail, a ready controller, no tracing and no shadow doorbells
    /// (call under the shared lock).
    private func fastDoorbellQueue(offset: Int, value: UInt32) -> SubmissionQueue? {
        guard offset & 3 == 0, offset + 4 <= bar0Size, csts.rdy, !resetInProgress, !csts.cfs,
              doorbellBuffers == nil, !tracing else { return nil }
        let index = (offset - 0x1000) >> (2 + Int(cap.dstrd))
        let qid = index >> 1
        guard index & 1 == 0, qid != 0, qid < sqs.count, let sq = sqs[qid], !sq.deleted, Int(value) < sq.size else {
            return nil
        }
        return sq
    }

    /// Dispatches the entries between the head and the tail while each is a
    /// plain Read or Write (call with the shared lock and `sq.lock`). True
    /// when it stopped for want of entries or free requests, as `fetch`
    /// would; false at an entry for the exclusive path (not consumed).
    private func fastFetch(_ sq: SubmissionQueue, into batch: inout [Effect]) -> Bool {
        guard formatJobs.isEmpty, fusedOperations.isEmpty else { return false }
        while !sq.isEmpty {
            guard let req = sq.free.last else { return true }
            guard sq.abortOnFetch.isEmpty, !sq.fusedStalled,
                  let p = space.pointer(sq.base &+ UInt64(sq.head) &* 64, length: 64),
                  let cmd = SubmissionQueueEntry(bytes: UnsafeRawBufferPointer(start: p, count: 64)),
                  let (ns, write, length) = fastReadWrite(cmd) else { return false }
            // The request at the end of the free list maps the data before
            // it is taken: a mapping that fails leaves the queue as it was.
            req.reset(cmd)
            let iov: [IOVector]
            switch mapData(req, length: length, direction: write ? .hostToController : .controllerToHost,
                           checkMDTS: false, pinning: true) {
            case .failure: return false
            case .success(let v): iov = v
            }
            sq.free.removeLast()
            sq.head = sq.head + 1 == sq.size ? 0 : sq.head + 1
            sq.markOutstanding(req)
            if write { sq.fastWrites += 1 } else { sq.fastReads += 1 }
            // As `transfer` does for these commands: one accounting entry, one AIO.
            let op: AIOOperation = write ? .write : .read
            req.accounting.append((ns, ns.accounting.start(op, bytes: UInt64(length))))
            let index = req.aios.reserve(on: ns.backend)
            batch.append(.submit(ns.backend, req, AIOKey(generation: req.generation, index: index),
                                 AIO(operation: op, offset: cmd.slba << UInt64(ns.lbads), length: UInt64(length), iov: iov)))
        }
        return true
    }

    /// The namespace, direction and length of `cmd` when it is a Read or
    /// Write that `ioCommand` would pass to `transfer` with no other step:
    /// an active namespace without metadata, write cache, uncorrectable
    /// marks or format in progress; in range; one AIO; and for a Write a
    /// writable namespace, the volatile write cache enabled and no FUA
    /// (§5.21.1.6: otherwise a flush follows). Nil for anything else.
    private func fastReadWrite(_ cmd: SubmissionQueueEntry) -> (Namespace, Bool, Int)? {
        let write: Bool
        switch NVMOpcode(cmd.opcode) {
        case .read: write = false
        case .write: write = true
        default: return nil
        }
        guard cmd.fuse == 0, cmd.psdt == 0, let ns = namespace(cmd.nsid), ns.formatProgress == nil,
              !ns.format.hasMetadata, ns.writeCache == nil, ns.uncorrectableMarks.isEmpty,
              ns.inBounds(slba: cmd.slba, nlb: UInt64(cmd.nlb) + 1) else { return nil }
        let length = (Int(cmd.nlb) + 1) << Int(ns.lbads)
        if let mdts = parameters.maxDataTransfer, length > mdts { return nil }
        guard length <= parameters.maxBackendTransfer else { return nil }
        if write, ns.isReadOnly || features.volatileWriteCache & 1 == 0 || cmd.fua { return nil }
        return (ns, write, length)
    }

    // MARK: - The completion

    /// A successful AIO's completion under the shared lock: when it is the
    /// request's last, the CQE is posted and the interrupt raised as
    /// `finish` would. False, having done nothing, when the exclusive path
    /// must complete it.
    func fastAIOCompleted(_ req: Request, key: AIOKey, operation: AIOOperation) -> Bool {
        let sq = req.sq
        lock.lockShared(Int(sq.sqid))
        sq.lock.lock()
        guard let (cq, entry) = fastCompletionTarget(req) else {
            sq.lock.unlock()
            lock.unlockShared(Int(sq.sqid))
            return false
        }
        let frames = EffectsNesting.frames()
        let depth = EffectsNesting.enter(self, frames)
        var batch = takeBatch(frames, depth: depth)
        req.lastFinished.store(key)
        if req.aios.complete(key.index, operation: operation, errno: 0) {
            // `finish` with success: no AIO runs any more, so the memory is
            // unpinned before the CQE can be seen.
            releaseMemory(req)
            closeAccounting(req, success: true)
            writeCQE(req, to: cq, at: entry)
            cq.fastCompletions += 1
            release(req)
            if cq.interruptsEnabled {
                cq.fastInterrupts += 1
                if let h = interruptHandlers[cq.vector] { batch.append(.interrupt(cq.vector, h)) }
            }
        }
        sq.lock.unlock()
        lock.unlockShared(Int(sq.sqid))
        endFast(&batch, frames, depth: depth)
        EffectsNesting.leave(self, frames)
        return true
    }

    /// The CQ and the memory of its next entry when the completion of one
    /// more AIO of `req` may take the fast path: the command succeeded so
    /// far and needs nothing more (no continuation, cancellation, fused
    /// partner, format or write-cache batch); its CQ has room and nothing
    /// queued; its vector fires at once and is not masked (call with the
    /// shared lock and the queue's lock).
    private func fastCompletionTarget(_ req: Request) -> (CompletionQueue, UnsafeMutableRawPointer)? {
        let sq = req.sq
        guard !tracing, formatJobs.isEmpty, fusedOperations.isEmpty, doorbellBuffers == nil,
              !sq.deleted, !sq.fusedStalled, req.cancelStatus == nil, req.continuation == nil, req.fused == nil,
              req.formatJob == nil, req.cacheBatches == nil, req.pendingStatus == .success, req.aios.status.isSuccess,
              let cq = cqs[Int(sq.cqid)], cq.pending.isEmpty, !cq.isFull,
              !cq.interruptsEnabled || firesAtOnce(vector: cq.vector),
              let p = space.pointer(cq.base &+ UInt64(cq.tail) &* 16, length: 16) else { return nil }
        return (cq, p)
    }

    /// True when a completion on `vector` raises it at once with nothing to
    /// clear: no coalescing for it (§5.21.1.8), not masked (INTMS), nothing
    /// aggregated or pending (the exclusive path clears those).
    private func firesAtOnce(vector: Int) -> Bool {
        guard vector < interrupts.count, vector < interruptHandlers.count else { return false }
        let threshold = Int(features.interruptCoalescing & 0xFF) + 1
        let time = Int((features.interruptCoalescing >> 8) & 0xFF)
        guard vector == 0 || time == 0 || threshold == 1 || features.coalescingDisabled.contains(UInt16(vector)) else {
            return false
        }
        if vector < 32 && intms & (1 << UInt32(vector)) != 0 { return false }
        return interrupts[vector].aggregated == 0 && !interrupts[vector].pending
    }

    // MARK: - Effects of a fast path

    /// The buffer a fast path collects its effects in: the thread's spare
    /// for an outermost frame, as `locked` does; in a nested frame, the
    /// effects already handed to the outer one (their buffer has capacity;
    /// `endFast` gives them back with these after them).
    @inline(__always)
    private func takeBatch(_ frames: EffectsNesting.Frames, depth: Int) -> [Effect] {
        if depth == 1 {
            let batch = frames.spareEffects
            frames.spareEffects = []
            return batch
        }
        guard frames.handedTo == nil || frames.handedTo == ObjectIdentifier(self) else { return [] }
        let batch = frames.handed
        frames.handed = []
        return batch
    }

    /// Runs the effects of a fast path (outermost frame), or hands them to
    /// the outer frame of this thread, as a nested `locked` does.
    private func endFast(_ batch: inout [Effect], _ frames: EffectsNesting.Frames, depth: Int) {
        if depth == 1 {
            runEffects(&batch, frames)
            frames.spareEffects = batch
            return
        }
        guard !batch.isEmpty else { return }
        let me = ObjectIdentifier(self)
        if frames.handedTo == nil || frames.handedTo == me {
            frames.handedTo = me
            // Handed effects queued meanwhile (a nested `locked`) came after these.
            if frames.handed.isEmpty { swap(&frames.handed, &batch); return }
            batch.append(contentsOf: frames.handed)
            frames.handed.removeAll(keepingCapacity: true)
            swap(&frames.handed, &batch)
            return
        } else {
            // Another controller's effects are being handed on this thread:
            // queue these; the outer frame finds them (`pendingEffects`).
            lock.withLock { for effect in batch { addEffect(effect) } }
        }
        batch.removeAll()
    }

    // MARK: - Counters

    /// Test hook: the commands dispatched and completed on the fast path so far.
    public var debugFastPath: (dispatched: UInt64, completed: UInt64) {
        lock.withLock {
            let s = statsWithFastCounters
            return (s.fastDispatched, s.fastCompleted)
        }
    }

    /// The controller's statistics with what the fast path counted in the
    /// queues that exist (exclusive lock).
    var statsWithFastCounters: ControllerStats {
        var s = stats
        for case let sq? in sqs { add(sq, to: &s) }
        for case let cq? in cqs { add(cq, to: &s) }
        return s
    }

    /// Interrupts raised per vector, with those the fast path raised in the
    /// CQs that exist (exclusive lock).
    var interruptsRaised: [UInt64] {
        var raised = interrupts.map(\.raised)
        for case let cq? in cqs where cq.vector < raised.count { raised[cq.vector] += cq.fastInterrupts }
        return raised
    }

    /// Adds a queue's fast-path counters to the controller's before it goes
    /// (exclusive lock).
    func foldFastCounters(_ sq: SubmissionQueue) {
        add(sq, to: &stats)
        sq.fastDoorbellWrites = 0; sq.fastReads = 0; sq.fastWrites = 0
    }

    func foldFastCounters(_ cq: CompletionQueue) {
        add(cq, to: &stats)
        if cq.vector < interrupts.count { interrupts[cq.vector].raised += cq.fastInterrupts }
        cq.fastCompletions = 0; cq.fastInterrupts = 0
    }

    private func add(_ sq: SubmissionQueue, to s: inout ControllerStats) {
        s.doorbellWrites += sq.fastDoorbellWrites
        s.ioCommands[Int(NVMOpcode.read.rawValue)] += sq.fastReads
        s.ioCommands[Int(NVMOpcode.write.rawValue)] += sq.fastWrites
        s.fastDispatched += sq.fastReads + sq.fastWrites
    }

    private func add(_ cq: CompletionQueue, to s: inout ControllerStats) {
        s.completionsPosted += cq.fastCompletions
        s.fastCompleted += cq.fastCompletions
    }
}

/// The last value written to each doorbell, one cache line each: the fast
/// path of each SQ writes its own from its own thread.
final class DoorbellValues: @unchecked Sendable {
    private static let stride = 16   // UInt32s: 64 bytes
    private let storage: UnsafeMutablePointer<UInt32>
    let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count * Self.stride)
        storage.initialize(repeating: 0, count: count * Self.stride)
    }

    deinit { storage.deallocate() }

    subscript(index: Int) -> UInt32 {
        get { storage[index * Self.stride] }
        set { storage[index * Self.stride] = newValue }
    }

    /// Every value, in doorbell order.
    var values: [UInt32] { (0..<count).map { self[$0] } }

    func clear() { for i in 0..<count { self[i] = 0 } }
}
