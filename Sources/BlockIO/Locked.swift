import Glibc

/// A value guarded by a pthread mutex: the project's lock for shared state.
///
/// It replaces `Synchronization.Mutex`, whose futex-based lock
/// ThreadSanitizer cannot see on Linux (it reported every access under such
/// a lock as a race). The value and the mutex share one allocation; copies
/// of a `Locked` share that storage, as a `let` property of a class would.
/// `withLock` is inlinable, so that callers in other modules get a
/// specialised copy rather than a generic call per use (it is on the FUSE
/// read path).
public struct Locked<Value>: @unchecked Sendable {
    @usableFromInline let storage: LockedStorage<Value>

    @inlinable
    public init(_ value: Value) {
        storage = LockedStorage<Value>.make(value)
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeMutablePointers { value, mutex throws(E) -> R in
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value.pointee)
        }
    }
}

/// The storage of a `Locked`: the value as the header, the mutex as the one
/// tail element (an address that never moves, as pthreads requires).
@usableFromInline
final class LockedStorage<Value>: ManagedBuffer<Value, pthread_mutex_t> {
    @inlinable
    static func make(_ value: Value) -> LockedStorage<Value> {
        let buffer = create(minimumCapacity: 1) { _ in value }
        let storage = unsafeDowncast(buffer, to: LockedStorage<Value>.self)
        // All zeros is PTHREAD_MUTEX_INITIALIZER (a default mutex) in glibc:
        // no pthread_mutex_init call, as for a statically initialised one.
        storage.withUnsafeMutablePointerToElements { $0.initialize(to: pthread_mutex_t()) }
        return storage
    }

    @inlinable
    deinit {
        withUnsafeMutablePointerToElements { mutex in
            pthread_mutex_destroy(mutex)
            _ = mutex.deinitialize(count: 1)
        }
    }
}
