import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

@Suite struct DataPathTests {
    /// (offset, length) cases around block boundaries for block size `bs`.
    static func cases(_ bs: Int) -> [(UInt64, Int)] {
        [(0, bs), (0, 4 * bs), (UInt64(bs), 3), (7, 5), (UInt64(bs - 1), 2), (UInt64(bs) + 1, bs * 2),
         (3, bs * 5 - 7), (UInt64(bs * 2), bs * 3 + 1), (100, 9000), (UInt64(bs * 7) - 2, 3 * bs + 4), (1, 1)]
    }

    /// Reads into a buffer mapped once (as the bridge's pooled reply
    /// buffers are): the data is right at every offset and edge, the one
    /// mapping is all the host address space gains, and it stays until
    /// `unmap`.
    /// Each thread gets an I/O queue of its own (round robin on its first
    /// I/O) and keeps it: two workers never share a queue while there are
    /// as many queues as workers.
    @Test func threadsGetQueuesOfTheirOwn() throws {
        let rig = try Rig([(NullBackend(size: 1 << 20), 9)])
        let queues = rig.host.activeIOQueues.load(ordering: .relaxed)
        #expect(queues >= 2)
        let picked = Locked<[[UInt16]]>([])
        let threads = min(queues, 4)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // concurrentPerform may run two iterations on one thread: a
            // thread's picks are its own (one qid), whichever iteration.
            let qids = (0..<3).map { _ in rig.host.pickIOQueue().qid }
            picked.withLock { $0.append(qids) }
        }
        for qids in picked.withLock({ $0 }) { #expect(Set(qids).count == 1) }
        // Threads made one after another get different queues too.
        var seen: [UInt16] = []
        for _ in 0..<queues {
            let t = Thread { let q = rig.host.pickIOQueue().qid; picked.withLock { $0 = [[q]] } }
            t.start()
            while !t.isFinished { usleep(100) }
            seen.append(picked.withLock { $0[0][0] })
        }
        #expect(Set(seen).count == queues)
    }

    @Test func readsThroughAMappedBuffer() throws {
        let tb = TestBackend(size: 256 * 1024)
        let image = pattern(256 * 1024, seed: 42)
        tb.write(image, at: 0)
        let rig = try Rig([(tb, 9)])
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 4096)
        defer { memory.deallocate() }
        let before = rig.space.regions.count
        let mapping = try #require(rig.host.mapBuffer(memory.baseAddress!, count: memory.count))
        #expect(rig.space.regions.count == before + 1)
        for (offset, length) in Self.cases(512) + [(4096, 16384), (512, 8192)] {
            let buffer = UnsafeMutableRawBufferPointer(rebasing: memory[0..<length])
            buffer.initializeMemory(as: UInt8.self, repeating: 0xEE)
            let r = rig.host.read(nsid: 1, offset: offset, into: buffer, mapped: mapping)
            #expect(r.value == length)
            #expect(Array(buffer) == Array(image[Int(offset)..<Int(offset) + length]), "offset \(offset) length \(length)")
            #expect(rig.space.regions.count == before + 1, "no region added per read")
        }
        // A buffer the mapping does not cover is mapped for the read as before.
        let other = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { other.deallocate() }
        #expect(rig.host.read(nsid: 1, offset: 8192, into: other, mapped: mapping).value == 4096)
        #expect(Array(other) == Array(image[8192..<12288]))
        #expect(mapping.isMapped)
        mapping.unmap()
        #expect(!mapping.isMapped)
        #expect(rig.space.regions.count == before)
    }

    /// Writes from a buffer mapped once (as the bridge keeps each worker's
    /// write payload mapped): the data lands at every offset and edge, no
    /// region is added per write, and a mapping made by another host is
    /// never used (that host's address space means nothing here).
    @Test func writesThroughAMappedBuffer() throws {
        let tb = TestBackend(size: 256 * 1024)
        let rig = try Rig([(tb, 9)])
        let other = try Rig([(TestBackend(size: 64 * 1024), 9)])
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 4096)
        defer { memory.deallocate() }
        let before = rig.space.regions.count
        let mapping = try #require(rig.host.mapBuffer(memory.baseAddress!, count: memory.count))
        let foreign = try #require(other.host.mapBuffer(memory.baseAddress!, count: memory.count))
        defer { foreign.unmap() }
        #expect(rig.host.uses(mapping) && !rig.host.uses(foreign))
        var model = [UInt8](repeating: 0, count: 256 * 1024)
        for (i, (offset, length)) in (Self.cases(512) + [(4096, 16384), (512, 8192)]).enumerated() {
            let data = pattern(length, seed: UInt64(i) + 7)
            let buffer = UnsafeMutableRawBufferPointer(rebasing: memory[0..<length])
            buffer.copyBytes(from: data)
            let own = i.isMultiple(of: 2)
            let mapsBefore = rig.space.regionsMapped
            let r = rig.host.write(nsid: 1, offset: offset, from: UnsafeRawBufferPointer(buffer),
                                   mapped: own ? mapping : foreign)
            #expect(r.value == length)
            model.replaceSubrange(Int(offset)..<Int(offset) + length, with: data)
            #expect(rig.space.regions.count == before + 1, "no region left behind per write")
            // Whole blocks go through the mapping (edges through bounce pages,
            // which are mapped per block); the foreign one is mapped per command.
            let bounces = UInt64(BlockSpan(offset: offset, length: length, blockSize: 512).edges.count)
            let middle: UInt64 = BlockSpan(offset: offset, length: length, blockSize: 512).middleBlocks > 0 ? 1 : 0
            #expect(rig.space.regionsMapped - mapsBefore == bounces + (own ? 0 : middle), "case \(i)")
        }
        #expect(rig.read(1, 0, model.count).value == model)
        #expect(mapping.isMapped)
        mapping.unmap()
        #expect(rig.space.regions.count == before)
    }

    @Test(arguments: [UInt8(9), 12])
    func roundTripsOverTwoNamespaces(lbads: UInt8) throws {
        let a = TestBackend(size: 256 * 1024), b = TestBackend(size: 128 * 1024)
        let rig = try Rig([(a, lbads), (b, 21 - lbads)])
        var model: [UInt32: [UInt8]] = [1: [UInt8](repeating: 0, count: 256 * 1024),
                                        2: [UInt8](repeating: 0, count: 128 * 1024)]
        for nsid: UInt32 in [1, 2] {
            let bs = rig.host.namespaceInfo(nsid)!.blockSize
            for (i, (offset, length)) in Self.cases(bs).enumerated() {
                let data = pattern(length, seed: UInt64(i) + 100 * UInt64(nsid))
                #expect(rig.write(nsid, offset, data).value == length)
                model[nsid]!.replaceSubrange(Int(offset)..<Int(offset) + length, with: data)
                #expect(rig.read(nsid, offset, length).value == data, "ns \(nsid) case \(i)")
            }
        }
        #expect(a.contents == model[1])
        #expect(b.contents == model[2])
        // Unaligned reads of everything written, in odd pieces.
        var got: [UInt8] = []
        var offset: UInt64 = 0
        while offset < 256 * 1024 {
            let piece = try #require(rig.read(1, offset, 1000).value)
            got += piece
            offset += UInt64(piece.count)
        }
        #expect(got == model[1])
    }

    @Test(arguments: [ImageBackend.ExecutionMode.inline, .threadPool(workers: 4)])
    func roundTripsOnAnImageFile(mode: ImageBackend.ExecutionMode) throws {
        let image = try TempImage(size: 1 << 20)
        let backend = try ImageBackend(path: image.path, mode: mode)
        let rig = try Rig([(backend, 9)])
        var model = [UInt8](repeating: 0, count: 1 << 20)
        for (i, (offset, length)) in (Self.cases(512) + [(5000, 700 * 1024)]).enumerated() {
            let data = pattern(length, seed: UInt64(i) + 7)
            #expect(rig.write(1, offset, data).value == length)
            model.replaceSubrange(Int(offset)..<Int(offset) + length, with: data)
        }
        #expect(rig.read(1, 0, 1 << 20).value == model)
        #expect(rig.host.flush(nsid: 1).error == nil)
        #expect(image.contents == model)
    }

    @Test func splitsTransfersLargerThanMDTS() throws {
        var p = ControllerParameters()
        p.mdts = 1  // 8 KiB
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)], parameters: p)
        #expect(rig.host.maxTransfer == 8192)
        let data = pattern(100 * 1024 + 77, seed: 1)
        #expect(rig.write(1, 333, data).value == data.count)
        #expect(rig.read(1, 333, data.count).value == data)
        #expect(backend.read(offset: 333, count: data.count) == data)
        // Every data AIO respected the limit: the controller would have refused more.
        #expect(backend.submitted.allSatisfy { $0.length <= 8192 })
        #expect(backend.submitted.filter { $0.operation == .write }.count >= 13)
    }

    @Test func largeTransfersUsePRPLists() throws {
        // 2 MiB with MDTS 0 (unlimited): one PRP list page per command.
        var p = ControllerParameters()
        p.mdts = 0
        let backend = TestBackend(size: 8 << 20)
        let rig = try Rig([(backend, 12)], parameters: p)
        #expect(rig.host.maxTransfer == 2 << 20)
        let data = pattern(5 << 20, seed: 5)
        #expect(rig.write(1, 4096, data).value == data.count)
        #expect(rig.read(1, 4096, data.count).value == data)
    }

    @Test func pastTheEnd() throws {
        let backend = TestBackend(size: 64 * 1024)
        let rig = try Rig([(backend, 9)])
        let end: UInt64 = 64 * 1024
        backend.write(pattern(100, seed: 4), at: end - 100)
        #expect(rig.read(1, end - 100, 4096).value == pattern(100, seed: 4))
        #expect(rig.read(1, end, 10).value == [])
        #expect(rig.read(1, end + 4096, 10).value == [])
        #expect(rig.write(1, end, [1]).error?.errno == ENOSPC)
        #expect(rig.write(1, end + 1000, [1]).error?.errno == ENOSPC)
        // Crossing the end: what fits is written, the count is short.
        #expect(rig.write(1, end - 3, [1, 2, 3, 4, 5]).value == 3)
        #expect(backend.read(offset: end - 3, count: 3) == [1, 2, 3])
        #expect(rig.host.writeZeroes(nsid: 1, offset: end, length: 1).error?.errno == ENOSPC)
        #expect(rig.read(7, 0, 1).error?.errno == ENODEV)
    }

    @Test func readsMapTheCallersBufferForTheCommand() throws {
        let backend = TestBackend(size: 1 << 20)
        let rule = backend.addRule(.hold(operations: [.read], times: 1))
        let rig = try Rig([(backend, 9)])
        let result = ResultBox()
        onThreadsAsync { result.set(rig.read(1, 0, 64 * 1024)) }
        #expect(backend.waitForHeld(count: 1))
        // While the read is in flight, the buffer is a temporary region of exactly its size.
        let temps = rig.space.regions.filter { $0.kind == .temporary }
        #expect(temps.count == 1 && temps.first?.length == 64 * 1024)
        backend.releaseAll()
        backend.removeRule(rule)
        #expect(result.wait()?.value?.count == 64 * 1024)
        #expect(!rig.space.regions.contains { $0.kind == .temporary })
    }

    @Test func flushDeallocateAndWriteZeroes() throws {
        let backend = TestBackend(size: 40 << 20)
        let rig = try Rig([(backend, 9)])
        let data = pattern(64 * 1024, seed: 11)
        #expect(rig.write(1, 0, data).value == data.count)

        #expect(rig.host.flush(nsid: 1).error == nil)
        #expect(backend.submitted.contains { $0.operation == .flush })

        // Deallocate [1000, 9000): whole LBAs 2..<17 by DSM, edges zeroed by writes.
        #expect(rig.host.deallocate(nsid: 1, offset: 1000, length: 8000).error == nil)
        var model = data
        model.replaceSubrange(1000..<9000, with: [UInt8](repeating: 0, count: 8000))
        #expect(rig.read(1, 0, data.count).value == model)
        #expect(backend.submitted.contains { $0.operation == .discard && $0.offset == 1024 && $0.length == 15 * 512 })

        // Write zeroes [20000, 30001).
        #expect(rig.host.writeZeroes(nsid: 1, offset: 20000, length: 10001).error == nil)
        model.replaceSubrange(20000..<30001, with: [UInt8](repeating: 0, count: 10001))
        #expect(rig.read(1, 0, data.count).value == model)
        #expect(backend.submitted.contains { $0.operation == .writeZeroes && $0.offset == 20480 })

        // More than 65536 LBAs: split.
        backend.write([UInt8](repeating: 0xAB, count: 40 << 20), at: 0)
        let before = backend.submitted.filter { $0.operation == .writeZeroes }.count
        #expect(rig.host.writeZeroes(nsid: 1, offset: 0, length: 33 << 20).error == nil)
        let zeroes = backend.submitted.filter { $0.operation == .writeZeroes }.dropFirst(before)
        #expect(zeroes.count == 2)
        #expect(zeroes.map(\.length).reduce(0, +) == 33 << 20)
        #expect(backend.read(offset: (33 << 20) - 1, count: 2) == [0, 0xAB])
    }

    @Test func backendFailuresBecomeEIO() throws {
        let backend = TestBackend(size: 1 << 20)
        backend.addRule(.fail(EIO, operations: [.read], range: 8192..<16384))
        backend.addRule(.fail(ENOSPC, operations: [.write], range: 0..<512))
        let rig = try Rig([(backend, 9)])
        let r = rig.read(1, 8000, 1000).error
        #expect(r?.errno == EIO)
        #expect(r?.status?.kind == .unrecoveredReadError)
        let w = rig.write(1, 0, [1, 2, 3]).error  // RMW: the read succeeds, the write fails
        #expect(w?.errno == EIO)
        #expect(w?.status?.kind == .writeFault)
        #expect(rig.read(1, 0, 100).value?.count == 100)
    }

    @Test func statusToErrnoTable() {
        #expect(errnoForStatus(.success) == 0)
        #expect(errnoForStatus(NVMeStatus.lbaOutOfRange.withDNR) == ENOSPC)
        #expect(errnoForStatus(.capacityExceeded) == ENOSPC)
        #expect(errnoForStatus(NVMeStatus.namespaceWriteProtected.withDNR) == EROFS)
        #expect(errnoForStatus(.attemptedWriteToReadOnlyRange) == EROFS)
        #expect(errnoForStatus(.invalidNamespace) == ENODEV)
        #expect(errnoForStatus(.invalidField) == EINVAL)
        #expect(errnoForStatus(.invalidOpcode) == EINVAL)
        #expect(errnoForStatus(.invalidQueueIdentifier) == EINVAL)
        #expect(errnoForStatus(.unrecoveredReadError) == EIO)
        #expect(errnoForStatus(.writeFault) == EIO)
        #expect(errnoForStatus(.dataTransferError) == EIO)
        #expect(errnoForStatus(.internalError) == EIO)
        #expect(errnoForStatus(.endToEndGuardCheckError) == EIO)
        #expect(errnoForStatus(.abortRequested) == EIO)
        #expect(errnoForStatus(.sqDeletion) == EIO)
        #expect(errnoForStatus(.compareFailure) == EILSEQ)
        #expect(errnoForStatus(.formatInProgress) == EBUSY)
        #expect(errnoForStatus(NVMeStatus(raw: 0x7FF)) == EIO)
    }
}

/// A result handed from another thread.
final class ResultBox: @unchecked Sendable {
    private let lock = NSCondition()
    private var value: Result<[UInt8], HostError>?
    func set(_ v: Result<[UInt8], HostError>) { lock.lock(); value = v; lock.broadcast(); lock.unlock() }
    /// Waits (hang guard 60 s, not a timing assertion).
    func wait() -> Result<[UInt8], HostError>? {
        lock.lock(); defer { lock.unlock() }
        let end = Date().addingTimeInterval(60)
        while value == nil && lock.wait(until: end) {}
        return value
    }
}

func onThreadsAsync(_ body: @escaping @Sendable () -> Void) {
    Thread { body() }.start()
}
