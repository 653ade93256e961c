import BlockIO
import Foundation
import HostMemory
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

/// The built-in host with shadow doorbells (NVMe 1.4 §7.13,
/// `BuiltinHostConfiguration.shadowDoorbells`).
@Suite struct ShadowDoorbellTests {
    static func configuration() -> BuiltinHostConfiguration {
        var c = BuiltinHostConfiguration()
        c.shadowDoorbells = true
        return c
    }

    @Test("the EventIdx rule: ring when the update from old to new passes EventIdx, indices wrapping at the depth")
    func needEvent() {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { page.deallocate() }
        let entry = SharedDword(page), eventIdx = SharedDword(page + 4)
        func rings(eventIdx e: UInt32, old: Int, new: Int, depth: Int = 16) -> Bool {
            eventIdx.store(e)
            return ShadowDoorbell.publish(entry, eventIdx, old: old, new: new, depth: depth)
        }
        #expect(rings(eventIdx: 3, old: 3, new: 4))        // the controller has seen 3: tell it
        #expect(!rings(eventIdx: 2, old: 3, new: 4))       // it is still behind: it will read 4 itself
        #expect(rings(eventIdx: 5, old: 3, new: 7))        // 5 lies in [3, 7)
        #expect(!rings(eventIdx: 7, old: 3, new: 7))
        #expect(rings(eventIdx: 15, old: 15, new: 0))      // wraps
        #expect(rings(eventIdx: 0, old: 14, new: 2))
        #expect(!rings(eventIdx: 2, old: 14, new: 2))
        #expect(!rings(eventIdx: 9, old: 14, new: 2))
        #expect(entry.load() == 2)
    }

    @Test("I/O round trips with shadow doorbells, before and after a recovery; the buffers are configured each time")
    func roundTripAndRecovery() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)], configuration: Self.configuration())
        let buffers = try #require(rig.controller.doorbellBufferAddresses)
        #expect(buffers.shadow >= rig.host.regionBase && buffers.eventIdx == buffers.shadow + 4096)
        let before = rig.controller.statistics()
        let data = pattern(64 * 1024, seed: 5)
        for i in 0..<16 {
            #expect(rig.write(1, UInt64(i) * 4096, Array(data[(i * 4096)..<((i + 1) * 4096)])).value == 4096)
        }
        #expect(rig.read(1, 0, 64 * 1024).value == data)
        let after = rig.controller.statistics()
        #expect(after.ioCommands[NVMOpcode.write.rawValue] == 16)
        #expect((after.ioCommands[NVMOpcode.read.rawValue] ?? 0) >= 1)
        #expect(after.doorbellWrites > before.doorbellWrites)
        // A user reset ends the configuration; the recovery gives it again.
        rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
        #expect(rig.read(1, 0, 4096).value == Array(data[0..<4096]))
        let end = Date().addingTimeInterval(30)
        while Date() < end, !(rig.host.state == .live && rig.host.recoveryCount > 0) { usleep(1000) }
        #expect(rig.host.recoveryCount > 0)
        #expect(rig.controller.doorbellBufferAddresses?.shadow == buffers.shadow)
        #expect(rig.write(1, 8192, [9, 9, 9]).value == 3)
        #expect(rig.read(1, 8190, 6).value == [data[8190], data[8191], 9, 9, 9, data[8195]])
    }

    @Test("many threads with shadow doorbells: every command completes, none lost without its MMIO write")
    func concurrentThreads() throws {
        let backend = TestBackend(size: 4 << 20)
        var c = Self.configuration()
        c.ioQueuePairs = 2
        c.ioQueueDepth = 8
        let rig = try Rig([(backend, 12)], configuration: c)
        onThreads(8) { t in
            for i in 0..<200 {
                let offset = UInt64((t * 200 + i) % 1024) * 4096
                let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: t * 31 + i), count: 4096)
                #expect(rig.write(1, offset, payload).value == 4096)
            }
        }
        let stats = rig.controller.statistics()
        #expect(stats.ioCommands[NVMOpcode.write.rawValue] == 1600)
        #expect(rig.host.recoveryCount == 0)
    }
}
