import Glibc

/// Read-write locks in shards, each a pthread read-write lock (which
/// ThreadSanitizer sees) on cache lines of its own: readers on different
/// shards write no common line. A reader takes one shard, a writer every
/// shard. The locks prefer writers, so a stream of readers cannot keep a
/// writer out; a reader must not take a second shard or write mode.
public final class ShardedReadWriteLock: @unchecked Sendable {
    /// `shards` locks, `stride` locks apart (128 bytes or more).
    private let locks: UnsafeMutablePointer<pthread_rwlock_t>
    private let stride: Int
    public let shards: Int

    public init(shards: Int) {
        precondition(shards >= 1, "a lock needs a shard")
        self.shards = shards
        let size = MemoryLayout<pthread_rwlock_t>.stride
        stride = (128 + size - 1) / size
        locks = .allocate(capacity: shards * stride)
        var attr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attr)
        pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        var rc: Int32 = 0
        for i in 0..<shards {
            (locks + i * stride).initialize(to: pthread_rwlock_t())
            rc |= pthread_rwlock_init(locks + i * stride, &attr)
        }
        pthread_rwlockattr_destroy(&attr)
        precondition(rc == 0, "pthread_rwlock_init failed")
    }

    deinit {
        for i in 0..<shards { pthread_rwlock_destroy(locks + i * stride) }
        locks.deallocate()
    }

    /// Read mode on shard `key % shards`; release with the same key.
    @inline(__always) public func readLock(_ key: Int) { pthread_rwlock_rdlock(locks + (key % shards) * stride) }
    @inline(__always) public func readUnlock(_ key: Int) { pthread_rwlock_unlock(locks + (key % shards) * stride) }

    /// Write mode: every shard, in order.
    @inline(__always) public func writeLock() {
        for i in 0..<shards { pthread_rwlock_wrlock(locks + i * stride) }
    }

    @inline(__always) public func writeUnlock() {
        for i in (0..<shards).reversed() { pthread_rwlock_unlock(locks + i * stride) }
    }
}

/// A lock with two modes: exclusive (one holder, nobody sharing) and shared
/// (any number of holders, nobody exclusive).
///
/// Shared mode is taken on one shard of a `ShardedReadWriteLock` (the
/// controller shards by I/O queue), exclusive mode on all of them. Exclusive
/// holders first pass an adaptive pthread mutex, so that they queue among
/// themselves by spinning briefly, and only the one at the front waits for
/// the shared holders to leave. Shared mode is not recursive, and a shared
/// holder must never ask for exclusive mode.
public final class SharedExclusiveLock: @unchecked Sendable {
    private let exclusive = ConditionLock(adaptive: true)
    private let shared: ShardedReadWriteLock

    public init(shards: Int) {
        shared = ShardedReadWriteLock(shards: shards)
    }

    /// Exclusive mode.
    @inline(__always) public func lock() {
        exclusive.lock()
        shared.writeLock()
    }

    @inline(__always) public func unlock() {
        shared.writeUnlock()
        exclusive.unlock()
    }

    @inline(__always) public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }

    /// Shared mode, on shard `key % shards`; unlock with the same key.
    @inline(__always) public func lockShared(_ key: Int) { shared.readLock(key) }
    @inline(__always) public func unlockShared(_ key: Int) { shared.readUnlock(key) }
}
