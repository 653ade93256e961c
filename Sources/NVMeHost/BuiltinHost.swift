import BlockIO
import HostMemory
import Logging
import NVMeController
import NVMeSpec
import Synchronization

import Glibc

/// Settings of the built-in host driver.
public struct BuiltinHostConfiguration: Sendable {
    /// I/O queue pairs to create (fewer if the controller grants fewer).
    public var ioQueuePairs: Int = 4
    /// Entries per I/O queue (clamped to CAP.MQES + 1); depth - depth/2 commands per queue in
    /// flight (completions are acknowledged half a queue at a time, see `QueuePair.headBatch`).
    public var ioQueueDepth: Int = 256
    /// Entries of the admin queues (at most 4096).
    public var adminQueueDepth: Int = 64
    /// A command not completed after this long triggers controller recovery.
    public var commandTimeout: Duration = .seconds(30)
    /// How long new I/O waits for a recovery in progress before failing with EIO.
    public var recoveryWait: Duration = .seconds(60)
    /// 4 KiB bounce pages in the private region (edge read-modify-write, DSM ranges).
    public var bouncePages: Int = 64
    /// How long to wait for CSTS.RDY to change; nil: CAP.TO (NVMe 1.4 §3.1.1).
    public var readyTimeout: Duration?
    /// Shadow doorbells (NVMe 1.4 §7.13): at every bring-up the host gives
    /// the controller a Shadow Doorbell and an EventIdx page (Doorbell Buffer
    /// Config, §5.7) and its I/O queues write tails and heads there, ringing
    /// an MMIO doorbell only when EventIdx asks for one. The admin queue
    /// always rings by MMIO, as Linux.
    public var shadowDoorbells = false

    public init() {}
}

/// What the host learned about one active namespace (Identify Namespace).
public struct NamespaceInfo: Sendable, Hashable {
    public var nsid: UInt32
    /// Which appearance of the NSID this is: a namespace that went away and
    /// came back (detached, or deleted and created again) has a new one, so
    /// a file opened on the old one fails instead of reaching the new one.
    /// Kept across a Format NVM and across controller recovery. Not part of
    /// equality: two infos are equal when they describe the same geometry.
    public var instance: UInt64 = 0

    public static func == (a: NamespaceInfo, b: NamespaceInfo) -> Bool {
        a.nsid == b.nsid && a.nsze == b.nsze && a.format == b.format
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(nsid)
        hasher.combine(nsze)
        hasher.combine(format)
    }
    /// Size in logical blocks.
    public var nsze: UInt64
    /// The formatted LBA format (FLBAS: index and extended bit) and the
    /// protection settings (DPS).
    public var format: NamespaceFormat
    /// LBA data size as a power of two.
    public var lbads: UInt8 { format.lbads }
    /// Metadata bytes per LBA of the formatted LBA format.
    public var metadataSize: UInt16 { format.ms }
    public var blockSize: Int { 1 << Int(lbads) }
    /// Size in bytes (the size of `namespaces/N/data`).
    public var capacity: UInt64 { nsze << UInt64(lbads) }
}

/// Where the host is in its life cycle.
public enum HostState: Int, Sendable {
    /// Bring-up in progress.
    case starting = 0
    /// Queues exist; I/O flows.
    case live = 1
    /// Recovering from a reset, a fatal status or a timeout: new I/O waits.
    case recovering = 2
    /// Recovery failed: I/O fails with EIO until a later reset revives the controller.
    case dead = 3
    /// `shutdown()` was called.
    case shutDown = 4
}

/// The built-in host driver (CONTRACT §1): like Linux's nvme driver, it enables
/// the controller, creates an admin queue and I/O queue pairs in its own
/// region of the host address space, and turns file operations into NVMe
/// commands. It reaches the controller only as a real host does: registers
/// and doorbells through MMIO, queues and data in host memory, completions
/// read from its completion queues after an interrupt.
///
/// Every public method may be called from many threads at once.
public final class BuiltinHost: @unchecked Sendable {
    public let controller: NVMeController
    public let configuration: BuiltinHostConfiguration
    let logger: Logger

    // MARK: private region
    let memory: AnonymousMemory
    let regionID: RegionID
    /// Host address of the private region and one past its end.
    public let regionBase: UInt64
    public let regionEnd: UInt64
    let admin: QueuePair
    let io: [QueuePair]
    let bounce: BouncePool
    /// One page for the bring-up's own Identify data (used by one thread at a time).
    let scratchAddress: UInt64
    let scratch: UnsafeMutableRawPointer
    /// The Shadow Doorbell page and the EventIdx page after it, with shadow doorbells.
    let doorbellBuffers: (address: UInt64, pointer: UnsafeMutableRawPointer)?

    // MARK: controller facts (fixed after the first bring-up)
    let dstrd: UInt8
    /// CAP.TO in nanoseconds (time to wait for CSTS.RDY).
    let readyTimeout: UInt64
    /// Largest data transfer per command in bytes (MDTS, capped by one PRP list page).
    let maxTransferAtomic = Atomic<Int>(2 << 20)
    let activeIOQueues = Atomic<Int>(0)
    /// Hands out I/O queues to threads, round robin, on each thread's first
    /// I/O (`pickIOQueue`).
    let queueAssignments = Atomic<Int>(0)

    // MARK: state
    let stateValue = Atomic<Int>(HostState.starting.rawValue)
    let stateLock = ConditionLock()
    let stateChanged = Condition()
    var recoveryRunning = false   // stateLock
    var recoveryAgain = false     // stateLock
    /// The controller's completed resets when the host last disabled it
    /// itself (`bringUp`): a `.resetComplete` event for those is stale.
    let resetsSeen = Atomic<UInt64>(0)
    var recoveries = 0            // stateLock
    var namespaceTable: [UInt32: NamespaceInfo] = [:] {  // stateLock
        didSet { namespaceTableGeneration.store(NamespaceTableCache.newGeneration(), ordering: .releasing) }
    }
    /// Changes (to a value never used before in the process) whenever
    /// `namespaceTable` does: the data path looks namespaces up in its
    /// thread's copy of the table while that copy is current, without the lock.
    let namespaceTableGeneration = Atomic<UInt64>(NamespaceTableCache.newGeneration())
    /// The command timeout in nanoseconds (computed once).
    let commandTimeoutNanoseconds: UInt64
    /// The next `NamespaceInfo.instance` (stateLock).
    var nextNamespaceInstance: UInt64 = 1
    var identifyControllerCache: [UInt8] = []           // stateLock
    let rangeLock = RangeLock()
    let roundRobin = Atomic<Int>(0)

    // MARK: asynchronous events (BuiltinHost-events.swift)
    let eventLock = ConditionLock()
    var eventList: [HostEvent] = []   // eventLock
    /// The host's own AER in flight on the admin queue (not waited for at shutdown).
    let aerOutstanding = OutstandingCounter()

    /// A page-aligned address no region ever holds: PRP entries the host
    /// leaves unused point here, so a controller transfer longer than the
    /// buffer fails with Data Transfer Error instead of touching other memory.
    static let poison: UInt64 = 0xFFFF_FFFF_FFFF_F000
    static let page = 4096

    /// Allocates the private region above every existing region, registers
    /// the interrupt and state handlers, and brings the controller up.
    /// - Throws: `HostError` with a one-line description if the controller
    ///   cannot be brought up.
    public init(controller: NVMeController, configuration: BuiltinHostConfiguration = BuiltinHostConfiguration(),
                logger: Logger = Logger(label: "nvmefs.host")) throws(HostError) {
        self.controller = controller
        self.configuration = configuration
        commandTimeoutNanoseconds = nanoseconds(configuration.commandTimeout)
        self.logger = logger
        let cap = ControllerCapabilities(raw: controller.mmioRead(offset: Int(RegisterOffset.cap), size: 8))
        guard cap.mpsmin == 0 else {
            throw HostError(errno: ENODEV, "controller minimum page size \(4096 << Int(cap.mpsmin)) is not 4096")
        }
        dstrd = cap.dstrd
        readyTimeout = configuration.readyTimeout.map(nanoseconds) ?? UInt64(max(1, Int(cap.to))) * 500_000_000
        let maxEntries = Int(cap.mqes) + 1
        let ioDepth = max(2, min(configuration.ioQueueDepth, maxEntries, 4096))
        let adminDepth = max(2, min(configuration.adminQueueDepth, maxEntries, 4096))
        let pairs = max(1, min(configuration.ioQueuePairs, controller.parameters.maxIOQueuePairs))

        // Layout, in pages: admin SQ, admin CQ, PRP lists of the admin slots,
        // then per pair SQ, CQ and PRP lists, then scratch and bounce pages.
        let page = Self.page
        func pages(_ bytes: Int) -> Int { (bytes + page - 1) / page }
        var offset = 0
        func take(_ n: Int) -> Int { defer { offset += n * page }; return offset }
        let adminSQ = take(pages(adminDepth * 64)), adminCQ = take(pages(adminDepth * 16))
        let adminLists = take(adminDepth - 1)
        var pairLayout: [(Int, Int, Int)] = []
        for _ in 0..<pairs {
            pairLayout.append((take(pages(ioDepth * 64)), take(pages(ioDepth * 16)), take(ioDepth - 1)))
        }
        let scratchOffset = take(1)
        let doorbellOffset = configuration.shadowDoorbells ? take(2) : nil
        let bounceOffset = take(max(1, configuration.bouncePages))
        let size = offset

        do {
            memory = try AnonymousMemory(size: size)
        } catch {
            throw HostError(errno: ENOMEM, "built-in host: cannot allocate \(size) bytes: \(error)")
        }
        // Above every existing region (mem, CMB), on a 2 MiB boundary.
        let base = controller.space.highestEnd(alignedTo: 2 << 20)
        do {
            regionID = try controller.space.map(base: base, length: size, pointer: memory.pointer, name: "host",
                                                kind: .hostPrivate)
        } catch {
            throw HostError(errno: ENOMEM, "built-in host: cannot map its region: \(error)")
        }
        regionBase = base
        regionEnd = base + UInt64(size)
        let p = memory.pointer
        doorbellBuffers = doorbellOffset.map { (base + UInt64($0), p + $0) }
        func pair(_ qid: UInt16, _ depth: Int, _ sqOff: Int, _ cqOff: Int, _ listOff: Int) -> QueuePair {
            // I/O queues acknowledge completions half a queue at a time: one
            // CQ head doorbell (a controller lock round trip) per depth/2
            // commands instead of one per command.
            QueuePair(qid: qid, depth: depth, sqAddress: base + UInt64(sqOff), sq: p + sqOff,
                      cqAddress: base + UInt64(cqOff), cq: p + cqOff, listAddress: base + UInt64(listOff),
                      lists: p + listOff, dstrd: cap.dstrd, controller: controller,
                      headBatch: qid == 0 ? 1 : max(1, depth / 2),
                      shadow: qid == 0 ? nil : doorbellOffset.map {
                          ShadowDoorbell(qid: qid, shadow: p + $0, eventIdx: p + $0 + page, dstrd: cap.dstrd)
                      })
        }
        admin = pair(0, adminDepth, adminSQ, adminCQ, adminLists)
        io = pairLayout.enumerated().map { i, l in pair(UInt16(i + 1), ioDepth, l.0, l.1, l.2) }
        scratchAddress = base + UInt64(scratchOffset)
        scratch = p + scratchOffset
        bounce = BouncePool(address: base + UInt64(bounceOffset), pointer: p + bounceOffset,
                            count: max(1, configuration.bouncePages))

        // Vector 0 serves the admin CQ, vector i the I/O CQ i.
        controller.setInterruptHandler(vector: 0) { [admin] _ in admin.interrupt() }
        for q in io {
            controller.setInterruptHandler(vector: Int(q.qid)) { [q] _ in q.interrupt() }
        }
        controller.addStateHandler { [weak self] event in self?.controllerEvent(event) }

        do {
            try bringUp()
        } catch {
            disableController()
            for q in [admin] + io { q.abortOutstandingAndReset(retryable: false) }
            detach()
            throw error
        }
        setState(.live)
        startEventThread()
    }

    deinit {
        // Without shutdown(): stop the controller from using the region first.
        if state != .shutDown {
            setState(.shutDown)
            disableController()
            // The event thread's AER ends here (it holds no reference to the host while waiting).
            admin.stopAccepting()
            admin.abortOutstandingAndReset(retryable: false)
        }
        detach()
    }

    /// Unregisters the interrupt handlers and unmaps the region (once the
    /// controller no longer uses it).
    func detach() {
        controller.setInterruptHandler(vector: 0, nil)
        for q in io { controller.setInterruptHandler(vector: Int(q.qid), nil) }
        controller.space.unmap(regionID)
    }

    // MARK: - Public facts

    public var state: HostState { HostState(rawValue: stateValue.load(ordering: .acquiring)) ?? .dead }

    /// The admin queue (0) and the I/O queues this host owns: the files refuse
    /// user doorbell writes to them (EBUSY).
    public var ownedQueueIDs: Set<UInt16> {
        Set([0] + (0..<activeIOQueues.load(ordering: .relaxed)).map { UInt16($0 + 1) })
    }

    /// Active namespaces found at the last bring-up, by NSID.
    public var namespaces: [NamespaceInfo] {
        stateLock.withLock { namespaceTable.values.sorted { $0.nsid < $1.nsid } }
    }

    public func namespaceInfo(_ nsid: UInt32) -> NamespaceInfo? {
        let cache = NamespaceTableCache.forThread()
        if cache.generation != namespaceTableGeneration.load(ordering: .acquiring) {
            stateLock.withLock {
                cache.fill(namespaceTable, generation: namespaceTableGeneration.load(ordering: .relaxed))
            }
        }
        return cache[nsid]
    }

    /// The namespace `nsid`, if it is still the appearance `instance` (nil:
    /// any).
    public func namespaceInfo(_ nsid: UInt32, instance: UInt64?) -> NamespaceInfo? {
        guard let info = namespaceInfo(nsid), instance == nil || info.instance == instance else { return nil }
        return info
    }

    /// `info` with the instance of `old` (the same namespace seen again), or
    /// a new one (call under stateLock).
    func keepingInstance(_ info: NamespaceInfo, of old: NamespaceInfo?) -> NamespaceInfo {
        var info = info
        if let old {
            info.instance = old.instance
        } else {
            info.instance = nextNamespaceInstance
            nextNamespaceInstance += 1
        }
        return info
    }

    /// Largest data transfer of one command in bytes (MDTS, at most 2 MiB).
    public var maxTransfer: Int { maxTransferAtomic.load(ordering: .relaxed) }

    /// How many recoveries have completed (successfully or not).
    public var recoveryCount: Int { stateLock.withLock { recoveries } }

    // MARK: - Register access

    func readCSTS() -> ControllerStatus {
        ControllerStatus(raw: UInt32(truncatingIfNeeded: controller.mmioRead(offset: Int(RegisterOffset.csts), size: 4)))
    }

    func readCC() -> ControllerConfiguration {
        ControllerConfiguration(raw: UInt32(truncatingIfNeeded: controller.mmioRead(offset: Int(RegisterOffset.cc), size: 4)))
    }

    func writeCC(_ cc: ControllerConfiguration) {
        controller.mmioWrite(offset: Int(RegisterOffset.cc), value: UInt64(cc.raw), size: 4)
    }

    /// Polls `condition` until it holds or `timeout` nanoseconds pass.
    func poll(timeout: UInt64, _ condition: () -> Bool) -> Bool {
        let end = monotonicNow() &+ timeout
        var pause: UInt64 = 10_000
        while true {
            if condition() { return true }
            if monotonicNow() >= end { return false }
            sleepNanoseconds(pause)
            pause = min(pause * 2, 10_000_000)
        }
    }

    /// CC.EN = 0 and wait for CSTS.RDY = 0 (NVMe 1.4 §7.6.2). False on timeout.
    @discardableResult
    func disableController() -> Bool {
        var cc = readCC()
        if cc.en || cc.shn != 0 {
            cc.en = false
            cc.shn = 0
            writeCC(cc)
        }
        return poll(timeout: readyTimeout) { !readCSTS().rdy }
    }

    // MARK: - Bring-up

    /// The whole initialization ladder (NVMe 1.4 §7.6.1). Called by `init` and
    /// by recovery, on one thread, while no other command can be submitted.
    func bringUp() throws(HostError) {
        for q in [admin] + io { q.stopAccepting() }
        guard disableController() else {
            throw HostError(errno: EIO, "controller did not clear CSTS.RDY after CC.EN=0")
        }
        // The events of every reset up to this one (ours included) are stale.
        resetsSeen.store(controller.completedResets, ordering: .releasing)
        // Every command of the previous incarnation is gone (the reset drained them).
        for q in [admin] + io { q.abortOutstandingAndReset(retryable: true) }

        let depth = UInt32(admin.depth - 1)
        controller.mmioWrite(offset: Int(RegisterOffset.aqa), value: UInt64(depth | depth << 16), size: 4)
        controller.mmioWrite(offset: Int(RegisterOffset.asq), value: admin.sqAddress, size: 8)
        controller.mmioWrite(offset: Int(RegisterOffset.acq), value: admin.cqAddress, size: 8)
        // Unmask our vectors in case someone masked them (INTMC is write-1-to-clear the mask).
        controller.mmioWrite(offset: Int(RegisterOffset.intmc), value: 0xFFFF_FFFF, size: 4)
        var cc = ControllerConfiguration(raw: 0)
        cc.iosqes = 6
        cc.iocqes = 4
        cc.en = true
        writeCC(cc)  // 0x460001
        var fatal = false
        let ready = poll(timeout: readyTimeout) {
            let s = readCSTS()
            if s.cfs { fatal = true; return true }
            return s.rdy
        }
        if fatal { throw HostError(errno: EIO, "controller reported fatal status (CSTS.CFS) while enabling") }
        if !ready { throw HostError(errno: EIO, "controller did not set CSTS.RDY after CC.EN=1") }
        admin.startAccepting()

        // Identify Controller (CNS 01h): MDTS.
        let idctl = try internalIdentify(cns: 1, nsid: 0, "Identify Controller")
        let mdts = Int(idctl[77])
        var maxTransfer = 2 << 20  // one PRP list page: 512 entries of 4 KiB
        if mdts != 0 && mdts < 10 { maxTransfer = min(maxTransfer, (1 << mdts) * Self.page) }
        maxTransferAtomic.store(maxTransfer, ordering: .relaxed)

        // Active namespaces (CNS 02h), then Identify Namespace for each.
        let list = try internalIdentify(cns: 2, nsid: 0, "Identify Active Namespace List")
        var table: [UInt32: NamespaceInfo] = [:]
        for nsid in list.withUnsafeBytes({ NamespaceList(bytes: $0)?.nsids ?? [] }) {
            let data = try internalIdentify(cns: 0, nsid: nsid, "Identify Namespace \(nsid)")
            guard let id = data.withUnsafeBytes({ IdentifyNamespace(bytes: $0) }) else { continue }
            guard let info = NamespaceInfo(nsid: nsid, identify: id) else {
                logger.warning("namespace \(nsid): LBA data size 2^\(id.formattedLBAFormat.lbads) not supported; skipped")
                continue
            }
            table[nsid] = info
        }

        // Set Features, Number of Queues (§5.21.1.7): dword 0 holds what was allocated, 0's based.
        let wanted = UInt32(io.count - 1)
        let noq = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue,
                                                         cdw10: UInt32(FeatureIdentifier.numberOfQueues.rawValue),
                                                         cdw11: wanted | wanted << 16), "Set Features (Number of Queues)")
        let granted = min(io.count, Int(noq.dw0 & 0xFFFF) + 1, Int(noq.dw0 >> 16) + 1)

        // Asynchronous Event Configuration (§5.21.1.11), as Linux: the notices
        // OAES says the controller sends (Namespace Attribute, bit 8, tells
        // the host a Format NVM changed a namespace; Firmware Activation, bit 9).
        let oaes = idctl.withUnsafeBytes { $0.le32(IdentifyController.Offset.oaes) } & 0x300
        if oaes != 0 {
            _ = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue,
                                                       cdw10: UInt32(FeatureIdentifier.asyncEventConfiguration.rawValue),
                                                       cdw11: oaes), "Set Features (Asynchronous Event Configuration)")
        }

        if let buffers = doorbellBuffers {
            // §5.7: both pages zeroed first, so every queue starts at tail and head 0.
            buffers.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * Self.page)
            _ = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.doorbellBufferConfig.rawValue,
                                                       prp1: buffers.address, prp2: buffers.address + UInt64(Self.page)),
                                  "Doorbell Buffer Config")
        }
        for q in io.prefix(granted) {
            let size = UInt32(q.depth - 1) << 16
            // Create I/O CQ (§5.3): physically contiguous, interrupts enabled on vector qid.
            _ = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.createIOCQ.rawValue, prp1: q.cqAddress,
                                                       cdw10: UInt32(q.qid) | size,
                                                       cdw11: 0x1 | 0x2 | UInt32(q.qid) << 16),
                                  "Create I/O Completion Queue \(q.qid)")
            // Create I/O SQ (§5.4): physically contiguous, bound to CQ qid.
            _ = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.createIOSQ.rawValue, prp1: q.sqAddress,
                                                       cdw10: UInt32(q.qid) | size,
                                                       cdw11: 0x1 | UInt32(q.qid) << 16),
                                  "Create I/O Submission Queue \(q.qid)")
        }
        stateLock.withLock {
            for (nsid, info) in table { table[nsid] = keepingInstance(info, of: namespaceTable[nsid]) }
            namespaceTable = table
            identifyControllerCache = idctl
        }
        activeIOQueues.store(granted, ordering: .relaxed)
        for q in io.prefix(granted) { q.startAccepting() }
    }

    /// An admin command of the bring-up: no state gate, a timeout is an error.
    func internalAdmin(_ sqe: SubmissionQueueEntry, _ what: String) throws(HostError) -> CompletionQueueEntry {
        let (results, timedOut) = execute(on: admin, count: 1, bringUp: true) { _, _, _ in sqe }
        if timedOut { throw HostError(errno: ETIMEDOUT, "\(what): no completion within the command timeout") }
        switch results[0] {
        case .completed(let cqe):
            guard cqe.status.isSuccess else { throw HostError(status: cqe.status, what) }
            return cqe
        case .aborted, .pending:
            throw HostError(errno: EIO, "\(what): aborted by a controller reset")
        }
    }

    /// Identify into the scratch page (bring-up only).
    func internalIdentify(cns: UInt8, nsid: UInt32, _ what: String) throws(HostError) -> [UInt8] {
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: Self.page)
        _ = try internalAdmin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid,
                                                   prp1: scratchAddress, prp2: Self.poison, cdw10: UInt32(cns)), what)
        return Array(UnsafeRawBufferPointer(start: scratch, count: Self.page))
    }

    // MARK: - Command execution

    /// Submits `count` commands on `q` (entry i built by `build(i, slot, q)`,
    /// whose CID the queue sets to the slot) and waits for all of them.
    ///
    /// A command not completed within the command timeout is first looked for
    /// in the CQ (a lost interrupt); then, for `internal` commands (the
    /// bring-up's), the wait ends with `timedOut`; otherwise recovery is
    /// started and the wait continues until recovery fails the command, so
    /// that no buffer is released while the controller may still use it.
    /// `timeout` replaces the configuration's command timeout (a passthrough
    /// request's own).
    func execute(on q: QueuePair, count: Int, bringUp isBringUp: Bool, timeout: Duration? = nil,
                 build: (Int, UInt16, QueuePair) -> SubmissionQueueEntry) -> (results: [SlotResult], timedOut: Bool) {
        let batch = Batch.forThread(count: count)
        for i in 0..<count {
            let (slot, cid) = q.acquireSlot(for: batch, index: i)
            let sqe = build(i, slot, q)
            if !q.ring(sqe, cid: cid) {
                q.releaseUnsubmitted(slot, batch: batch, result: .aborted(retryable: true))
            }
        }
        let limit = timeout.map(nanoseconds) ?? commandTimeoutNanoseconds
        if q.wait(batch, deadline: deadline(afterNanoseconds: limit)) {
            let results = batch.results
            batch.release()
            return (results, false)
        }
        // A register read orders us after the controller's last CQ write.
        _ = readCSTS()
        q.interrupt()
        if q.wait(batch, deadline: 0) {
            let results = batch.results
            batch.release()
            return (results, false)
        }
        // Timed out at bring-up: commands may still complete into the batch,
        // so this thread keeps it taken (and uses fresh ones from now on).
        if isBringUp { return (q.results(of: batch), true) }
        logger.warning("queue \(q.qid): command timeout; resetting the controller")
        requestRecovery("command timeout on queue \(q.qid)")
        _ = q.wait(batch, deadline: .max)
        let results = batch.results
        batch.release()
        return (results, false)
    }

    /// Waits (bounded) until the host is live.
    func waitUntilLive() -> HostError? {
        if stateValue.load(ordering: .acquiring) == HostState.live.rawValue { return nil }
        let end = deadline(after: configuration.recoveryWait)
        stateLock.lock()
        defer { stateLock.unlock() }
        while true {
            switch state {
            case .live: return nil
            case .dead: return HostError(errno: EIO, "controller is dead (recovery failed)")
            case .shutDown: return HostError(errno: ENODEV, "built-in host is shut down")
            case .starting, .recovering:
                if !stateChanged.wait(stateLock, deadline: end) && state != .live {
                    return HostError(errno: EIO, "timed out waiting for controller recovery")
                }
            }
        }
    }

    func setState(_ s: HostState) {
        stateLock.withLock {
            stateValue.store(s.rawValue, ordering: .releasing)
            stateChanged.broadcast()
        }
    }

    /// The I/O queue for the calling thread. A thread is given a queue of its
    /// own on its first I/O, round robin (as Linux maps CPUs to queues), so
    /// that two FUSE workers never share a queue while there are as many
    /// queues as workers: each submits and reaps its own completions, with
    /// no lock or cache line shared with the other and no wakeup of another
    /// thread. With more threads than queues, a thread whose queue another
    /// thread is ringing uses a free one (see `QueuePair.ringing`).
    func pickIOQueue() -> QueuePair {
        let n = max(1, activeIOQueues.load(ordering: .relaxed))
        let mine = QueueAssignment.forThread()
        if mine.host != ObjectIdentifier(self) {
            mine.host = ObjectIdentifier(self)
            mine.ticket = queueAssignments.wrappingAdd(1, ordering: .relaxed).oldValue
        }
        let start = mine.ticket % n
        for k in 0..<n {
            let q = io[(start + k) % n]
            if q.ringing.load(ordering: .relaxed) == 0 { return q }
        }
        return io[start]
    }

    /// Runs I/O commands (one caller's batch) behind the state gate, and
    /// retries once, after recovery, those that a controller reset aborted
    /// (as Linux requeues them). Fails only if the host is not live in time.
    func runIO(count: Int, build: (Int, UInt16, QueuePair) -> SubmissionQueueEntry) -> Result<[SlotResult], HostError> {
        if let e = waitUntilLive() { return .failure(e) }
        var (results, _) = execute(on: pickIOQueue(), count: count, bringUp: false, build: build)
        // No list is built unless a command must be retried (the usual case
        // allocates nothing here).
        var retry: [Int] = []
        for j in results.indices {
            if case .aborted(retryable: true) = results[j] { retry.append(j) }
        }
        if retry.isEmpty { return .success(results) }
        if let e = waitUntilLive() { return .failure(e) }
        let (again, _) = execute(on: pickIOQueue(), count: retry.count, bringUp: false) { k, slot, q in
            build(retry[k], slot, q)
        }
        for (k, j) in retry.enumerated() { results[j] = again[k] }
        return .success(results)
    }

    /// The first failure among `results` as a `HostError`, or nil.
    func firstError(_ results: [SlotResult], _ what: @autoclosure () -> String) -> HostError? {
        for r in results {
            switch r {
            case .completed(let cqe):
                if !cqe.status.isSuccess { return HostError(status: cqe.status, what()) }
            case .aborted, .pending:
                return HostError(errno: EIO, "\(what()): aborted by a controller reset")
            }
        }
        return nil
    }
}

/// The I/O queue a thread was given by a host (`BuiltinHost.pickIOQueue`).
final class QueueAssignment {
    /// The host that gave it (a thread may use several hosts, one after another).
    var host: ObjectIdentifier?
    /// The thread's place in that host's round robin.
    var ticket = 0

    private static let perThread = ThreadLocalObject { QueueAssignment() }
    static func forThread() -> QueueAssignment { perThread.value }
}

/// 4 KiB pages of the private region for edge read-modify-write and small
/// command data. Blocks while all are in use.
final class BouncePool: @unchecked Sendable {
    let address: UInt64
    let pointer: UnsafeMutableRawPointer
    private let mutex = ConditionLock()
    private let freed = Condition()
    private var free: [Int]

    init(address: UInt64, pointer: UnsafeMutableRawPointer, count: Int) {
        self.address = address; self.pointer = pointer
        free = (0..<count).reversed().map { $0 }
    }

    /// A page: its host address and memory.
    func take() -> (index: Int, address: UInt64, pointer: UnsafeMutableRawPointer) {
        mutex.lock()
        while free.isEmpty { freed.wait(mutex) }
        let i = free.removeLast()
        mutex.unlock()
        return (i, address + UInt64(i * 4096), pointer + i * 4096)
    }

    func give(_ index: Int) {
        mutex.withLock {
            free.append(index)
            freed.signal()
        }
    }

    /// Pages not lent out (tests).
    var freeCount: Int { mutex.withLock { free.count } }
}
