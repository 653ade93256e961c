import BlockIO
import Testing

/// `WriteCache` alone: extents across chunk boundaries, superseded bytes,
/// eviction order, a failed write-back put back under newer data.
@Suite("WriteCache")
struct WriteCacheUnitTests {
    static func buffer(_ byte: UInt8, _ count: Int) -> CacheBuffer {
        let b = CacheBuffer(count: count)
        b.bytes.initializeMemory(as: UInt8.self, repeating: byte)
        return b
    }

    static func bytes(_ e: CacheExtent) -> [UInt8] { Array(UnsafeRawBufferPointer(start: e.pointer, count: e.length)) }

    @Test("A write across a 1 MiB boundary is held per chunk; overlay, discard and budget follow")
    func acrossChunks() {
        let budget = CacheBudget(capacity: 8 << 20)
        let c = WriteCache(budget: budget)
        let start: UInt64 = (1 << 20) - 4096
        c.insert(offset: start, length: 8192, buffer: Self.buffer(0xAA, 8192))
        #expect(c.dirty.map { [$0.offset, UInt64($0.length)] } == [[start, 4096], [1 << 20, 4096]])
        #expect(c.dirtyBytes == 8192 && budget.used == 8192)
        c.insert(offset: start + 2048, length: 4096, buffer: Self.buffer(0xBB, 4096))
        let o = c.overlay(start: start, end: start + 8192)
        // The second write crosses the boundary too: two pieces.
        #expect(o.map(\.offset) == [start, start + 2048, 1 << 20, start + 6144])
        #expect(Self.bytes(o[1]) == [UInt8](repeating: 0xBB, count: 2048) && Self.bytes(o[2]) == [UInt8](repeating: 0xBB, count: 2048))
        c.discard(start: start + 1024, end: start + 7168)
        #expect(c.dirty.map { [$0.offset - start, UInt64($0.length)] } == [[0, 1024], [7168, 1024]])
        #expect(budget.used == 2048)
        c.dropDirty()
        #expect(c.isIdle && budget.used == 0)
    }

    @Test("Eviction takes the oldest write first; a failed batch goes back under newer data")
    func evictionAndReinsert() {
        let budget = CacheBudget(capacity: 3 * 512)
        let c = WriteCache(budget: budget)
        c.insert(offset: 0, length: 512, buffer: Self.buffer(1, 512))
        c.insert(offset: 4096, length: 512, buffer: Self.buffer(2, 512))
        c.insert(offset: 8192, length: 512, buffer: Self.buffer(3, 512))
        let batch = try! #require(c.evict(toFit: 512))
        #expect(batch.extents.map(\.offset) == [0] && c.evictedExtents == 1)
        #expect(c.overlapsInFlight(start: 0, end: 512) && !c.overlapsInFlight(start: 512, end: 4096))
        // A newer write of half the evicted range, then the write-back fails.
        c.insert(offset: 256, length: 256, buffer: Self.buffer(9, 256))
        c.endBatch(batch.id, success: false)
        #expect(c.inFlight.isEmpty)
        let o = c.overlay(start: 0, end: 512)
        #expect(o.map { [$0.offset, UInt64($0.length)] } == [[0, 256], [256, 256]])
        #expect(Self.bytes(o[0]).allSatisfy { $0 == 1 } && Self.bytes(o[1]).allSatisfy { $0 == 9 })
        // After a power cut (keep: false) nothing comes back.
        let all = try! #require(c.takeAll())
        c.endBatch(all.id, success: false, keep: false)
        #expect(c.isIdle && budget.used == 0)
    }
}
