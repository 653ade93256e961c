import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

/// CONTRACT §5: one command = one request holding a list of AIOs; one CQE when the list is empty.
@Suite("Request engine")
struct EngineTests {
    let buf = TestHost.dataBase

    /// 64 KiB read with a 16 KiB backend transfer limit = 4 AIOs.
    func splitHost() throws -> TestHost {
        var p = ControllerParameters()
        p.maxBackendTransfer = 16 * 1024
        let h = try TestHost(blocks: 4096, lbads: 9, parameters: p)
        h.bringUp()
        return h
    }

    func prpList(_ h: TestHost, data: UInt64, pages: Int, list: UInt64) {
        for i in 1..<pages { h.poke64(list + UInt64(i - 1) * 8, data + UInt64(i) * 4096) }
    }

    @Test func multiAIOCommandCompletesOnceAfterOutOfOrderCompletions() throws {
        let h = try splitHost()
        let tb = h.testBackend
        let data = TestHost.pattern(65536, seed: 7)
        tb.write(data, at: 0)
        _ = tb.addRule(.hold(operations: [.read]))
        prpList(h, data: buf, pages: 16, list: buf + 0x100000)
        let cid = h.place(TestHost.read(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 4))
        #expect(tb.held.map(\.offset) == [0, 16384, 32768, 49152])
        // Complete them last-to-first; no CQE until the last one.
        tb.releaseHeld(inOrder: [3])
        tb.releaseHeld(inOrder: [1])
        tb.releaseHeld(inOrder: [1])
        #expect(h.reap(1, timeout: 0.2) == nil)
        tb.releaseHeld(inOrder: [0])
        let e = try #require(h.reap(1))
        #expect(e.cid == cid && e.status == .success)
        #expect(h.peek(buf, 65536) == data)
        #expect(h.reap(1, timeout: 0.2) == nil)    // exactly one CQE
        let s = h.controller.namespace(1)!.accounting.snapshot()[.read]
        #expect(s.ops == 1 && s.bytes == 65536)
    }

    @Test func oneFailedAIOFailsTheCommandOnce() throws {
        let h = try splitHost()
        let tb = h.testBackend
        _ = tb.addRule(.fail(EIO, operations: [.write], range: 20000..<20001))
        prpList(h, data: buf, pages: 16, list: buf + 0x100000)
        let cid = h.place(TestHost.write(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1)
        h.ring(1)
        let e = try #require(h.reap(1))
        #expect(e.cid == cid && e.status == NVMeStatus.writeFault)
        #expect(tb.submitted.filter { $0.operation == .write }.count == 4)
        #expect(h.reap(1, timeout: 0.2) == nil)
    }

    @Test func deletingAnSQDrainsItsCommandsWithoutPostingThem() throws {
        let h = try splitHost()
        let tb = h.testBackend
        _ = tb.addRule(.hold(operations: [.read]))
        prpList(h, data: buf, pages: 16, list: buf + 0x100000)
        h.place(TestHost.read(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 4))
        let cid = h.place(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1), qid: 0)
        h.ring(0)
        // Held AIOs were cancelled by the backend (they had not started).
        let del = try #require(h.reap(0))
        #expect(del.cid == cid && del.status == .success)
        #expect(tb.cancelled.count == 4)
        #expect(h.reap(1, timeout: 0.2) == nil)     // nothing posted for the deleted SQ
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOCQ.rawValue, cdw10: 1)).status == .success)
    }

    /// A host whose backend refuses cancellation: its AIOs are "running".
    func runningHost() throws -> (TestHost, TestBackend) {
        let tb = TestBackend(size: 2048 * 512)
        tb.refusesCancel = true
        let h = try TestHost(backends: [(tb, 9)])
        h.bringUp()
        _ = tb.addRule(.hold(operations: [.read]))
        return (h, tb)
    }

    @Test func deletingAnSQWaitsForRunningAIOs() throws {
        let (h, tb) = try runningHost()
        h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        let cid = h.place(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1), qid: 0)
        h.ring(0)
        #expect(h.reap(0, timeout: 0.3) == nil)     // waits for the running read
        _ = tb.releaseAll()
        let del = try #require(h.reap(0))
        #expect(del.cid == cid && del.status == .success)
        #expect(h.reap(1, timeout: 0.2) == nil)     // the read's CQE is never posted
    }

    @Test func resetCancelsAndClearsReadyAfterDrain() throws {
        let h = try splitHost()
        let tb = h.testBackend
        _ = tb.addRule(.hold(operations: [.write]))
        // A running (uncancellable) AIO: make the backend refuse to cancel by releasing later.
        h.place(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        h.write32(RegisterOffset.cc, 0x460000)
        // Held ops are cancellable: the reset finishes once the cancellation completes.
        #expect(h.wait { !h.csts.rdy })
        #expect(tb.cancelled.count == 1)
        #expect(h.reap(1, timeout: 0.2) == nil)
        // The controller comes back cleanly.
        h.queues = [:]
        h.bringUp()
        tb.clearRules()
        h.poke(buf, TestHost.pattern(4096, seed: 1))
        #expect(h.run(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)
    }

    @Test func resetWaitsForRunningAIOs() throws {
        let (h, tb) = try runningHost()
        h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        h.write32(RegisterOffset.cc, 0x460000)
        #expect(h.csts.rdy)                         // still draining
        usleep(100_000)
        #expect(h.csts.rdy)
        _ = tb.releaseAll()
        #expect(h.wait { !h.csts.rdy })
        #expect(h.reap(1, timeout: 0.2) == nil)
    }

    @Test func abortOfARunningCommandCompletesItWhenItDrains() throws {
        let (h, tb) = try runningHost()
        let target = h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(target) << 16 | 1))
        #expect(abort.status == .success && abort.dw0 & 1 == 0)
        #expect(h.reap(1, timeout: 0.2) == nil)
        _ = tb.releaseAll()
        let e = try #require(h.reap(1))
        #expect(e.cid == target && e.status == .abortRequested)
    }

    @Test func abortCancelsAnInFlightCommand() throws {
        let h = try splitHost()
        let tb = h.testBackend
        _ = tb.addRule(.hold(operations: [.read]))
        let target = h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(target) << 16 | 1))
        #expect(abort.status == .success && abort.dw0 & 1 == 0)
        let e = try #require(h.reap(1))
        #expect(e.cid == target && e.status == .abortRequested)
        #expect(tb.cancelled.count == 1)
        // Aborting a command that does not exist: not aborted (dw0 bit 0 = 1).
        let none = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(999) << 16 | 1))
        #expect(none.status == .success && none.dw0 & 1 == 1)
    }

    @Test func abortOfAQueuedCommandAbortsItWhenFetched() throws {
        // SQ of 2 slots → 1 request... use a full CQ instead: with CQ full the SQ's requests
        // are all used and the next command waits in the SQ.
        var p = ControllerParameters()
        p.maxBackendTransfer = 1 << 20
        let h = try TestHost(blocks: 4096, lbads: 9, parameters: p)
        h.enable()
        #expect(h.createCQ(qid: 1, entries: 8, vector: 1).isSuccess)
        #expect(h.createSQ(qid: 1, entries: 2, cqid: 1).isSuccess)   // 2 slots → at most 2 requests
        let tb = h.testBackend
        _ = tb.addRule(.hold(operations: [.read]))
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        let c2 = h.place(TestHost.read(slba: 1, nlb: 1, prp1: buf), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 2))
        // Both requests busy: the third entry stays in the SQ.
        let c3 = h.place(TestHost.read(slba: 2, nlb: 1, prp1: buf), qid: 1)
        h.ring(1)
        let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(c3) << 16 | 1))
        #expect(abort.dw0 & 1 == 0)
        _ = tb.releaseAll()
        var seen: [UInt16: NVMeStatus] = [:]
        for _ in 0..<3 { if let e = h.reap(1) { seen[e.cid] = e.status } }
        #expect(seen[c2] == .success)
        #expect(seen[c3] == .abortRequested)
        #expect(tb.submitted.count == 2)
    }

    /// Two SQs on one CQ, each with 2 entries waiting for free request slots; one CQ head
    /// doorbell frees slots in both, and the fetch pass that follows shows the arbitration.
    func fetchOrder(burstAB: UInt32) throws -> [UInt64] {
        var p = ControllerParameters()
        p.maxIOQueuePairs = 4
        let h = try TestHost(blocks: 4096, lbads: 9, parameters: p)
        h.enable()
        #expect(h.createCQ(qid: 1, entries: 16, vector: 1).isSuccess)
        #expect(h.createSQ(qid: 1, entries: 3, cqid: 1).isSuccess)
        #expect(h.createSQ(qid: 2, entries: 3, cqid: 1).isSuccess)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 1, cdw11: burstAB)).status == .success)
        let tb = h.testBackend
        _ = tb.addRule(.hold(operations: [.read]))
        for (q, base) in [(UInt16(1), UInt64(0)), (UInt16(2), UInt64(100))] {
            h.place(TestHost.read(slba: base, nlb: 1, prp1: buf), qid: q)
            h.place(TestHost.read(slba: base + 1, nlb: 1, prp1: buf), qid: q)
            h.ring(q)
            h.place(TestHost.read(slba: base + 2, nlb: 1, prp1: buf), qid: q)
            h.ring(q)                                   // 3 requests busy
            h.place(TestHost.read(slba: base + 10, nlb: 1, prp1: buf), qid: q)
            h.place(TestHost.read(slba: base + 11, nlb: 1, prp1: buf), qid: q)
            h.ring(q)                                   // no free request: entries wait in the SQ
        }
        #expect(tb.waitForHeld(count: 6))
        #expect(tb.heldCount == 6)
        _ = tb.releaseAll()
        // SQ ids share CQ 1: the host state for qid 2 mirrors qid 1's CQ.
        for _ in 0..<6 { #expect(h.reap(1, ringHead: false) != nil) }
        #expect(tb.heldCount == 0)
        h.write32(RegisterOffset.cqHeadDoorbell(1), UInt32(h.queues[1]!.cqHead))
        #expect(tb.waitForHeld(count: 4))
        return tb.held.map { $0.offset / 512 }
    }

    /// Found by the controller fuzz target: an AER aborted while the admin
    /// CQ is full keeps its CQE pending; a second Abort of it must not
    /// complete it again (one command, one CQE).
    @Test func anAERAbortedTwiceWhileTheCQIsFullCompletesOnce() throws {
        let h = try TestHost()
        h.enable(asqEntries: 8, acqEntries: 2)     // one usable admin CQ slot
        h.place(SubmissionQueueEntry(opcode: AdminOpcode.keepAlive.rawValue))
        let aer = h.place(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue))
        let abort1 = h.place(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(aer) << 16))
        let abort2 = h.place(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(aer) << 16))
        h.ring(0)
        var cqes: [CompletionQueueEntry] = []
        while let e = h.reap(0, timeout: 1) { cqes.append(e) }
        #expect(cqes.filter { $0.cid == aer }.count == 1)
        #expect(cqes.first { $0.cid == aer }?.status == .abortRequested)
        #expect(cqes.contains { $0.cid == abort1 && $0.dw0 == 0 })            // aborted it
        #expect(cqes.contains { $0.cid == abort2 && $0.dw0 & 1 == 1 })        // nothing left to abort
        #expect(cqes.count == 4)
    }

    @Test func roundRobinWithArbitrationBurstOfOne() throws {
        #expect(try fetchOrder(burstAB: 0) == [10, 110, 11, 111])
    }

    @Test func roundRobinWithoutBurstLimit() throws {
        #expect(try fetchOrder(burstAB: 7) == [10, 11, 110, 111])
    }

    @Test func completionQueueFullHoldsCompletionsUntilHeadMoves() throws {
        let h = try TestHost()
        h.enable()
        #expect(h.createCQ(qid: 1, entries: 3, vector: 1).isSuccess)   // 2 usable slots
        #expect(h.createSQ(qid: 1, entries: 8, cqid: 1).isSuccess)
        var cids: [UInt16] = []
        for i in 0..<4 { cids.append(h.place(TestHost.read(slba: UInt64(i), nlb: 1, prp1: buf), qid: 1)) }
        h.ring(1)
        let a = try #require(h.reap(1, ringHead: false))
        let b = try #require(h.reap(1, ringHead: false))
        #expect([a.cid, b.cid] == Array(cids[0..<2]))
        #expect(h.reap(1, timeout: 0.2, ringHead: false) == nil)   // CQ full: nothing overwritten
        h.write32(RegisterOffset.cqHeadDoorbell(1), UInt32(h.queues[1]!.cqHead))
        let c = try #require(h.reap(1))
        let d = try #require(h.reap(1))
        #expect([c.cid, d.cid] == Array(cids[2..<4]))
        #expect(c.phase == false || d.phase == false)   // wrapped: phase flipped
    }

    @Test func phaseTagFlipsOnEveryWrap() throws {
        let h = try TestHost()
        h.enable(asqEntries: 4, acqEntries: 4)
        var phases: [Bool] = []
        for _ in 0..<10 {
            let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.keepAlive.rawValue))
            phases.append(e.phase)
        }
        #expect(phases == [true, true, true, true, false, false, false, false, true, true])
        #expect(h.controller.readBAR(offset: 0, count: 0x20)[0x1C] & 1 == 1)
    }
}

/// A Flush of every namespace (NSID FFFFFFFFh) has one AIO per namespace,
/// each on its own backend: cancelling it must reach each backend with that
/// backend's own ticket, and accounting lands on every namespace.
@Suite("Broadcast flush cancellation")
struct BroadcastFlushTests {
    enum Canceller: String, CaseIterable, Sendable { case abort, deleteSQ, reset }

    @Test(arguments: Canceller.allCases)
    func eachBackendSeesExactlyItsOwnCancel(_ how: Canceller) throws {
        let b1 = TestBackend(size: 2048 * 512, name: "ns1"), b2 = TestBackend(size: 2048 * 512, name: "ns2")
        // An unrelated AIO in flight on namespace 1's backend, issued first so
        // that its ticket equals the one namespace 2's backend gives the flush.
        _ = b1.addRule(.hold(operations: [.read]))
        let unrelated = b1.submit(AIO(operation: .read, offset: 0, length: 0)) { _ in }
        let h = try TestHost(backends: [(b1, 9), (b2, 9)])
        h.bringUp()
        _ = b1.addRule(.hold(operations: [.flush]))
        _ = b2.addRule(.hold(operations: [.flush]))
        let cid = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 0xFFFF_FFFF), qid: 1)
        h.ring(1)
        #expect(b1.waitForHeld(count: 2) && b2.waitForHeld(count: 1))
        let flush1 = try #require(b1.held.first { $0.operation == .flush })
        let flush2 = try #require(b2.held.first { $0.operation == .flush })
        #expect(flush2.ticket == unrelated)   // the collision the old code tripped over

        switch how {
        case .abort:
            let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(cid) << 16 | 1))
            #expect(abort.status == .success && abort.dw0 & 1 == 0)
            let e = try #require(h.reap(1))
            #expect(e.cid == cid && e.status == .abortRequested)
        case .deleteSQ:
            let del = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1))
            #expect(del.status == .success)
        case .reset:
            h.write32(RegisterOffset.cc, 0x460000)
            #expect(h.wait { !h.csts.rdy })
        }
        #expect(b1.cancelled.map(\.ticket) == [flush1.ticket])
        #expect(b2.cancelled.map(\.ticket) == [flush2.ticket])
        #expect(b1.held.map(\.ticket) == [unrelated])     // still in flight, untouched
        for nsid: UInt32 in [1, 2] {
            let stats = h.controller.namespace(nsid)!.accounting.stats(for: .flush)
            #expect(stats.failed == 1 && stats.inFlight == 0, "namespace \(nsid)")
        }
        _ = b1.releaseAll()
    }

    @Test func successfulBroadcastFlushAccountsOneFlushPerNamespace() throws {
        let b1 = TestBackend(size: 2048 * 512), b2 = TestBackend(size: 2048 * 512)
        let h = try TestHost(backends: [(b1, 9), (b2, 9)])
        h.bringUp()
        let e = h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 0xFFFF_FFFF), qid: 1)
        #expect(e.status == .success)
        for nsid: UInt32 in [1, 2] {
            let stats = h.controller.namespace(nsid)!.accounting.stats(for: .flush)
            #expect(stats.ops == 1 && stats.failed == 0 && stats.inFlight == 0, "namespace \(nsid)")
        }
    }
}

@Suite("Buffer pins end before the completion is visible")
struct PinBeforeCompletionTests {
    @Test("A completed command waiting for room in its CQ no longer pins its data buffer")
    func completedCommandUnpinsBeforeItsCQE() throws {
        let h = try TestHost(blocks: 64)
        #expect(h.enable().rdy)
        // A CQ of 2 entries holds one completion: the second waits in the controller.
        #expect(h.createCQ(qid: 1, entries: 2, vector: 1).isSuccess)
        #expect(h.createSQ(qid: 1, entries: 8, cqid: 1).isSuccess)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        let region = try h.space.mapAnywhere(length: 4096, pointer: buffer, name: "io", kind: .temporary,
                                             above: UInt64(TestHost.memorySize))
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.place(TestHost.read(slba: 1, nlb: 1, prp1: region.base), qid: 1)
        h.ring(1)
        #expect(h.wait { h.peekCQE(1) != nil })
        #expect(h.testBackend.submitted.count == 2)
        _ = h.wait { h.testBackend.completions.count == 2 }
        // The second read is done but its CQE is not posted (the CQ is full):
        // removing its buffer's region must not find the buffer in use.
        #expect(h.space.unmapWhenIdle(region.id) == nil)
        #expect(h.reap(1) != nil)
        #expect(h.reap(1) != nil)
    }
}

@Suite("Force Unit Access")
struct ForceUnitAccessTests {
    @Test("Write and Write Zeroes with FUA complete after a flush of the namespace; without it, no flush", arguments: [false, true])
    func fuaFlushes(fua: Bool) throws {
        let h = try TestHost(blocks: 64)
        h.bringUp()
        var w = TestHost.write(slba: 0, nlb: 1, prp1: TestHost.dataBase)
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 8
        if fua { w.cdw12 |= 1 << 30; wz.cdw12 |= 1 << 30 }
        #expect(h.run(w, qid: 1).status == .success)
        #expect(h.run(wz, qid: 1).status == .success)
        let ops = h.testBackend.submitted.map(\.operation)
        #expect(ops == (fua ? [.write, .flush, .writeZeroes, .flush] : [.write, .writeZeroes]))
    }
}
