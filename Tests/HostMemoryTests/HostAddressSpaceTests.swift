import Foundation
import BlockIO
@testable import HostMemory
import Synchronization
import Testing

/// Runs `body(i)` on `n` new threads and waits for all of them.
private func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0 ..< n {
        group.enter()
        Thread {
            body(i)
            group.leave()
        }.start()
    }
    group.wait()
}

@Suite("host address space (CONTRACT §1)")
struct HostAddressSpaceTests {
    let a = try! AnonymousMemory(size: 0x1000)
    let b = try! AnonymousMemory(size: 0x2000)

    func twoRegions() throws -> HostAddressSpace {
        let s = HostAddressSpace()
        try s.map(base: 0x3000, length: 0x2000, pointer: b.pointer, name: "b", kind: .hostPrivate)
        try s.map(base: 0x1000, length: 0x1000, pointer: a.pointer, name: "a", kind: .userMemory)
        return s
    }

    @Test(arguments: [
        (UInt64(0x0FFF), String?.none), (0x1000, "a"), (0x1FFF, "a"), (0x2000, nil), (0x2FFF, nil),
        (0x3000, "b"), (0x4FFF, "b"), (0x5000, nil), (UInt64.max, nil), (0, nil),
    ])
    func lookupAtBoundaries(_ address: UInt64, _ name: String?) throws {
        let s = try twoRegions()
        #expect(s.region(containing: address)?.name == name)
        #expect((s.pointer(address, length: 1) != nil) == (name != nil))
    }

    @Test func pointerRanges() throws {
        let s = try twoRegions()
        #expect(s.pointer(0x1000, length: 0x1000) == a.pointer)
        #expect(s.pointer(0x1FFF, length: 1) == a.pointer + 0xFFF)
        #expect(s.pointer(0x1FFF, length: 2) == nil)          // crosses the end of a
        #expect(s.pointer(0x1800, length: 0x801) == nil)
        #expect(s.pointer(0x3000, length: 0x2000) == b.pointer)
        #expect(s.pointer(0x3001, length: 0x2000) == nil)
        #expect(s.pointer(0x4000, length: 0) == b.pointer + 0x1000)
        #expect(s.pointer(UInt64.max, length: 2) == nil)       // overflow
        #expect(s.pointer(0x1000, length: -1) == nil)
    }

    @Test(arguments: [
        (UInt64(0x0), 0x1001, HostMemoryError.Kind?.some(.overlap)),
        (0x1FFF, 1, .overlap),
        (0x800, 0x2000, .overlap),
        (0x1800, 0x100, .overlap),
        (0x2000, 0x2000, .overlap),
        (0x0, 0x1000, nil),
        (0x2000, 0x1000, nil),
        (0x9000, 0, .zeroLength),
        (0x9000, -5, .zeroLength),
        (UInt64.max - 10, 100, .addressOverflow),
        (UInt64.max - 99, 100, .addressOverflow),
        (UInt64.max - 100, 100, nil),
    ])
    func mapValidation(_ base: UInt64, _ length: Int, _ expected: HostMemoryError.Kind?) throws {
        let s = try twoRegions()
        let m = try AnonymousMemory(size: 0x4000)
        do {
            try s.map(base: base, length: length, pointer: m.pointer, name: "new", kind: .temporary)
            #expect(expected == nil)
            #expect(s.region(containing: base)?.name == "new")
            #expect(s.regions.count == 3)
        } catch {
            #expect(error.kind == expected)
            #expect(s.regions.count == 2)
        }
    }

    @Test func unmapAndRemap() throws {
        let s = try twoRegions()
        let id = try s.map(base: 0x8000, length: 0x1000, pointer: a.pointer, name: "t", kind: .temporary)
        #expect(s.pointer(0x8000, length: 16) == a.pointer)
        s.unmap(id)
        #expect(s.pointer(0x8000, length: 16) == nil)
        #expect(s.region(containing: 0x8000) == nil)
        s.unmap(id)                                             // unknown: ignored
        #expect(s.regions.map(\.name) == ["a", "b"])
        try s.map(base: 0x8000, length: 0x1000, pointer: b.pointer, name: "t2", kind: .temporary)
        #expect(s.pointer(0x8000, length: 16) == b.pointer)
        #expect(s.regions.map(\.base) == [0x1000, 0x3000, 0x8000])
        #expect(s.regions.map(\.kind) == [.userMemory, .hostPrivate, .temporary])
    }

    @Test func readWriteAcrossAdjacentRegionsAndUnbacked() throws {
        let s = HostAddressSpace()
        try s.map(base: 0x1000, length: 0x1000, pointer: a.pointer, name: "a", kind: .userMemory)
        try s.map(base: 0x2000, length: 0x2000, pointer: b.pointer, name: "b", kind: .hostPrivate)
        let bytes: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        #expect(bytes.withUnsafeBytes { s.write(0x1FFC, from: $0) })
        #expect(a.pointer.load(fromByteOffset: 0xFFC, as: UInt8.self) == 1)
        #expect(b.pointer.load(fromByteOffset: 3, as: UInt8.self) == 8)
        #expect(s.readUInt64(0x1FFC) == 0x0807_0605_0403_0201)
        // Crossing the end of b into nothing: refused, nothing written.
        #expect(!bytes.withUnsafeBytes { s.write(0x3FFC, from: $0) })
        #expect(b.pointer.load(fromByteOffset: 0x1FFC, as: UInt32.self) == 0)
        #expect(s.readUInt64(0x3FFC) == nil)
        #expect(s.readUInt64(0x0FFC) == nil)
        var out = [UInt8](repeating: 0xEE, count: 8)
        #expect(!out.withUnsafeMutableBytes { s.read(0x0FFC, into: $0) })
        #expect(out == [UInt8](repeating: 0xEE, count: 8))
        #expect(s.writeUInt64(0x2000, 0x1122_3344_5566_7788))
        #expect(b.pointer.load(as: UInt8.self) == 0x88)
    }

    @Test func highestEnd() throws {
        let s = HostAddressSpace()
        #expect(s.highestEnd(alignedTo: 4096) == 0)
        try s.map(base: 0, length: 0x10001, pointer: b.pointer, name: "mem", kind: .userMemory)
        #expect(s.highestEnd(alignedTo: 4096) == 0x11000)
        #expect(s.highestEnd(alignedTo: 1) == 0x10001)
        #expect(s.highestEnd(alignedTo: 0) == 0x10001)
        try s.map(base: 0x40000, length: 0x1000, pointer: a.pointer, name: "cmb", kind: .controllerMemoryBuffer)
        #expect(s.highestEnd(alignedTo: 1 << 20) == 1 << 20)
    }

    /// A region pinned by an AIO is out of lookups at once when unmapped,
    /// but its memory is released to the owner only after the last unpin.
    @Test func removalOfAPinnedRegionWaitsForTheUnpin() throws {
        let s = HostAddressSpace()
        let t = try s.mapAnywhere(length: 0x2000, pointer: b.pointer, name: "t", kind: .temporary)
        var iov: [IOVector] = []
        var pinned: DMAPin? = DMAPin()
        #expect(PRPMapper.map(prp1: t.base + 0x100, prp2: 0, length: 0x100, pageSize: 4096,
                              into: &iov, pinning: &pinned, in: s) == .success)
        let pin = try #require(pinned)
        #expect(pin.count == 1)
        let release = try #require(s.unmapWhenIdle(t.id))
        #expect(s.pointer(t.base, length: 1) == nil)
        #expect(!release.isIdle)
        let notified = Counter()
        release.notify { notified.add() }
        #expect(notified.value == 0)
        s.unpin(pin)
        #expect(release.isIdle && notified.value == 1)
        release.wait()   // returns at once
        // An unpinned region goes at once.
        let u = try s.mapAnywhere(length: 0x1000, pointer: b.pointer, name: "u", kind: .temporary)
        #expect(s.unmapWhenIdle(u.id) == nil)
    }

    /// The mappers pin the regions of a command's data in the lookup that
    /// finds them; a failed mapping leaves nothing pinned.
    @Test func mappingWithPinningPinsEachRegionOnce() throws {
        let s = HostAddressSpace()
        // Memory of the region's whole length: the PRP list is written into it.
        let memory = try AnonymousMemory(size: 0x4000)
        defer { withExtendedLifetime(memory) {} }
        let t = try s.mapAnywhere(length: 0x4000, pointer: memory.pointer, name: "t", kind: .temporary)
        var iov: [IOVector] = []
        var pin: DMAPin? = DMAPin()
        // Three pages of one region (PRP list in the same region): one pin.
        #expect(s.writeUInt64(t.base + 0x3000, t.base + 0x1000) && s.writeUInt64(t.base + 0x3008, t.base + 0x2000))
        let status = PRPMapper.map(prp1: t.base, prp2: t.base + 0x3000, length: 0x3000, pageSize: 4096,
                                   into: &iov, pinning: &pin, in: s)
        #expect(status == .success && pin?.count == 1)
        let release = try #require(s.unmapWhenIdle(t.id))
        #expect(!release.isIdle)
        s.unpin(pin!)
        #expect(release.isIdle)
        // A failure releases what the walk had pinned.
        let u = try s.mapAnywhere(length: 0x1000, pointer: b.pointer, name: "u", kind: .temporary)
        var failed: DMAPin? = DMAPin()
        iov = []
        let bad = PRPMapper.map(prp1: u.base, prp2: 0x7000_0000_0000, length: 0x2000, pageSize: 4096,
                                into: &iov, pinning: &failed, in: s)
        #expect(bad == .dataTransferError && failed?.count == 0)
        #expect(s.unmapWhenIdle(u.id) == nil)   // nothing holds it
    }

    @Test func mapAnywhereFillsGaps() throws {
        let s = HostAddressSpace()
        try s.map(base: 0, length: 0x10000, pointer: b.pointer, name: "mem", kind: .userMemory)
        let t1 = try s.mapAnywhere(length: 100, pointer: a.pointer, name: "t1", kind: .temporary, above: 0x8000)
        let t2 = try s.mapAnywhere(length: 0x1800, pointer: a.pointer, name: "t2", kind: .temporary, above: 0x8000)
        let t3 = try s.mapAnywhere(length: 10, pointer: a.pointer, name: "t3", kind: .temporary, above: 0x8000)
        #expect([t1.base, t2.base, t3.base] == [0x10000, 0x11000, 0x13000])
        s.unmap(t2.id)
        let t4 = try s.mapAnywhere(length: 0x2000, pointer: a.pointer, name: "t4", kind: .temporary)
        #expect(t4.base == 0x11000)
        let t5 = try s.mapAnywhere(length: 0x2001, pointer: a.pointer, name: "t5", kind: .temporary)
        #expect(t5.base == 0x14000)
        #expect(s.pointer(t4.base + 1, length: 1) == a.pointer + 1)
        #expect(throws: HostMemoryError.self) {
            try s.mapAnywhere(length: 0x1000, pointer: a.pointer, name: "x", kind: .temporary, above: UInt64.max - 10)
        }
    }

    @Test func anonymousMemory() throws {
        let m = try AnonymousMemory(size: 10000)
        #expect(m.size == 10000)
        #expect(UInt(bitPattern: m.pointer) % 4096 == 0)
        #expect(m.buffer.allSatisfy { $0 == 0 })
        #expect(throws: HostMemoryError.self) { try AnonymousMemory(size: 0) }
    }

    /// Temporary regions mapped and unmapped on several threads while others
    /// look up addresses: every lookup sees either the right region or none.
    @Test func concurrentMapUnmapAndLookup() throws {
        let s = HostAddressSpace()
        let mem = try AnonymousMemory(size: 1 << 20)
        try s.map(base: 0, length: mem.size, pointer: mem.pointer, name: "mem", kind: .userMemory)
        let buffers = try (0 ..< 4).map { _ in try AnonymousMemory(size: 4096) }
        let failures = Atomic<Int>(0)
        let lookups = Atomic<Int>(0)
        let writersDone = Atomic<Int>(0)
        runThreads(8) { t in
            if t < 4 {
                // Writers: a fixed base each, plus mapAnywhere above everything.
                let base = UInt64(0x1_0000_0000) + UInt64(t) * 0x10_0000
                let buffer = buffers[t]
                for _ in 0 ..< 10000 {
                    guard let id = try? s.map(base: base, length: 4096, pointer: buffer.pointer, name: "t\(t)",
                                              kind: .temporary)
                    else { failures.add(1, ordering: .relaxed); continue }
                    if s.pointer(base + 8, length: 8) != buffer.pointer + 8 { failures.add(1, ordering: .relaxed) }
                    s.unmap(id)
                    if s.pointer(base, length: 1) != nil { failures.add(1, ordering: .relaxed) }
                    guard let any = try? s.mapAnywhere(length: 4096, pointer: buffer.pointer, name: "a\(t)",
                                                       kind: .temporary, above: 1 << 40)
                    else { failures.add(1, ordering: .relaxed); continue }
                    if s.pointer(any.base, length: 4096) != buffer.pointer { failures.add(1, ordering: .relaxed) }
                    s.unmap(any.id)
                }
                writersDone.add(1, ordering: .releasing)
            } else {
                // Readers: mem never moves; temporaries are seen whole or not at all.
                var n = 0
                while writersDone.load(ordering: .acquiring) < 4 {
                    let addr = UInt64((n &* 7919) % (1 << 20 - 8))
                    if s.pointer(addr, length: 8) != mem.pointer + Int(addr) { failures.add(1, ordering: .relaxed) }
                    for w in 0 ..< 4 {
                        let base = UInt64(0x1_0000_0000) + UInt64(w) * 0x10_0000
                        if let p = s.pointer(base + 16, length: 16), p != buffers[w].pointer + 16 {
                            failures.add(1, ordering: .relaxed)
                        }
                    }
                    if s.region(containing: 100)?.name != "mem" { failures.add(1, ordering: .relaxed) }
                    n += 1
                }
                lookups.add(n, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(lookups.load(ordering: .relaxed) > 0)
        #expect(s.regions.map(\.name) == ["mem"])
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}
