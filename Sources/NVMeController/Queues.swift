import BlockIO
import HostMemory
import Synchronization
import NVMeSpec

/// One NVMe command in flight (QEMU's NvmeRequest). Preallocated per SQ slot;
/// moves free → outstanding → completion list → free. Guarded by the
/// controller's exclusive lock, or on the I/O fast path by its shared lock
/// and the queue's lock (`Controller-fastpath.swift`).
final class Request: @unchecked Sendable {
    /// Strong: a request may outlive its queue's table entry while it drains.
    /// The SQ drops its free list when it is removed, which breaks the cycle.
    let sq: SubmissionQueue
    var cmd = SubmissionQueueEntry()
    /// The backend operations still running and the status they produced.
    var aios = RequestAIOs()
    /// Status decided by the handler itself (validation, data transfer).
    var dw0: UInt32 = 0
    var dw1: UInt32 = 0
    /// Set when Abort, SQ deletion or reset cancels the request; replaces the
    /// status (the rule lives in `RequestAIOs.completionStatus`).
    var cancelStatus: NVMeStatus? { aios.cancelStatus }
    /// Block accounting started by the command: one entry per namespace it
    /// touches (a Flush of every namespace accounts one flush on each).
    var accounting = SmallList<(namespace: Namespace, cookie: AccountingCookie)>()
    /// Runs once every AIO has finished (multi-stage commands such as Compare);
    /// returns the final status or nil when it issued more AIOs.
    var continuation: ((Request) -> NVMeStatus?)?
    /// The host memory regions its AIOs' buffers lie in, pinned until the
    /// request is released (no region removal completes while an AIO runs).
    var pin: DMAPin?
    /// The scatter-gather list `mapData` filled last, kept for reuse.
    var iovStorage: [IOVector] = []
    /// Scratch buffer owned by the request (Compare data, DSM ranges).
    var bounce: UnsafeMutableRawBufferPointer?
    /// Scratch metadata owned by the request (PI inserted or stripped by the
    /// controller, Compare's media metadata, deallocated metadata).
    var metadataBounce: UnsafeMutableRawBufferPointer?
    /// The LBA an error belongs to when it is not the command's SLBA (the
    /// first block whose protection information failed a check).
    var errorLBA: UInt64?
    /// Status when the request completes with no AIO error.
    var pendingStatus: NVMeStatus = .success
    /// Admin: this request is an Asynchronous Event Request parked for events.
    var isAER = false
    /// Admin: the Format NVM this request runs (ended when the request
    /// completes or is dropped; see `endFormat`).
    var formatJob: FormatJob?
    /// I/O: the fused Compare and Write this request is half of, until it
    /// completes (`Controller-fused.swift`).
    var fused: FusedOperation?
    /// Write-cache batches whose write-backs are AIOs of this request
    /// (`Controller-cache.swift`); nil for nearly every command.
    var cacheBatches: [CacheBatchRef]?
    /// Fetched and not yet posted (guarded by the controller lock).
    var isOutstanding = false

    init(sq: SubmissionQueue) { self.sq = sq }

    /// Bumped on every reuse, so a late ticket of a finished command is not
    /// attached to the next command in the same slot.
    var generation: UInt64 = 0
    /// The last AIO that finished; read without the lock by the submitting
    /// thread to skip attaching a ticket to an AIO that completed inline.
    let lastFinished = FinishedAIO()

    func reset(_ command: SubmissionQueueEntry) {
        generation &+= 1
        cmd = command
        aios.reset()
        dw0 = 0; dw1 = 0
        accounting.removeAll()
        continuation = nil
        releaseBounce()
        errorLBA = nil
        pendingStatus = .success
        isAER = false
        formatJob = nil
        fused = nil
    }

    func releaseBounce() {
        if let b = bounce { b.deallocate(); bounce = nil }
        if let b = metadataBounce { b.deallocate(); metadataBounce = nil }
    }

    var sqid: UInt16 { sq.sqid }
    var cid: UInt16 { cmd.cid }
}

/// Names one AIO of one use of a request slot.
struct AIOKey: Equatable {
    var generation: UInt64
    var index: Int
}

/// An atomic `AIOKey?`: the last AIO of a request that finished.
final class FinishedAIO: Sendable {
    /// `generation << 24 | index + 1`; generations start at 1 (`Request.reset`
    /// bumps before first use), so 0 is never a key and stands for "none".
    private let raw = Atomic<UInt64>(0)

    @inline(__always) private static func pack(_ key: AIOKey) -> UInt64 {
        key.generation << 24 | UInt64(truncatingIfNeeded: key.index + 1) & 0xFF_FFFF
    }

    @inline(__always) func store(_ key: AIOKey) { raw.store(Self.pack(key), ordering: .releasing) }

    /// True if `key` is the last AIO recorded as finished.
    @inline(__always) func isLast(_ key: AIOKey) -> Bool { raw.load(ordering: .acquiring) == Self.pack(key) }
}

final class SubmissionQueue: @unchecked Sendable {
    let sqid: UInt16
    let cqid: UInt16
    let base: UInt64
    /// Number of entries (1's based).
    let size: Int
    let priority: UInt8
    var head: Int = 0
    var tail: Int = 0
    /// Fetching stopped at a fused pair for want of two free requests: the
    /// next request released fetches again (no doorbell may come).
    var fusedStalled = false
    var lastDoorbell: UInt32 = 0
    /// Preallocated requests: one per slot.
    var free: [Request] = []
    /// Every request of this queue (one per slot); `isOutstanding` marks the
    /// ones fetched and not yet posted to the CQ.
    private(set) var all: [Request] = []
    private(set) var outstandingCount = 0
    /// Set by Delete I/O SQ or reset: nothing more is fetched or posted.
    var deleted = false
    /// The Delete I/O SQ command waiting for the drain (posted when outstanding empties).
    var deleteRequest: Request?
    /// Command ids that Abort asked to cancel before they were fetched.
    var abortOnFetch: Set<UInt16> = []
    /// Its CQ's lock: what guards this queue, its CQ and their requests on
    /// the I/O fast path (`Controller-fastpath.swift`).
    let lock: ConditionLock
    /// Counted on the fast path (statistics add them; folded into the
    /// controller's when the queue goes).
    var fastDoorbellWrites: UInt64 = 0
    var fastReads: UInt64 = 0
    var fastWrites: UInt64 = 0

    init(sqid: UInt16, cqid: UInt16, base: UInt64, size: Int, priority: UInt8 = 0, lock: ConditionLock) {
        self.sqid = sqid; self.cqid = cqid; self.base = base; self.size = size; self.priority = priority
        self.lock = lock
        free.reserveCapacity(size)
        for _ in 0..<size { free.append(Request(sq: self)) }
        all = free
    }

    func markOutstanding(_ req: Request) {
        if !req.isOutstanding { req.isOutstanding = true; outstandingCount += 1 }
    }

    func unmarkOutstanding(_ req: Request) {
        if req.isOutstanding { req.isOutstanding = false; outstandingCount -= 1 }
    }

    /// The requests fetched and not yet posted (rare paths: abort, cancellation).
    var outstandingRequests: [Request] { all.filter(\.isOutstanding) }

    /// Drops the free list and the slot table (the queue is gone), breaking
    /// the request ↔ queue reference cycle once draining requests finish.
    func dropRequests() {
        free.removeAll()
        all = all.filter(\.isOutstanding)
    }

    /// Drops every request (the controller is going away): nothing can
    /// complete any more, and the request ↔ queue cycle must not outlive it.
    func dropAllRequests() {
        free.removeAll()
        all.removeAll()
        deleteRequest = nil
    }

    var isEmpty: Bool { head == tail }
}

final class CompletionQueue: @unchecked Sendable {
    let cqid: UInt16
    let base: UInt64
    let size: Int
    let vector: Int
    let interruptsEnabled: Bool
    var head: Int = 0
    var tail: Int = 0
    var lastDoorbell: UInt32 = 0
    /// Phase tag for the next entry written.
    var phase: Bool = true
    /// Completed requests waiting for room in the queue.
    var pending: [Request] = []
    /// SQs bound to this CQ.
    var sqids: Set<UInt16> = []
    /// Guards this CQ, its SQs and their requests on the I/O fast path
    /// (`Controller-fastpath.swift`); the controller's exclusive lock
    /// guards them everywhere else.
    let lock = ConditionLock(adaptive: true)
    /// Counted on the fast path: CQEs posted and interrupts raised
    /// (statistics add them; folded into the controller's when the queue goes).
    var fastCompletions: UInt64 = 0
    var fastInterrupts: UInt64 = 0

    init(cqid: UInt16, base: UInt64, size: Int, vector: Int, interruptsEnabled: Bool) {
        self.cqid = cqid; self.base = base; self.size = size; self.vector = vector
        self.interruptsEnabled = interruptsEnabled
    }

    var isFull: Bool { (tail + 1) % size == head }
}

/// A read-only picture of one queue, for `queues/` and tests.
public struct QueueSnapshot: Sendable {
    public enum Kind: Sendable { case submission, completion }
    public var kind: Kind
    public var qid: UInt16
    public var base: UInt64
    /// Entries (1's based).
    public var size: Int
    public var head: Int
    public var tail: Int
    /// CQ: the phase tag the controller writes next.
    public var phase: Bool
    /// SQ: its CQ id. CQ: its interrupt vector.
    public var cqid: UInt16
    public var vector: Int
    public var interruptsEnabled: Bool
    public var outstanding: Int
    public var lastDoorbell: UInt32
}
