import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Drives queue 1 of a `TestHost` from its interrupt handler: each interrupt
/// reaps what is new, rings the CQ head doorbell and submits more commands,
/// all from inside the controller's interrupt delivery.
final class ChainingDriver: @unchecked Sendable {
    let h: TestHost
    let total: Int
    let depth: Int
    var submitted = 0
    var completed = 0
    var failures = 0

    init(_ h: TestHost, total: Int, depth: Int) { self.h = h; self.total = total; self.depth = depth }

    func submitMore() {
        var placed = false
        while submitted < total && submitted - completed < depth {
            h.place(TestHost.write(slba: UInt64(submitted % 64) * 8, nlb: 8, prp1: TestHost.dataBase), qid: 1)
            submitted += 1
            placed = true
        }
        if placed { h.ring(1) }
    }

    func interrupt() {
        var reaped = false
        while let e = h.peekCQE(1) {
            if !e.status.isSuccess { failures += 1 }
            var q = h.queues[1]!
            q.cqHead += 1
            if q.cqHead == q.cqSize { q.cqHead = 0; q.phase.toggle() }
            h.queues[1] = q
            completed += 1
            reaped = true
        }
        guard reaped else { return }
        h.write32(RegisterOffset.cqHeadDoorbell(1), UInt32(h.queues[1]!.cqHead))
        submitMore()
    }
}

@Suite("Re-entrancy and shutdown")
struct ReentrancyTests {
    /// An interrupt handler that rings doorbells and submits more commands,
    /// with a backend completing inline: thousands of commands run inside
    /// one doorbell write, and the stack never holds more than two `locked`
    /// frames of the controller (the nested one hands its effects to the outer loop).
    @Test func nestedDoorbellsRunWithBoundedDepth() throws {
        let h = try TestHost(backends: [(NullBackend(size: 2048 * 512), 9)])
        h.bringUp(entries: 64)
        let driver = ChainingDriver(h, total: 5000, depth: 16)
        h.controller.setInterruptHandler(vector: 1) { [driver] _ in driver.interrupt() }
        // The handler holds the driver, which holds the controller.
        defer { h.controller.setInterruptHandler(vector: 1, nil) }
        driver.submitMore()
        #expect(h.wait(timeout: 60) { driver.completed == driver.total })
        #expect(driver.completed == driver.total && driver.failures == 0)
        #expect(h.controller.debugMaxLockedNesting <= 2)
        #expect(h.controller.debugMaxLockedNesting == 2)   // the nesting did happen, and was cut there
    }

    /// CC.SHN while Flush, Write Zeroes and Dataset Management run on the
    /// backend's worker threads: the shutdown drain must never run on a
    /// worker inside its own completion (it would wait for itself), so
    /// CSTS.SHST reaches 10b every time (NVMe 1.4 §7.6.2).
    @Test func shutdownDuringBackendIOCompletes() throws {
        let path = NSTemporaryDirectory() + "nvmefs-shutdown-\(UUID().uuidString).img"
        try ImageBackend.create(path: path, size: 4 << 20)
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: .hybrid(workers: 2))
        defer { backend.close() }
        let h = try TestHost(backends: [(backend, 9)])
        h.bringUp(entries: 64)
        let ranges = DatasetManagementRange.encodeRanges([DatasetManagementRange(slba: 64, nlb: 64)])
        h.poke(TestHost.dataBase, ranges)
        for iteration in 0..<300 {
            var cids: [UInt16] = []
            for i in 0..<12 {
                var sqe: SubmissionQueueEntry
                switch i % 3 {
                case 0: sqe = SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1)
                case 1:
                    sqe = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
                    sqe.slba = UInt64(i) * 16
                    sqe.nlb = 15
                default:
                    sqe = SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1,
                                               prp1: TestHost.dataBase, cdw10: 0, cdw11: 0x4)
                }
                cids.append(h.place(sqe, qid: 1))
            }
            h.ring(1)
            h.write32(RegisterOffset.cc, 0x460001 | 1 << 14)   // CC.SHN = 01b
            // A hang detector, not a timing threshold.
            let done = h.wait(timeout: 30) { h.csts.shst == 2 }
            #expect(done, "iteration \(iteration): CSTS.SHST stuck at \(h.csts.shst)")
            guard done else { return }
            for _ in cids {
                let e = try #require(h.reap(1, timeout: 30))
                #expect(e.status == .success)
            }
            h.write32(RegisterOffset.cc, 0x460001)
            #expect(h.csts.shst == 0)
        }
    }
}
