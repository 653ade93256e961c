import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Synchronization
import Testing

@Suite struct ConcurrencyTests {
    /// Eight writers, each owning a distinct sub-range of the same LBA, write
    /// many patterns; the last pattern of every writer must survive.
    @Test(arguments: [UInt8(9), 12])
    func concurrentUnalignedWritersToOneBlockNeverTear(lbads: UInt8) throws {
        let backend = TestBackend(size: 1 << 20)
        // A small delay widens the read-modify-write window.
        backend.addRule(.delay(.microseconds(200)))
        let rig = try Rig([(backend, lbads)])
        let bs = 1 << Int(lbads)
        let writers = 8, rounds = 30
        let piece = bs / writers
        let base: UInt64 = UInt64(bs) * 3
        onThreads(writers) { w in
            for r in 0..<rounds {
                let bytes = [UInt8](repeating: UInt8(w * rounds + r + 1), count: piece - 1)
                _ = rig.write(1, base + UInt64(w * piece), bytes)
            }
        }
        let block = try #require(rig.read(1, base, bs).value)
        for w in 0..<writers {
            // One byte value across the writer's whole sub-range: its last one.
            #expect(Set(block[(w * piece)..<(w * piece + piece - 1)]) == [UInt8(w * rounds + rounds)], "writer \(w)")
        }
        #expect(rig.host.rangeLock.heldCount == 0)
    }

    /// Whole-block writers and edge writers of the same block: an edge update
    /// never brings back bytes older than a completed whole-block write.
    @Test func edgeWritesDoNotUndoWholeBlockWrites() throws {
        let backend = TestBackend(size: 1 << 20)
        backend.addRule(.delay(.microseconds(200)))
        let rig = try Rig([(backend, 9)])
        let rounds = 40
        let last = Atomic<Int>(0)
        onThreads(2) { t in
            for r in 1...rounds {
                if t == 0 {
                    // Whole block 0: bytes 1..511 carry the round number.
                    _ = rig.write(1, 0, [UInt8](repeating: UInt8(r), count: 512))
                    last.store(r, ordering: .sequentiallyConsistent)
                } else {
                    // Byte 0 only, by read-modify-write.
                    _ = rig.write(1, 0, [0xFF])
                }
            }
        }
        let block = try #require(rig.read(1, 0, 512).value)
        #expect(Set(block[1...]) == [UInt8(rounds)])
        #expect(block[0] == 0xFF || block[0] == UInt8(rounds))
    }

    @Test func manyThreadsOnFewSlots() throws {
        var c = BuiltinHostConfiguration()
        c.ioQueuePairs = 2
        c.ioQueueDepth = 4  // 3 commands per queue in flight
        c.bouncePages = 2
        let backend = TestBackend(size: 4 << 20)
        let rig = try Rig([(backend, 9)], configuration: c)
        let failures = Atomic<Int>(0)
        onThreads(12) { t in
            let offset = UInt64(t) * 300_000 + 17
            let data = pattern(150_000, seed: UInt64(t))
            if rig.write(1, offset, data).value != data.count { failures.add(1, ordering: .relaxed) }
            if rig.read(1, offset, data.count).value != data { failures.add(1, ordering: .relaxed) }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}

@Suite struct RecoveryTests {
    func waitLive(_ host: BuiltinHost) -> Bool {
        let end = Date().addingTimeInterval(30)
        while Date() < end {
            if host.state == .live && host.recoveryCount > 0 { return true }
            usleep(1000)
        }
        return false
    }

    @Test func userResetThenIOWorks() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        #expect(rig.write(1, 10, [1, 2, 3]).value == 3)
        // A user clears CC.EN through the register file.
        rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
        // New I/O waits for the recovery rather than failing.
        #expect(rig.write(1, 20, [4, 5]).value == 2)
        #expect(rig.read(1, 10, 12).value == [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 4, 5])
        #expect(waitLive(rig.host))
        #expect(rig.controller.mmioRead(offset: 0x14, size: 4) == 0x460001)
        #expect(rig.host.ownedQueueIDs == [0, 1, 2, 3, 4])
        // And again, with a subsystem reset.
        rig.controller.mmioWrite(offset: 0x20, value: 0x4E56_4D65, size: 4)
        #expect(rig.read(1, 10, 3).value == [1, 2, 3])
        #expect(try rig.host.identifyController().count == 4096)
    }

    @Test func userResetAndReenableBehindTheHostsBack() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        for round in 0..<5 {
            #expect(rig.write(1, UInt64(round) * 1000, pattern(700, seed: UInt64(round))).value == 700)
            // The user disables and at once re-enables the controller with the
            // host's admin queue still programmed.
            rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
            rig.controller.mmioWrite(offset: 0x14, value: 0x460001, size: 4)
            #expect(try rig.host.identifyController().count == 4096)
            let same = rig.read(1, UInt64(round) * 1000, 700).value == pattern(700, seed: UInt64(round))
            #expect(same)
        }
        #expect(waitLive(rig.host))
        #expect(rig.controller.mmioRead(offset: 0x14, size: 4) == 0x460001)
    }

    @Test func commandInFlightAcrossAUserResetIsRetried() throws {
        let backend = TestBackend(size: 1 << 20)
        backend.write(pattern(4096, seed: 2), at: 0)
        let rig = try Rig([(backend, 9)])
        backend.addRule(.hold(operations: [.read], times: 1))
        let result = ResultBox()
        onThreadsAsync { result.set(rig.read(1, 0, 4096)) }
        #expect(backend.waitForHeld(count: 1))
        rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
        // The reset cancels the held AIO; the host re-creates its queues and retries.
        let same = result.wait()?.value == pattern(4096, seed: 2)
        #expect(same)
        #expect(waitLive(rig.host))
    }

    /// The `.resetComplete` event of the host's own reset can arrive after
    /// its recovery ended (events are delivered later, on some thread; under
    /// load CI saw it). It must not start a second recovery, which would
    /// abort the commands the first one retried; a new reset still must.
    @Test func theLateEventOfTheHostsOwnResetStartsNoRecovery() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)])
        let before = rig.host.recoveryCount
        rig.host.controllerEvent(.resetComplete)     // the late event of bring-up's reset
        // A recovery would have left the live state before returning.
        #expect(rig.host.state == .live)
        #expect(rig.host.recoveryCount == before)
        // A reset of its own (CC.EN=0 from the user) is recovered from.
        rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
        #expect(waitLive(rig.host))
        #expect(rig.host.recoveryCount > before)
    }

    @Test func aCommandThatNeverCompletesTriggersRecovery() throws {
        var c = BuiltinHostConfiguration()
        c.commandTimeout = .milliseconds(300)
        let backend = TestBackend(size: 1 << 20)
        backend.write([9, 8, 7], at: 512)
        let rig = try Rig([(backend, 9)], configuration: c)
        backend.addRule(.hold(operations: [.read], times: 1))
        // Nobody releases the AIO: the timeout resets the controller, which
        // cancels it; the retry succeeds.
        #expect(rig.read(1, 512, 3).value == [9, 8, 7])
        #expect(rig.host.recoveryCount >= 1)
        #expect(rig.host.state == .live)
    }

    @Test func fatalStatusThenDeadThenRevivedByAReset() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        let host = rig.host
        // Take the host's region away: the next SQ fetch fails, the controller
        // sets CSTS.CFS, and recovery cannot re-enable it (ASQ unbacked).
        rig.space.unmap(host.regionID)
        let failed = rig.write(1, 0, [1])
        #expect(failed.error?.errno == EIO)
        #expect(host.state == .dead)
        #expect(rig.read(1, 0, 1).error?.errno == EIO)
        // Give the memory back and reset the subsystem: the host revives.
        try rig.space.map(base: host.regionBase, length: Int(host.regionEnd - host.regionBase),
                          pointer: host.memory.pointer, name: "host", kind: .hostPrivate)
        rig.controller.mmioWrite(offset: 0x20, value: 0x4E56_4D65, size: 4)
        #expect(rig.write(1, 0, [2]).value == 1)
        #expect(rig.read(1, 0, 1).value == [2])
        #expect(host.state == .live)
    }
}
