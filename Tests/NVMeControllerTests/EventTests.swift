import BlockIO
import NVMeController
import NVMeSpec
import Testing

@Suite("Asynchronous events and invalid doorbells")
struct EventTests {
    func postAER(_ h: TestHost) -> UInt16 {
        let cid = h.place(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue), qid: 0)
        h.ring(0)
        return cid
    }

    @Test func invalidDoorbellRegisterRaisesErrorEvent() throws {
        let h = try TestHost()
        h.bringUp()
        // Without an outstanding AER nothing is posted.
        h.write32(RegisterOffset.sqTailDoorbell(9), 1)
        #expect(h.reap(0, timeout: 0.2) == nil)
        let aer = postAER(h)
        #expect(h.reap(0, timeout: 0.2) == nil)
        h.write32(RegisterOffset.sqTailDoorbell(9), 1)          // no such SQ
        let e = try #require(h.reap(0))
        #expect(e.cid == aer && e.status == .success)
        #expect(e.dw0 & 7 == 0)                                 // type: error
        #expect((e.dw0 >> 8) & 0xFF == 0x00)                    // write to invalid doorbell register
        #expect((e.dw0 >> 16) & 0xFF == 0x01)                   // error information log
    }

    @Test func invalidDoorbellValueRaisesErrorEvent() throws {
        let h = try TestHost()
        h.bringUp(entries: 16)
        _ = postAER(h)
        h.write32(RegisterOffset.sqTailDoorbell(1), 16)         // tail == size: out of range
        let e = try #require(h.reap(0))
        #expect((e.dw0 >> 8) & 0xFF == 0x01)                    // invalid doorbell write value
        // The error type stays masked until the error log is read with RAE = 0.
        _ = postAER(h)
        h.write32(RegisterOffset.cqHeadDoorbell(1), 99)
        #expect(h.reap(0, timeout: 0.2) == nil)
        let logCID = h.place(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: TestHost.dataBase, cdw10: 15 << 16 | 1), qid: 0)
        h.ring(0)
        // Reading the error log with RAE = 0 unmasks the type: the queued event is delivered.
        var got: [UInt16: CompletionQueueEntry] = [:]
        for _ in 0..<2 { if let e = h.reap(0) { got[e.cid] = e } }
        #expect(got[logCID]?.status == .success)
        let aer2 = try #require(got.values.first { $0.cid != logCID })
        #expect(aer2.dw0 & 7 == 0 && (aer2.dw0 >> 8) & 0xFF == 0x01)
        // The invalid writes changed nothing: the queue still works.
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
    }

    @Test func aerLimitExceeded() throws {
        let h = try TestHost()
        h.enable()
        for _ in 0..<4 { _ = postAER(h) }                      // AERL = 3 → 4 outstanding allowed
        #expect(h.reap(0, timeout: 0.2) == nil)
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue))
        #expect(e.status == .asyncEventRequestLimitExceeded)
    }

    @Test func temperatureThresholdRaisesSMARTEventWhenEnabled() throws {
        let h = try TestHost()
        h.enable()
        let aer = postAER(h)
        // Disabled in the async event configuration: no event.
        _ = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x04, cdw11: 0x100))
        #expect(h.reap(0, timeout: 0.2) == nil)
        _ = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x0B, cdw11: 0x02))
        let set = h.place(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x04, cdw11: 0x100), qid: 0)
        h.ring(0)
        var got: [UInt16: CompletionQueueEntry] = [:]
        for _ in 0..<2 { if let e = h.reap(0) { got[e.cid] = e } }
        #expect(got[set]?.status == .success)
        let ev = try #require(got[aer])
        #expect(ev.dw0 & 7 == 1 && (ev.dw0 >> 8) & 0xFF == 0x01 && (ev.dw0 >> 16) & 0xFF == 0x02)
    }

    @Test func doorbellsBeforeEnableAreIgnored() throws {
        let h = try TestHost()
        h.write32(RegisterOffset.sqTailDoorbell(0), 5)
        h.write32(RegisterOffset.cqHeadDoorbell(3), 5)
        #expect(!h.csts.cfs)
        #expect(h.enable().rdy)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.keepAlive.rawValue)).status == .success)
    }

    @Test func unreadableSubmissionQueueSetsFatalStatus() throws {
        let h = try TestHost()
        h.enable()
        // An I/O SQ whose memory is then made unbacked cannot exist (creation checks it), but
        // a misbehaving host can still point the admin queue past memory by resizing AQA
        // and re-enabling: ASQ at the last page, 32 entries spill past the end.
        h.write32(RegisterOffset.cc, 0x460000)
        #expect(h.wait { !h.csts.rdy })
        h.write32(RegisterOffset.aqa, 0x001F_007F)             // 128 SQ entries = 8 KiB
        h.write64(RegisterOffset.asq, UInt64(TestHost.memorySize - 4096))
        h.write32(RegisterOffset.cc, 0x460001)
        #expect(h.csts.cfs)     // refused at enable: queue not backed
    }
}

@Suite("Interrupt coalescing")
struct CoalescingTests {
    func count(_ h: TestHost, _ v: Int) -> Int { h.interrupts.withLock { $0[v, default: 0] } }

    @Test func thresholdAndTime() throws {
        let h = try TestHost()
        h.bringUp()
        // THR = 2 (3 completions), TIME = 200 (20 ms).
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x08, cdw11: 200 << 8 | 2)).status == .success)
        let before = count(h, 1)
        for i in 0..<2 { h.place(TestHost.read(slba: UInt64(i), nlb: 1, prp1: TestHost.dataBase), qid: 1) }
        h.ring(1)
        #expect(h.wait { h.peekCQE(1) != nil })
        _ = h.reap(1, ringHead: false); _ = h.reap(1, ringHead: false)
        #expect(count(h, 1) == before)                      // 2 < threshold: held back
        #expect(h.wait { count(h, 1) == before + 1 })       // the aggregation time fires it
        for i in 0..<3 { h.place(TestHost.read(slba: UInt64(i), nlb: 1, prp1: TestHost.dataBase), qid: 1) }
        h.ring(1)
        #expect(h.wait { count(h, 1) == before + 2 })       // threshold reached
        for _ in 0..<3 { #expect(h.reap(1) != nil) }
        // Coalescing disabled for vector 1: every completion fires.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x09, cdw11: 1 << 16 | 1)).status == .success)
        let b2 = count(h, 1)
        _ = h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        #expect(h.wait { count(h, 1) == b2 + 1 })
    }
}
