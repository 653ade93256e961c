import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// The volatile write cache (`--vwc`, docs/WRITE-CACHE.md): Flush, FUA,
/// eviction, reads through the cache, the feature, shutdown, power cuts.
@Suite("Write cache")
struct WriteCacheTests {
    static let block = 512

    /// A host over one 2048-block namespace with a cache of `cacheBlocks`.
    static func host(cacheBlocks: Int = 1024, configure: (inout ControllerParameters) -> Void = { _ in }) throws -> TestHost {
        var p = ControllerParameters()
        p.writeCacheSize = cacheBlocks * block
        configure(&p)
        let h = try TestHost(parameters: p)
        h.bringUp()
        return h
    }

    static func write(_ h: TestHost, slba: UInt64, _ data: [UInt8], fua: Bool = false) -> NVMeStatus {
        precondition(data.count <= 4096, "one PRP")
        h.poke(TestHost.dataBase, data)
        var e = TestHost.write(slba: slba, nlb: data.count / block, prp1: TestHost.dataBase)
        if fua { e.cdw12 |= 1 << 30 }
        return h.run(e, qid: 1).status
    }

    static func read(_ h: TestHost, slba: UInt64, nlb: Int) -> [UInt8] {
        h.poke(TestHost.dataBase + 0x100000, [UInt8](repeating: 0xEE, count: nlb * block))
        precondition(nlb * block <= 8192, "two PRPs at most")
        let e = h.run(TestHost.read(slba: slba, nlb: nlb, prp1: TestHost.dataBase + 0x100000,
                                    prp2: nlb * block > 4096 ? TestHost.dataBase + 0x101000 : 0), qid: 1)
        #expect(e.status == .success)
        return h.peek(TestHost.dataBase + 0x100000, nlb * block)
    }

    static func flush(_ h: TestHost, nsid: UInt32 = 1) -> NVMeStatus {
        h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: nsid), qid: 1).status
    }

    static func image(_ h: TestHost, slba: UInt64, nlb: Int) -> [UInt8] {
        h.testBackend.read(offset: slba * UInt64(block), count: nlb * block)
    }

    static func fill(_ byte: UInt8, blocks: Int) -> [UInt8] { [UInt8](repeating: byte, count: blocks * block) }

    @Test("A Write is acknowledged from the cache; Read returns it; Flush writes each extent back, then flushes the image")
    func flushWritesBack() throws {
        let h = try Self.host()
        let tb = h.testBackend
        #expect(Self.write(h, slba: 8, Self.fill(0xA1, blocks: 2)) == .success)
        #expect(Self.write(h, slba: 100, Self.fill(0xB2, blocks: 1)) == .success)
        #expect(Self.image(h, slba: 8, nlb: 2) == Self.fill(0, blocks: 2))
        #expect(!tb.submitted.contains { $0.operation == .write })
        #expect(Self.read(h, slba: 8, nlb: 2) == Self.fill(0xA1, blocks: 2))
        let state = try #require(h.controller.writeCacheState(1))
        #expect(state.dirtyBytes == 3 * Self.block && state.dirtyRanges.map(\.0) == [8 * 512, 100 * 512])
        let before = tb.submitted.count
        #expect(Self.flush(h) == .success)
        let ops = tb.submitted[before...].map(\.operation)
        #expect(ops == [.write, .write, .flush])
        #expect(Self.image(h, slba: 8, nlb: 2) == Self.fill(0xA1, blocks: 2))
        #expect(Self.image(h, slba: 100, nlb: 1) == Self.fill(0xB2, blocks: 1))
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 0)
        // A Flush of every namespace (FFFFFFFFh) with nothing dirty: only the image flush.
        let n = tb.submitted.count
        #expect(Self.flush(h, nsid: 0xFFFF_FFFF) == .success)
        #expect(tb.submitted[n...].map(\.operation) == [.flush])
    }

    @Test("Reads overlapping cached extents partly return cached bytes where cached and image bytes elsewhere")
    func partialOverlap() throws {
        let h = try Self.host()
        h.testBackend.write(Self.fill(0x11, blocks: 16), at: 0)
        #expect(Self.write(h, slba: 0, Self.fill(0xA0, blocks: 8)) == .success)
        #expect(Self.write(h, slba: 4, Self.fill(0xB0, blocks: 2)) == .success)  // splits the first
        #expect(Self.write(h, slba: 12, Self.fill(0xC0, blocks: 1)) == .success)
        let expected = Self.fill(0xA0, blocks: 4) + Self.fill(0xB0, blocks: 2) + Self.fill(0xA0, blocks: 2)
            + Self.fill(0x11, blocks: 4) + Self.fill(0xC0, blocks: 1) + Self.fill(0x11, blocks: 3)
        #expect(Self.read(h, slba: 0, nlb: 16) == expected)
        #expect(Self.read(h, slba: 5, nlb: 2) == Self.fill(0xB0, blocks: 1) + Self.fill(0xA0, blocks: 1))
        #expect(h.controller.writeCacheState(1)?.dirtyRanges.map { [$0.0 / 512, UInt64($0.1) / 512] } == [[0, 4], [4, 2], [6, 2], [12, 1]])
        #expect(Self.flush(h) == .success)
        #expect(Self.image(h, slba: 0, nlb: 16) == expected)
    }

    @Test("FUA writes through (its bytes and a flush), superseding the cached bytes it covers")
    func forceUnitAccess() throws {
        let h = try Self.host()
        let tb = h.testBackend
        #expect(Self.write(h, slba: 0, Self.fill(0xA0, blocks: 4)) == .success)
        let n = tb.submitted.count
        #expect(Self.write(h, slba: 2, Self.fill(0xF0, blocks: 1), fua: true) == .success)
        #expect(tb.submitted[n...].map(\.operation) == [.write, .flush])
        #expect(Self.image(h, slba: 2, nlb: 1) == Self.fill(0xF0, blocks: 1))
        #expect(Self.read(h, slba: 0, nlb: 4) == Self.fill(0xA0, blocks: 2) + Self.fill(0xF0, blocks: 1) + Self.fill(0xA0, blocks: 1))
        #expect(Self.flush(h) == .success)
        #expect(Self.image(h, slba: 0, nlb: 4) == Self.fill(0xA0, blocks: 2) + Self.fill(0xF0, blocks: 1) + Self.fill(0xA0, blocks: 1))
    }

    @Test("A full cache evicts the oldest write first, as AIOs of the Write that needs room, and counts it")
    func evictionOrder() throws {
        let h = try Self.host(cacheBlocks: 4)
        for (i, lba) in [40, 10, 30, 20].enumerated() {
            #expect(Self.write(h, slba: UInt64(lba), Self.fill(UInt8(0xA0 + i), blocks: 1)) == .success)
        }
        // Rewriting LBA 40 makes it the newest: LBA 10 is now the oldest.
        #expect(Self.write(h, slba: 40, Self.fill(0xAF, blocks: 1)) == .success)
        #expect(Self.write(h, slba: 50, Self.fill(0xB0, blocks: 1)) == .success)
        #expect(Self.image(h, slba: 10, nlb: 1) == Self.fill(0xA1, blocks: 1))
        for lba in [20, 30, 40, 50] { #expect(Self.image(h, slba: UInt64(lba), nlb: 1) == Self.fill(0, blocks: 1)) }
        #expect(Self.write(h, slba: 60, Self.fill(0xB1, blocks: 2)) == .success)
        #expect(Self.image(h, slba: 30, nlb: 1) == Self.fill(0xA2, blocks: 1))
        #expect(Self.image(h, slba: 20, nlb: 1) == Self.fill(0xA3, blocks: 1))
        #expect(Self.image(h, slba: 40, nlb: 1) == Self.fill(0, blocks: 1))
        let state = try #require(h.controller.writeCacheState(1))
        #expect(state.evictedExtents == 3 && state.evictedBytes == 3 * 512 && state.dirtyBytes == 4 * 512)
        // A write larger than the whole cache goes straight to the image.
        #expect(Self.write(h, slba: 200, Self.fill(0xCC, blocks: 8)) == .success)
        #expect(Self.image(h, slba: 200, nlb: 8) == Self.fill(0xCC, blocks: 8))
    }

    @Test("Turning the Volatile Write Cache feature off writes the cache back; writes then go through")
    func featureOff() throws {
        let h = try Self.host()
        #expect(Self.write(h, slba: 3, Self.fill(0xD0, blocks: 1)) == .success)
        let off = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x06, cdw11: 0))
        #expect(off.status == .success)
        #expect(Self.image(h, slba: 3, nlb: 1) == Self.fill(0xD0, blocks: 1))
        #expect(Self.write(h, slba: 4, Self.fill(0xD1, blocks: 1)) == .success)
        #expect(Self.image(h, slba: 4, nlb: 1) == Self.fill(0xD1, blocks: 1))
        #expect(h.controller.writeCacheState(1)?.enabled == false)
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 0)
    }

    @Test("A clean shutdown (CC.SHN) writes the cache back before CSTS.SHST says complete")
    func shutdownWritesBack() throws {
        let h = try Self.host()
        #expect(Self.write(h, slba: 7, Self.fill(0xE0, blocks: 3)) == .success)
        h.write32(RegisterOffset.cc, 0x460001 | 1 << 14)
        #expect(h.wait { h.csts.shst == 2 })
        #expect(Self.image(h, slba: 7, nlb: 3) == Self.fill(0xE0, blocks: 3))
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 0)
    }

    @Test("Write Zeroes, deallocate, Write Uncorrectable and Compare agree with the cache")
    func otherCommands() throws {
        let h = try Self.host()
        #expect(Self.write(h, slba: 0, Self.fill(0xA0, blocks: 8)) == .success)
        // Compare sees the cached bytes.
        h.poke(TestHost.dataBase, Self.fill(0xA0, blocks: 2))
        var cmp = TestHost.read(slba: 2, nlb: 2, prp1: TestHost.dataBase)
        cmp.opcode = NVMOpcode.compare.rawValue
        #expect(h.run(cmp, qid: 1).status == .success)
        // Write Zeroes over part of it: zeros read back, and a Flush does not bring the old bytes back.
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 2; wz.nlb = 1
        #expect(h.run(wz, qid: 1).status == .success)
        #expect(Self.read(h, slba: 0, nlb: 4) == Self.fill(0xA0, blocks: 2) + Self.fill(0, blocks: 2))
        // Deallocate of block 5.
        var range = [UInt8](repeating: 0, count: 16)
        range.withUnsafeMutableBytes { $0.put32(1, at: 4); $0.put64(5, at: 8) }
        h.poke(TestHost.dataBase, range)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: TestHost.dataBase,
                                           cdw10: 0, cdw11: 4), qid: 1).status == .success)
        // Write Uncorrectable of block 7 drops its cached bytes.
        #expect(h.run(WriteUncorrectableTests.uncor(slba: 7, nlb: 1), qid: 1).status == .success)
        #expect(h.controller.writeCacheState(1)?.dirtyRanges.map { [$0.0 / 512, UInt64($0.1) / 512] } == [[0, 2], [4, 1], [6, 1]])
        #expect(Self.flush(h) == .success)
        #expect(Self.image(h, slba: 0, nlb: 7) == Self.fill(0xA0, blocks: 2) + Self.fill(0, blocks: 2) + Self.fill(0xA0, blocks: 1)
            + Self.fill(0, blocks: 1) + Self.fill(0xA0, blocks: 1))
    }

    @Test("A write to a range being written back waits for the write-back; the image ends with the newest bytes")
    func writeWaitsForWriteBack() throws {
        let h = try Self.host()
        let tb = h.testBackend
        #expect(Self.write(h, slba: 0, Self.fill(0xA0, blocks: 1)) == .success)
        _ = tb.addRule(.hold(operations: [.write]))
        let flushCID = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        // Reads meanwhile see the bytes in flight.
        h.poke(TestHost.dataBase + 0x100000, Self.fill(0xEE, blocks: 1))
        let readCID = h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase + 0x100000), qid: 1)
        h.ring(1)
        let r = try #require(h.reap(1))
        #expect(r.cid == readCID && r.status == .success)
        #expect(h.peek(TestHost.dataBase + 0x100000, 512) == Self.fill(0xA0, blocks: 1))
        h.poke(TestHost.dataBase, Self.fill(0xB0, blocks: 1))
        let writeCID = h.place(TestHost.write(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.ring(1)
        usleep(20_000)
        #expect(h.peekCQE(1) == nil)  // waiting
        tb.clearRules()
        _ = tb.releaseAll()
        var done: [UInt16] = []
        for _ in 0..<2 { if let e = h.reap(1) { #expect(e.status == .success); done.append(e.cid) } }
        #expect(Set(done) == [flushCID, writeCID])
        #expect(Self.flush(h) == .success)
        #expect(Self.image(h, slba: 0, nlb: 1) == Self.fill(0xB0, blocks: 1))
    }

    @Test("A failed write-back fails the Flush with Write Fault and keeps the data dirty for the next Flush")
    func failedWriteBack() throws {
        let h = try Self.host()
        let tb = h.testBackend
        #expect(Self.write(h, slba: 9, Self.fill(0xA9, blocks: 1)) == .success)
        _ = tb.addRule(.fail(EIO, operations: [.write], times: 1))
        #expect(Self.flush(h) == .writeFault)
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 512)
        #expect(Self.flush(h) == .success)
        #expect(Self.image(h, slba: 9, nlb: 1) == Self.fill(0xA9, blocks: 1))
    }

    @Test("A power cut loses unflushed writes, keeps flushed ones, resets the controller and counts in SMART")
    func powerCutLosesUnflushed() throws {
        let h = try Self.host()
        #expect(Self.write(h, slba: 1, Self.fill(0xA1, blocks: 1)) == .success)
        #expect(Self.flush(h) == .success)
        #expect(Self.write(h, slba: 2, Self.fill(0xA2, blocks: 1)) == .success)
        let report = h.controller.powerCut(seed: nil, torn: false)
        #expect(report.writesDropped == 1 && report.bytesDropped == 512 && report.bytesKept == 0)
        #expect(!h.csts.rdy && h.csts.shst == 0 && !h.csts.nssro)
        h.queues = [:]
        h.bringUp()
        #expect(Self.read(h, slba: 1, nlb: 2) == Self.fill(0xA1, blocks: 1) + Self.fill(0, blocks: 1))
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: 127 << 16 | 0x02))
        #expect(e.status == .success)
        let smart = try #require(SMARTHealthLog(bytes: h.peek(TestHost.dataBase, 512)))
        #expect(smart.unsafeShutdowns == 1 && smart.powerCycles == 2)
        #expect(h.controller.lastPowerCutReport == report)
    }

    /// A cut while a Flush writes back: a write-back already in its system
    /// call lands, one not started is lost, dirty data is lost, and nothing
    /// is put back into the cache.
    @Test("A cut during a write-back", arguments: [true, false])
    func cutDuringWriteBack(running: Bool) throws {
        let h = try Self.host()
        let tb = h.testBackend
        tb.refusesCancel = running
        #expect(Self.write(h, slba: 0, Self.fill(0xA0, blocks: 1)) == .success)
        _ = tb.addRule(.hold(operations: [.write], times: 1))
        h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        #expect(Self.write(h, slba: 10, Self.fill(0xB0, blocks: 1)) == .success)
        // The reset the cut makes waits for the running write-back: cut on another thread.
        let done = DispatchSemaphore(value: 0)
        let controller = h.controller
        Thread.detachNewThread {
            controller.powerCut(seed: nil, torn: false)
            done.signal()
        }
        // The cut has dropped the dirty data and reset (under one lock).
        #expect(h.wait { h.controller.lastPowerCutReport != nil })
        if running { _ = tb.releaseAll() }
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(h.wait { h.controller.writeCacheState(1)?.inFlightBytes == 0 })
        #expect(Self.image(h, slba: 0, nlb: 1) == (running ? Self.fill(0xA0, blocks: 1) : Self.fill(0, blocks: 1)))
        #expect(Self.image(h, slba: 10, nlb: 1) == Self.fill(0, blocks: 1))
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 0)
        #expect(h.controller.lastPowerCutReport?.bytesDropped == 512)
        #expect(!h.csts.rdy)
    }

    @Test("A cut during a Format NVM: the format is abandoned by the reset, the cache was dropped by the format")
    func cutDuringFormat() throws {
        let h = try Self.host()
        let tb = h.testBackend
        #expect(Self.write(h, slba: 4, Self.fill(0xC0, blocks: 1)) == .success)
        _ = tb.addRule(.hold(operations: [.writeZeroes], times: 1))
        h.place(SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: 1), qid: 0)
        h.ring(0)
        #expect(tb.waitForHeld(count: 1))
        #expect(h.controller.writeCacheState(1)?.dirtyBytes == 0)
        let report = h.controller.powerCut(seed: 5, torn: true)
        #expect(report.bytesDropped == 0 && report.bytesKept == 0)
        #expect(h.wait { !h.csts.rdy })
        _ = tb.releaseAll()
        h.queues = [:]
        h.bringUp()
        #expect(Self.read(h, slba: 4, nlb: 1) == Self.fill(0, blocks: 1))
    }

    @Test("A fused Compare and Write whose Write waits for a write-back of its range runs as the pair's Write")
    func fusedWriteWaitsForWriteBack() throws {
        var p = ControllerParameters()
        p.writeCacheSize = 1 << 20
        let h = try FusedTests.host(parameters: p)
        let tb = h.testBackend
        h.poke(TestHost.dataBase + 0x3000, FusedTests.stamp(3))
        #expect(h.run(TestHost.write(slba: FusedTests.slba, nlb: FusedTests.blocks, prp1: TestHost.dataBase + 0x3000), qid: 1).status
            == .success)
        _ = tb.addRule(.hold(operations: [.write], times: 1))
        let flushCID = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        // The Compare sees the bytes being written back (3), so the Write goes.
        h.poke(FusedTests.expected, FusedTests.stamp(3))
        let ids = FusedTests.pair(h, FusedTests.compare(), FusedTests.write())
        let compare = try #require(h.reap(1))
        #expect(compare.cid == ids.first && compare.status == .success)
        usleep(20_000)
        #expect(h.peekCQE(1) == nil)  // the Write waits for the write-back
        _ = tb.releaseAll()
        let done = try FusedTests.reap(h, 2)
        #expect(done[flushCID]?.status == .success && done[ids.second]?.status == .success)
        #expect(Self.flush(h) == .success)
        #expect(FusedTests.media(h) == FusedTests.stamp(2))
    }

    /// Writes `count` 8-block writes, cuts with `seed`, and returns the image.
    static func cutImage(seed: UInt64, torn: Bool, awupf: UInt16) throws -> (image: [UInt8], report: PowerCutReport) {
        let h = try Self.host { $0.awun = awupf; $0.awupf = awupf }
        for i in 0..<16 {
            #expect(Self.write(h, slba: UInt64(i * 8), Self.fill(UInt8(i + 1), blocks: 8)) == .success)
        }
        var report = h.controller.powerCut(seed: seed, torn: torn)
        report.time = 0  // wall-clock seconds: two runs may straddle a second
        return (Self.image(h, slba: 0, nlb: 128), report)
    }

    @Test("A seeded cut is reproducible; writes within the power-fail atomic unit are all or nothing; larger ones may tear")
    func seededCuts() throws {
        var images: Set<[UInt8]> = []
        var tornSeen = false
        for seed in UInt64(1)...6 {
            let a = try Self.cutImage(seed: seed, torn: true, awupf: 7)
            let b = try Self.cutImage(seed: seed, torn: true, awupf: 7)
            #expect(a.image == b.image && a.report == b.report)
            images.insert(a.image)
            #expect(a.report.writesTorn == 0)
            for i in 0..<16 {
                let piece = Array(a.image[(i * 8 * 512)..<((i + 1) * 8 * 512)])
                #expect(piece == Self.fill(UInt8(i + 1), blocks: 8) || piece == Self.fill(0, blocks: 8), "write \(i) torn")
            }
            // AWUPF 0: a write of 8 blocks may keep some blocks only.
            let t = try Self.cutImage(seed: seed, torn: true, awupf: 0)
            if t.report.writesTorn > 0 { tornSeen = true }
            #expect(t.report.bytesKept + t.report.bytesDropped == 16 * 8 * 512)
            for i in 0..<(16 * 8) {
                let piece = Array(t.image[(i * 512)..<((i + 1) * 512)])
                #expect(piece == Self.fill(UInt8(i / 8 + 1), blocks: 1) || piece == Self.fill(0, blocks: 1))
            }
        }
        #expect(images.count > 1)
        #expect(tornSeen)
    }

    @Test("Atomic pieces follow the boundaries (NABSPF, NABO)")
    func atomicPieces() {
        let a = PowerFailAtomicity(unitBlocks: 4, boundaryBlocks: 8, boundaryOffset: 2, lbads: 9)
        #expect(a.pieces(slba: 0, nlb: 12).map { [$0.0, $0.1] } == [[0, 2], [2, 6], [6, 10], [10, 12]])
        #expect(a.pieces(slba: 3, nlb: 4).map { [$0.0, $0.1] } == [[3, 7]])
        // Within the unit's size but across a boundary: not atomic.
        #expect(a.pieces(slba: 8, nlb: 4).map { [$0.0, $0.1] } == [[8, 10], [10, 12]])
        let plain = PowerFailAtomicity(unitBlocks: 4, lbads: 9)
        #expect(plain.pieces(slba: 5, nlb: 4).count == 1)
        #expect(plain.pieces(slba: 5, nlb: 9).map { [$0.0, $0.1] } == [[5, 9], [9, 13], [13, 14]])
    }

    @Test("Without --vwc nothing is cached and there is no cache state")
    func offByDefault() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(Self.write(h, slba: 0, Self.fill(0x5A, blocks: 1)) == .success)
        #expect(Self.image(h, slba: 0, nlb: 1) == Self.fill(0x5A, blocks: 1))
        #expect(h.controller.writeCacheState(1) == nil)
    }
}
