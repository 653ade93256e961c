import Glibc

/// Page-aligned, zero-filled anonymous memory (mmap) owned by this object and
/// unmapped on deinit. Backs `mem`, the built-in host's region and the CMB.
/// Pages are only committed when touched.
public final class AnonymousMemory: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    /// The size asked for; the mapping is rounded up to whole pages.
    public let size: Int
    private let mappedSize: Int

    /// - Throws: `HostMemoryError` (`.zeroLength` for size <= 0,
    ///   `.allocationFailed` if mmap fails).
    public init(size: Int) throws {
        guard size > 0 else { throw HostMemoryError(.zeroLength, "anonymous memory: size \(size)") }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let (rounded, overflow) = size.addingReportingOverflow(page - 1)
        guard !overflow else { throw HostMemoryError(.allocationFailed, "anonymous memory: size \(size) too large") }
        let length = rounded / page * page
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw HostMemoryError(.allocationFailed, "anonymous memory: mmap of \(length) bytes failed, errno \(errno)")
        }
        pointer = p
        self.size = size
        mappedSize = length
    }

    /// The memory as a buffer of `size` bytes.
    public var buffer: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pointer, count: size)
    }

    deinit {
        munmap(pointer, mappedSize)
    }
}
