
/// Statistics of one backend's operations, per `AIOOperation`, with the
/// fields of QEMU's BlockAcctStats: completed operations and their bytes and
/// latency, failed operations, invalid operations (rejected before reaching
/// the backend), and the operations in flight. Thread-safe; the hot path
/// (`start` + `done`) costs two monotonic clock reads and two lock round
/// trips.
public final class BlockAccounting: @unchecked Sendable {
    /// The counters of one operation type.
    public struct OperationStats: Sendable, Hashable {
        /// Operations completed successfully.
        public var ops: UInt64 = 0
        /// Bytes of the operations completed successfully.
        public var bytes: UInt64 = 0
        /// Operations that reached the backend and failed.
        public var failed: UInt64 = 0
        /// Operations rejected before submission.
        public var invalid: UInt64 = 0
        /// Sum of the latencies of the successful operations.
        public var totalLatencyNanoseconds: UInt64 = 0
        /// Largest latency of a successful operation.
        public var maxLatencyNanoseconds: UInt64 = 0
        /// Started and neither done nor failed.
        public var inFlight: UInt64 = 0
        public init() {}
    }

    /// A consistent-per-operation copy of the counters.
    public struct Snapshot: Sendable, Hashable {
        public var operations: [OperationStats]
        public init(operations: [OperationStats]) { self.operations = operations }
        public subscript(_ operation: AIOOperation) -> OperationStats { operations[operation.rawValue] }
    }

    /// The counters, one per `AIOOperation`, guarded by `lock` (a pthread
    /// mutex, which ThreadSanitizer sees). Inline storage: no object per
    /// operation type to retain on the hot path.
    private let lock = ConditionLock()
    private let counters: UnsafeMutablePointer<OperationStats>

    public init() {
        counters = .allocate(capacity: AIOOperation.allCases.count)
        counters.initialize(repeating: OperationStats(), count: AIOOperation.allCases.count)
    }

    deinit {
        counters.deinitialize(count: AIOOperation.allCases.count)
        counters.deallocate()
    }

    @inline(__always)
    private func update<R>(_ operation: AIOOperation, _ body: (inout OperationStats) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&counters[operation.rawValue])
    }

    /// Records the start of an operation of `bytes` bytes.
    /// - Returns: the cookie to pass to `done` or `failed`.
    @inline(__always)
    public func start(_ operation: AIOOperation, bytes: UInt64) -> AccountingCookie {
        update(operation) { $0.inFlight &+= 1 }
        return AccountingCookie(operation: operation, bytes: bytes, startNanoseconds: monotonicNanoseconds())
    }

    /// Records the successful end of a started operation.
    @inline(__always)
    public func done(_ cookie: AccountingCookie) {
        let now = monotonicNanoseconds()
        let latency = now >= cookie.startNanoseconds ? now - cookie.startNanoseconds : 0
        update(cookie.operation) { s in
            s.inFlight &-= 1
            s.ops &+= 1
            s.bytes &+= cookie.bytes
            s.totalLatencyNanoseconds &+= latency
            if latency > s.maxLatencyNanoseconds { s.maxLatencyNanoseconds = latency }
        }
    }

    /// Records the failed end of a started operation (QEMU counts neither its
    /// bytes nor its latency).
    public func failed(_ cookie: AccountingCookie) {
        update(cookie.operation) { s in
            s.inFlight &-= 1
            s.failed &+= 1
        }
    }

    /// Records an operation rejected before it reached the backend.
    public func invalid(_ operation: AIOOperation) {
        update(operation) { $0.invalid &+= 1 }
    }

    /// The counters of one operation type.
    public func stats(for operation: AIOOperation) -> OperationStats {
        update(operation) { $0 }
    }

    public func snapshot() -> Snapshot {
        Snapshot(operations: AIOOperation.allCases.map { stats(for: $0) })
    }

    /// Zeroes every counter except the operations in flight.
    public func reset() {
        for operation in AIOOperation.allCases {
            update(operation) { s in
                let inFlight = s.inFlight
                s = OperationStats()
                s.inFlight = inFlight
            }
        }
    }
}

/// Returned by `BlockAccounting.start`: what is needed to account the end.
public struct AccountingCookie: Sendable, Hashable {
    public var operation: AIOOperation
    public var bytes: UInt64
    public var startNanoseconds: UInt64
    public init(operation: AIOOperation, bytes: UInt64, startNanoseconds: UInt64) {
        self.operation = operation; self.bytes = bytes; self.startNanoseconds = startNanoseconds
    }
}
