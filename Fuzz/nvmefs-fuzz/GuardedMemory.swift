import Glibc
import HostMemory

/// Host memory for the harnesses: two regions with a hole between them,
/// each between inaccessible guard pages, so that a DMA even one byte
/// outside a region faults (and libFuzzer keeps the input). Allocated once
/// per process and cleared for every input.
final class GuardedMemory: @unchecked Sendable {
    struct Region { let base: UInt64; let length: Int; let pointer: UnsafeMutableRawPointer }
    static let guardSize = 64 << 10
    let regions: [Region]

    /// Regions at the given host addresses and lengths (multiples of 4 KiB).
    init(_ layout: [(base: UInt64, length: Int)]) {
        regions = layout.map { base, length in
            let total = length + 2 * Self.guardSize
            guard let raw = mmap(nil, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
                fatalError("mmap of \(total) bytes failed")
            }
            let pointer = raw + Self.guardSize
            guard mprotect(pointer, length, PROT_READ | PROT_WRITE) == 0 else { fatalError("mprotect failed") }
            return Region(base: base, length: length, pointer: pointer)
        }
    }

    /// A fresh address space over the regions, cleared.
    func makeSpace() -> HostAddressSpace {
        let space = HostAddressSpace()
        for (i, r) in regions.enumerated() {
            memset(r.pointer, 0, r.length)
            do {
                _ = try space.map(base: r.base, length: r.length, pointer: r.pointer, name: "mem\(i)", kind: .userMemory)
            } catch {
                fatalError("mapping the fuzz memory: \(error)")
            }
        }
        return space
    }

    /// Whether [pointer, pointer + length) lies inside one region.
    func contains(_ pointer: UnsafeMutableRawPointer, length: Int) -> Bool {
        regions.contains { r in pointer >= r.pointer && pointer + length <= r.pointer + r.length }
    }

    /// Writes bytes at a host address; false when not inside a region.
    @discardableResult
    func write(_ address: UInt64, _ bytes: [UInt8]) -> Bool {
        guard let r = region(address, bytes.count) else { return false }
        bytes.withUnsafeBytes { (r.pointer + Int(address - r.base)).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return true
    }

    func write64(_ address: UInt64, _ value: UInt64) {
        write(address, (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    /// Reads bytes at a host address; nil when not inside a region.
    func read(_ address: UInt64, _ count: Int) -> [UInt8]? {
        guard let r = region(address, count) else { return nil }
        return Array(UnsafeRawBufferPointer(start: r.pointer + Int(address - r.base), count: count))
    }

    /// The region holding [address, address + count), if one does.
    private func region(_ address: UInt64, _ count: Int) -> Region? {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow else { return nil }
        return regions.first { address >= $0.base && end <= $0.base + UInt64($0.length) }
    }
}
