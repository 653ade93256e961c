import Glibc

/// A value guarded by a pthread mutex: the project's lock for shared state.
///
/// It replaces `Synchronization.Mutex`, whose futex-based lock
/// ThreadSanitizer cannot see on Linux (it reported every access under such
/// a lock as a race). The value and the mutex share one allocation; copies
/// of a `Locked` share that storage, as a `let` property of a class would.
public struct Locked<Value>: @unchecked Sendable {
    private let storage: LockedStorage<Value>

    public init(_ value: Value) {
        storage = LockedStorage<Value>.make(value)
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try storage.withLock(body)
    }
}

/// The storage of a `Locked`: the value as the header, the mutex as the one
/// tail element (an address that never moves, as pthreads requires).
final class LockedStorage<Value>: ManagedBuffer<Value, pthread_mutex_t> {
    static func make(_ value: Value) -> LockedStorage<Value> {
        let buffer = create(minimumCapacity: 1) { _ in value }
        let storage = unsafeDowncast(buffer, to: LockedStorage<Value>.self)
        storage.withUnsafeMutablePointerToElements { mutex in
            mutex.initialize(to: pthread_mutex_t())
            let rc = pthread_mutex_init(mutex, nil)
            precondition(rc == 0, "pthread_mutex_init failed")
        }
        return storage
    }

    deinit {
        withUnsafeMutablePointerToElements { mutex in
            pthread_mutex_destroy(mutex)
            _ = mutex.deinitialize(count: 1)
        }
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutablePointers { value, mutex throws(E) -> R in
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value.pointee)
        }
    }
}
