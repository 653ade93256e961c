import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// The I/O fast path (`Controller-fastpath.swift`): plain Reads and Writes
/// of I/O queues run under the controller's shared lock; everything else,
/// and anything that goes wrong, on the exclusive path, with the same
/// result.
@Suite("I/O fast path")
struct FastPathTests {
    let buf = TestHost.dataBase

    @Test func plainReadsAndWritesTakeItAndAreCountedAsBefore() throws {
        let h = try TestHost(blocks: 256)
        h.bringUp()
        let before = h.controller.statistics()
        let data = TestHost.pattern(4096, seed: 1)
        h.poke(buf, data)
        #expect(h.run(TestHost.write(slba: 8, nlb: 8, prp1: buf), qid: 1).status == .success)
        #expect(h.run(TestHost.read(slba: 8, nlb: 8, prp1: buf + 0x10000), qid: 1).status == .success)
        #expect(h.peek(buf + 0x10000, 4096) == data)
        #expect(h.testBackend.read(offset: 8 * 512, count: 4096) == data)
        let fast = h.controller.debugFastPath
        #expect(fast.dispatched == 2 && fast.completed == 2)
        // The statistics and the interrupt counts include what the fast path did.
        let after = h.controller.statistics()
        #expect(after.ioCommands[NVMOpcode.write.rawValue] == 1)
        #expect(after.ioCommands[NVMOpcode.read.rawValue] == 1)
        #expect(after.completionsPosted == before.completionsPosted + 2)
        // Two SQ tail and two CQ head doorbells.
        #expect(after.doorbellWrites == before.doorbellWrites + 4)
        #expect(h.controller.interruptSnapshots()[1].raised == 2)
        #expect(h.interrupts.withLock { $0[1, default: 0] } == 2)
        // Deleting the queues keeps the counts (folded into the controller's).
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1)).status == .success)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOCQ.rawValue, cdw10: 1)).status == .success)
        let folded = h.controller.statistics()
        #expect(folded.ioCommands[NVMOpcode.read.rawValue] == 1 && folded.ioCommands[NVMOpcode.write.rawValue] == 1)
        #expect(folded.completionsPosted == after.completionsPosted + 2)   // the two deletions
        #expect(h.controller.interruptSnapshots()[1].raised == 2)
        #expect(h.controller.debugFastPath == fast)
    }

    @Test func anEntryItCannotRunEndsItThereAndTheRestRunInOrder() throws {
        let h = try TestHost(blocks: 256)
        h.bringUp()
        h.poke(buf, TestHost.pattern(4096, seed: 2))
        let first = h.place(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1)
        let flush = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1)
        let last = h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf + 0x10000), qid: 1)
        h.ring(1)
        var cids: [UInt16] = []
        for _ in 0..<3 {
            let e = try #require(h.reap(1))
            #expect(e.status == .success)
            cids.append(e.cid)
        }
        #expect(cids == [first, flush, last])
        #expect(h.peek(buf + 0x10000, 4096) == TestHost.pattern(4096, seed: 2))
        // The Write ran fast; the Flush stopped it, and the exclusive path took the Read after it.
        #expect(h.controller.debugFastPath.dispatched == 1)
    }

    @Test func aMappingItCannotMakeGetsTheExclusivePathsStatusAndLosesNoRequest() throws {
        let h = try TestHost(blocks: 256)
        h.bringUp(entries: 8)
        // PRP1 outside host memory: Data Transfer Error, as without the fast path.
        let bad = h.run(TestHost.read(slba: 0, nlb: 8, prp1: 0x7000_0000), qid: 1)
        #expect(bad.status.kind == .dataTransferError)
        #expect(h.controller.debugFastPath.dispatched == 0)
        // Every request slot is still there: more commands than the queue
        // holds complete, on the fast path.
        for i in 0..<20 {
            #expect(h.run(TestHost.read(slba: UInt64(i), nlb: 1, prp1: buf), qid: 1).status == .success)
        }
        #expect(h.controller.debugFastPath.dispatched == 20)
        #expect(h.controller.queueSnapshots().first { $0.qid == 1 && $0.kind == .submission }?.outstanding == 0)
    }

    @Test func aFailedAIOCompletesOnTheExclusivePathWithItsErrorLogged() throws {
        let h = try TestHost(blocks: 256)
        h.bringUp()
        _ = h.testBackend.addRule(.fail(EIO, operations: [.read]))
        let e = h.run(TestHost.read(slba: 4, nlb: 1, prp1: buf), qid: 1)
        #expect(e.status.kind == .unrecoveredReadError)
        #expect(h.controller.statistics().errors == 1)
        let fast = h.controller.debugFastPath
        #expect(fast.dispatched == 1 && fast.completed == 0)
        h.testBackend.clearRules()
        #expect(h.run(TestHost.read(slba: 4, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(h.controller.debugFastPath.completed == 1)
    }

    @Test func whatNeedsMoreThanATransferTakesTheExclusivePath() throws {
        // Tracing: every event is recorded, so nothing runs fast.
        let log = EventLog()
        let traced = try TestHost(namespaces: [Namespace(nsid: 1, backend: TestBackend(size: 256 * 512), lbads: 9)],
                                  backends: [], trace: log)
        traced.bringUp()
        #expect(traced.run(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(traced.controller.debugFastPath == (0, 0))
        #expect(log.lines.contains { $0.hasPrefix("pci_nvme_io_cmd") })

        // Volatile write cache disabled: a Write flushes after it (§5.21.1.6),
        // so it is dispatched on the exclusive path (its flush, the last
        // AIO, may complete on the fast one); a Read is still fast. So is
        // a Write with FUA.
        let h = try TestHost(blocks: 256)
        h.bringUp()
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x06, cdw11: 0)).status == .success)
        let flushesBefore = flushes(h)
        #expect(h.run(TestHost.write(slba: 0, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(flushes(h) == flushesBefore + 1)
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(h.controller.debugFastPath.dispatched == 1)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x06, cdw11: 1)).status == .success)
        var fua = TestHost.write(slba: 0, nlb: 1, prp1: buf)
        fua.cdw12 |= 1 << 30
        #expect(h.run(fua, qid: 1).status == .success)
        #expect(flushes(h) == flushesBefore + 2)
        #expect(h.controller.debugFastPath.dispatched == 1)

        // Interrupt coalescing (threshold 4, 100 µs): the completion
        // aggregates on the exclusive path; the interrupt still comes.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x08, cdw11: 1 << 8 | 3)).status == .success)
        let before = h.controller.debugFastPath
        let raised = h.controller.interruptSnapshots()[1].raised
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(h.controller.debugFastPath == (before.dispatched + 1, before.completed))
        #expect(h.wait { h.controller.interruptSnapshots()[1].raised == raised + 1 })
    }

    /// Threads on queues of their own, each writing and reading back its own
    /// blocks, while another thread runs admin commands, changes features
    /// and reads the controller's state: every command completes with its
    /// data (ThreadSanitizer runs this in CI).
    @Test func queuesOfTheirOwnRunAtOnceBesideAdminCommands() throws {
        let threads = 3, perThread = 300
        let h = try TestHost(backends: [(TestBackend(size: 4096 * 512), 9)])
        precondition(h.enable().rdy)
        for q in 1...threads {
            #expect(h.createCQ(qid: UInt16(q), entries: 16, vector: UInt16(q)) == .success)
            #expect(h.createSQ(qid: UInt16(q), entries: 16, cqid: UInt16(q)) == .success)
        }
        let failures = InterruptCounter()
        let stop = Stop()
        let admin = Thread {
            var n: UInt32 = 0
            while !stop.isSet {
                n &+= 1
                // Write cache toggled: Writes move between the two paths.
                _ = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x06, cdw11: n & 1))
                _ = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getFeatures.rawValue, cdw10: 0x07))
                _ = h.controller.statistics()
                _ = h.controller.queueSnapshots()
                _ = h.controller.interruptSnapshots()
            }
        }
        admin.start()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let q = UInt16(t + 1)
            let host = QueueDriver(h, qid: q, sqBase: 0x10000 + 0x10000 * UInt64(q), cqBase: 0x80000 + 0x10000 * UInt64(q),
                                   entries: 16)
            let mine = buf + UInt64(t) * 0x40000
            for i in 0..<perThread {
                let lba = UInt64(t * perThread + i)
                let data = TestHost.pattern(512, seed: UInt8(truncatingIfNeeded: lba))
                h.poke(mine, data)
                let w = host.run(TestHost.write(slba: lba, nlb: 1, prp1: mine))
                h.poke(mine + 0x1000, [UInt8](repeating: 0, count: 512))
                let r = host.run(TestHost.read(slba: lba, nlb: 1, prp1: mine + 0x1000))
                if w?.status != .success || r?.status != .success || h.peek(mine + 0x1000, 512) != data {
                    _ = failures.withLock { $0[0, default: 0] += 1; return 0 }
                }
            }
        }
        stop.set()
        while !admin.isFinished { usleep(1000) }
        #expect(failures.withLock { $0[0, default: 0] } == 0)
        #expect(h.controller.statistics().ioCommands[NVMOpcode.read.rawValue] == UInt64(threads * perThread))
        #expect(h.controller.debugFastPath.dispatched > 0)
    }
}

/// Flush AIOs the test backend completed.
private func flushes(_ h: TestHost) -> Int {
    h.testBackend.completions.filter { $0.entry.operation == .flush }.count
}

/// A stop flag for a helper thread.
private final class Stop: @unchecked Sendable {
    private let lock = ConditionLock()
    private var flag = false
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

/// Drives one I/O queue pair of a `TestHost` from one thread (the host's
/// own bookkeeping is not thread-safe; this keeps its own).
private final class QueueDriver {
    let h: TestHost
    let qid: UInt16
    let sqBase: UInt64, cqBase: UInt64, entries: Int
    var tail = 0, head = 0, phase = true, cid: UInt16 = 1

    init(_ h: TestHost, qid: UInt16, sqBase: UInt64, cqBase: UInt64, entries: Int) {
        self.h = h; self.qid = qid; self.sqBase = sqBase; self.cqBase = cqBase; self.entries = entries
    }

    func run(_ sqe: SubmissionQueueEntry) -> CompletionQueueEntry? {
        var e = sqe
        e.cid = cid
        cid &+= 1
        h.poke(sqBase + UInt64(tail) * 64, e.bytes)
        tail = (tail + 1) % entries
        h.controller.mmioWrite(offset: Int(RegisterOffset.sqTailDoorbell(qid)), value: UInt64(tail), size: 4)
        let deadline = Date().addingTimeInterval(10)
        while true {
            let cqe = CompletionQueueEntry(bytes: h.peek(cqBase + UInt64(head) * 16, 16))!
            if cqe.phase == phase {
                head += 1
                if head == entries { head = 0; phase.toggle() }
                h.controller.mmioWrite(offset: Int(RegisterOffset.cqHeadDoorbell(qid)), value: UInt64(head), size: 4)
                return cqe.cid == e.cid ? cqe : nil
            }
            if Date() > deadline { return nil }
            sched_yield()
        }
    }
}
