import Glibc

/// A pthread mutex with one condition variable, for threads that may block
/// (backend workers, FUSE workers, the built-in host) — never Swift
/// concurrency's cooperative pool.
public final class ConditionLock: @unchecked Sendable {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    /// `adaptive`: a contended `lock()` spins a little before it sleeps
    /// (PTHREAD_MUTEX_ADAPTIVE_NP), for a lock held for short sections by
    /// threads running on other CPUs.
    public init(adaptive: Bool = false) {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        var mattr = pthread_mutexattr_t()
        pthread_mutexattr_init(&mattr)
        if adaptive { pthread_mutexattr_settype(&mattr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP)) }
        let rcm = pthread_mutex_init(mutex, &mattr)
        pthread_mutexattr_destroy(&mattr)
        // Timed waits measure CLOCK_MONOTONIC, like every clock in BlockIO.
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        let rcc = pthread_cond_init(condition, &attr)
        pthread_condattr_destroy(&attr)
        precondition(rcm == 0 && rcc == 0, "pthread init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always) public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }

    /// Waits for a signal; the caller holds the lock.
    @inline(__always) public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a signal or until the monotonic deadline; false on timeout.
    /// The caller holds the lock.
    public func wait(untilMonotonicNanoseconds deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &ts) != ETIMEDOUT
    }

    @inline(__always) public func signal() { pthread_cond_signal(condition) }
    @inline(__always) public func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits on `other` (with this lock held) until the monotonic deadline;
    /// false on timeout.
    public func timedWait(on other: Condition, deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(other.condition, mutex, &ts) != ETIMEDOUT
    }
}

/// A further condition variable used with a `ConditionLock`'s mutex.
public final class Condition: @unchecked Sendable {
    fileprivate let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        condition = .allocate(capacity: 1)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        let rc = pthread_cond_init(condition, &attr)
        pthread_condattr_destroy(&attr)
        precondition(rc == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Waits for a signal; the caller holds `lock`.
    @inline(__always) public func wait(_ lock: ConditionLock) { pthread_cond_wait(condition, lock.mutex) }

    /// Waits for a signal or the monotonic deadline in nanoseconds (`.max`:
    /// no deadline); false on timeout. The caller holds `lock`.
    public func wait(_ lock: ConditionLock, deadline: UInt64) -> Bool {
        if deadline == .max { wait(lock); return true }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, lock.mutex, &ts) != ETIMEDOUT
    }
    @inline(__always) public func signal() { pthread_cond_signal(condition) }
    @inline(__always) public func broadcast() { pthread_cond_broadcast(condition) }
}
