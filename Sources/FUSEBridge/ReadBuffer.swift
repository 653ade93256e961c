import BlockIO
import NVMeHost

/// A FUSE worker thread's buffer for reads answered in the worker itself.
///
/// A read of `namespaces/N/data` is answered before the FUSE callback
/// returns, so one buffer per worker thread serves every such read: no
/// `ReadRequest` object, no pool lock, no reply gate (the session outlives
/// its workers' callbacks). The buffer keeps its mapping into the built-in
/// host's address space from one read to the next, as the write payload's
/// mapping does (`WriteMapping`).
///
/// When the host gives up a command while its backend I/O may still write
/// into the buffer, the buffer is detached (`detach()`): the thread forgets
/// it and takes a new one on its next read, and the host frees the old one
/// once that I/O has ended.
public final class ReadBuffer {
    /// Larger reads (the kernel sends at most 1 MiB by default) go through
    /// `ReadRequest` and the reply buffer pool instead.
    public static let largestKept = 4 << 20

    /// `detach`, as the host's parking callback (made once: a closure
    /// formed per read would be allocated per read).
    public private(set) lazy var parking: BufferParking = { [unowned self] in self.detach() }

    private var pointer: UnsafeMutableRawPointer?
    private var capacity = 0
    private var mapping: MappedBuffer?

    /// At least `size` bytes (4 KiB aligned), valid until the next call on
    /// this thread, and the buffer's mapping in `host`'s address space (nil:
    /// the host maps it for the one command). `size` must not exceed
    /// `largestKept`.
    public func take(_ size: Int, host: BuiltinHost) -> (buffer: UnsafeMutableRawBufferPointer, mapping: MappedBuffer?) {
        if pointer == nil || capacity < size {
            release()
            var c = 4096
            while c < size { c <<= 1 }
            pointer = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 4096)
            capacity = c
        }
        let p = pointer!
        if mapping?.isMapped != true || !host.uses(mapping!) {
            mapping?.unmap()
            mapping = host.mapBuffer(p, count: capacity)
        }
        return (UnsafeMutableRawBufferPointer(start: p, count: size), mapping)
    }

    /// Hands the buffer to the host (a command on it was given up; the host
    /// has removed its mapping): the returned closure frees it, and is
    /// called once no backend I/O can write into it. The thread takes a new
    /// buffer on its next read.
    func detach() -> @Sendable () -> Void {
        let address = UInt(bitPattern: pointer)
        let detached = mapping
        pointer = nil
        capacity = 0
        mapping = nil
        return {
            // Memory still mapped must never be freed (see
            // `ReadRequest.parkBuffer`): it is kept for good instead.
            guard detached?.isMapped != true, let p = UnsafeMutableRawPointer(bitPattern: address) else { return }
            p.deallocate()
        }
    }

    private func release() {
        mapping?.unmap()
        mapping = nil
        pointer?.deallocate()
        pointer = nil
        capacity = 0
    }

    deinit { release() }

    private static let perThread = ThreadLocalObject { ReadBuffer() }

    /// The calling thread's read buffer (made on first use, freed with the
    /// thread).
    static func forThread() -> ReadBuffer { perThread.value }
}
