import HostMemory
import NVMeController
import NVMeSpec

import Glibc

/// The data path of `namespaces/N/data` (CONTRACT §3, §6).
///
/// - The caller's buffer is mapped as a temporary region of the host address
///   space for the duration of the command, so the controller DMAs straight
///   into or out of it (no copy). PRPs (PRP1/PRP2 or a PRP list in the slot's
///   list page) describe the whole-block part; commands are split at MDTS and
///   issued together.
/// - Edges that are not whole LBAs are read-modify-written through a bounce
///   page, under an exclusive `RangeLock` range; whole-block writes take a
///   shared range, so an edge update never loses a concurrent write.
/// - Past the end: a read returns the bytes up to the end (0 at or past it);
///   a write starting at or past the end fails with ENOSPC, and a write
///   crossing the end writes what fits and returns that count (a short write,
///   as a block device does; the next write then gets ENOSPC). Write Zeroes and
///   deallocate behave as writes.
extension BuiltinHost {
    /// Reads up to `buffer.count` bytes at byte `offset` of namespace `nsid`.
    ///
    /// If the host gives up on a command (recovery failed) while its backend
    /// I/O is still running, that I/O may still write into `buffer`: with
    /// `parking`, the host calls it before returning and calls the closure it
    /// returns once the I/O has ended — the caller must not reuse the buffer
    /// before then. Without `parking`, `read` itself waits for that I/O.
    /// - Returns: bytes read (short at the end of the namespace, 0 past it).
    ///
    /// `mapped`, when it covers `buffer`, is used as the buffer's host
    /// address (no region is mapped and removed for the command).
    public func read(nsid: UInt32, instance: UInt64? = nil, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                     mapped: MappedBuffer? = nil, parking: BufferParking? = nil) -> Result<Int, HostError> {
        guard let ns = namespaceInfo(nsid, instance: instance) else { return .failure(noNamespace(nsid)) }
        guard buffer.count > 0, offset < ns.capacity, let base = buffer.baseAddress else { return .success(0) }
        let length = Int(min(UInt64(buffer.count), ns.capacity - offset))
        let span = BlockSpan(offset: offset, length: length, blockSize: ns.blockSize)
        if span.middleBlocks > 0 {
            let r = transfer(ns, write: false, firstLBA: span.middleFirstLBA, blocks: span.middleBlocks,
                             pointer: base + span.headBytes, mapped: mapped, parking: parking)
            if let e = r { return .failure(e) }
        }
        for edge in span.edges {
            let r = withBounce { page -> HostError? in
                if let e = blockIO(ns, write: false, lba: edge.lba, page: page) { return e }
                (base + edge.bufferOffset).copyMemory(from: page.pointer + edge.blockOffset, byteCount: edge.count)
                return nil
            }
            if let e = r { return .failure(e) }
        }
        return .success(length)
    }

    /// Writes `buffer` at byte `offset` of namespace `nsid`. Returns only once
    /// no backend I/O can read `buffer` any more (see `read`).
    /// - Parameters:
    ///   - fua: every Write has Force Unit Access (CDW12 bit 30, NVMe 1.4
    ///     §6.15): the data is on stable storage when this returns (an
    ///     O_DSYNC write; docs/WRITE-CACHE.md).
    /// - Returns: bytes written (short when the write crosses the end).
    ///
    /// `mapped`, when it covers `buffer`, is used as the buffer's host
    /// address (no region is mapped and removed for the command).
    public func write(nsid: UInt32, instance: UInt64? = nil, offset: UInt64,
                      from buffer: UnsafeRawBufferPointer, mapped: MappedBuffer? = nil,
                      fua: Bool = false) -> Result<Int, HostError> {
        guard let ns = namespaceInfo(nsid, instance: instance) else { return .failure(noNamespace(nsid)) }
        guard buffer.count > 0, let base = buffer.baseAddress else { return .success(0) }
        guard offset < ns.capacity else {
            return .failure(HostError(errno: ENOSPC, "write at \(offset): past the end of namespace \(nsid)"))
        }
        let length = Int(min(UInt64(buffer.count), ns.capacity - offset))
        let span = BlockSpan(offset: offset, length: length, blockSize: ns.blockSize)
        let token = rangeLock.lock(nsid: nsid, first: span.firstLBA, last: span.lastLBA, exclusive: !span.edges.isEmpty)
        defer { rangeLock.unlock(token) }
        if span.middleBlocks > 0 {
            let r = transfer(ns, write: true, firstLBA: span.middleFirstLBA, blocks: span.middleBlocks,
                             pointer: UnsafeMutableRawPointer(mutating: base) + span.headBytes, mapped: mapped,
                             parking: nil, fua: fua)
            if let e = r { return .failure(e) }
        }
        for edge in span.edges {
            let r = readModifyWrite(ns, lba: edge.lba, fua: fua) { page in
                (page + edge.blockOffset).copyMemory(from: base + edge.bufferOffset, byteCount: edge.count)
            }
            if let e = r { return .failure(e) }
        }
        return .success(length)
    }

    /// Flush (NVMe 1.4 §6.8): everything written to `nsid` is on stable storage.
    public func flush(nsid: UInt32, instance: UInt64? = nil) -> Result<Void, HostError> {
        guard namespaceInfo(nsid, instance: instance) != nil else { return .failure(noNamespace(nsid)) }
        return runSimple("Flush namespace \(nsid)") { _, _, _ in
            SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: nsid)
        }
    }

    /// Deallocates `[offset, offset+length)`: Dataset Management with AD for
    /// the whole LBAs inside the range (§6.7); partial edge blocks are zeroed
    /// by read-modify-write, so the range reads back as zeros either way.
    public func deallocate(nsid: UInt32, instance: UInt64? = nil, offset: UInt64, length: UInt64) -> Result<Void, HostError> {
        rangeOperation(nsid: nsid, instance: instance, offset: offset, length: length, what: "deallocate") { ns, first, count in
            deallocateBlocks(ns, first: first, count: count)
        }
    }

    /// Zeroes `[offset, offset+length)`: Write Zeroes (§6.17) for the whole
    /// LBAs, at most 65536 per command, edges by read-modify-write.
    public func writeZeroes(nsid: UInt32, instance: UInt64? = nil, offset: UInt64, length: UInt64) -> Result<Void, HostError> {
        rangeOperation(nsid: nsid, instance: instance, offset: offset, length: length, what: "write zeroes") { ns, first, count in
            let chunks = Int((count + 65535) / 65536)
            return runSimple("Write Zeroes namespace \(ns.nsid)", count: chunks) { i, _, _ in
                let lba = first + UInt64(i) * 65536
                let n = min(65536, first + count - lba)
                var sqe = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: ns.nsid)
                sqe.slba = lba
                sqe.nlb = UInt16(n - 1)
                // PI formats: the controller writes the zeroed blocks' PI (PRACT, §6.17).
                ns.protect(&sqe, slba: lba, check: false)
                return sqe
            }
        }
    }

    // MARK: - Helpers

    func noNamespace(_ nsid: UInt32) -> HostError {
        HostError(errno: ENODEV, "namespace \(nsid) is not active")
    }

    /// Common shape of deallocate and write zeroes: bounds, range lock, whole
    /// blocks through `body`, edges zeroed by read-modify-write.
    private func rangeOperation(nsid: UInt32, instance: UInt64?, offset: UInt64, length: UInt64, what: String,
                                _ body: (NamespaceInfo, UInt64, UInt64) -> Result<Void, HostError>)
        -> Result<Void, HostError> {
        guard let ns = namespaceInfo(nsid, instance: instance) else { return .failure(noNamespace(nsid)) }
        guard length > 0 else { return .success(()) }
        guard offset < ns.capacity else {
            return .failure(HostError(errno: ENOSPC, "\(what) at \(offset): past the end of namespace \(nsid)"))
        }
        let clamped = min(length, ns.capacity - offset)
        let span = BlockSpan(offset: offset, length: Int(clamped), blockSize: ns.blockSize)
        let token = rangeLock.lock(nsid: nsid, first: span.firstLBA, last: span.lastLBA, exclusive: !span.edges.isEmpty)
        defer { rangeLock.unlock(token) }
        if span.middleBlocks > 0 {
            if case .failure(let e) = body(ns, span.middleFirstLBA, UInt64(span.middleBlocks)) { return .failure(e) }
        }
        for edge in span.edges {
            let r = readModifyWrite(ns, lba: edge.lba) { page in
                (page + edge.blockOffset).initializeMemory(as: UInt8.self, repeating: 0, count: edge.count)
            }
            if let e = r { return .failure(e) }
        }
        return .success(())
    }

    private func deallocateBlocks(_ ns: NamespaceInfo, first: UInt64, count: UInt64) -> Result<Void, HostError> {
        // Ranges of at most 2^31 blocks, 256 per command (one bounce page holds them).
        let perRange: UInt64 = 1 << 31
        var ranges: [DatasetManagementRange] = []
        var lba = first
        while lba < first + count {
            let n = min(perRange, first + count - lba)
            ranges.append(DatasetManagementRange(slba: lba, nlb: UInt32(n)))
            lba += n
        }
        var index = 0
        while index < ranges.count {
            let group = Array(ranges[index..<min(ranges.count, index + DatasetManagementRange.maxRanges)])
            index += group.count
            let r = withBounce { page -> HostError? in
                let bytes = DatasetManagementRange.encodeRanges(group)
                bytes.withUnsafeBytes { page.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let result = runSimple("Dataset Management namespace \(ns.nsid)") { _, _, _ in
                    // CDW10 NR (0's based), CDW11 bit 2 AD (§6.7).
                    SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: ns.nsid,
                                         prp1: page.address, prp2: BuiltinHost.poison,
                                         cdw10: UInt32(group.count - 1), cdw11: 0x4)
                }
                if case .failure(let e) = result { return e }
                return nil
            }
            if let e = r { return .failure(e) }
        }
        return .success(())
    }

    /// Runs `count` commands without data and reports the first failure.
    func runSimple(_ what: @autoclosure () -> String, count: Int = 1,
                   build: (Int, UInt16, QueuePair) -> SubmissionQueueEntry) -> Result<Void, HostError> {
        switch runIO(count: count, build: build) {
        case .failure(let e): return .failure(e)
        case .success(let results):
            if let e = firstError(results, what()) { return .failure(e) }
            return .success(())
        }
    }

    /// Reads or writes whole blocks straight from/to caller memory: the
    /// memory is mapped as a temporary region while the commands run. The
    /// region is removed afterwards; if an AIO of a given-up command still
    /// uses it, the memory is parked (`parking`) or waited for.
    func transfer(_ ns: NamespaceInfo, write: Bool, firstLBA: UInt64, blocks: Int,
                  pointer: UnsafeMutableRawPointer, mapped: MappedBuffer? = nil, parking: BufferParking?,
                  fua: Bool = false) -> HostError? {
        let bytes = blocks << Int(ns.lbads)
        let address: UInt64, regionID: RegionID
        // The mapping is used only if it is this host's and covers the data.
        var kept: MappedBuffer?
        if let mapped, mapped.space === controller.space, let a = mapped.address(of: pointer, length: bytes),
           let id = mapped.region?.id {
            (address, regionID) = (a, id)
            kept = mapped
        } else {
            do {
                let region = try controller.space.mapAnywhere(length: bytes, pointer: pointer, name: "host-io",
                                                              kind: .temporary, above: regionEnd)
                (address, regionID) = (region.base, region.id)
            } catch {
                return HostError(errno: ENOMEM, "cannot map an I/O buffer of \(bytes) bytes: \(error)")
            }
        }
        // Every command completed (its CQE seen): no controller critical
        // section can still hold a pointer into the region (no barrier needed).
        var allCompleted = false
        // A command whose CQE was seen has no AIO left (the controller unpins
        // before posting): parking is only for commands given up. A mapped
        // buffer stays mapped, unless a command on it was given up: then it
        // is removed like a temporary region and parked until that I/O ends.
        defer {
            if let kept {
                if !allCompleted {
                    kept.region = nil
                    retire(regionID, parking: parking, barrier: true)
                }
            } else {
                retire(regionID, parking: allCompleted ? nil : parking, barrier: !allCompleted)
            }
        }
        switch runBlocks(ns, write: write, firstLBA: firstLBA, blocks: blocks, dataAddress: address, fua: fua) {
        case .failure(let e): return e
        case .success(let results):
            allCompleted = results.allSatisfy { if case .completed = $0 { return true } else { return false } }
            return firstError(results, "\(write ? "Write" : "Read") namespace \(ns.nsid) LBA \(firstLBA)+\(blocks)")
        }
    }

    /// Removes a temporary region. When a given-up command's backend I/O
    /// still uses its memory, the caller's buffer is parked until that I/O
    /// ends, or (no `parking`) this waits for it.
    func retire(_ id: RegionID, parking: BufferParking?, barrier: Bool = true) {
        guard let release = controller.space.unmapWhenIdle(id, barrier: barrier) else { return }
        logger.notice("built-in host: a buffer is still in use by backend I/O of a command given up; parked until it ends")
        if let parking {
            release.notify(parking())
        } else {
            release.wait()
        }
    }

    /// One block's data through a bounce page (a block is at most 4 KiB; its
    /// metadata, if any crosses the bus, in a buffer of its own).
    func blockIO(_ ns: NamespaceInfo, write: Bool, lba: UInt64, page: BouncePage, fua: Bool = false) -> HostError? {
        switch runBlocks(ns, write: write, firstLBA: lba, blocks: 1, dataAddress: page.address, fua: fua) {
        case .failure(let e): return e
        case .success(let results): return firstError(results, "\(write ? "Write" : "Read") namespace \(ns.nsid) LBA \(lba)")
        }
    }

    /// Reads block `lba` into a bounce page, lets `patch` change it, writes it back.
    /// The caller holds an exclusive range covering `lba`.
    func readModifyWrite(_ ns: NamespaceInfo, lba: UInt64, fua: Bool = false,
                         _ patch: (UnsafeMutableRawPointer) -> Void) -> HostError? {
        withBounce { page -> HostError? in
            if let e = blockIO(ns, write: false, lba: lba, page: page) { return e }
            patch(page.pointer)
            return blockIO(ns, write: true, lba: lba, page: page, fua: fua)
        }
    }

    /// Lends a bounce page for `body`. The page is mapped as a temporary
    /// region of its own, so that a command given up while its backend I/O
    /// still runs pins it: the page then goes back to the pool only when that
    /// I/O has ended, never to another command while it may still be written.
    func withBounce<R>(_ body: (BouncePage) -> R) -> R {
        let (index, privateAddress, pointer) = bounce.take()
        guard let region = try? controller.space.mapAnywhere(length: Self.page, pointer: pointer, name: "host-bounce",
                                                              kind: .temporary, above: regionEnd) else {
            // No free host address range (never in practice): use the page's
            // address in the private region; a late I/O could then reach it.
            defer { bounce.give(index) }
            return body(BouncePage(address: privateAddress, pointer: pointer))
        }
        var parked = false
        defer {
            let pool = bounce
            retire(region.id, parking: { parked = true; return { pool.give(index) } })
            if !parked { bounce.give(index) }
        }
        return body(BouncePage(address: region.base, pointer: pointer))
    }
}

/// A caller's buffer mapped into the host address space once and kept
/// mapped across commands (the bridge's pooled read buffers): a command on
/// it needs no region mapped and removed. Used by one thread at a time (its
/// owner hands it on through a lock); `unmap()` before the memory is freed.
public final class MappedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let count: Int
    let space: HostAddressSpace
    /// Nil once removed (by `unmap`, or when a command on it was given up).
    var region: RegionInfo?

    init(pointer: UnsafeMutableRawPointer, count: Int, space: HostAddressSpace, region: RegionInfo) {
        self.pointer = pointer; self.count = count; self.space = space; self.region = region
    }

    /// True while the buffer is mapped.
    public var isMapped: Bool { region != nil }

    /// The host address of `[p, p+length)` if it lies in the mapped buffer.
    func address(of p: UnsafeMutableRawPointer, length: Int) -> UInt64? {
        guard let region, p >= pointer, length >= 0, p + length <= pointer + count else { return nil }
        return region.base + UInt64(p - pointer)
    }

    /// Removes the mapping, waiting until no backend I/O uses the memory.
    public func unmap() {
        guard let r = region else { return }
        region = nil
        space.unmap(r.id)
    }
}

extension BuiltinHost {
    /// Maps `count` bytes at `pointer` for use by many reads (see
    /// `MappedBuffer`); nil if no address range is free.
    public func mapBuffer(_ pointer: UnsafeMutableRawPointer, count: Int) -> MappedBuffer? {
        guard let region = try? controller.space.mapAnywhere(length: count, pointer: pointer, name: "host-buffer",
                                                             kind: .temporary, above: regionEnd) else { return nil }
        return MappedBuffer(pointer: pointer, count: count, space: controller.space, region: region)
    }

    /// True if `buffer` was mapped by this host (`mapBuffer`): a mapping of
    /// another host's address space is never used for this one's commands.
    public func uses(_ buffer: MappedBuffer) -> Bool { buffer.space === controller.space }
}

/// Called (before the host returns) when a caller's buffer must stay
/// untouched after the call because a given-up command's backend I/O may
/// still use it; returns the closure the host calls when that I/O has ended.
public typealias BufferParking = () -> @Sendable () -> Void

/// One bounce page: host address and memory.
struct BouncePage {
    var address: UInt64
    var pointer: UnsafeMutableRawPointer
}

/// A byte range split into whole blocks and partial edge blocks.
struct BlockSpan {
    struct Edge {
        var lba: UInt64
        /// Where the edge's bytes start inside the block and in the caller's buffer.
        var blockOffset: Int
        var bufferOffset: Int
        var count: Int
    }

    var firstLBA: UInt64
    var lastLBA: UInt64
    /// Bytes before the first whole block (in the caller's buffer).
    var headBytes: Int
    var middleFirstLBA: UInt64
    var middleBlocks: Int
    var edges: [Edge] = []

    init(offset: UInt64, length: Int, blockSize: Int) {
        precondition(length > 0)
        let bs = UInt64(blockSize)
        let end = offset + UInt64(length)
        firstLBA = offset / bs
        lastLBA = (end - 1) / bs
        let alignedStart = (offset + bs - 1) / bs * bs
        let alignedEnd = end / bs * bs
        if alignedStart < alignedEnd {
            middleFirstLBA = alignedStart / bs
            middleBlocks = Int((alignedEnd - alignedStart) / bs)
        } else {
            middleFirstLBA = 0
            middleBlocks = 0
        }
        headBytes = Int(min(alignedStart, end) - offset)
        if offset % bs != 0 {
            // Head edge: from offset to the end of its block (or the end of the range).
            let count = Int(min(end, alignedStart) - offset)
            edges.append(Edge(lba: firstLBA, blockOffset: Int(offset % bs), bufferOffset: 0, count: count))
        }
        if end % bs != 0 && !(offset % bs != 0 && lastLBA == firstLBA) {
            // Tail edge (unless the head edge already covers that block).
            let start = max(alignedEnd, offset)
            edges.append(Edge(lba: lastLBA, blockOffset: Int(start % bs), bufferOffset: Int(start - offset),
                              count: Int(end - start)))
        }
    }
}
