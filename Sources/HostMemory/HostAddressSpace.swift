import Glibc
import BlockIO
import NVMeSpec
import Synchronization  // Atomic

/// Identifies one mapped region for `unmap`.
public struct RegionID: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }
    public var description: String { "region#\(raw)" }
}

/// What a region holds (CONTRACT §1, host address space).
public enum RegionKind: Sendable, Hashable {
    /// `mem`: user host memory at addresses 0 ..< memsize.
    case userMemory
    /// The built-in host's private region (its queues and bounce buffers).
    case hostPrivate
    /// Memory mapped for the duration of one command (a FUSE request buffer).
    case temporary
    /// The Controller Memory Buffer.
    case controllerMemoryBuffer
}

/// A public description of one region.
public struct RegionInfo: Sendable, Hashable {
    public var id: RegionID
    /// First address of the region.
    public var base: UInt64
    /// Length in bytes (> 0).
    public var length: Int
    public var name: String
    public var kind: RegionKind
    /// One past the last address.
    public var end: UInt64 { base + UInt64(length) }

    public init(id: RegionID, base: UInt64, length: Int, name: String, kind: RegionKind) {
        self.id = id; self.base = base; self.length = length; self.name = name; self.kind = kind
    }
}

/// Why a region could not be mapped (or memory allocated).
public struct HostMemoryError: Error, CustomStringConvertible, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The new region intersects an existing one.
        case overlap
        /// Length zero (or negative).
        case zeroLength
        /// `base + length` does not fit in 64 bits.
        case addressOverflow
        /// No free address range (mapAnywhere) or mmap failed.
        case allocationFailed
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// One mapped region as stored in the table.
@usableFromInline
struct Region {
    var base: UInt64
    /// Exclusive end; never overflows (`map` refuses that).
    var end: UInt64
    var pointer: UnsafeMutableRawPointer
    var id: RegionID
    var name: String
    var kind: RegionKind
    /// Long-lived DMA users (AIOs in flight) of this region.
    var users: RegionUsers

    var info: RegionInfo {
        RegionInfo(id: id, base: base, length: Int(end - base), name: name, kind: kind)
    }
}

/// The address space the controller DMAs to and from (CONTRACT §1): a set of
/// non-overlapping regions, each backed by daemon memory. Any access that is
/// not entirely backed fails without touching memory.
///
/// Thread-safe. The region table is a small array sorted by base address,
/// guarded by a reader-writer lock sharded by CPU (`ShardedReadWriteLock`,
/// `CPUShards`): lookups (every command, every PRP entry) take the read side
/// of their CPU's shard, so lookups on different CPUs share no cache line;
/// map/unmap take the write side of every shard, briefly. The lock prefers
/// writers, so a stream of lookups cannot starve map/unmap (no recursive
/// read locking here). Pointers handed out stay valid only while the region
/// that contains them stays mapped; keeping it mapped is the caller's job.
public final class HostAddressSpace: @unchecked Sendable {
    private let lock = ShardedReadWriteLock(shards: CPUShards.count)
    /// Sorted by `base`. Reached through a pointer so that reads from several
    /// threads under the read lock are plain loads.
    private let table: UnsafeMutablePointer<[Region]>
    private var nextID: UInt64 = 1 // guarded by the write lock
    private let barrierLock = ConditionLock()
    private var barriers: [@Sendable () -> Void] = []  // barrierLock

    /// Where bit bucket data (SGL, controller → host) lands; never read.
    let discard: UnsafeMutableRawPointer
    static let discardSize = 128 * 1024

    public init() {
        table = .allocate(capacity: 1)
        table.initialize(to: [])
        table.pointee.reserveCapacity(16)
        discard = .allocate(byteCount: Self.discardSize, alignment: 4096)
    }

    deinit {
        table.deinitialize(count: 1)
        table.deallocate()
        discard.deallocate()
    }

    // MARK: Locking

    @inline(__always)
    func withLookup<R>(_ body: (RegionLookup) -> R) -> R {
        let shard = CPUShards.current(lock.shards)
        lock.readLock(shard)
        defer { lock.readUnlock(shard) }
        return table.pointee.withUnsafeBufferPointer { regions in
            body(RegionLookup(regions: regions, discard: discard))
        }
    }

    @inline(__always)
    private func withWriteLock<R, E: Error>(_ body: (inout [Region]) throws(E) -> R) throws(E) -> R {
        lock.writeLock()
        defer { lock.writeUnlock() }
        return try body(&table.pointee)
    }

    // MARK: Mapping

    /// Maps `length` bytes at `pointer` as host addresses `base ..< base+length`.
    /// - Throws: `HostMemoryError` on zero length, 64-bit overflow of the end,
    ///   or overlap with an existing region.
    @discardableResult
    public func map(base: UInt64, length: Int, pointer: UnsafeMutableRawPointer, name: String,
                    kind: RegionKind) throws(HostMemoryError) -> RegionID {
        let end = try Self.checkedEnd(base: base, length: length, name: name)
        return try withWriteLock { (regions: inout [Region]) throws(HostMemoryError) -> RegionID in
            let index = Self.insertionIndex(regions, base)
            if index > 0, regions[index - 1].end > base {
                throw Self.overlap(name, base, end, regions[index - 1])
            }
            if index < regions.count, regions[index].base < end {
                throw Self.overlap(name, base, end, regions[index])
            }
            let id = RegionID(raw: nextID)
            nextID += 1
            regions.insert(Region(base: base, end: end, pointer: pointer, id: id, name: name, kind: kind,
                                  users: RegionUsers()),
                           at: index)
            return id
        }
    }

    /// Maps `length` bytes at the lowest free address at or above `above`
    /// aligned to `alignment`, atomically (no race between choosing the
    /// address and mapping it). For temporary regions.
    /// - Returns: the new region's description (its `base` is the chosen address).
    @discardableResult
    public func mapAnywhere(length: Int, pointer: UnsafeMutableRawPointer, name: String, kind: RegionKind,
                            above: UInt64 = 0, alignedTo alignment: UInt64 = 4096) throws(HostMemoryError)
        -> RegionInfo {
        guard length > 0 else { throw HostMemoryError(.zeroLength, "region \(name): length \(length)") }
        return try withWriteLock { (regions: inout [Region]) throws(HostMemoryError) -> RegionInfo in
            var candidate = Self.alignUp(above, alignment)
            var index = 0
            while true {
                guard let candidateBase = candidate,
                      case let (end, overflow) = candidateBase.addingReportingOverflow(UInt64(length)),
                      !overflow
                else { throw HostMemoryError(.allocationFailed, "region \(name): no free address range") }
                // Skip regions wholly below the candidate.
                while index < regions.count, regions[index].end <= candidateBase { index += 1 }
                if index == regions.count || regions[index].base >= end {
                    let id = RegionID(raw: nextID)
                    nextID += 1
                    let region = Region(base: candidateBase, end: end, pointer: pointer, id: id, name: name,
                                        kind: kind, users: RegionUsers())
                    regions.insert(region, at: index)
                    return region.info
                }
                candidate = Self.alignUp(regions[index].end, alignment)
            }
        }
    }

    /// Removes a region and waits until no DMA user can touch its memory any
    /// more (see `unmapWhenIdle`); unknown ids are ignored.
    public func unmap(_ id: RegionID) {
        unmapWhenIdle(id)?.wait()
    }

    /// Removes a region from lookups at once. Returns nil when its memory may
    /// be reused now, else the release to wait for (or be notified of): AIOs
    /// still in flight pinned the region (`pin`).
    ///
    /// Why this cannot race with a DMA user:
    /// - Short-lived users (the controller reading an entry or a PRP list,
    ///   writing a CQE) look a pointer up and use it within one critical
    ///   section of the controller. After removing the region this runs every
    ///   removal barrier (the controller registers one that takes and drops
    ///   its lock), so any user that found the region before its removal has
    ///   finished; later lookups cannot find it.
    /// - Long-lived users (backend AIOs) pin the regions of their buffers in
    ///   the same critical section that mapped them, under the table's read
    ///   lock; removal takes the write lock, so a pin either sees the region
    ///   (and the removal then sees the pin) or fails without touching memory.
    ///
    /// `barrier: false` skips the removal barriers, for a caller that knows
    /// no controller critical section can hold a pointer into the region:
    /// every command that used it has posted its completion (the handler
    /// that looked pointers up finished before that), as on the built-in
    /// host's I/O path (one region per FUSE request; the barrier takes the
    /// controller lock); or the caller is inside that critical section itself
    /// (the controller removing its CMB: the barrier would wait for itself).
    @discardableResult
    public func unmapWhenIdle(_ id: RegionID, barrier: Bool = true) -> RegionRelease? {
        let users: RegionUsers? = withWriteLock { (regions: inout [Region]) -> RegionUsers? in
            guard let i = regions.firstIndex(where: { $0.id == id }) else { return nil }
            return regions.remove(at: i).users
        }
        guard let users else { return nil }
        if barrier {
            for barrier in barrierLock.withLock({ barriers }) { barrier() }
        }
        return users.retire()
    }

    /// Registers a closure that returns once every critical section that may
    /// be using a pointer looked up before it was called has ended (the
    /// controller: take and drop its lock). Never call `unmap` inside one.
    public func addRemovalBarrier(_ barrier: @escaping @Sendable () -> Void) {
        barrierLock.withLock { barriers.append(barrier) }
    }

    /// Ends the pins of `pin` (the AIOs using its memory have finished).
    public func unpin(_ pin: consuming DMAPin) {
        var pin = pin
        pin.release()
    }

    /// True if `piece` lies in the discard buffer SGL bit buckets map to
    /// (shared by every command: its contents mean nothing).
    public func isDiscard(_ piece: IOVector) -> Bool {
        piece.base >= discard && piece.base < discard + Self.discardSize
    }

    // MARK: Lookup and access

    /// A pointer to `[address, address+length)` if it lies entirely inside one
    /// region, else nil (also nil on 64-bit overflow). `length` 0 asks about
    /// `address` alone.
    public func pointer(_ address: UInt64, length: Int) -> UnsafeMutableRawPointer? {
        withLookup { $0.pointer(address, length: length) }
    }

    /// Copies `buffer.count` bytes from host memory at `address`. The range may
    /// span adjacent regions; false (and nothing copied) if any byte is unbacked.
    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        withLookup { $0.read(address, into: buffer) }
    }

    /// Copies `buffer` into host memory at `address`. False (and nothing
    /// written) if any byte of the range is unbacked.
    public func write(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        withLookup { $0.write(address, from: buffer) }
    }

    /// Reads a little-endian quadword; nil if unbacked.
    public func readUInt64(_ address: UInt64) -> UInt64? {
        var value: UInt64 = 0
        let ok = withUnsafeMutableBytes(of: &value) { read(address, into: $0) }
        return ok ? UInt64(littleEndian: value) : nil
    }

    /// Writes a little-endian quadword; false if unbacked.
    public func writeUInt64(_ address: UInt64, _ value: UInt64) -> Bool {
        withUnsafeBytes(of: value.littleEndian) { write(address, from: $0) }
    }

    /// The region holding `address`, if any.
    public func region(containing address: UInt64) -> RegionInfo? {
        withLookup { lookup in lookup.index(containing: address).map { lookup.regions[$0].info } }
    }

    /// Every region, sorted by base address.
    public var regions: [RegionInfo] {
        withLookup { lookup in lookup.regions.map(\.info) }
    }

    /// How many regions were ever mapped (a data path that keeps its buffers
    /// mapped adds none per command).
    public var regionsMapped: UInt64 {
        withWriteLock { (_: inout [Region]) -> UInt64 in nextID - 1 }
    }

    /// The first address above every region, aligned up to `alignment`
    /// (0 or 1: no alignment). 0 when nothing is mapped.
    public func highestEnd(alignedTo alignment: UInt64) -> UInt64 {
        let end = withLookup { $0.regions.last?.end ?? 0 }
        return Self.alignUp(end, alignment) ?? end
    }

    // MARK: Helpers

    private static func checkedEnd(base: UInt64, length: Int, name: String) throws(HostMemoryError) -> UInt64 {
        guard length > 0 else { throw HostMemoryError(.zeroLength, "region \(name): length \(length)") }
        let (end, overflow) = base.addingReportingOverflow(UInt64(length))
        guard !overflow else {
            throw HostMemoryError(.addressOverflow, "region \(name): base \(hex(base)) + \(length) overflows")
        }
        return end
    }

    private static func overlap(_ name: String, _ base: UInt64, _ end: UInt64, _ other: Region) -> HostMemoryError {
        HostMemoryError(.overlap, "region \(name) [\(hex(base)), \(hex(end))) overlaps \(other.name) "
                                  + "[\(hex(other.base)), \(hex(other.end)))")
    }

    /// Index of the first region whose base is greater than `base`'s slot.
    private static func insertionIndex(_ regions: [Region], _ base: UInt64) -> Int {
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].base < base { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two or any
    /// positive value); nil on overflow.
    static func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64? {
        guard alignment > 1 else { return value }
        let rem = value % alignment
        if rem == 0 { return value }
        let (r, overflow) = value.addingReportingOverflow(alignment - rem)
        return overflow ? nil : r
    }
}

/// The regions an AIO's buffers lie in, pinned until `HostAddressSpace.unpin`.
public struct DMAPin: Sendable {
    /// Almost every command uses one region: kept inline, no allocation.
    fileprivate var regions = SmallList<RegionUsers>()

    /// An empty pin, to collect regions in (`PRPMapper.map(...pinning:...)`).
    public init() {}


    /// Leaves every pinned region; the pin is empty afterwards.
    mutating func release() {
        regions.removeAll { $0.leave() }
    }

    /// Pins the region of `users` unless it is the one pinned last (a
    /// command's pieces mostly lie in one region). Call under the table's
    /// read lock, where the region was found.
    @inline(__always)
    mutating func pin(_ users: RegionUsers) {
        if let last = regions.last, last === users { return }
        users.enter()
        regions.append(users)
    }

    /// How many regions are pinned.
    public var count: Int { regions.count }

    /// Takes over `other`'s pins (a command's data and metadata mappings).
    public mutating func absorb(_ other: DMAPin) {
        other.regions.forEachElement { regions.append($0) }
    }
}

/// Counts the long-lived DMA users of one region and releases its memory
/// to the owner once the region is removed and the count is zero.
@usableFromInline
final class RegionUsers: @unchecked Sendable {
    private let count = Atomic<Int>(0)
    /// Guards `pending` of every region: taken only when a region is removed
    /// while pinned and by the last unpin after that (rare), so one lock for
    /// all saves a lock per region (one region per FUSE request).
    private static let handoff = ConditionLock()
    /// Set when the region is removed while pinned (guarded by `handoff`).
    private var pending: RegionRelease?
    private let retired = Atomic<Bool>(false)

    func enter() { count.wrappingAdd(1, ordering: .sequentiallyConsistent) }

    func leave() {
        if count.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue == 0,
           retired.load(ordering: .sequentiallyConsistent) {
            Self.handoff.withLock { pending }?.fire()
        }
    }

    /// The region left the table (no new pin can find it): nil if no user
    /// holds it, else its release. `fire` is idempotent, so the last unpin
    /// and the re-check below may both fire it.
    func retire() -> RegionRelease? {
        retired.store(true, ordering: .sequentiallyConsistent)
        if count.load(ordering: .sequentiallyConsistent) == 0 { return nil }
        let release = RegionRelease()
        Self.handoff.withLock { pending = release }
        // The last unpin may have come between the load and `pending`.
        if count.load(ordering: .sequentiallyConsistent) == 0 {
            release.fire()
            return nil
        }
        return release
    }
}

/// A removed region whose memory an AIO may still use. The owner reuses the
/// memory only after `wait()` returns or in the closure given to `notify`.
public final class RegionRelease: @unchecked Sendable {
    private let lock = ConditionLock()
    private var done = false
    private var waiters: [@Sendable () -> Void] = []

    /// True once no DMA user is left.
    public var isIdle: Bool { lock.withLock { done } }

    /// Blocks until no DMA user is left.
    public func wait() {
        lock.lock()
        while !done { lock.wait() }
        lock.unlock()
    }

    /// Runs `body` (on the thread that ends the last use, or now) once no DMA user is left.
    public func notify(_ body: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if done { return true }
            waiters.append(body)
            return false
        }
        if now { body() }
    }

    fileprivate func fire() {
        let run: [@Sendable () -> Void] = lock.withLock {
            if done { return [] }
            done = true
            lock.broadcast()
            defer { waiters = [] }
            return waiters
        }
        for body in run { body() }
    }
}

/// A read-locked view of the region table, used by the mappers so that one
/// command's whole PRP/SGL walk takes the lock once.
@usableFromInline
struct RegionLookup {
    let regions: UnsafeBufferPointer<Region>
    let discard: UnsafeMutableRawPointer

    /// Index of the region containing `address`.
    @inline(__always)
    func index(containing address: UInt64) -> Int? {
        // Last region with base <= address.
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].base <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, address < regions[lo - 1].end else { return nil }
        return lo - 1
    }

    func pointer(_ address: UInt64, length: Int) -> UnsafeMutableRawPointer? {
        guard length >= 0, let i = index(containing: address) else { return nil }
        // Fields by index: copying a Region would retain its name and users.
        let (last, overflow) = address.addingReportingOverflow(UInt64(length))
        guard !overflow, last <= regions[i].end else { return nil }
        return regions[i].pointer + Int(address - regions[i].base)
    }

    /// Calls `body` with each backed piece of `[address, address+length)` in
    /// order; returns false as soon as a byte is found unbacked (pieces
    /// before it have already been passed to `body`).
    @inline(__always)
    func forEachPiece(_ address: UInt64, _ length: UInt64,
                      _ body: (UnsafeMutableRawPointer, Int) -> Void) -> Bool {
        guard length > 0 else { return true }
        guard !address.addingReportingOverflow(length).overflow else { return false }
        var addr = address, remaining = length
        guard var i = index(containing: addr) else { return false }
        while true {
            let n = min(remaining, regions[i].end - addr)
            body(regions[i].pointer + Int(addr - regions[i].base), Int(n))
            remaining -= n
            if remaining == 0 { return true }
            addr += n
            // Only an adjacent region can continue the range.
            i += 1
            guard i < regions.count, regions[i].base == addr else { return false }
        }
    }

    /// True if every byte of the range is backed.
    func isBacked(_ address: UInt64, _ length: UInt64) -> Bool {
        forEachPiece(address, length) { _, _ in }
    }

    /// Appends the data pieces of one command to `iov` (merging physically
    /// adjacent pieces), and checks
    /// that the command's data lies either wholly in the Controller Memory
    /// Buffer or wholly outside it (`inCMB` carries the answer from piece to
    /// piece; nil before the first). NVMe 1.4 §4.7 lets a controller refuse
    /// a transfer that mixes the two; like QEMU's hw/nvme, nvmefs does.
    /// - Returns: success, Data Transfer Error (a byte is unbacked) or
    ///   Invalid Use of Controller Memory Buffer (DNR).
    ///   With `pin` non-nil, every region used is pinned in it (under the
    ///   same read lock that found it: see `HostAddressSpace.unmapWhenIdle`).
    @inline(__always)
    func appendData(_ address: UInt64, _ length: UInt64, to iov: inout [IOVector], inCMB: inout Bool?,
                    pin: inout DMAPin?) -> NVMeStatus {
        guard length > 0 else { return .success }
        guard !address.addingReportingOverflow(length).overflow, var i = index(containing: address) else {
            return .dataTransferError
        }
        var addr = address, remaining = length
        while true {
            let isCMB = regions[i].kind == .controllerMemoryBuffer
            if let side = inCMB, side != isCMB { return NVMeStatus.invalidUseOfCMB.withDNR }
            inCMB = isCMB
            if pin != nil {
                pin!.pin(regions[i].users)
            }
            let n = min(remaining, regions[i].end - addr)
            appendMerging(regions[i].pointer + Int(addr - regions[i].base), Int(n), to: &iov)
            remaining -= n
            if remaining == 0 { return .success }
            addr += n
            i += 1
            guard i < regions.count, regions[i].base == addr else { return .dataTransferError }
        }
    }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard isBacked(address, UInt64(buffer.count)) else { return false }
        var offset = 0
        return forEachPiece(address, UInt64(buffer.count)) { p, n in
            buffer.baseAddress!.advanced(by: offset).copyMemory(from: p, byteCount: n)
            offset += n
        }
    }

    func write(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        guard isBacked(address, UInt64(buffer.count)) else { return false }
        var offset = 0
        return forEachPiece(address, UInt64(buffer.count)) { p, n in
            p.copyMemory(from: buffer.baseAddress!.advanced(by: offset), byteCount: n)
            offset += n
        }
    }
}

/// Appends a piece to a scatter-gather list, extending the last vector when
/// the piece starts exactly where it ends.
@inline(__always)
func appendMerging(_ base: UnsafeMutableRawPointer, _ length: Int, to iov: inout [IOVector]) {
    guard length > 0 else { return }
    if let last = iov.last, last.base + last.length == base {
        iov[iov.count - 1].length += length
    } else {
        iov.append(IOVector(base: base, length: length))
    }
}
