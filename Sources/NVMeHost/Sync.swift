import BlockIO
import Glibc

// Locks and conditions: BlockIO's `ConditionLock` and `Condition`.

@inline(__always) func monotonicNow() -> UInt64 { monotonicNanoseconds() }

/// A deadline `duration` from now; `.max` for an effectively unbounded one.
func deadline(after duration: Duration) -> UInt64 {
    deadline(afterNanoseconds: nanoseconds(duration))
}

@inline(__always) func deadline(afterNanoseconds ns: UInt64) -> UInt64 {
    let (d, overflow) = monotonicNow().addingReportingOverflow(ns)
    return overflow ? .max : d
}

/// Sleeps for `nanoseconds` (polling loops of the bring-up).
func sleepNanoseconds(_ nanoseconds: UInt64) {
    var ts = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var rest = timespec()
    while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached pthread running `body` (recovery runs on its own thread,
/// never on the thread that reported the problem).
func spawnDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    defer { pthread_attr_destroy(&attr) }
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    if rc != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return false
    }
    return true
}
