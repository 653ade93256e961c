import Glibc
import Synchronization
import BlockIO
import NVMeController
import NVMeSpec

/// What became of one submitted command.
enum SlotResult: Sendable {
    case pending
    /// The controller posted this completion.
    case completed(CompletionQueueEntry)
    /// Recovery failed the command: the controller was reset before it
    /// completed. `retryable` is false when the controller was declared dead.
    case aborted(retryable: Bool)
}

/// The commands of one caller (one or more, all on the same queue pair) and
/// the condition its thread sleeps on. Guarded by the queue pair's CQ lock.
final class Batch: @unchecked Sendable {
    let done = Condition()
    var remaining = 0
    var results: [SlotResult]
    /// A thread's own batch between `forThread` and `release` (touched only
    /// by that thread).
    private var taken = false

    init(count: Int) {
        results = Array(repeating: .pending, count: count)
    }

    private static let perThread = ThreadLocalObject { Batch(count: 0) }

    /// The calling thread's batch, ready for `count` commands: a thread waits
    /// for one batch at a time, so each keeps one (and its condition) for
    /// good — no allocation and no shared lock per command. A fresh batch
    /// when the thread's own is still taken (a nested call, or a batch given
    /// up on a timeout whose commands may still complete into it).
    static func forThread(count: Int) -> Batch {
        let b = perThread.value
        guard !b.taken else { return Batch(count: count) }
        b.taken = true
        b.reuse(count: count)
        return b
    }

    /// Gives back a batch from `forThread` whose commands have all ended
    /// (no slot refers to it any more).
    func release() { taken = false }

    /// Makes a finished batch ready for `count` new commands, keeping storage.
    func reuse(count: Int) {
        remaining = 0
        if results.count == count {
            for i in results.indices { results[i] = .pending }
        } else {
            results.removeAll(keepingCapacity: true)
            results.append(contentsOf: repeatElement(.pending, count: count))
        }
    }
}

/// One submission/completion queue pair of the host, with its rings in the
/// host's private region (NVMe 1.4 §4.1).
///
/// Locking: `sqLock` guards the SQ tail and is held while the tail doorbell is
/// rung (doorbell writes must reach the controller in tail order). `cqLock`
/// guards the CQ head, the phase, the slots and the batches. The controller
/// may complete a command synchronously inside the doorbell write and call the
/// interrupt handler on the same thread: the handler takes only `cqLock`,
/// which is never held across an MMIO write, so nothing self-deadlocks. Only
/// one thread at a time reaps and rings the CQ head doorbell (`reaping`); an
/// interrupt arriving meanwhile asks it to look again (`rerun`).
final class QueuePair: @unchecked Sendable {
    let qid: UInt16
    /// Entries in each ring.
    let depth: Int
    /// Consumed completions acknowledged per CQ head doorbell write. At most
    /// `depth - headBatch` commands are outstanding, so the CQ never fills:
    /// every CQE the controller may post finds a free entry even while up to
    /// `headBatch - 1` consumed entries are not yet acknowledged (NVMe 1.4
    /// §4.6 lets the host update the head doorbell for several entries at
    /// once). 1 acknowledges every entry at once.
    let headBatch: Int
    let sqAddress: UInt64
    let sq: UnsafeMutableRawPointer
    let cqAddress: UInt64
    let cq: UnsafeMutableRawPointer
    /// One PRP list page per slot (slot i at `listAddress + i * 4096`).
    let listAddress: UInt64
    let lists: UnsafeMutableRawPointer
    let sqDoorbell: Int
    let cqDoorbell: Int
    let controller: NVMeController
    /// Shadow doorbells, when the host uses them (`QueuePair-shadow.swift`).
    let shadow: ShadowDoorbell?

    // SQ side (sqLock)
    let sqLock = ConditionLock()
    var sqTail = 0
    /// False while the queue does not exist in the controller.
    var accepting = false

    // CQ side (cqLock)
    let cqLock = ConditionLock()
    let slotFreed = Condition()
    let reaperIdle = Condition()
    var cqHead = 0
    var phase = true
    var reaping = false
    var rerun = false
    var lastRungHead = 0
    var freeSlots: [UInt16]
    var owners: [Batch?]
    var ownerIndex: [Int]
    /// The CID of each slot's current command: slot in bits 11:0, a use
    /// counter in bits 15:12, so that a completion of an older command in the
    /// same slot (an entry replayed after a reset) matches no waiter.
    var slotCID: [UInt16]
    /// Completions whose CID matched no outstanding command.
    var strayCompletions = 0

    init(qid: UInt16, depth: Int, sqAddress: UInt64, sq: UnsafeMutableRawPointer, cqAddress: UInt64,
         cq: UnsafeMutableRawPointer, listAddress: UInt64, lists: UnsafeMutableRawPointer,
         dstrd: UInt8, controller: NVMeController, headBatch: Int = 1, shadow: ShadowDoorbell? = nil) {
        precondition(headBatch >= 1 && headBatch < depth, "head batch must leave a slot")
        self.qid = qid; self.depth = depth; self.headBatch = headBatch
        self.sqAddress = sqAddress; self.sq = sq; self.cqAddress = cqAddress; self.cq = cq
        self.listAddress = listAddress; self.lists = lists
        self.sqDoorbell = Int(RegisterOffset.sqTailDoorbell(qid, dstrd: dstrd))
        self.cqDoorbell = Int(RegisterOffset.cqHeadDoorbell(qid, dstrd: dstrd))
        self.controller = controller
        self.shadow = shadow
        let slots = depth - headBatch
        // LIFO: recently used slots (and their PRP list pages) are reused first.
        freeSlots = (0..<UInt16(slots)).reversed().map { $0 }
        owners = Array(repeating: nil, count: slots)
        ownerIndex = Array(repeating: 0, count: slots)
        slotCID = (0..<UInt16(slots)).map { $0 }
    }

    var slotCount: Int { depth - headBatch }

    /// The PRP list page of `slot`: its host address and memory.
    @inline(__always) func prpList(_ slot: UInt16) -> (UInt64, UnsafeMutableRawPointer) {
        (listAddress + UInt64(slot) * 4096, lists + Int(slot) * 4096)
    }

    /// Fills PRP1/PRP2 for `length` bytes at host `address` (NVMe 1.4 §4.3):
    /// PRP1 may carry a page offset; PRP2 is the second page, or a PRP list
    /// in `slot`'s list page when more than two pages are touched. Unused
    /// pointers are poisoned. `length` <= 512 pages (one list page, no chaining).
    func fillPRP(_ sqe: inout SubmissionQueueEntry, address: UInt64, length: Int, slot: UInt16) {
        let page = UInt64(BuiltinHost.page)
        sqe.prp1 = address
        let first = Int(page - (address & (page - 1)))
        guard length > first else { sqe.prp2 = BuiltinHost.poison; return }
        let rest = length - first
        let next = (address & ~(page - 1)) + page
        if rest <= BuiltinHost.page {
            sqe.prp2 = next
            return
        }
        let entries = (rest + BuiltinHost.page - 1) / BuiltinHost.page
        precondition(entries <= BuiltinHost.page / 8, "transfer longer than one PRP list page")
        let (listAddress, list) = prpList(slot)
        let out = UnsafeMutableRawBufferPointer(start: list, count: BuiltinHost.page)
        for k in 0..<entries { out.put64(next + UInt64(k) * page, at: k * 8) }
        // A controller that wants more entries than this finds poison, not stale pointers.
        for k in entries..<(BuiltinHost.page / 8) { out.put64(BuiltinHost.poison, at: k * 8) }
        sqe.prp2 = listAddress
    }

    // MARK: Submission

    /// Takes a free slot for entry `index` of `batch`, blocking while every
    /// slot is in use. Returns the slot and the CID its command must carry.
    func acquireSlot(for batch: Batch, index: Int) -> (slot: UInt16, cid: UInt16) {
        cqLock.lock()
        while freeSlots.isEmpty { slotFreed.wait(cqLock) }
        let slot = freeSlots.removeLast()
        owners[Int(slot)] = batch
        ownerIndex[Int(slot)] = index
        batch.remaining += 1
        let cid = slot | (slotCID[Int(slot)] &+ 0x1000) & 0xF000
        slotCID[Int(slot)] = cid
        cqLock.unlock()
        return (slot, cid)
    }

    /// Gives back a slot whose command was never rung.
    func releaseUnsubmitted(_ slot: UInt16, batch: Batch, result: SlotResult) {
        // The command never reached the SQ: its CID may be reused as is.
        cqLock.withLock {
            owners[Int(slot)] = nil
            batch.results[ownerIndex[Int(slot)]] = result
            batch.remaining -= 1
            freeSlots.append(slot)
            slotFreed.signal()
        }
    }

    /// Threads inside `ring` right now. With a backend that completes inline,
    /// a doorbell write runs the command to completion under `sqLock`, so a
    /// second thread on the same queue would wait for the first one's I/O:
    /// `BuiltinHost.pickIOQueue` prefers a queue nobody is ringing.
    let ringing = Atomic<Int>(0)

    /// Writes `sqe` with its CID at the SQ tail and rings the tail doorbell.
    /// Returns false, ringing nothing, when the queue is down.
    func ring(_ sqe: SubmissionQueueEntry, cid: UInt16) -> Bool {
        var entry = sqe
        entry.cid = cid
        ringing.wrappingAdd(1, ordering: .relaxed)
        defer { ringing.wrappingSubtract(1, ordering: .relaxed) }
        sqLock.lock()
        guard accepting else { sqLock.unlock(); return false }
        entry.encode(into: UnsafeMutableRawBufferPointer(start: sq + sqTail * 64, count: 64))
        let old = sqTail
        sqTail += 1
        if sqTail == depth { sqTail = 0 }
        if let shadow {
            // Shadow doorbells (§7.13): the controller reads the tail from the
            // shadow entry, so the MMIO write EventIdx may ask for is made
            // outside the lock; another thread publishing meanwhile is
            // picked up by the controller's reading of the entry.
            let tail = sqTail
            let mmio = ShadowDoorbell.publish(shadow.sqTail, shadow.sqEventIdx, old: old, new: tail, depth: depth)
            sqLock.unlock()
            if mmio { controller.mmioWrite(offset: sqDoorbell, value: UInt64(tail), size: 4) }
            return true
        }
        // §3.1.24: one 4-byte write of the new tail.
        controller.mmioWrite(offset: sqDoorbell, value: UInt64(sqTail), size: 4)
        sqLock.unlock()
        return true
    }

    /// A copy of the batch's results, taken under the lock.
    func results(of batch: Batch) -> [SlotResult] { cqLock.withLock { batch.results } }

    /// Waits until every command of `batch` has a result, or the deadline.
    func wait(_ batch: Batch, deadline: UInt64) -> Bool {
        cqLock.lock()
        defer { cqLock.unlock() }
        while batch.remaining > 0 {
            if !batch.done.wait(cqLock, deadline: deadline) && batch.remaining > 0 { return false }
        }
        return true
    }

    // MARK: Completion

    /// The interrupt handler of this queue's vector; also used to poll.
    func interrupt() {
        cqLock.lock()
        if reaping {
            rerun = true
            cqLock.unlock()
            return
        }
        reaping = true
        repeat {
            rerun = false
            reapLocked()
            if (cqHead - lastRungHead + depth) % depth >= headBatch {
                let head = cqHead, old = lastRungHead
                lastRungHead = head
                cqLock.unlock()
                // §3.1.25: tell the controller which entries were consumed. A
                // nested interrupt on this thread only sets `rerun`.
                ringCQDoorbell(old: old, new: head)
                cqLock.lock()
            }
        } while rerun
        reaping = false
        reaperIdle.broadcast()
        cqLock.unlock()
    }

    /// Consumes every new entry (phase tag = expected phase, §4.6).
    private func reapLocked() {
        while true {
            let p = UnsafeRawBufferPointer(start: cq + cqHead * 16, count: 16)
            let statusAndPhase = p.le16(CompletionQueueEntry.Offset.statusAndPhase)
            guard (statusAndPhase & 1 != 0) == phase, let cqe = CompletionQueueEntry(bytes: p) else { return }
            cqHead += 1
            if cqHead == depth { cqHead = 0; phase.toggle() }
            complete(cqe.cid, .completed(cqe))
        }
    }

    private func complete(_ cid: UInt16, _ result: SlotResult) {
        let slot = Int(cid & 0x0FFF)
        guard slot < owners.count, slotCID[slot] == cid, let batch = owners[slot] else {
            strayCompletions += 1
            return
        }
        owners[slot] = nil
        batch.results[ownerIndex[slot]] = result
        batch.remaining -= 1
        if batch.remaining == 0 { batch.done.signal() }
        freeSlots.append(UInt16(slot))
        slotFreed.signal()
    }

    // MARK: Recovery

    /// Stops new submissions; returns once no doorbell write is in progress.
    func stopAccepting() {
        sqLock.withLock { accepting = false }
        // With shadow doorbells a ring's MMIO write comes after `sqLock`.
        while shadow != nil && ringing.load(ordering: .acquiring) > 0 { sched_yield() }
    }

    /// After the controller has been reset (every command drained): takes
    /// the completions already posted, fails every other outstanding command
    /// with `.aborted`, and resets both rings to empty (CQ memory zeroed so
    /// no stale phase tag survives).
    func abortOutstandingAndReset(retryable: Bool) {
        cqLock.lock()
        while reaping { reaperIdle.wait(cqLock) }
        reapLocked()
        for slot in owners.indices where owners[slot] != nil {
            complete(slotCID[slot], .aborted(retryable: retryable))
        }
        cq.initializeMemory(as: UInt8.self, repeating: 0, count: depth * 16)
        cqHead = 0
        phase = true
        lastRungHead = 0
        cqLock.unlock()
        sqLock.withLock {
            sqTail = 0
            // No stale entry is left in the SQ to be replayed either.
            sq.initializeMemory(as: UInt8.self, repeating: 0, count: depth * 64)
        }
    }

    /// Reopens the queue for submissions (it exists again in the controller).
    func startAccepting() {
        sqLock.withLock { accepting = true }
    }

    var outstandingCount: Int { cqLock.withLock { slotCount - freeSlots.count } }
}
