import BlockIO

/// Per-thread count of the `locked` frames each controller has on the
/// thread's stack. Only the outermost frame runs effects; the count lets a
/// nested frame (an interrupt handler's doorbell write, a backend completing
/// inside `submit`) see that an outer frame will run its effects instead.
enum EffectsNesting {
    /// The frames of one thread: (controller, depth), usually zero or one entry.
    final class Frames {
        var entries: [(controller: ObjectIdentifier, depth: Int)] = []
        /// An empty effects buffer with capacity, swapped with a controller's
        /// queued effects by `runEffects`: taking a batch allocates nothing.
        var spareEffects: [NVMeController.Effect] = []
        /// Effects queued by nested frames of `handedTo`, for its outermost
        /// frame on this thread to run without taking the lock again.
        var handed: [NVMeController.Effect] = []
        var handedTo: ObjectIdentifier?
    }

    private static let perThread = ThreadLocalObject { Frames() }

    @inline(__always) static func frames() -> Frames { perThread.value }

    /// Enters a frame of `controller` on this thread; returns the new depth (1 = outermost).
    @inline(__always) static func enter(_ controller: AnyObject, _ f: Frames) -> Int {
        let id = ObjectIdentifier(controller)
        if let i = f.entries.firstIndex(where: { $0.controller == id }) {
            f.entries[i].depth += 1
            return f.entries[i].depth
        }
        f.entries.append((id, 1))
        return 1
    }

    /// Leaves the innermost frame of `controller` on this thread.
    @inline(__always) static func leave(_ controller: AnyObject, _ f: Frames) {
        let id = ObjectIdentifier(controller)
        guard let i = f.entries.firstIndex(where: { $0.controller == id }) else { return }
        f.entries[i].depth -= 1
        if f.entries[i].depth == 0 { f.entries.remove(at: i) }
    }
}
