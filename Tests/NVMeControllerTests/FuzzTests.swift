import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

/// CONTRACT §7: no input crashes or hangs the controller. Seeded, bounded random
/// register writes, doorbells and submission entries (including hostile
/// PRP/SGL pointers into and outside host memory), then a clean reset and
/// bring-up must work.
@Suite("Hostile input")
struct FuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomTrafficNeverBreaksTheController(seed: UInt64) throws {
        var rng = SplitMix(state: seed)
        var p = ControllerParameters()
        p.maxIOQueuePairs = 4
        p.cmbSize = 1 << 20
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 12)], parameters: p)
        h.bringUp(entries: 16)
        CMBTests.place(h)
        // Interesting addresses: in mem, at its end, in the CMB, unbacked, near overflow.
        let addresses: [UInt64] = [0, 0x1000, 0x400000, 0x400ff8, UInt64(TestHost.memorySize - 8), UInt64(TestHost.memorySize),
                                   CMBTests.cba, 0x7000_0000, UInt64.max - 4095, UInt64.max]
        func addr() -> UInt64 { Bool.random(using: &rng) ? addresses.randomElement(using: &rng)! : UInt64.random(in: 0..<0x800000, using: &rng) }
        // Hostile PRP lists in memory: self-pointers and pointers outside.
        for i in 0..<64 { h.poke64(0x500000 + UInt64(i) * 8, addr()) }
        for _ in 0..<3000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                // Any register write, aligned or not, any size the bus allows.
                let offset = Int.random(in: 0..<0x40, using: &rng) & ~3
                h.controller.mmioWrite(offset: offset, value: UInt64.random(in: 0...UInt64.max, using: &rng),
                                       size: Bool.random(using: &rng) ? 4 : 8)
            case 1:
                h.controller.mmioWrite(offset: 0x1000 + Int.random(in: 0..<64, using: &rng) * 4,
                                       value: UInt64(UInt32.random(in: 0...UInt32.max, using: &rng)), size: 4)
            default:
                var e = SubmissionQueueEntry()
                e.opcode = UInt8.random(in: 0...UInt8.max, using: &rng) & (Bool.random(using: &rng) ? 0x1F : 0xFF)
                e.psdt = UInt8.random(in: 0...3, using: &rng)
                e.fuse = Int.random(in: 0..<8, using: &rng) == 0 ? 1 : 0
                e.nsid = [0, 1, 2, 3, 0xFFFF_FFFF].randomElement(using: &rng)!
                e.prp1 = addr(); e.prp2 = Bool.random(using: &rng) ? 0x500000 : addr()
                e.cdw10 = UInt32.random(in: 0...UInt32.max, using: &rng) & (Bool.random(using: &rng) ? 0xFF : 0xFFFF_FFFF)
                e.cdw11 = UInt32.random(in: 0...UInt32.max, using: &rng) & (Bool.random(using: &rng) ? 0xF : 0xFFFF_FFFF)
                e.cdw12 = UInt32.random(in: 0...UInt32.max, using: &rng) & (Bool.random(using: &rng) ? 0x3F : 0xFFFF_FFFF)
                e.cdw13 = UInt32.random(in: 0...UInt32.max, using: &rng)
                // Place it at the tail the controller knows (queues may have been deleted or
                // recreated by earlier random commands), ring, then consume every completion.
                let snaps = h.controller.queueSnapshots()
                guard let sq = snaps.filter({ $0.kind == .submission }).randomElement(using: &rng),
                      h.space.pointer(sq.base, length: sq.size * 64) != nil else { break }
                if !Bool.random(using: &rng) { e.cid = UInt16.random(in: 0...UInt16.max, using: &rng) }
                h.poke(sq.base + UInt64(sq.tail) * 64, e.bytes)
                h.write32(RegisterOffset.sqTailDoorbell(sq.qid), UInt32((sq.tail + 1) % sq.size))
                usleep(50)
                for cq in h.controller.queueSnapshots() where cq.kind == .completion {
                    h.write32(RegisterOffset.cqHeadDoorbell(cq.qid), UInt32(cq.tail))
                }
            }
            if h.csts.cfs || !h.controller.isReady {
                // Recover the way a host would: disable, wait, bring up again.
                h.write32(RegisterOffset.cc, 0)
                #expect(h.wait(timeout: 10) { !h.csts.rdy })
                h.queues = [:]
                h.write32(RegisterOffset.intmc, 0xFFFF_FFFF)
                h.bringUp(entries: 16)
            }
        }
        // The traffic really reached the controller.
        let stats = h.controller.statistics()
        #expect(stats.adminCommands.values.reduce(0, +) + stats.ioCommands.values.reduce(0, +) > 1000)
        #expect(stats.guestErrors > 100)
        #expect(stats.errors > 100)
        // After all that: a clean reset and a working data path.
        h.write32(RegisterOffset.cc, 0)
        #expect(h.wait(timeout: 10) { !h.csts.rdy })
        h.queues = [:]
        h.write32(RegisterOffset.intmc, 0xFFFF_FFFF)
        h.write32(RegisterOffset.nssr, 0)
        h.bringUp(entries: 16)
        let data = TestHost.pattern(512, seed: UInt8(seed))
        h.poke(TestHost.dataBase, data)
        #expect(h.run(TestHost.write(slba: 3, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
        #expect(h.run(TestHost.read(slba: 3, nlb: 1, prp1: TestHost.dataBase + 0x1000), qid: 1).status == .success)
        #expect(h.peek(TestHost.dataBase + 0x1000, 512) == data)
    }
}
