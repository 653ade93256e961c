import NVMeHost
import BlockIO

/// Reusable, 4 KiB-aligned reply buffers for zero-copy reads.
///
/// A fresh 1 MiB allocation per FUSE read is mmap'ed and unmapped by malloc,
/// and every page of it faults on first touch: in a profile of `dd bs=1M` on
/// `namespaces/N/data` that was a quarter of the daemon's CPU. Buffers are
/// kept per power-of-two size class (4 KiB ... 4 MiB), a bounded number each,
/// so memory stays bounded (at most `perClass` × the classes in use).
/// A pooled buffer may carry its mapping into the built-in host's address
/// space (`MappedBuffer`, made by the data files), kept while it is pooled
/// and removed before its memory is freed.
final class ReplyBufferPool: Sendable {
    static let minimumClass = 12, maximumClass = 22
    let perClass: Int
    private struct Entry: @unchecked Sendable {
        var address: UInt
        var mapping: MappedBuffer?
    }
    private let free = Locked<[[Entry]]>(Array(repeating: [], count: maximumClass - minimumClass + 1))

    init(perClass: Int = 32) { self.perClass = perClass }

    /// The size class (log2 of the buffer size) for `size` bytes, or nil when too large to pool.
    static func sizeClass(_ size: Int) -> Int? {
        var c = minimumClass
        while (1 << c) < size { c += 1 }
        return c <= maximumClass ? c : nil
    }

    /// A buffer of at least `size` bytes and the mapping it was given back
    /// with; give it back with `release(_:size:mapping:)`.
    func take(_ size: Int) -> (pointer: UnsafeMutableRawPointer, mapping: MappedBuffer?) {
        guard let c = Self.sizeClass(size) else {
            return (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096), nil)
        }
        if let e = free.withLock({ $0[c - Self.minimumClass].popLast() }), let p = UnsafeMutableRawPointer(bitPattern: e.address) {
            return (p, e.mapping)
        }
        return (UnsafeMutableRawPointer.allocate(byteCount: 1 << c, alignment: 4096), nil)
    }

    func release(_ pointer: UnsafeMutableRawPointer, size: Int, mapping: MappedBuffer? = nil) {
        guard let c = Self.sizeClass(size) else {
            mapping?.unmap()
            pointer.deallocate()
            return
        }
        let entry = Entry(address: UInt(bitPattern: pointer), mapping: mapping?.isMapped == true ? mapping : nil)
        let kept = free.withLock { lists -> Bool in
            guard lists[c - Self.minimumClass].count < perClass else { return false }
            lists[c - Self.minimumClass].append(entry)
            return true
        }
        if !kept {
            mapping?.unmap()
            pointer.deallocate()
        }
    }

    deinit {
        free.withLock { lists in
            for list in lists {
                for e in list {
                    e.mapping?.unmap()
                    UnsafeMutableRawPointer(bitPattern: e.address)?.deallocate()
                }
            }
        }
    }
}
