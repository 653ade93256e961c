import BlockIO
import NVMeHost

/// The host mapping of a FUSE worker thread's write payloads.
///
/// libfuse reads every request of a worker thread into that worker's one
/// receive buffer, kept for the worker's life, so a `write` payload starts
/// at the same address from one request to the next. Each thread keeps the
/// mapping of the largest payload it wrote from that address and hands it
/// to the host, which then maps and removes no region per write (two
/// exclusive address-space locks, which every other thread's DMA waits for).
///
/// A mapping is only a translation from host addresses to this process's
/// memory; the host uses it for the payload in hand, which is valid memory.
/// It is removed when the thread ends, when the payload moves, or by the
/// host itself when a command on it is given up.
final class WriteMapping {
    private var mapping: MappedBuffer?

    /// This thread's mapping of `data`, made or widened if needed; nil if no
    /// host address range is free (the host then maps for the one command).
    func covering(_ data: UnsafeRawBufferPointer, host: BuiltinHost) -> MappedBuffer? {
        guard let base = data.baseAddress, data.count > 0 else { return nil }
        let pointer = UnsafeMutableRawPointer(mutating: base)
        if let m = mapping, m.isMapped, host.uses(m), m.pointer == pointer, m.count >= data.count { return m }
        mapping?.unmap()
        mapping = host.mapBuffer(pointer, count: data.count)
        return mapping
    }

    deinit { mapping?.unmap() }

    private static let perThread = ThreadLocalObject { WriteMapping() }

    /// The calling thread's mapping holder (made on first use, released
    /// with the thread).
    static func forThread() -> WriteMapping { perThread.value }
}
