import Glibc

/// One object of type `T` per thread: made by `make` on the thread's first
/// use and released when the thread ends (a pthread key). The hot paths keep
/// per-thread state here so as not to share a lock or a cache line between
/// threads (effects buffers, waiting batches, mapped write buffers, a copy
/// of the namespace table).
public final class ThreadLocalObject<T: AnyObject>: @unchecked Sendable {
    private let key: pthread_key_t
    private let make: @Sendable () -> T

    public init(_ make: @escaping @Sendable () -> T) {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k) { p in
            guard let p else { return }
            Unmanaged<AnyObject>.fromOpaque(p).release()
        }
        precondition(rc == 0, "pthread_key_create failed")
        key = k
        self.make = make
    }

    /// The calling thread's object.
    @inline(__always) public var value: T {
        if let p = pthread_getspecific(key) { return Unmanaged<T>.fromOpaque(p).takeUnretainedValue() }
        let object = make()
        // Released as AnyObject by the key's destructor: the same pointer.
        pthread_setspecific(key, Unmanaged<T>.passRetained(object).toOpaque())
        return object
    }
}
