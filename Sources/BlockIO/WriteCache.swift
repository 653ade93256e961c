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
/// - dirty: never overlapping each other; a new write replaces the parts of
///   older ones it covers;
/// - in flight: batches taken from the dirty set whose write-back AIOs run;
///   they stay readable until their batch ends. The controller keeps a
///   write that overlaps a batch in flight waiting (so two write-backs of
///   one range never run at once, and the dirty set never overlaps a batch).
///
/// Both are kept by 1 MiB chunk of the namespace (an extent never crosses
/// a chunk boundary: a write that does is held as one piece per chunk),
/// each chunk's extents sorted by offset, so that a write, a read and an
/// eviction touch only the chunks of their range.
///
/// Not thread-safe: the controller guards it with its lock.
public final class WriteCache: @unchecked Sendable {
    /// The dirty bytes every namespace's cache may hold together
    /// (`--vwc-size`); bytes being written back are held until their write
    /// ends, beside the budget.
    public let budget: CacheBudget
    static let chunkShift: UInt64 = 20
    /// Dirty extents by chunk.
    private var chunks: [UInt64: [CacheExtent]] = [:]
    public private(set) var dirtyExtents = 0
    public private(set) var dirtyBytes = 0 { didSet { budget.used += dirtyBytes - oldValue } }
    public private(set) var inFlight: [(id: UInt64, extents: [CacheExtent])] = []
    /// The extents in flight by chunk.
    private var inFlightChunks: [UInt64: [CacheExtent]] = [:]
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
    @inline(__always) public var isIdle: Bool { dirtyExtents == 0 && inFlight.isEmpty }

    /// The dirty extents in offset order.
    public var dirty: [CacheExtent] { chunks.keys.sorted().flatMap { chunks[$0]! } }

    /// True when a write of `length` more bytes fits beside what is held.
    public func fits(_ length: Int) -> Bool { budget.used + length <= budget.capacity }

    /// Calls `body` with each chunk of the dirty (or in-flight) table that
    /// [start, end) touches, in order. The table is looked up afresh each
    /// time (never held across `body`, which may change it in place).
    private func forEachChunk(inFlight: Bool = false, _ start: UInt64, _ end: UInt64, _ body: (UInt64) -> Void) {
        let count = inFlight ? inFlightChunks.count : chunks.count
        guard start < end, count > 0 else { return }
        let first = start >> Self.chunkShift, last = (end - 1) >> Self.chunkShift
        if last - first >= UInt64(count) {
            let keys = (inFlight ? inFlightChunks.keys.sorted() : chunks.keys.sorted()).filter { $0 >= first && $0 <= last }
            for key in keys { body(key) }
        } else {
            for key in first...last where (inFlight ? inFlightChunks[key] != nil : chunks[key] != nil) { body(key) }
        }
    }

    /// `e` cut at chunk boundaries.
    private static func split(_ e: CacheExtent) -> [CacheExtent] {
        let first = e.offset >> chunkShift, last = (e.end - 1) >> chunkShift
        if first == last { return [e] }
        return (first...last).map { e.slice($0 << chunkShift, ($0 + 1) << chunkShift) }
    }

    /// Index of the first extent of `list` ending after `start`.
    private static func first(_ list: [CacheExtent], endingAfter start: UInt64) -> Int {
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].end <= start { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Removes the dirty bytes in [start, end): a later write supersedes
    /// them, or the command that covers them bypasses the cache.
    public func discard(start: UInt64, end: UInt64) {
        guard start < end, dirtyExtents > 0 else { return }
        forEachChunk(start, end) { key in
            var list = chunks[key]!
            chunks[key] = nil  // no copy while it changes
            defer { if !list.isEmpty { chunks[key] = list } }
            let first = Self.first(list, endingAfter: start)
            var i = first
            var replacement: [CacheExtent] = []
            while i < list.count, list[i].offset < end {
                let e = list[i]
                dirtyBytes -= e.length
                dirtyExtents -= 1
                if e.offset < start { replacement.append(e.slice(e.offset, start)) }
                if e.end > end { replacement.append(e.slice(end, e.end)) }
                i += 1
            }
            if i == first { return }
            for r in replacement { dirtyBytes += r.length; dirtyExtents += 1 }
            list.replaceSubrange(first..<i, with: replacement)
        }
    }

    /// Adds an extent that overlaps no dirty one.
    private func add(_ e: CacheExtent) {
        for piece in Self.split(e) {
            let key = piece.offset >> Self.chunkShift
            var list = chunks[key] ?? []
            chunks[key] = nil  // no copy while it changes
            list.insert(piece, at: Self.first(list, endingAfter: piece.offset))
            chunks[key] = list
            dirtyBytes += piece.length
            dirtyExtents += 1
        }
    }

    /// Caches a write of `buffer`'s first `length` bytes at `offset`,
    /// replacing older dirty bytes there.
    public func insert(offset: UInt64, length: Int, buffer: CacheBuffer) {
        let end = offset + UInt64(length)
        discard(start: offset, end: end)
        let sequence = nextSequence
        nextSequence += 1
        add(CacheExtent(offset: offset, length: length, buffer: buffer, sequence: sequence))
        writesCached += 1
        arrivals.append((sequence, offset, end))
    }

    /// Puts extents back under the dirty data (the parts no newer write
    /// covers): a write-back that failed.
    private func reinsertUnder(_ extents: [CacheExtent]) {
        for e in extents {
            var pieces = [e]
            overlayDirty(start: e.offset, end: e.end) { d in
                pieces = pieces.flatMap { p -> [CacheExtent] in
                    guard p.offset < d.end, d.offset < p.end else { return [p] }
                    var out: [CacheExtent] = []
                    if p.offset < d.offset { out.append(p.slice(p.offset, d.offset)) }
                    if p.end > d.end { out.append(p.slice(d.end, p.end)) }
                    return out
                }
            }
            for p in pieces {
                add(p)
                arrivals.append((p.sequence, p.offset, p.end))
            }
        }
    }

    /// Calls `body` with each dirty extent overlapping [start, end), whole, in order.
    private func overlayDirty(start: UInt64, end: UInt64, _ body: (CacheExtent) -> Void) {
        forEachChunk(start, end) { key in
            let list = chunks[key]!
            var i = Self.first(list, endingAfter: start)
            while i < list.count, list[i].offset < end {
                body(list[i])
                i += 1
            }
        }
    }

    /// True if [start, end) overlaps a batch in flight.
    public func overlapsInFlight(start: UInt64, end: UInt64) -> Bool {
        var found = false
        forEachChunk(inFlight: true, start, end) { key in
            if !found, let list = inFlightChunks[key] {
                found = list.contains { $0.offset < end && start < $0.end }
            }
        }
        return found
    }

    /// The cached bytes in [start, end), in flight first and dirty after
    /// (the two never overlap): what a read of the range must return
    /// instead of the image's bytes.
    public func overlay(start: UInt64, end: UInt64) -> [CacheExtent] {
        var out: [CacheExtent] = []
        forEachChunk(inFlight: true, start, end) { key in
            for e in inFlightChunks[key]! where e.offset < end && start < e.end { out.append(e.slice(start, end)) }
        }
        overlayDirty(start: start, end: end) { out.append($0.slice(start, end)) }
        return out
    }

    private func startBatch(_ extents: [CacheExtent]) -> UInt64 {
        let id = nextBatch
        nextBatch += 1
        let pieces = extents.flatMap(Self.split)
        inFlight.append((id, pieces))
        for e in pieces { inFlightChunks[e.offset >> Self.chunkShift, default: []].append(e) }
        inFlightBytes += pieces.reduce(0) { $0 + $1.length }
        return id
    }

    /// Moves every dirty extent into a new batch in flight (a Flush, a
    /// shutdown): the caller writes them back and ends the batch. Nil when
    /// nothing is dirty.
    public func takeAll() -> (id: UInt64, extents: [CacheExtent])? {
        guard dirtyExtents > 0 else { return nil }
        let extents = dropDirty()
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
            forEachChunk(a.start, a.end) { key in
                var list = chunks[key]!
                chunks[key] = nil
                var i = Self.first(list, endingAfter: a.start)
                while i < list.count, list[i].offset < a.end {
                    if list[i].sequence == a.sequence {
                        let e = list.remove(at: i)
                        dirtyBytes -= e.length
                        dirtyExtents -= 1
                        taken.append(e)
                    } else {
                        i += 1
                    }
                }
                if !list.isEmpty { chunks[key] = list }
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
        // Extents in flight never overlap one another: an offset names one.
        for e in batch.extents {
            let key = e.offset >> Self.chunkShift
            guard var list = inFlightChunks[key] else { continue }
            inFlightChunks[key] = nil
            if let j = list.firstIndex(where: { $0.offset == e.offset }) { list.remove(at: j) }
            if !list.isEmpty { inFlightChunks[key] = list }
        }
        if !success && keep { reinsertUnder(batch.extents) }
    }

    /// Empties the dirty set (a power cut, a Format NVM, a Flush) and
    /// returns what it held, in offset order.
    @discardableResult
    public func dropDirty() -> [CacheExtent] {
        let extents = dirty
        chunks.removeAll()
        dirtyBytes = 0
        dirtyExtents = 0
        arrivals.removeAll()
        arrivalsHead = 0
        return extents
    }

    /// Starts a batch of extents the caller chose (the survivors of a power
    /// cut, a write that does not fit): written back like a Flush's.
    public func startBatch(of extents: [CacheExtent]) -> UInt64 { startBatch(extents) }
}
