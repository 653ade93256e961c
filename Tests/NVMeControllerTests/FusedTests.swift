import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Fused Compare and Write (NVMe 1.4 §4.12, §6.2.1): every status of the
/// pair, and its atomicity against commands on other queues.
@Suite("Fused Compare and Write")
struct FusedTests {
    static let slba: UInt64 = 8
    static let blocks = 4
    static let bytes = blocks * 512
    /// Host buffers: what the Compare expects, what the Write writes, scratch.
    static let expected = TestHost.dataBase, replacement = TestHost.dataBase + 0x1000, other = TestHost.dataBase + 0x2000

    static func compare(nsid: UInt32 = 1, slba: UInt64 = slba, nlb: Int = blocks, prp1: UInt64 = expected) -> SubmissionQueueEntry {
        var e = TestHost.read(nsid: nsid, slba: slba, nlb: nlb, prp1: prp1)
        e.opcode = NVMOpcode.compare.rawValue
        return e
    }

    static func write(nsid: UInt32 = 1, slba: UInt64 = slba, nlb: Int = blocks, prp1: UInt64 = replacement) -> SubmissionQueueEntry {
        TestHost.write(nsid: nsid, slba: slba, nlb: nlb, prp1: prp1)
    }

    static func stamp(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: bytes) }

    /// A host with the range holding `stamp(1)`, the Compare buffer `stamp(1)`
    /// and the Write buffer `stamp(2)`.
    static func host(readOnly: Bool = false, parameters: ControllerParameters = ControllerParameters()) throws -> TestHost {
        let h = try TestHost(backends: [(TestBackend(size: 2048 << 9), 9)], parameters: parameters, readOnly: readOnly ? [1] : [])
        h.bringUp()
        h.testBackend.write(stamp(1), at: slba << 9)
        h.poke(expected, stamp(1))
        h.poke(replacement, stamp(2))
        return h
    }

    static func media(_ h: TestHost) -> [UInt8] { h.testBackend.read(offset: slba << 9, count: bytes) }

    /// The byte every block of the range holds, or nil when they differ.
    static func uniform(_ h: TestHost) -> UInt8? {
        let m = media(h)
        return m.allSatisfy { $0 == m[0] } ? m[0] : nil
    }

    /// Places `first` (FUSE 01b) and `second` (FUSE 10b) adjacent, rings
    /// once, and returns their completions in that order.
    static func pair(_ h: TestHost, qid: UInt16 = 1, _ first: SubmissionQueueEntry, _ second: SubmissionQueueEntry,
                     ring: Bool = true) -> (first: UInt16, second: UInt16) {
        var a = first, b = second
        a.fuse = 1; b.fuse = 2
        let ids = (h.place(a, qid: qid), h.place(b, qid: qid))
        if ring { h.ring(qid) }
        return ids
    }

    /// Reaps `count` completions of the queue, by CID.
    static func reap(_ h: TestHost, qid: UInt16 = 1, _ count: Int) throws -> [UInt16: CompletionQueueEntry] {
        var out: [UInt16: CompletionQueueEntry] = [:]
        for _ in 0..<count {
            let e = try #require(h.reap(qid))
            out[e.cid] = e
        }
        return out
    }

    static func run(_ h: TestHost, qid: UInt16 = 1, _ first: SubmissionQueueEntry, _ second: SubmissionQueueEntry) throws
        -> (NVMeStatus, NVMeStatus) {
        let ids = pair(h, qid: qid, first, second)
        let done = try reap(h, qid: qid, 2)
        return (try #require(done[ids.first]).status, try #require(done[ids.second]).status)
    }

    @Test("Identify Controller FUSES bit 0: Compare and Write")
    func identifyAdvertisesFuses() throws {
        let h = try Self.host()
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1)).status == .success)
        let id = try #require(IdentifyController(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(id.fuses == 1)
    }

    @Test("A matching Compare lets the Write through; both succeed")
    func compareAndWrite() throws {
        let h = try Self.host()
        let (c, w) = try Self.run(h, Self.compare(), Self.write())
        #expect(c == .success && w == .success)
        #expect(Self.uniform(h) == 2)
        // Again: the range now holds 2, so the same pair fails its Compare.
        let (c2, w2) = try Self.run(h, Self.compare(), Self.write(prp1: Self.other))
        #expect(c2 == .compareFailure && w2 == .failedFused)
    }

    @Test("A failed Compare: Compare Failure, the Write aborted (Failed Fused Command), nothing written")
    func compareFailureAbortsWrite() throws {
        let h = try Self.host()
        h.poke(Self.expected + 100, [9])
        let writesBefore = h.testBackend.submitted.filter { $0.operation == .write }.count
        let (c, w) = try Self.run(h, Self.compare(), Self.write())
        #expect(c == .compareFailure && w == .failedFused)
        #expect(!c.dnr && !w.dnr)
        #expect(Self.uniform(h) == 1)
        #expect(h.testBackend.submitted.filter { $0.operation == .write }.count == writesBefore)
    }

    @Test("Compare errors abort the Write: LBA out of range, a backend read failure, an invalid or inactive NSID")
    func compareErrorsAbortWrite() throws {
        let h = try Self.host()
        var (c, w) = try Self.run(h, Self.compare(slba: 2047, nlb: 2), Self.write(slba: 2047, nlb: 2))
        #expect(c == NVMeStatus.lbaOutOfRange.withDNR && w == .failedFused)
        _ = h.testBackend.addRule(.fail(EIO, operations: [.read], times: 1))
        (c, w) = try Self.run(h, Self.compare(), Self.write())
        #expect(c == .unrecoveredReadError && w == .failedFused)
        (c, w) = try Self.run(h, Self.compare(nsid: 0), Self.write(nsid: 0))
        #expect(c == NVMeStatus.invalidNamespace.withDNR && w == .failedFused)
        (c, w) = try Self.run(h, Self.compare(nsid: 2), Self.write(nsid: 2))
        #expect(c == NVMeStatus.invalidField.withDNR && w == .failedFused)
        #expect(Self.uniform(h) == 1)
    }

    @Test("A failing Write leaves the Compare's status alone (write-protected namespace)")
    func writeErrorKeepsCompareStatus() throws {
        let h = try Self.host(readOnly: true)
        let (c, w) = try Self.run(h, Self.compare(), Self.write())
        #expect(c == .success && w == NVMeStatus.namespaceWriteProtected.withDNR)
        #expect(Self.uniform(h) == 1)
    }

    @Test("Missing partner: a first alone, a first followed by an ordinary command, a second alone")
    func missingFusedCommand() throws {
        let h = try Self.host()
        // The first is the last entry of the doorbell update.
        var first = Self.compare(); first.fuse = 1
        #expect(h.run(first, qid: 1).status == .missingFused)
        #expect(!NVMeStatus.missingFused.dnr)
        // The first followed by a command with FUSE 00b: that one runs on its own.
        let ids = (h.place(first, qid: 1), h.place(Self.write(), qid: 1))
        h.ring(1)
        let done = try Self.reap(h, 2)
        #expect(done[ids.0]?.status == .missingFused && done[ids.1]?.status == .success)
        #expect(Self.uniform(h) == 2)
        // A second with no first.
        var second = Self.write(prp1: Self.other); second.fuse = 2
        #expect(h.run(second, qid: 1).status == .missingFused)
        #expect(Self.uniform(h) == 2)
    }

    @Test("Mismatched partner: a pair other than Compare then Write is Missing Fused Command for both")
    func mismatchedOpcodes() throws {
        let h = try Self.host()
        var (a, b) = try Self.run(h, TestHost.read(slba: Self.slba, nlb: Self.blocks, prp1: Self.other), Self.write())
        #expect(a == .missingFused && b == .missingFused)
        (a, b) = try Self.run(h, Self.compare(), Self.compare())
        #expect(a == .missingFused && b == .missingFused)
        (a, b) = try Self.run(h, Self.write(), Self.compare())
        #expect(a == .missingFused && b == .missingFused)
        #expect(Self.uniform(h) == 1)
    }

    @Test("Different LBA ranges or namespaces: Invalid Field in Command for both; FUSE 11b: Invalid Field")
    func differentRanges() throws {
        let h = try Self.host()
        for (c, w) in [(Self.compare(), Self.write(slba: Self.slba + 1)), (Self.compare(), Self.write(nlb: 3)),
                       (Self.compare(), Self.write(nsid: 2))] {
            let (a, b) = try Self.run(h, c, w)
            #expect(a == NVMeStatus.invalidField.withDNR && b == NVMeStatus.invalidField.withDNR)
        }
        var reserved = Self.write(); reserved.fuse = 3
        #expect(h.run(reserved, qid: 1).status == .invalidField)   // DNR clear, as QEMU
        // Admin commands have no fused operation.
        var identify = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1)
        identify.fuse = 1
        #expect(h.admin(identify).status == .invalidField)
        #expect(Self.uniform(h) == 1)
    }

    /// A host whose I/O SQ 1 has 4 entries (so 4 request slots), CQ 1 8.
    static func smallQueueHost() throws -> TestHost {
        let h = try TestHost(backends: [(TestBackend(size: 2048 << 9), 9)])
        precondition(h.enable().rdy)
        precondition(h.createCQ(qid: 1, entries: 8, vector: 1).isSuccess)
        precondition(h.createSQ(qid: 1, entries: 4, cqid: 1).isSuccess)
        h.testBackend.write(stamp(1), at: slba << 9)
        h.poke(expected, stamp(1))
        h.poke(replacement, stamp(2))
        return h
    }

    @Test("A pair wraps from the last SQ entry to the first")
    func pairWrapsAround() throws {
        let h = try Self.smallQueueHost()
        for _ in 0..<3 { #expect(h.run(Self.write(slba: 100, nlb: 1, prp1: Self.other), qid: 1).status == .success) }
        let (c, w) = try Self.run(h, Self.compare(), Self.write())  // entries 3 and 0
        #expect(c == .success && w == .success)
        #expect(Self.uniform(h) == 2)
    }

    @Test("A pair waits in the SQ until two request slots are free (fetched when they are, with no doorbell); aborted there, the first aborts the second and the second leaves the first unpaired")
    func stalledPairAndAbort() throws {
        for abortTarget in [0, 1, 2] {  // none, the first, the second
            let h = try Self.smallQueueHost()
            _ = h.testBackend.addRule(.hold(operations: [.write], times: 3))
            for _ in 0..<3 { h.place(Self.write(slba: 100, nlb: 1, prp1: Self.other), qid: 1) }
            h.ring(1)
            #expect(h.testBackend.waitForHeld(count: 3))  // one request slot left
            let ids = Self.pair(h, Self.compare(), Self.write())
            #expect(h.controller.queueSnapshots().first { $0.kind == .submission && $0.qid == 1 }?.head == 3)
            if abortTarget > 0 {
                let target = abortTarget == 1 ? ids.first : ids.second
                let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(target) << 16 | 1))
                #expect(abort.status == .success && abort.dw0 == 0)
            }
            #expect(h.peekCQE(1) == nil)
            // The writes end and free their requests: the pair is fetched
            // then, without another doorbell.
            h.testBackend.releaseAll()
            let done = try Self.reap(h, 5)
            #expect(done.filter { $0.key != ids.first && $0.key != ids.second }.values.allSatisfy { $0.status == .success })
            let (c, w) = (done[ids.first]?.status, done[ids.second]?.status)
            switch abortTarget {
            case 0: #expect(c == .success && w == .success && Self.uniform(h) == 2)
            case 1: #expect(c == .abortRequested && w == .failedFused && Self.uniform(h) == 1)
            default: #expect(c == .missingFused && w == .abortRequested && Self.uniform(h) == 1)
            }
        }
    }

    // MARK: atomicity

    /// Creates I/O queue pairs 2...count (queue 1 exists).
    static func addQueues(_ h: TestHost, upTo count: UInt16) {
        for q in 2...count {
            precondition(h.createCQ(qid: q, entries: 64, vector: q).isSuccess)
            precondition(h.createSQ(qid: q, entries: 64, cqid: q).isSuccess)
        }
    }

    @Test("A Write in flight on the range holds the pair back; the Compare then sees its data")
    func pairWaitsForWriteInFlight() throws {
        let h = try Self.host()
        Self.addQueues(h, upTo: 2)
        h.poke(Self.other, Self.stamp(3))
        _ = h.testBackend.addRule(.hold(operations: [.write], times: 1))
        let plain = h.place(Self.write(prp1: Self.other), qid: 2)
        h.ring(2)
        #expect(h.testBackend.waitForHeld(count: 1))
        h.poke(Self.expected, Self.stamp(3))  // the pair expects the held Write's data
        let ids = Self.pair(h, Self.compare(), Self.write())
        usleep(20_000)
        #expect(h.testBackend.submitted.filter { $0.operation == .read }.isEmpty)
        #expect(h.peekCQE(1) == nil)
        h.testBackend.releaseAll()
        #expect(h.reap(2)?.cid == plain)
        let done = try Self.reap(h, 2)
        #expect(done[ids.first]?.status == .success && done[ids.second]?.status == .success)
        #expect(Self.uniform(h) == 2)
    }

    /// A host with I/O queues 1...`queues`, `other` holding stamp 3, and a
    /// pair on queue 1 whose Compare's read the backend holds.
    static func heldPair(queues: UInt16) throws -> (TestHost, (first: UInt16, second: UInt16)) {
        let h = try Self.host()
        Self.addQueues(h, upTo: queues)
        h.poke(Self.other, Self.stamp(3))
        _ = h.testBackend.addRule(.hold(operations: [.read], times: 1))
        let ids = Self.pair(h, Self.compare(), Self.write())
        #expect(h.testBackend.waitForHeld(count: 1))
        return (h, ids)
    }

    @Test("A running pair holds back later commands on its range, not others; they run after its Write")
    func laterCommandsWaitForPair() throws {
        let (h, ids) = try Self.heldPair(queues: 2)
        let overlapping = h.place(Self.write(slba: Self.slba + 3, nlb: 2, prp1: Self.other), qid: 2)
        let unrelated = h.place(TestHost.read(slba: 100, nlb: 1, prp1: Self.other + 0x1000), qid: 2)
        h.ring(2)
        // The unrelated Read completes while the pair is held; the overlapping Write waits.
        #expect(h.reap(2)?.cid == unrelated)
        usleep(20_000)
        #expect(h.peekCQE(2) == nil)
        #expect(h.testBackend.submitted.filter { $0.operation == .write }.isEmpty)
        h.testBackend.releaseAll()
        let done = try Self.reap(h, 2)
        #expect(done[ids.first]?.status == .success && done[ids.second]?.status == .success)
        #expect(h.reap(2)?.cid == overlapping)
        // The pair's Write went first: blocks 8-10 hold 2, 11 holds 3 (the later Write).
        let writes = h.testBackend.submitted.filter { $0.operation == .write }.map(\.offset)
        #expect(writes == [Self.slba << 9, (Self.slba + 3) << 9])
        let m = Self.media(h)
        #expect(m[..<(3 * 512)].allSatisfy { $0 == 2 } && m[(3 * 512)...].allSatisfy { $0 == 3 })
    }

    @Test("Abort of a command waiting for a pair's LBAs: Command Abort Requested, nothing written")
    func abortWaitingCommand() throws {
        let (h, ids) = try Self.heldPair(queues: 2)
        let waiting = h.place(Self.write(prp1: Self.other), qid: 2)
        h.ring(2)
        let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(waiting) << 16 | 2))
        #expect(abort.status == .success && abort.dw0 == 0)
        let e = h.reap(2)
        #expect(e?.cid == waiting && e?.status == .abortRequested)
        h.testBackend.releaseAll()
        let done = try Self.reap(h, 2)
        #expect(done[ids.first]?.status == .success && done[ids.second]?.status == .success)
        #expect(Self.uniform(h) == 2)
        #expect(h.testBackend.submitted.filter { $0.operation == .write }.count == 1)
    }

    @Test("Deleting a queue drops its waiting command; deleting the pair's queue ends the pair and frees its range")
    func queueDeletion() throws {
        let (h, _) = try Self.heldPair(queues: 3)
        h.place(Self.write(prp1: Self.other), qid: 2)
        h.ring(2)
        let survivor = h.place(Self.write(prp1: Self.other), qid: 3)
        h.ring(3)
        // Queue 2's Write waits for the pair: its deletion drops it, no CQE.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 2)).status == .success)
        #expect(h.peekCQE(2) == nil && h.peekCQE(3) == nil)
        // Queue 1's deletion cancels the held Compare: the pair ends, queue 3's Write runs.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1)).status == .success)
        let e = h.reap(3)
        #expect(e?.cid == survivor && e?.status == .success)
        #expect(h.peekCQE(1) == nil)
        #expect(Self.uniform(h) == 3)
    }

    @Test("Pairs racing on four queues for the same LBAs: exactly one Compare matches")
    func oneWinnerAmongRacingPairs() throws {
        for _ in 0..<10 {
            let h = try Self.host()
            Self.addQueues(h, upTo: 4)
            _ = h.testBackend.addRule(.delay(.milliseconds(2), operations: [.read]))
            var ids: [UInt16: (UInt16, UInt16)] = [:]
            for q in UInt16(1)...4 {
                h.poke(Self.other + UInt64(q) * 0x1000, Self.stamp(UInt8(10 + q)))
                ids[q] = Self.pair(h, qid: q, Self.compare(), Self.write(prp1: Self.other + UInt64(q) * 0x1000), ring: false)
            }
            for q in UInt16(1)...4 { h.ring(q) }
            var winners: [UInt16] = []
            for q in UInt16(1)...4 {
                let done = try Self.reap(h, qid: q, 2)
                let (c, w) = (try #require(done[ids[q]!.0]).status, try #require(done[ids[q]!.1]).status)
                if c == .success {
                    #expect(w == .success)
                    winners.append(q)
                } else {
                    #expect(c == .compareFailure && w == .failedFused)
                }
            }
            #expect(winners.count == 1)
            if let q = winners.first { #expect(Self.uniform(h) == UInt8(10 + q)) }
        }
    }

    @Test("Under a concurrent writer on another queue, with writes split into delayed AIOs, nothing interleaves")
    func atomicUnderConcurrentWriter() throws {
        var p = ControllerParameters()
        p.maxBackendTransfer = 512  // one AIO per block
        let h = try Self.host(parameters: p)
        Self.addQueues(h, upTo: 2)
        var current: UInt8 = 1
        for round in 0..<20 {
            let pairFirst = round % 2 == 0
            let plainStamp = UInt8(100 + round), pairStamp = UInt8(200 - round)
            h.poke(Self.other, Self.stamp(plainStamp))
            h.poke(Self.expected, Self.stamp(current))
            h.poke(Self.replacement, Self.stamp(pairStamp))
            // The first block of whichever write is issued first lands late.
            _ = h.testBackend.addRule(.delay(.milliseconds(3), operations: [.write], range: (Self.slba << 9)..<((Self.slba + 1) << 9),
                                             times: 1))
            _ = h.testBackend.addRule(.delay(.milliseconds(1), operations: [.read], times: 1))
            var ids: (UInt16, UInt16) = (0, 0)
            let plain: UInt16
            if pairFirst {
                ids = Self.pair(h, Self.compare(), Self.write())
                plain = h.place(Self.write(prp1: Self.other), qid: 2)
                h.ring(2)
            } else {
                plain = h.place(Self.write(prp1: Self.other), qid: 2)
                h.ring(2)
                ids = Self.pair(h, Self.compare(), Self.write())
            }
            #expect(h.reap(2)?.cid == plain)
            let done = try Self.reap(h, 2)
            let (c, w) = (try #require(done[ids.0]).status, try #require(done[ids.1]).status)
            if pairFirst {
                // The pair saw the old data and wrote before the plain Write.
                #expect(c == .success && w == .success)
            } else {
                // The plain Write was in flight: the pair waited for it, and its Compare failed.
                #expect(c == .compareFailure && w == .failedFused)
            }
            #expect(Self.uniform(h) == plainStamp)
            current = plainStamp
            h.testBackend.clearRules()
        }
    }
}
