import BlockIO
import Dispatch
import HostMemory
import NVMeSpec

/// The volatile write cache (`--vwc`; docs/WRITE-CACHE.md, NVMe 1.4
/// §5.21.1.6, §6.8, §6.15). Each namespace without metadata has a
/// `WriteCache`; while the Volatile Write Cache feature is enabled a Write
/// without FUA copies its data there and completes. The rules:
/// - Read, Compare and Copy's reads return the cached bytes over the image's.
/// - Flush (one namespace or FFFFFFFFh) writes every dirty extent back, one
///   write AIO each, then flushes the image; the command completes when all
///   have. Eviction (oldest write first) writes back as AIOs of the Write
///   that needs the room.
/// - FUA, Write Zeroes, Dataset Management deallocate and Copy's destination
///   bypass the cache: the dirty bytes they cover are dropped (they are
///   superseded) and they go to the image. Write Uncorrectable drops them
///   too; Format NVM drops the namespace's whole dirty set.
/// - A command that writes a range being written back waits until that
///   write-back ends, so two write-backs of one range never race and the
///   image ends with the newest data.
extension NVMeController {
    /// Gives `ns` a write cache when the controller has one (under the lock).
    func giveWriteCache(_ ns: Namespace) {
        if let budget = cacheBudget, ns.writeCache == nil { ns.writeCache = WriteCache(budget: budget) }
    }

    /// Read or Write on a namespace with a write cache (no metadata): the
    /// range is checked already.
    func cachedReadWrite(_ req: Request, _ ns: Namespace, _ cache: WriteCache, write: Bool, length: Int) -> NVMeStatus? {
        let c = req.cmd
        let start = c.slba << UInt64(ns.lbads)
        let end = start + UInt64(length)
        guard write else { return transfer(req, ns, write: false, length: length, overlay: cache.isIdle ? nil : cache) }
        if deferForWriteBack(req, cache, start: start, end: end) { return nil }
        guard features.volatileWriteCache & 1 != 0, !c.fua, let budget = cacheBudget, length <= budget.capacity else {
            cache.discard(start: start, end: end)
            return transfer(req, ns, write: true, length: length)
        }
        // The data is copied now: nothing stays pinned.
        let iov: [IOVector]
        switch mapData(req, length: length, direction: .hostToController, checkMDTS: false, pinning: false) {
        case .failure(let status):
            ns.accounting.invalid(.write)
            return status
        case .success(let v): iov = v
        }
        let buffer = CacheBuffer(count: length)
        gather(iov, into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<length]))
        req.accounting.append((ns, ns.accounting.start(.write, bytes: UInt64(length))))
        clearUncorrectable(req, ns, slba: c.slba, nlb: UInt64(c.nlb) + 1)
        var issued = false
        // What the write supersedes goes first: it is not evicted for room.
        cache.discard(start: start, end: end)
        if let evicted = cache.evict(toFit: length) {
            if tracing { traceEvent(.cacheEvict, [("nsid", "\(ns.nsid)"), ("extents", "\(evicted.extents.count)")]) }
            writeBack(req, ns, evicted)
            issued = true
        }
        if cache.fits(length) {
            cache.insert(offset: start, length: length, buffer: buffer)
        } else {
            // Other namespaces hold the budget: this write goes to the image.
            cache.discard(start: start, end: end)
            let id = cache.startBatch(of: [CacheExtent(offset: start, length: length, buffer: buffer, sequence: 0)])
            writeBack(req, ns, (id, [CacheExtent(offset: start, length: length, buffer: buffer, sequence: 0)]))
            issued = true
        }
        return issued ? nil : .success
    }

    /// A command writing [start, end) while a write-back of that range runs
    /// waits for it (dispatched again when a batch ends). True if deferred.
    func deferForWriteBack(_ req: Request, _ cache: WriteCache, start: UInt64, end: UInt64) -> Bool {
        guard !cache.inFlight.isEmpty, cache.overlapsInFlight(start: start, end: end) else { return false }
        if tracing { traceEvent(.cacheWait, [("cid", "\(req.cid)"), ("sqid", "\(req.sqid)")]) }
        deferredCommands.append(req)
        return true
    }

    /// A command that writes the image directly (Write Zeroes, deallocate,
    /// Copy): waits while a write-back overlaps one of its byte ranges
    /// (true), else drops the dirty bytes it supersedes (false).
    func bypassWriteCache(_ req: Request, _ ns: Namespace, ranges: [(UInt64, UInt64)]) -> Bool {
        guard let cache = ns.writeCache, !cache.isIdle else { return false }
        for (offset, length) in ranges where deferForWriteBack(req, cache, start: offset, end: offset + length) { return true }
        for (offset, length) in ranges { cache.discard(start: offset, end: offset + length) }
        return false
    }

    /// Issues one write AIO per extent of a batch as AIOs of `req`; the
    /// batch ends when the request has no AIO left (`endCacheBatches`).
    func writeBack(_ req: Request, _ ns: Namespace, _ batch: (id: UInt64, extents: [CacheExtent])) {
        if req.cacheBatches == nil { req.cacheBatches = [] }
        req.cacheBatches!.append(CacheBatchRef(namespace: ns, id: batch.id, powerGeneration: powerGeneration))
        for e in batch.extents {
            submitAIO(req, ns, AIO(operation: .write, offset: e.offset, length: UInt64(e.length), iov: [e.vector]))
        }
    }

    /// Flush of `ns` with a write cache: writes back its dirty extents
    /// (true), or false when nothing is dirty.
    func flushWriteCache(_ req: Request, _ ns: Namespace) -> Bool {
        guard let cache = ns.writeCache, let batch = cache.takeAll() else { return false }
        if tracing { traceEvent(.cacheFlush, [("nsid", "\(ns.nsid)"), ("extents", "\(batch.extents.count)")]) }
        writeBack(req, ns, batch)
        return true
    }

    /// The request's write-backs have all ended (its AIOs are done): their
    /// batches leave the caches (back into them when they failed, unless a
    /// power cut came between), and commands waiting for them go again.
    func endCacheBatches(_ req: Request) {
        guard let batches = req.cacheBatches else { return }
        req.cacheBatches = nil
        let success = req.cancelStatus == nil && req.aios.status.isSuccess
        for b in batches {
            b.namespace.writeCache?.endBatch(b.id, success: success, keep: b.powerGeneration == powerGeneration)
        }
        if !deferredCommands.isEmpty && !resetInProgress { rangesUnlocked() }
    }

    /// Bytes a read returns from the cache instead of the image: copied
    /// over `iov` (the bytes from `start`) once the image's bytes are there.
    /// The extents are taken now, so a write-back ending meanwhile changes
    /// nothing.
    func overlayOnCompletion(_ req: Request, _ cache: WriteCache, start: UInt64, length: Int, iov: [IOVector]) {
        let extents = cache.overlay(start: start, end: start + UInt64(length))
        guard !extents.isEmpty else { return }
        let previous = req.continuation
        req.continuation = { req in
            applyOverlay(extents, start: start, iov: iov)
            return previous?(req) ?? req.pendingStatus
        }
    }

    /// The cached extents over [start, start + length) when the namespace's
    /// cache holds any (taken now, applied later with `applyOverlay`).
    func cachedExtents(_ ns: Namespace, start: UInt64, length: Int) -> [CacheExtent] {
        guard let cache = ns.writeCache, !cache.isIdle else { return [] }
        return cache.overlay(start: start, end: start + UInt64(length))
    }

    // MARK: - Write-back without a command (shutdown, unmount)

    /// Writes every cache's dirty extents to its image and waits (CC.SHN,
    /// a clean unmount). Runs without the lock, on a thread that may block.
    func writeBackCachesSynchronously() {
        guard cacheBudget != nil else { return }
        let batches: [(Namespace, UInt64, [CacheExtent], UInt64)] = locked {
            allocated.values.sorted { $0.nsid < $1.nsid }.compactMap { ns in
                ns.writeCache?.takeAll().map { (ns, $0.id, $0.extents, powerGeneration) }
            }
        }
        for (ns, id, extents, generation) in batches {
            let err = writeSynchronously(ns.backend, extents)
            if err != 0 { logger.error("namespace \(ns.nsid): write cache write-back failed: errno \(err)") }
            locked {
                ns.writeCache?.endBatch(id, success: err == 0, keep: generation == powerGeneration)
                if !deferredCommands.isEmpty && !resetInProgress { rangesUnlocked() }
            }
        }
    }

    /// Writes the extents to `backend` and waits; the first errno, or 0.
    func writeSynchronously(_ backend: any BlockBackend, _ extents: [CacheExtent]) -> Int32 {
        var first: Int32 = 0
        for e in extents {
            let done = DispatchSemaphore(value: 0)
            let result = ResultBox()
            _ = backend.submit(AIO(operation: .write, offset: e.offset, length: UInt64(e.length), iov: [e.vector])) { err in
                result.errno = err
                done.signal()
            }
            done.wait()
            if first == 0 { first = result.errno }
        }
        return first
    }

    // MARK: - Observers

    /// The state of namespace `nsid`'s write cache (nil without one).
    public func writeCacheState(_ nsid: UInt32) -> WriteCacheState? {
        lock.withLock {
            guard let ns = allocated[nsid], let cache = ns.writeCache else { return nil }
            return WriteCacheState(enabled: features.volatileWriteCache & 1 != 0, capacity: cache.budget.capacity,
                                   dirtyBytes: cache.dirtyBytes, inFlightBytes: cache.inFlightBytes,
                                   dirtyRanges: cache.dirty.map { ($0.offset, $0.length) },
                                   writesCached: cache.writesCached, flushes: cache.writeBacks,
                                   evictedExtents: cache.evictedExtents, evictedBytes: cache.evictedBytes)
        }
    }
}

/// Copies the extents (bytes of a read from byte `start`) over `iov`.
func applyOverlay(_ extents: [CacheExtent], start: UInt64, iov: [IOVector]) {
    for e in extents {
        var skip = Int(e.offset - start)
        var source = UnsafeRawPointer(e.pointer)
        var left = e.length
        for v in iov where left > 0 {
            if skip >= v.length { skip -= v.length; continue }
            let n = min(v.length - skip, left)
            (v.base + skip).copyMemory(from: source, byteCount: n)
            source += n
            left -= n
            skip = 0
        }
    }
}

/// A batch of write-backs a request carries.
struct CacheBatchRef {
    var namespace: Namespace
    var id: UInt64
    var powerGeneration: UInt64
}

final class ResultBox: @unchecked Sendable {
    var errno: Int32 = 0
}

/// What `namespaces/N/info` and `stats` show of a write cache.
public struct WriteCacheState: Sendable {
    /// The Volatile Write Cache feature's WCE.
    public var enabled: Bool
    public var capacity: Int
    public var dirtyBytes: Int
    /// Bytes whose write-back to the image runs.
    public var inFlightBytes: Int
    /// Dirty (byte offset, length) runs in offset order.
    public var dirtyRanges: [(UInt64, Int)]
    public var writesCached: UInt64
    public var flushes: UInt64
    public var evictedExtents: UInt64
    public var evictedBytes: UInt64
}
