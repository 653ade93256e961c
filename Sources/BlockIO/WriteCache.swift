/// Bytes a volatile write cache holds for one write, immutable once filled
/// (pieces of it may be superseded; the buffer lives while any piece does).
public final class CacheBuffer: @unchecked Sendable {
    public let bytes: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 4096)
    }

    deinit { bytes.deallocate() }
}

/// The memory the write caches of one controller share (`--vwc-size`).
/// Guarded by the controller's lock, as the caches are.
public final class CacheBudget: @unchecked Sendable {
    public let capacity: Int
    public internal(set) var used = 0
    public init(capacity: Int) { self.capacity = capacity }
}

/// A run of cached bytes: `length` bytes at byte `offset` of the namespace,
/// taken from `buffer` at `bufferOffset`. `sequence` numbers the write it
/// came from (arrival order: oldest evicted first, one draw per write at a
/// power cut).
public struct CacheExtent: Sendable {
    public var offset: UInt64
    public var length: Int
    public var buffer: CacheBuffer
    public var bufferOffset: Int
    public var sequence: UInt64

    public init(offset: UInt64, length: Int, buffer: CacheBuffer, bufferOffset: Int = 0, sequence: UInt64) {
        self.offset = offset
        self.length = length
        self.buffer = buffer
        self.bufferOffset = bufferOffset
        self.sequence = sequence
    }

    public var end: UInt64 { offset + UInt64(length) }
    public var pointer: UnsafeMutableRawPointer { buffer.bytes.baseAddress! + bufferOffset }

    /// The part of the extent in [start, end) (which must overlap it).
    public func slice(_ start: UInt64, _ end: UInt64) -> CacheExtent {
        let s = max(start, offset), e = min(end, self.end)
        return CacheExtent(offset: s, length: Int(e - s), buffer: buffer, bufferOffset: bufferOffset + Int(s - offset),
                           sequence: sequence)
    }

    /// The extent as one AIO vector (for a write back to the image).
    public var vector: IOVector { IOVector(base: pointer, length: length) }
}

/// A namespace's volatile write cache (docs/WRITE-CACHE.md): acknowledged
/// writes not yet on the image. Two sets of extents:
/// - dirty: sorted by offset, never overlapping each other; a new write
///   replaces the parts of older ones it covers;
/// - in flight: batches taken from the dirty set whose write-back AIOs run;
///   they stay readable until their batch ends. The controller keeps a
///   write that overlaps a batch in flight waiting (so two write-backs of
///   one range never run at once, and the dirty set never overlaps a batch).
///
/// Not thread-safe: the controller guards it with its lock.
public final class WriteCache: @unchecked Sendable {
    /// The dirty bytes every namespace's cache may hold together
    /// (`--vwc-size`); bytes being written back are held until their write
    /// ends, beside the budget.
    public let budget: CacheBudget
    public private(set) var dirty: [CacheExtent] = []
    public private(set) var dirtyBytes = 0 { didSet { budget.used += dirtyBytes - oldValue } }
    public private(set) var inFlight: [(id: UInt64, extents: [CacheExtent])] = []
    public private(set) var inFlightBytes = 0
    /// Writes in arrival order, as (sequence, start, end), for eviction;
    /// entries whose extents are all gone are skipped when met.
    private var arrivals: [(sequence: UInt64, start: UInt64, end: UInt64)] = []
    private var arrivalsHead = 0
    private var nextSequence: UInt64 = 1
    private var nextBatch: UInt64 = 1
    /// Writes that went in, extents evicted (written back to make room) and
    /// their bytes, flushes that wrote something back.
    public private(set) var writesCached: UInt64 = 0
    public private(set) var evictedExtents: UInt64 = 0
    public private(set) var evictedBytes: UInt64 = 0
    public private(set) var writeBacks: UInt64 = 0

    public init(budget: CacheBudget) { self.budget = budget }

    deinit { budget.used -= dirtyBytes }

    /// Nothing dirty and nothing in flight: reads need no overlay.
    @inline(__always) public var isIdle: Bool { dirty.isEmpty && inFlight.isEmpty }

    /// True when a write of `length` more bytes fits beside what is held.
    public func fits(_ length: Int) -> Bool { budget.used + length <= budget.capacity }

    /// Index of the first dirty extent ending after `start`.
    private func firstDirty(endingAfter start: UInt64) -> Int {
        var lo = 0, hi = dirty.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if dirty[mid].end <= start { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Removes the dirty bytes in [start, end): a later write supersedes
    /// them, or the command that covers them bypasses the cache.
    public func discard(start: UInt64, end: UInt64) {
        guard start < end, !dirty.isEmpty else { return }
        let first = firstDirty(endingAfter: start)
        var i = first
        var replacement: [CacheExtent] = []
        while i < dirty.count, dirty[i].offset < end {
            let e = dirty[i]
            dirtyBytes -= e.length
            if e.offset < start { replacement.append(e.slice(e.offset, start)) }
            if e.end > end { replacement.append(e.slice(end, e.end)) }
            i += 1
        }
        for r in replacement { dirtyBytes += r.length }
        dirty.replaceSubrange(first..<i, with: replacement)
    }

    /// Caches a write of `buffer`'s first `length` bytes at `offset`,
    /// replacing older dirty bytes there.
    public func insert(offset: UInt64, length: Int, buffer: CacheBuffer) {
        let end = offset + UInt64(length)
        discard(start: offset, end: end)
        let sequence = nextSequence
        nextSequence += 1
        let at = firstDirty(endingAfter: offset)
        dirty.insert(CacheExtent(offset: offset, length: length, buffer: buffer, sequence: sequence), at: at)
        dirtyBytes += length
        writesCached += 1
        arrivals.append((sequence, offset, end))
    }

    /// Puts extents back under the dirty data (the parts no newer write
    /// covers): a write-back that failed.
    private func reinsertUnder(_ extents: [CacheExtent]) {
        for e in extents {
            var pieces = [e]
            // Cut out what newer dirty data covers.
            let first = firstDirty(endingAfter: e.offset)
            var i = first
            while i < dirty.count, dirty[i].offset < e.end {
                let d = dirty[i]
                pieces = pieces.flatMap { p -> [CacheExtent] in
                    guard p.offset < d.end, d.offset < p.end else { return [p] }
                    var out: [CacheExtent] = []
                    if p.offset < d.offset { out.append(p.slice(p.offset, d.offset)) }
                    if p.end > d.end { out.append(p.slice(d.end, p.end)) }
                    return out
                }
                i += 1
            }
            for p in pieces {
                dirty.insert(p, at: firstDirty(endingAfter: p.offset))
                dirtyBytes += p.length
                arrivals.append((p.sequence, p.offset, p.end))
            }
        }
    }

    /// True if [start, end) overlaps a batch in flight.
    public func overlapsInFlight(start: UInt64, end: UInt64) -> Bool {
        for batch in inFlight {
            for e in batch.extents where e.offset < end && start < e.end { return true }
        }
        return false
    }

    /// The cached bytes in [start, end), in flight first and dirty after
    /// (the two never overlap): what a read of the range must return
    /// instead of the image's bytes.
    public func overlay(start: UInt64, end: UInt64) -> [CacheExtent] {
        var out: [CacheExtent] = []
        for batch in inFlight {
            for e in batch.extents where e.offset < end && start < e.end { out.append(e.slice(start, end)) }
        }
        var i = firstDirty(endingAfter: start)
        while i < dirty.count, dirty[i].offset < end {
            out.append(dirty[i].slice(start, end))
            i += 1
        }
        return out
    }

    private func startBatch(_ extents: [CacheExtent]) -> UInt64 {
        let id = nextBatch
        nextBatch += 1
        inFlight.append((id, extents))
        inFlightBytes += extents.reduce(0) { $0 + $1.length }
        return id
    }

    /// Moves every dirty extent into a new batch in flight (a Flush, a
    /// shutdown): the caller writes them back and ends the batch. Nil when
    /// nothing is dirty.
    public func takeAll() -> (id: UInt64, extents: [CacheExtent])? {
        guard !dirty.isEmpty else { return nil }
        let extents = dirty
        dirty.removeAll()
        dirtyBytes = 0
        arrivals.removeAll()
        arrivalsHead = 0
        writeBacks += 1
        return (startBatch(extents), extents)
    }

    /// Evicts the oldest dirty writes until `length` more bytes fit (or
    /// nothing is left to evict), as a new batch in flight; nil when
    /// nothing had to go.
    public func evict(toFit length: Int) -> (id: UInt64, extents: [CacheExtent])? {
        var taken: [CacheExtent] = []
        while !fits(length), arrivalsHead < arrivals.count {
            let a = arrivals[arrivalsHead]
            arrivalsHead += 1
            var i = firstDirty(endingAfter: a.start)
            while i < dirty.count, dirty[i].offset < a.end {
                if dirty[i].sequence == a.sequence {
                    let e = dirty.remove(at: i)
                    dirtyBytes -= e.length
                    taken.append(e)
                } else {
                    i += 1
                }
            }
        }
        if arrivalsHead > 1024 && arrivalsHead * 2 > arrivals.count {
            arrivals.removeFirst(arrivalsHead)
            arrivalsHead = 0
        }
        guard !taken.isEmpty else { return nil }
        evictedExtents += UInt64(taken.count)
        evictedBytes += UInt64(taken.reduce(0) { $0 + $1.length })
        return (startBatch(taken), taken)
    }

    /// A batch's write-backs ended. On failure its extents go back under
    /// the dirty data, unless `keep` is false (a power cut came between).
    public func endBatch(_ id: UInt64, success: Bool, keep: Bool = true) {
        guard let i = inFlight.firstIndex(where: { $0.id == id }) else { return }
        let batch = inFlight.remove(at: i)
        inFlightBytes -= batch.extents.reduce(0) { $0 + $1.length }
        if !success && keep { reinsertUnder(batch.extents) }
    }

    /// Empties the dirty set (a power cut, a Format NVM) and returns what it held.
    public func dropDirty() -> [CacheExtent] {
        let extents = dirty
        dirty.removeAll()
        dirtyBytes = 0
        arrivals.removeAll()
        arrivalsHead = 0
        return extents
    }

    /// Starts a batch of extents the caller chose (the survivors of a power cut).
    public func startBatch(of extents: [CacheExtent]) -> UInt64 { startBatch(extents) }
}
