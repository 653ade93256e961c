import BlockIO
import Dispatch
import HostMemory
import Logging
import NVMeSpec
import Synchronization

import Glibc

/// The emulated NVMe controller (CONTRACT §4). All state is guarded by one lock
/// (held exclusively, or shared on the I/O fast path, `Controller-fastpath.swift`);
/// work that must not run under it (backend submission, interrupt delivery,
/// syncing images) is queued as effects and run by whichever thread released
/// the lock, so a backend may complete synchronously and an interrupt handler
/// may ring doorbells.
public final class NVMeController: @unchecked Sendable {
    public let parameters: ControllerParameters
    public let space: HostAddressSpace
    public let logger: Logger
    public let trace: (any TraceSink)?
    /// The Controller Memory Buffer, when configured (NVMe 1.4 §4.7). The
    /// host finds it through CMBLOC/CMBSZ once CMBMSC.CRE is set, and the
    /// controller answers to it at CMBMSC.CBA once CMBMSC.CMSE is set: only
    /// then is it part of the host address space.
    public let cmbMemory: AnonymousMemory?
    /// The CMB's region while CMBMSC.CMSE is set with a usable CBA.
    var cmbRegion: RegionID?

    /// Exclusive: everything below. Shared, with one CQ's lock: the I/O
    /// fast path of that CQ's queues (`Controller-fastpath.swift`). pthread
    /// locks, which ThreadSanitizer sees (it does not see
    /// Synchronization.Mutex on Linux).
    /// Four shards: the built-in host's four I/O queues share none.
    let lock = SharedExclusiveLock(shards: 4)
    // MARK: register state (guarded by lock)
    var cap: ControllerCapabilities
    var cc = ControllerConfiguration(raw: 0)
    var csts = ControllerStatus(raw: 0)
    var aqa = AdminQueueAttributes(raw: 0)
    var asq: UInt64 = 0
    var acq: UInt64 = 0
    var intms: UInt32 = 0
    /// CMBLOC/CMBSZ as they read once CMBMSC.CRE is set (0 without a CMB).
    var cmbloc: UInt32 = 0
    var cmbsz: UInt32 = 0
    var cmbmsc = CMBMemorySpaceControl(raw: 0)
    var cmbsts = CMBStatus(raw: 0)
    var pageSize = 4096

    // MARK: queues (index = qid)
    var sqs: [SubmissionQueue?]
    /// The existing SQs in qid order (what the fetch pass visits).
    var activeSQs: [SubmissionQueue] = []
    var cqs: [CompletionQueue?]
    /// Last values written to each doorbell (index 2*qid for SQ tail, 2*qid+1 for CQ head).
    let doorbellValues: DoorbellValues
    /// Shadow Doorbell and EventIdx buffers, from Doorbell Buffer Config
    /// until a controller reset (`Controller-dbbuf.swift`).
    var doorbellBuffers: DoorbellBuffers?
    let doorbellPageCache = DoorbellPageCache()

    // MARK: namespaces (NVMe 1.4 §6.1: allocated, and attached = active)
    /// The attached (active) namespaces in NSID order. Read it under the
    /// lock; outside the controller, `attachedNamespaces`.
    var namespaces: [Namespace]
    /// The attached namespaces indexed by NSID (index 0 unused): the I/O
    /// path's lookup.
    var activeTable: [Namespace?]
    /// Every allocated namespace, attached or not, by NSID.
    var allocated: [UInt32: Namespace]
    /// Identify Controller NN: NSIDs 1...nn are valid.
    let nn: Int
    /// Where created namespaces are stored and the namespace state is
    /// recorded (nil: Namespace Management is not supported).
    let provisioner: (any NamespaceProvisioner)?
    /// NSIDs and bytes of creations whose storage is being made.
    var pendingCreations: [UInt32: UInt64] = [:]
    /// TNVMCAP (docs/NAMESPACES.md).
    let totalCapacity: UInt64
    /// Runs Namespace Management's and Attachment's file work, one at a time
    /// (it blocks; docs/NAMESPACES.md).
    let managementQueue = DispatchQueue(label: "nvmefs.controller.namespaces")

    // MARK: engine bookkeeping
    var effects: [Effect] = []
    /// How many effects are queued, readable without the lock: `runEffects`
    /// returns at once when it is 0 (a thread that queues an effect always
    /// runs the effects itself after releasing the lock, so none is lost).
    let pendingEffects = Atomic<Int>(0)
    /// Set when a request is released on an SQ whose fetching stalled at a
    /// fused pair; `locked` then fetches again before it ends.
    var refetchPending = false
    /// Requests still draining AIOs after a reset removed their queues.
    var drainingAfterReset = 0
    var resetInProgress = false
    /// Bumped by every CC.SHN 0→1 write, so that a drain finishing after SHN
    /// was cleared and set again completes only the shutdown it belongs to.
    var shutdownGeneration: UInt64 = 0
    /// Runs shutdown drains (they block; see the `.shutdown` effect).
    let shutdownQueue = DispatchQueue(label: "nvmefs.controller.shutdown")
    /// Runs Format NVM's metadata re-creation (it blocks; docs/FORMAT.md).
    let formatQueue = DispatchQueue(label: "nvmefs.controller.format")
    /// Format NVM commands in progress.
    var formatJobs: [FormatJob] = []
    /// Runs the Device Self-test's reads and timers (docs/SELFTEST.md).
    let selfTestQueue = DispatchQueue(label: "nvmefs.controller.selftest")
    /// The Device Self-test operation in progress, and the last results,
    /// newest first (§5.14.1.6).
    var selfTest: SelfTestJob?
    var selfTestResults: [DeviceSelfTestResult] = []
    /// Fused Compare and Write operations holding their LBA ranges, oldest
    /// first, and the I/O commands waiting for them (`Controller-fused.swift`).
    var fusedOperations: [FusedOperation] = []
    var deferredCommands: [Request] = []
    /// Firmware (`Controller-firmware.swift`): the slots, where they are
    /// kept (nil: in memory only), the revision running (Identify FR), the
    /// image being downloaded and its pieces (in dwords), and a committed
    /// image waiting to be written to its slot file.
    var firmwareSlots: FirmwareSlots
    let firmwareStore: FirmwareStore?
    var firmwareRevision: String
    var firmwareDownloaded: [UInt8] = []
    var firmwareReceived = LBARangeSet()
    var firmwareToSave: (slot: Int, bytes: [UInt8])?
    /// NSIDs for the Changed Namespace List log (§5.14.1.4), until read with RAE = 0.
    var changedNamespaces: Set<UInt32> = []
    /// Deepest `locked` nesting seen (see `debugMaxLockedNesting`).
    let maxNesting = Atomic<Int>(0)
    var enableAfterReset = false
    var interrupts: [InterruptVectorState]
    /// Indexed by vector (an array: looked up on every completion).
    var interruptHandlers: [InterruptHandler?]
    var stateHandlers: [@Sendable (ControllerEvent) -> Void] = []

    /// An I/O CQ was created since the last reset (Set Features Number of
    /// Queues is then a Command Sequence Error, §5.21.1.7).
    var ioQueuesCreated = false
    /// Controller resets completed so far (CSTS.RDY back to 0 after CC.EN=0,
    /// NSSR or a power cut): each `.resetComplete` event follows one.
    var resetsCompleted: UInt64 = 0
    /// Bumped whenever the Keep Alive Timer restarts, so stale timers do nothing.
    var keepAliveGeneration: UInt64 = 0

    // MARK: features, logs, events
    var features = FeatureValues()
    var errorLog: [ErrorLogRecord] = []
    var errorCount: UInt64 = 0
    var aerRequests: [Request] = []
    var pendingEvents: [AsyncEventCompletion] = []
    /// Event types masked until the host reads the matching log page (bit = type).
    var maskedEventTypes: UInt8 = 0
    var stats = ControllerStats()
    var startTime: UInt64 = monotonicNanoseconds()
    var powerCycles: UInt64 = 1
    var temperatureKelvin: UInt16 = 0x143  // QEMU NVME_TEMPERATURE (323 K)
    var mediaErrors: UInt64 = 0
    /// SMART Unsafe Shutdowns: power cuts (`powerCut`).
    var unsafeShutdowns: UInt64 = 0
    /// The memory the namespaces' write caches share (nil without `--vwc`).
    let cacheBudget: CacheBudget?
    /// Bumped by every power cut: a write-back batch from before it that
    /// fails is not put back into the cache.
    var powerGeneration: UInt64 = 0
    /// The last power cut, for the `power` file.
    var lastPowerCut: PowerCutReport?

    /// - Parameters:
    ///   - namespaces: every allocated namespace (distinct NSIDs, any order).
    ///   - detached: the NSIDs among them that are not attached.
    ///   - provisioner: creates, removes and records namespaces for
    ///     Namespace Management; nil: that command is not supported.
    ///   - firmware: where the firmware slots are kept and what they held
    ///     at power-on (`FirmwareStore.load`); nil: slot 1 alone, in memory.
    public init(parameters: ControllerParameters, namespaces: [Namespace], space: HostAddressSpace,
                logger: Logger = Logger(label: "nvmefs.controller"), trace: (any TraceSink)? = nil,
                detached: Set<UInt32> = [], provisioner: (any NamespaceProvisioner)? = nil,
                firmware: (store: FirmwareStore?, slots: FirmwareSlots)? = nil) {
        self.parameters = parameters
        firmwareStore = firmware?.store
        firmwareSlots = firmware?.slots ?? FirmwareSlots()
        firmwareRevision = firmwareSlots.active == 1 ? parameters.firmwareRevision
            : firmwareSlots.images[firmwareSlots.active]?.revision ?? parameters.firmwareRevision
        self.space = space
        self.logger = logger
        self.trace = trace
        self.provisioner = provisioner
        let nn = max(parameters.maxNamespaces, Int(namespaces.map(\.nsid).max() ?? 0))
        self.nn = nn
        allocated = Dictionary(uniqueKeysWithValues: namespaces.map { ($0.nsid, $0) })
        activeTable = Array(repeating: nil, count: nn + 1)
        for ns in namespaces where !detached.contains(ns.nsid) { activeTable[Int(ns.nsid)] = ns }
        self.namespaces = activeTable.compactMap { $0 }
        let budget = parameters.writeCacheSize > 0 ? CacheBudget(capacity: parameters.writeCacheSize) : nil
        cacheBudget = budget
        if let budget { for ns in namespaces where ns.writeCache == nil { ns.writeCache = WriteCache(budget: budget) } }
        // The namespaces given (not created) come on top of the capacity for creating.
        totalCapacity = parameters.namespaceCapacity
            + namespaces.filter { !$0.isCreated }.reduce(0) { $0 + $1.allocatedBytes }
        if parameters.cmbSize > 0, let m = try? AnonymousMemory(size: parameters.cmbSize) {
            cmbMemory = m
        } else {
            if parameters.cmbSize > 0 { logger.error("cannot set up a controller memory buffer of \(parameters.cmbSize) bytes") }
            cmbMemory = nil
        }
        var cap = ControllerCapabilities(raw: 0)
        cap.mqes = parameters.mqes
        cap.cqr = true
        cap.to = 0xF
        cap.dstrd = 0
        cap.nssrs = true
        cap.css = 1           // NVM command set
        cap.mpsmin = 0        // 4 KiB
        cap.mpsmax = 4        // 64 KiB (QEMU)
        self.cap = cap
        if let m = cmbMemory {
            // NVMe 1.4 CMB scheme (CAP.CMBS = 1): CMBLOC/CMBSZ read 0 until
            // CMBMSC.CRE is set. CMBSZ (§3.1.12): SQS, CQS, LISTS, RDS, WDS;
            // size in 1 MiB or 4 KiB units. BAR2, offset 0.
            self.cap.cmbs = true
            var sz = CMBSize(raw: 0)
            sz.sqs = true; sz.cqs = true; sz.lists = true; sz.rds = true; sz.wds = true
            if m.size % (1 << 20) == 0 { sz.szu = 2; sz.sz = UInt32(m.size >> 20) } else { sz.szu = 0; sz.sz = UInt32(m.size >> 12) }
            cmbsz = sz.raw
            // BIR 2, offset 0; CDPCILS (bit 6): PRP lists and SGLs may lie in
            // the CMB or outside it, whatever holds the command.
            cmbloc = 2 | 1 << 6
        }
        let n = parameters.maxIOQueuePairs + 1
        sqs = Array(repeating: nil, count: n)
        cqs = Array(repeating: nil, count: n)
        doorbellValues = DoorbellValues(count: 2 * n)
        interrupts = Array(repeating: InterruptVectorState(), count: parameters.interruptVectors)
        interruptHandlers = Array(repeating: nil, count: parameters.interruptVectors)
        features.numberOfQueues = UInt32(parameters.maxIOQueuePairs - 1) | UInt32(parameters.maxIOQueuePairs - 1) << 16
        // Pointers the controller looks up are used within one critical
        // section: a region removal waits for the one in progress.
        // The lock, not the controller: a weak reference would give the
        // controller a side table and slow every retain of it.
        // The doorbell pages' pointers are dropped at every removal too.
        space.addRemovalBarrier { [lock, doorbellPageCache] in lock.withLock { doorbellPageCache.pages = nil } }
    }

    deinit {
        if let id = cmbRegion { space.unmap(id) }
        // Each request refers to its SQ, which holds its requests: break
        // that cycle for the queues of a controller that is freed.
        for sq in sqs { sq?.dropAllRequests() }
    }

    /// Where the host has placed the CMB in its address space (CMBMSC.CBA
    /// with CMSE set and usable), or nil.
    public var cmbAddress: UInt64? {
        lock.withLock { cmbRegion == nil ? nil : cmbmsc.cba }
    }

    // MARK: - Locking and effects

    enum Effect {
        case submit(any BlockBackend, Request, AIOKey, AIO)
        case interrupt(Int, InterruptHandler)
        case event(ControllerEvent, [@Sendable (ControllerEvent) -> Void])
        case cancel([AIOCancellation])
        case timer(microseconds: Int, @Sendable () -> Void)
        case shutdown(generation: UInt64)
    }

    /// Runs `body` under the lock, then performs the effects it queued.
    ///
    /// Re-entrancy is bounded: a `locked` call nested inside the effects of
    /// an outer one on the same thread (an interrupt handler ringing a
    /// doorbell, a backend completing inside `submit`) leaves its effects to
    /// the outer loop, so the stack holds at most two `locked` frames.
    @inline(__always)
    func locked<R>(_ body: () -> R) -> R {
        let frames = EffectsNesting.frames()
        let depth = EffectsNesting.enter(self, frames)
        defer { EffectsNesting.leave(self, frames) }
        if depth > 1 {
            recordNesting(depth)
            lock.lock()
            let result = body()
            if refetchPending { refetchStalled() }
            // The outer frame on this thread runs what this one queued: hand
            // it over directly, so that the outer frame need not lock again
            // to find it (a backend completing inside `submit` queues the
            // completion's interrupt here).
            let me = ObjectIdentifier(self)
            if !effects.isEmpty, frames.handedTo == nil || frames.handedTo == me {
                frames.handedTo = me
                if frames.handed.isEmpty {
                    takeEffects(into: &frames.handed)
                } else {
                    frames.handed.append(contentsOf: effects)
                    effects.removeAll(keepingCapacity: true)
                    pendingEffects.store(0, ordering: .relaxed)
                }
            }
            lock.unlock()
            return result
        }
        // The effects `body` queued are taken in the same critical section
        // (no second lock round trip), by swapping buffers with this
        // thread's spare, which gets the emptied batch back at the end.
        var batch = frames.spareEffects
        frames.spareEffects = []
        lock.lock()
        let result = body()
        if refetchPending { refetchStalled() }
        if !effects.isEmpty { takeEffects(into: &batch) }
        lock.unlock()
        runEffects(&batch, frames)
        frames.spareEffects = batch
        return result
    }

    /// A fused pair stalled for want of two free requests and one was
    /// released since: fetch again (call under the lock).
    func refetchStalled() {
        refetchPending = false
        processSubmissionQueues()
    }

    /// Queues work to run after the lock is released (call under the lock).
    @inline(__always)
    func addEffect(_ effect: consuming Effect) {
        effects.append(effect)
        pendingEffects.store(effects.count, ordering: .relaxed)
    }

    /// Moves the queued effects into the empty `batch` (call under the lock).
    @inline(__always)
    private func takeEffects(into batch: inout [Effect]) {
        swap(&batch, &effects)
        pendingEffects.store(0, ordering: .relaxed)
    }

    /// Performs `batch`, then any effects queued meanwhile, until none is
    /// left; returns with `batch` empty. Only the outermost `locked` frame of
    /// a thread calls this (see `locked`); effects queued by nested frames
    /// are picked up by the next round of this loop.
    func runEffects(_ batch: inout [Effect], _ frames: EffectsNesting.Frames) {
        let me = ObjectIdentifier(self)
        defer { if frames.handedTo == me { frames.handedTo = nil } }
        while true {
            if batch.isEmpty, frames.handedTo == me, !frames.handed.isEmpty {
                swap(&batch, &frames.handed)
            }
            if batch.isEmpty {
                guard pendingEffects.load(ordering: .relaxed) > 0 else { return }
                lock.withLock { takeEffects(into: &batch) }
                if batch.isEmpty { return }
            }
            // Moved out one by one, in order (reversed, then popped from the
            // end): no copy of an effect's payload, no retain per effect.
            if batch.count > 1 { batch.reverse() }
            while let effect = batch.popLast() {
                switch consume effect {
                case let .submit(backend, request, key, aio):
                    let op = aio.operation
                    // The fast path: done now, with no completion closure
                    // or ticket (BlockBackend.performImmediately).
                    if let err = backend.performImmediately(aio) {
                        aioCompleted(request, key: key, operation: op, errno: err)
                        continue
                    }
                    let ticket = backend.submit(aio) { err in
                        self.aioCompleted(request, key: key, operation: op, errno: err)
                    }
                    // Completed already (inline backends): nothing to attach or cancel.
                    if request.lastFinished.isLast(key) { continue }
                    // The request's state is its queue's: the shared lock and
                    // the queue's lock guard it against every other path.
                    lock.lockShared(Int(request.sq.sqid))
                    request.sq.lock.lock()
                    // A cancel (Abort, SQ deletion, reset) that ran before the
                    // ticket was known could not reach this AIO: cancel it now.
                    let cancelLate = request.generation == key.generation
                        ? request.aios.attach(ticket, to: key.index) : nil
                    request.sq.lock.unlock()
                    lock.unlockShared(Int(request.sq.sqid))
                    cancelLate?.perform()
                case let .cancel(targets):
                    for t in targets { t.perform() }
                case let .timer(us, body):
                    DispatchQueue.global().asyncAfter(deadline: .now() + .microseconds(us), execute: body)
                case let .interrupt(vector, handler):
                    handler.body(vector)
                case let .event(event, handlers):
                    for h in handlers { h(event) }
                case let .shutdown(generation):
                    // Never drained here: this thread may be a backend worker
                    // inside its own completion callback, and the drain would
                    // wait for itself. The shutdown queue drains and syncs, then
                    // reports completion (NVMe 1.4 §7.6.2, CSTS.SHST = 10b).
                    shutdownQueue.async { [self] in
                        // A format's metadata re-creation ends first (it syncs its file).
                        formatQueue.sync {}
                        // §7.6.2: the volatile write cache reaches the image first.
                        writeBackCachesSynchronously()
                        for b in lock.withLock({ allocatedBackends }) { b.drainAndSync() }
                        locked {
                            guard shutdownGeneration == generation, cc.shn != 0, csts.shst == 1 else { return }
                            csts.shst = 2  // shutdown processing complete
                            traceEvent(.mmioShutdownCleared)
                            emit(.shutdownComplete)
                        }
                    }
                }
            }
        }
    }

    /// Test hook: the deepest nesting of `locked` frames seen on one thread.
    public var debugMaxLockedNesting: Int { maxNesting.load(ordering: .relaxed) }

    private func recordNesting(_ depth: Int) {
        var seen = maxNesting.load(ordering: .relaxed)
        while depth > seen {
            let (exchanged, original) = maxNesting.compareExchange(expected: seen, desired: depth, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }

    // MARK: - Tracing helpers (call under lock)

    @inline(__always) var tracing: Bool { trace?.isEnabled ?? false }

    func traceEvent(_ name: TraceEventName, _ fields: @autoclosure () -> [(String, String)] = []) {
        guard let t = trace, t.isEnabled else { return }
        t.record(TraceEvent(name.rawValue, fields()))
    }

    /// Host misuse: always logged (debug level) and always handed to the
    /// trace sink (which keeps guest errors even with no reader); never fatal.
    func guestError(_ name: GuestErrorName, _ fields: [(String, String)] = []) {
        stats.guestErrors += 1
        let event = TraceEvent(name.rawValue, fields, guestError: true)
        logger.debug("\(event.line)")
        trace?.record(event)
    }

    // MARK: - Public observers

    /// Registers the handler called (outside the lock) when `vector` fires.
    public func setInterruptHandler(vector: Int, _ handler: (@Sendable (Int) -> Void)?) {
        lock.withLock {
            guard interruptHandlers.indices.contains(vector) else { return }
            interruptHandlers[vector] = handler.map(InterruptHandler.init)
        }
    }

    /// Registers a handler for controller state changes (ready, reset, fatal).
    public func addStateHandler(_ handler: @escaping @Sendable (ControllerEvent) -> Void) {
        lock.withLock { stateHandlers.append(handler) }
    }

    func emit(_ event: ControllerEvent) {
        if !stateHandlers.isEmpty { addEffect(.event(event, stateHandlers)) }
    }

    /// How many resets have completed (each is followed by a
    /// `.resetComplete` event, delivered later on some thread). A host
    /// compares it with the count it saw when it last brought the
    /// controller up, to tell a new reset from the late event of its own.
    public var completedResets: UInt64 { lock.withLock { resetsCompleted } }

    /// The attached namespaces in NSID order, as of now.
    public var attachedNamespaces: [Namespace] { lock.withLock { namespaces } }

    /// The attached namespace with this NSID (nil for an inactive or invalid
    /// one). Under the lock.
    @inline(__always)
    public func namespace(_ nsid: UInt32) -> Namespace? {
        guard Int(nsid) < activeTable.count else { return nil }
        return activeTable[Int(nsid)]
    }

    /// Every backend of every allocated namespace (under the lock).
    var allocatedBackends: [any BlockBackend] { allocated.values.flatMap(\.backends) }

    /// NVMe 1.4 §6.1 (namespace IDs): a valid NSID is 1...NN; it is active
    /// when a namespace is attached, inactive otherwise. 0 and NSIDs above
    /// NN other than FFFFFFFFh are invalid.
    func isValidNSID(_ nsid: UInt32) -> Bool {
        nsid != 0 && UInt64(nsid) <= UInt64(nn)
    }

    /// The status of an admin command naming `nsid` that is not an active
    /// namespace: Invalid Namespace or Format for an invalid NSID, Invalid
    /// Field in Command for an inactive one (both DNR, as QEMU); nil when
    /// `namespace(nsid)` exists.
    func inactiveNamespaceStatus(_ nsid: UInt32) -> NVMeStatus? {
        guard isValidNSID(nsid) else {
            guestError(.invalidNs, [("nsid", hex(nsid))])
            return NVMeStatus.invalidNamespace.withDNR
        }
        guard namespace(nsid) != nil else {
            guestError(.inactiveNs, [("nsid", hex(nsid))])
            return NVMeStatus.invalidField.withDNR
        }
        return nil
    }

    static let broadcastNSID: UInt32 = 0xFFFF_FFFF

    /// Waits for every backend to finish its I/O and syncs the images (clean unmount).
    public func drainAndSync() {
        stopSelfTestForClose()
        formatQueue.sync {}
        managementQueue.sync {}
        writeBackCachesSynchronously()
        for b in lock.withLock({ allocatedBackends }) { b.drainAndSync() }
    }

    /// Closes every backend of every namespace (after `drainAndSync`, at unmount).
    public func closeBackends() {
        stopSelfTestForClose()
        formatQueue.sync {}
        managementQueue.sync {}
        for b in lock.withLock({ allocatedBackends }) { b.close() }
    }

    /// The namespace's layout as of now (FUSE files, the built-in host).
    public func namespaceGeometry(_ nsid: UInt32) -> NamespaceGeometry? {
        lock.withLock {
            guard let ns = namespace(nsid) else { return nil }
            return NamespaceGeometry(nsid: nsid, format: ns.format, nsze: ns.nsze, isReadOnly: ns.isReadOnly,
                                     formatProgress: ns.formatProgress)
        }
    }
}

/// An interrupt handler, wrapped: a closure kept in an array (a generic
/// container) is stored at the most general abstraction, and taking it out
/// as a concrete closure allocates a thunk on every completion; a struct
/// keeps it as it is.
struct InterruptHandler: Sendable {
    let body: @Sendable (Int) -> Void
}

/// State changes a host driver watches.
public enum ControllerEvent: Sendable, Equatable {
    /// CSTS.RDY became 1.
    case ready
    /// CSTS.RDY became 0 after a controller or subsystem reset.
    case resetComplete
    /// CSTS.CFS was set.
    case fatal
    /// CSTS.SHST became complete.
    case shutdownComplete
}

struct InterruptVectorState: Sendable {
    var raised: UInt64 = 0
    /// Held back by INTMS (vectors 0-31).
    var pending = false
    /// Completions posted since the vector last fired (interrupt coalescing).
    var aggregated = 0
    /// A coalescing timer is armed for this vector.
    var timerArmed = false
}

public struct InterruptSnapshot: Sendable {
    public var vector: Int
    public var raised: UInt64
    public var masked: Bool
    public var pending: Bool
}

struct ControllerStats: Sendable {
    var adminCommands = [UInt64](repeating: 0, count: 256)
    var ioCommands = [UInt64](repeating: 0, count: 256)
    var errors: UInt64 = 0
    var doorbellWrites: UInt64 = 0
    var invalidDoorbellWrites: UInt64 = 0
    var guestErrors: UInt64 = 0
    var completionsPosted: UInt64 = 0
    /// Folded from the queues' fast-path counters (`debugFastPath`).
    var fastDispatched: UInt64 = 0
    var fastCompleted: UInt64 = 0
}
