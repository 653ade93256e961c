import Glibc

/// An in-memory block backend for tests, with programmable faults, delays
/// and holds.
///
/// Shape: like `ImageBackend` in thread-pool mode, completions never run
/// inside `submit`. Ordinary and delayed AIOs complete on a background thread;
/// held AIOs complete on the thread that releases them; a cancelled AIO's
/// ECANCELED completion is delivered by the background thread, never inside
/// `cancel`.
///
/// Semantics of the data: reads copy out of the byte array, writes copy in,
/// write zeroes and discard store zeros, flush does nothing but count. An AIO
/// outside `0..<size`, or whose iovecs do not add up to its length, fails
/// with EINVAL (a bug in the caller); a modifying AIO on a read-only backend
/// fails with EBADF, as the kernel reports for an O_RDONLY descriptor.
public final class TestBackend: BlockBackend, @unchecked Sendable {
    /// A programmable behaviour: which AIOs it matches and what happens to them.
    public struct Rule: Sendable, Hashable {
        public enum Action: Sendable, Hashable {
            /// Complete with this positive errno without touching the data.
            case fail(errno: Int32)
            /// Perform the AIO this many nanoseconds after submission.
            case delay(nanoseconds: UInt64)
            /// Keep the AIO until the test releases (or the caller cancels) it.
            case hold
        }
        public var action: Action
        /// The operations matched; empty matches every operation.
        public var operations: Set<AIOOperation>
        /// Bytes matched: an AIO matches when its byte range overlaps this one
        /// (a zero-length AIO such as flush: when its offset lies inside).
        /// nil matches anywhere.
        public var range: Range<UInt64>?
        /// How many more AIOs the rule applies to; nil = always.
        public var remaining: Int?

        public init(_ action: Action, operations: Set<AIOOperation> = [], range: Range<UInt64>? = nil,
                    times: Int? = nil) {
            self.action = action; self.operations = operations; self.range = range; self.remaining = times
        }

        public static func fail(_ errno: Int32, operations: Set<AIOOperation> = [], range: Range<UInt64>? = nil,
                                times: Int? = nil) -> Rule {
            Rule(.fail(errno: errno), operations: operations, range: range, times: times)
        }

        public static func delay(_ duration: Duration, operations: Set<AIOOperation> = [],
                                 range: Range<UInt64>? = nil, times: Int? = nil) -> Rule {
            Rule(.delay(nanoseconds: nanoseconds(duration)), operations: operations, range: range, times: times)
        }

        public static func hold(operations: Set<AIOOperation> = [], range: Range<UInt64>? = nil,
                                times: Int? = nil) -> Rule {
            Rule(.hold, operations: operations, range: range, times: times)
        }

        /// Whether the rule applies to `aio` (ignoring `remaining`).
        public func matches(_ aio: AIO) -> Bool {
            if !operations.isEmpty && !operations.contains(aio.operation) { return false }
            guard let range else { return true }
            if aio.length == 0 { return range.contains(aio.offset) }
            let end = aio.offset.addingReportingOverflow(aio.length)
            let aioEnd = end.overflow ? UInt64.max : end.partialValue
            return aio.offset < range.upperBound && range.lowerBound < aioEnd
        }
    }

    /// What the logs record of an AIO.
    public struct LogEntry: Sendable, Hashable, CustomStringConvertible {
        public var operation: AIOOperation
        public var offset: UInt64
        public var length: UInt64
        public var ticket: AIOTicket
        public init(operation: AIOOperation, offset: UInt64, length: UInt64, ticket: AIOTicket) {
            self.operation = operation; self.offset = offset; self.length = length; self.ticket = ticket
        }
        public var description: String { "\(operation)@\(offset)+\(length)" }
    }

    /// One delivered completion.
    public struct Completion: Sendable, Hashable {
        public var entry: LogEntry
        public var errno: Int32
    }

    public let name: String
    public let size: UInt64
    public let isReadOnly: Bool

    private struct Item {
        var entry: LogEntry
        var aio: AIO
        var completion: @Sendable (Int32) -> Void
        /// Set: complete with this errno instead of performing the AIO.
        var forcedResult: Int32?
        var due: UInt64
        var sequence: UInt64
    }

    private let lock = ConditionLock()   // its own condition wakes the background thread
    private let heldChanged = Condition()
    private let drained = Condition()
    // Guarded by `lock`:
    private var data: [UInt8]
    private var rules: [Int: Rule] = [:]
    private var ruleOrder: [Int] = []
    private var nextRuleID = 1
    private var nextTicket: UInt64 = 1
    private var nextSequence: UInt64 = 0
    private var scheduled: [Item] = []          // sorted by (due, sequence)
    private var running = 0                      // items taken by the background thread
    private var heldItems: [Item] = []           // in submission order
    private var threadRunning = false
    private var closed = false
    private var submittedLog: [LogEntry] = []
    private var cancelledLog: [LogEntry] = []
    private var completionLog: [Completion] = []
    private var syncs = 0
    private var cancelRefused = false

    /// When set, `cancel` refuses every ticket, as for operations already
    /// inside a system call: the engine must wait for them (CONTRACT §5
    /// "cancels or drains").
    public var refusesCancel: Bool {
        get { lock.withLock { cancelRefused } }
        set { lock.withLock { cancelRefused = newValue } }
    }

    /// An all-zero image of `size` bytes.
    public init(size: UInt64, name: String = "test", readOnly: Bool = false) {
        self.size = size
        self.name = name
        self.isReadOnly = readOnly
        self.data = [UInt8](repeating: 0, count: Int(size))
    }

    /// An image holding `contents`.
    public convenience init(contents: [UInt8], name: String = "test", readOnly: Bool = false) {
        self.init(size: UInt64(contents.count), name: name, readOnly: readOnly)
        data = contents
    }

    // MARK: Rules

    /// Adds a rule; the first matching rule with uses left decides an AIO's fate.
    /// - Returns: an id for `removeRule`.
    @discardableResult
    public func addRule(_ rule: Rule) -> Int {
        lock.withLock {
            let id = nextRuleID
            nextRuleID += 1
            rules[id] = rule
            ruleOrder.append(id)
            return id
        }
    }

    public func removeRule(_ id: Int) {
        lock.withLock {
            rules[id] = nil
            ruleOrder.removeAll { $0 == id }
        }
    }

    public func clearRules() {
        lock.withLock { rules = [:]; ruleOrder = [] }
    }

    // MARK: Data access for tests

    /// Bytes of the image (clamped to its size).
    public func read(offset: UInt64, count: Int) -> [UInt8] {
        lock.withLock {
            let start = Int(min(offset, size))
            let end = min(start + count, data.count)
            return Array(data[start..<end])
        }
    }

    /// Stores bytes into the image directly (no AIO, no log).
    public func write(_ bytes: [UInt8], at offset: UInt64) {
        lock.withLock {
            let start = Int(offset)
            precondition(start + bytes.count <= data.count, "write past the test image")
            data.replaceSubrange(start..<start + bytes.count, with: bytes)
        }
    }

    /// A copy of the whole image.
    public var contents: [UInt8] { lock.withLock { data } }

    // MARK: Logs

    /// Every submitted AIO, in submission order.
    public var submitted: [LogEntry] { lock.withLock { submittedLog } }
    /// Every AIO completed with ECANCELED because of `cancel`.
    public var cancelled: [LogEntry] { lock.withLock { cancelledLog } }
    /// Every completion delivered, in delivery order.
    public var completions: [Completion] { lock.withLock { completionLog } }
    /// AIOs currently held, in submission order.
    public var held: [LogEntry] { lock.withLock { heldItems.map(\.entry) } }
    public var heldCount: Int { lock.withLock { heldItems.count } }
    /// How many times `drainAndSync` ran.
    public var syncCount: Int { lock.withLock { syncs } }

    /// Blocks until at least `count` AIOs are held, or the timeout passes.
    /// - Returns: whether the count was reached.
    public func waitForHeld(count: Int, timeout: Duration = .seconds(10)) -> Bool {
        let (end, overflow) = monotonicNanoseconds().addingReportingOverflow(nanoseconds(timeout))
        let deadline = overflow ? UInt64.max : end
        lock.lock()
        defer { lock.unlock() }
        while heldItems.count < count {
            if monotonicNanoseconds() >= deadline { return false }
            _ = heldChanged.wait(lock, untilMonotonicNanoseconds: deadline)
        }
        return true
    }

    // MARK: Release

    /// Releases every held AIO for which `predicate` holds, in submission
    /// order, on the calling thread: each is performed (or, with a non-zero
    /// `errno`, failed with it) and its completion called before this returns.
    /// - Returns: how many were released.
    @discardableResult
    public func release(errno: Int32 = 0, where predicate: (AIO) -> Bool) -> Int {
        let items: [Item] = lock.withLock {
            var taken: [Item] = []
            heldItems.removeAll { item in
                if predicate(item.aio) { taken.append(item); return true }
                return false
            }
            return taken
        }
        for item in items { finish(item, forcing: errno == 0 ? nil : errno) }
        return items.count
    }

    /// Releases every held AIO (see `release(errno:where:)`).
    @discardableResult
    public func releaseAll(errno: Int32 = 0) -> Int {
        release(errno: errno) { _ in true }
    }

    /// Releases held AIOs in the given order. The indices refer to `held` as
    /// it is when this is called (0 = the oldest held AIO).
    public func releaseHeld(inOrder indices: [Int], errno: Int32 = 0) {
        let items: [Item] = lock.withLock {
            precondition(Set(indices).count == indices.count, "duplicate index")
            precondition(indices.allSatisfy { heldItems.indices.contains($0) }, "index out of range")
            let chosen = indices.map { heldItems[$0] }
            let removed = Set(indices)
            heldItems = heldItems.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            return chosen
        }
        for item in items { finish(item, forcing: errno == 0 ? nil : errno) }
    }

    // MARK: BlockBackend

    @discardableResult
    public func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        lock.lock()
        defer { lock.unlock() }
        let ticket = AIOTicket(raw: nextTicket)
        nextTicket += 1
        let entry = LogEntry(operation: aio.operation, offset: aio.offset, length: aio.length, ticket: ticket)
        submittedLog.append(entry)
        let now = monotonicNanoseconds()
        var item = Item(entry: entry, aio: aio, completion: completion, forcedResult: nil, due: now,
                        sequence: nextSequence)
        nextSequence += 1
        if closed {
            item.forcedResult = EBADF
            scheduleLocked(item)
            return ticket
        }
        switch takeRuleLocked(for: aio) {
        case .fail(let e)?:
            item.forcedResult = e
        case .delay(let ns)?:
            item.due = now &+ ns
        case .hold?:
            heldItems.append(item)
            heldChanged.broadcast()
            return ticket
        case nil:
            break
        }
        scheduleLocked(item)
        return ticket
    }

    public func cancel(_ ticket: AIOTicket) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if cancelRefused { return false }
        if let i = heldItems.firstIndex(where: { $0.entry.ticket == ticket }) {
            var item = heldItems.remove(at: i)
            item.forcedResult = ECANCELED
            item.due = 0
            cancelledLog.append(item.entry)
            scheduleLocked(item)
            return true
        }
        if let i = scheduled.firstIndex(where: { $0.entry.ticket == ticket }), scheduled[i].forcedResult == nil {
            var item = scheduled.remove(at: i)
            item.forcedResult = ECANCELED
            item.due = 0
            cancelledLog.append(item.entry)
            scheduleLocked(item)
            return true
        }
        return false
    }

    /// Waits for the AIOs that complete on the background thread (ordinary,
    /// delayed, cancelled). Held AIOs are not waited for: only the test can
    /// release them.
    public func drainAndSync() {
        lock.lock()
        while !scheduled.isEmpty || running > 0 { drained.wait(lock) }
        syncs += 1
        lock.unlock()
    }

    /// Marks the backend closed (later submits fail with EBADF) and waits for
    /// the background thread's work. Held AIOs stay held until released.
    public func close() {
        lock.lock()
        closed = true
        while !scheduled.isEmpty || running > 0 { drained.wait(lock) }
        lock.unlock()
    }

    // MARK: Internals

    private func takeRuleLocked(for aio: AIO) -> Rule.Action? {
        for id in ruleOrder {
            guard var rule = rules[id], rule.remaining.map({ $0 > 0 }) ?? true, rule.matches(aio) else { continue }
            if let n = rule.remaining {
                rule.remaining = n - 1
                rules[id] = rule
            }
            return rule.action
        }
        return nil
    }

    private func scheduleLocked(_ item: Item) {
        // Keep `scheduled` sorted by (due, sequence); most items go at the end.
        var i = scheduled.count
        while i > 0 && (scheduled[i - 1].due, scheduled[i - 1].sequence) > (item.due, item.sequence) { i -= 1 }
        scheduled.insert(item, at: i)
        if threadRunning {
            lock.signal()
        } else {
            threadRunning = true
            startThread()
        }
    }

    private func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { context in
            let backend = Unmanaged<TestBackend>.fromOpaque(context!).takeRetainedValue()
            backend.runScheduled()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    /// The background thread: runs scheduled items when due; exits when none
    /// is left (it is started again by the next one).
    private func runScheduled() {
        lock.lock()
        while let first = scheduled.first {
            let now = monotonicNanoseconds()
            if first.due > now {
                _ = lock.wait(untilMonotonicNanoseconds: first.due)
                continue
            }
            let item = scheduled.removeFirst()
            running += 1
            lock.unlock()
            finish(item, forcing: item.forcedResult)
            lock.lock()
            running -= 1
        }
        threadRunning = false
        drained.broadcast()
        lock.unlock()
    }

    /// Performs (or fails) an item, logs and delivers its completion. Called
    /// without the lock.
    private func finish(_ item: Item, forcing forced: Int32?) {
        let result: Int32 = lock.withLock {
            let r = forced ?? performLocked(item.aio)
            completionLog.append(Completion(entry: item.entry, errno: r))
            return r
        }
        item.completion(result)
    }

    private func performLocked(_ aio: AIO) -> Int32 {
        let modifies = aio.operation != .read && aio.operation != .flush
        if modifies && isReadOnly { return EBADF }
        if aio.operation == .flush { return 0 }
        let end = aio.offset.addingReportingOverflow(aio.length)
        guard !end.overflow, end.partialValue <= size else { return EINVAL }
        let start = Int(aio.offset)
        switch aio.operation {
        case .read, .write:
            guard aio.iov.reduce(0, { $0 + UInt64($1.length) }) == aio.length else { return EINVAL }
            var position = start
            data.withUnsafeMutableBytes { image in
                for v in aio.iov where v.length > 0 {
                    if aio.operation == .read {
                        v.base.copyMemory(from: image.baseAddress! + position, byteCount: v.length)
                    } else {
                        (image.baseAddress! + position).copyMemory(from: v.base, byteCount: v.length)
                    }
                    position += v.length
                }
            }
        case .writeZeroes, .discard:
            if aio.length > 0 {
                data.withUnsafeMutableBytes { image in
                    _ = memset(image.baseAddress! + start, 0, Int(aio.length))
                }
            }
        case .flush:
            break
        }
        return 0
    }
}

extension Condition {
    /// Waits for a signal or until the monotonic deadline; false on timeout.
    func wait(_ lock: ConditionLock, untilMonotonicNanoseconds deadline: UInt64) -> Bool {
        lock.timedWait(on: self, deadline: deadline)
    }
}
