import Glibc

/// A lock with two modes, both pthread primitives ThreadSanitizer sees:
/// exclusive (one holder, nobody sharing) and shared (any number of holders,
/// nobody exclusive).
///
/// Exclusive holders first pass an adaptive mutex, so that they queue among
/// themselves by spinning briefly as before, and only the one at the front
/// waits on the read-write lock for the shared holders to leave. The
/// read-write lock prefers writers: a stream of shared holders cannot keep
/// an exclusive one out. Shared mode is not recursive, and a shared holder
/// must never ask for exclusive mode.
public final class SharedExclusiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        mutex = .allocate(capacity: 1)
        rwlock = .allocate(capacity: 1)
        var mattr = pthread_mutexattr_t()
        pthread_mutexattr_init(&mattr)
        pthread_mutexattr_settype(&mattr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        let rcm = pthread_mutex_init(mutex, &mattr)
        pthread_mutexattr_destroy(&mattr)
        var rattr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&rattr)
        pthread_rwlockattr_setkind_np(&rattr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        let rcr = pthread_rwlock_init(rwlock, &rattr)
        pthread_rwlockattr_destroy(&rattr)
        precondition(rcm == 0 && rcr == 0, "pthread init failed")
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        pthread_mutex_destroy(mutex)
        rwlock.deallocate()
        mutex.deallocate()
    }

    /// Exclusive mode.
    @inline(__always) public func lock() {
        pthread_mutex_lock(mutex)
        pthread_rwlock_wrlock(rwlock)
    }

    @inline(__always) public func unlock() {
        pthread_rwlock_unlock(rwlock)
        pthread_mutex_unlock(mutex)
    }

    @inline(__always) public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }

    /// Shared mode.
    @inline(__always) public func lockShared() { pthread_rwlock_rdlock(rwlock) }
    @inline(__always) public func unlockShared() { pthread_rwlock_unlock(rwlock) }
}
