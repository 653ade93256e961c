import Synchronization

/// A little-endian dword of host memory that the host and the controller
/// both touch without a common lock: the shadow doorbell and EventIdx
/// entries (NVMe 1.4 §7.13). Accesses are sequentially consistent atomics,
/// so a store on one side followed by a load of the other dword orders as
/// the shadow doorbell protocol needs (each side writes its own value,
/// then reads the other's).
public struct SharedDword: @unchecked Sendable {
    let atomic: UnsafeMutablePointer<Atomic<UInt32>>

    /// `pointer` is 4-byte aligned host memory that stays mapped while used.
    public init(_ pointer: UnsafeMutableRawPointer) {
        atomic = pointer.assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    @inline(__always) public func load() -> UInt32 {
        UInt32(littleEndian: atomic.pointee.load(ordering: .sequentiallyConsistent))
    }

    @inline(__always) public func store(_ value: UInt32) {
        atomic.pointee.store(value.littleEndian, ordering: .sequentiallyConsistent)
    }
}
