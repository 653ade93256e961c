import Glibc

/// Statistics of one backend's operations, per `AIOOperation`, with the
/// fields of QEMU's BlockAcctStats: completed operations and their bytes and
/// latency, failed operations, invalid operations (rejected before reaching
/// the backend), and the operations in flight. Thread-safe; the hot path
/// (`start` + `done`) costs two monotonic clock reads and two round trips of
/// the lock of the calling CPU's shard.
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

    /// The counters, one per `AIOOperation`, in one shard per CPU
    /// (`CPUShards`), each guarded by its own pthread mutex (which
    /// ThreadSanitizer sees) on cache lines of its own: threads on different
    /// CPUs account without sharing a line. A shard holds the mutex at offset
    /// 0 and the counters from `countersOffset`. An operation may start on
    /// one shard and end on another, so a shard's `inFlight` alone means
    /// nothing (it wraps); the sums are exact.
    private static let operationCount = AIOOperation.allCases.count
    private static let countersOffset = 64
    private static let shardBytes =
        (countersOffset + operationCount * MemoryLayout<OperationStats>.stride + 127) & ~127
    private let shards: Int
    private let storage: UnsafeMutableRawPointer

    public init() {
        shards = CPUShards.count
        storage = .allocate(byteCount: shards * Self.shardBytes, alignment: 128)
        for i in 0..<shards {
            let shard = storage + i * Self.shardBytes
            let rc = pthread_mutex_init(shard.bindMemory(to: pthread_mutex_t.self, capacity: 1), nil)
            precondition(rc == 0, "pthread_mutex_init failed")
            (shard + Self.countersOffset).bindMemory(to: OperationStats.self, capacity: Self.operationCount)
                .initialize(repeating: OperationStats(), count: Self.operationCount)
        }
    }

    deinit {
        for i in 0..<shards {
            pthread_mutex_destroy(mutex(i))
            counters(i).deinitialize(count: Self.operationCount)
        }
        storage.deallocate()
    }

    @inline(__always)
    private func mutex(_ shard: Int) -> UnsafeMutablePointer<pthread_mutex_t> {
        (storage + shard * Self.shardBytes).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    @inline(__always)
    private func counters(_ shard: Int) -> UnsafeMutablePointer<OperationStats> {
        (storage + shard * Self.shardBytes + Self.countersOffset).assumingMemoryBound(to: OperationStats.self)
    }

    /// Changes the counters of `operation` in the calling thread's shard.
    @inline(__always)
    private func update<R>(_ operation: AIOOperation, _ body: (inout OperationStats) -> R) -> R {
        let shard = CPUShards.current(shards)
        pthread_mutex_lock(mutex(shard))
        defer { pthread_mutex_unlock(mutex(shard)) }
        return body(&counters(shard)[operation.rawValue])
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

    /// The counters of one operation type, summed over the shards (each
    /// shard read consistently; an operation ending meanwhile may be seen in
    /// one shard and not the other).
    public func stats(for operation: AIOOperation) -> OperationStats {
        var sum = OperationStats()
        for shard in 0..<shards {
            pthread_mutex_lock(mutex(shard))
            let s = counters(shard)[operation.rawValue]
            pthread_mutex_unlock(mutex(shard))
            sum.ops &+= s.ops
            sum.bytes &+= s.bytes
            sum.failed &+= s.failed
            sum.invalid &+= s.invalid
            sum.totalLatencyNanoseconds &+= s.totalLatencyNanoseconds
            sum.maxLatencyNanoseconds = max(sum.maxLatencyNanoseconds, s.maxLatencyNanoseconds)
            sum.inFlight &+= s.inFlight
        }
        return sum
    }

    public func snapshot() -> Snapshot {
        Snapshot(operations: AIOOperation.allCases.map { stats(for: $0) })
    }

    /// Zeroes every counter except the operations in flight.
    public func reset() {
        for shard in 0..<shards {
            pthread_mutex_lock(mutex(shard))
            for operation in AIOOperation.allCases {
                let inFlight = counters(shard)[operation.rawValue].inFlight
                counters(shard)[operation.rawValue] = OperationStats()
                counters(shard)[operation.rawValue].inFlight = inFlight
            }
            pthread_mutex_unlock(mutex(shard))
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
