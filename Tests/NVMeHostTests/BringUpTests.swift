import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

@Suite struct BringUpTests {
    @Test func bringsTheControllerUpWithItsQueues() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9), (TestBackend(size: 2 << 20), 12)])
        let host = rig.host
        #expect(host.state == .live)
        #expect(host.ownedQueueIDs == [0, 1, 2, 3, 4])
        let cc = rig.controller.mmioRead(offset: 0x14, size: 4)
        #expect(cc == 0x460001)
        #expect(rig.controller.mmioRead(offset: 0x1C, size: 4) & 1 == 1)
        // The private region lies above mem.
        let region = try #require(rig.space.regions.first { $0.kind == .hostPrivate })
        #expect(region.base >= 1 << 20)
        #expect(region.base == host.regionBase)
        // The admin queue lives in it.
        #expect(rig.controller.mmioRead(offset: 0x28, size: 8) == host.admin.sqAddress)
        #expect(host.namespaces.map(\.nsid) == [1, 2])
        #expect(host.namespaceInfo(1)?.capacity == 1 << 20)
        #expect(host.namespaceInfo(1)?.blockSize == 512)
        #expect(host.namespaceInfo(2)?.capacity == 2 << 20)
        #expect(host.namespaceInfo(2)?.blockSize == 4096)
        #expect(host.maxTransfer == 512 * 1024)  // MDTS 7
    }

    @Test func honoursFewerQueuesThanAsked() throws {
        var p = ControllerParameters()
        p.maxIOQueuePairs = 2
        var c = BuiltinHostConfiguration()
        c.ioQueuePairs = 8
        c.ioQueueDepth = 16
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)], parameters: p, configuration: c)
        #expect(rig.host.ownedQueueIDs == [0, 1, 2])
        #expect(rig.write(1, 100, [1, 2, 3]).value == 3)
        #expect(rig.read(1, 100, 3).value == [1, 2, 3])
    }

    @Test func adminPassthroughOfIdentify() throws {
        var p = ControllerParameters()
        p.serial = "HOSTTEST42"
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)], parameters: p)
        let (cqe, data) = rig.host.adminCommand(
            SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, cdw10: 1), dataIn: 4096)
        #expect(cqe.status == .success)
        #expect(cqe.sqid == 0)
        #expect(data.count == 4096)
        let id = try #require(data.withUnsafeBytes { IdentifyController(bytes: $0) })
        #expect(id.sn == "HOSTTEST42")
        #expect(id.mdts == 7)
        #expect(try rig.host.identifyController() == data)

        let ns = try rig.host.identifyNamespace(1)
        let idns = try #require(ns.withUnsafeBytes { IdentifyNamespace(bytes: $0) })
        #expect(idns.nsze == 2048)

        // An invalid CNS completes with its status, not a host error.
        let (bad, _) = rig.host.adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, cdw10: 0x55),
                                             dataIn: 4096)
        #expect(bad.status.kind == .invalidField)
        #expect(throws: HostError.self) { try rig.host.identifyNamespace(0xFFFF_FFFF) }

        // The host's own queues cannot be deleted through passthrough.
        let (del, _) = rig.host.adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 1))
        #expect(del.status.kind == .invalidQueueIdentifier)
        #expect(rig.write(1, 0, [1]).value == 1)

        // A log page: SMART / health (02h) is 512 bytes.
        let smart = try rig.host.getLogPage(lid: 2, length: 512)
        #expect(smart.count == 512)
    }

    @Test func ioPassthroughReadsIntoTheHostBuffer() throws {
        let backend = TestBackend(size: 1 << 20)
        backend.write(pattern(1024, seed: 9), at: 4096)
        let rig = try Rig([(backend, 9)])
        var sqe = SubmissionQueueEntry(opcode: NVMOpcode.read.rawValue, nsid: 1)
        sqe.slba = 8
        sqe.nlb = 1
        let (cqe, data) = rig.host.ioCommand(sqe, dataIn: 1024)
        #expect(cqe.status == .success)
        #expect(data == pattern(1024, seed: 9))
        // A command that transfers more than the buffer fails cleanly.
        sqe.nlb = 15  // 8 KiB into a 1 KiB (one page) buffer
        let (short, _) = rig.host.ioCommand(sqe, dataIn: 1024)
        #expect(short.status.kind == .dataTransferError)
        // Writes through dataOut.
        var w = SubmissionQueueEntry(opcode: NVMOpcode.write.rawValue, nsid: 1)
        w.slba = 0
        let (wc, _) = rig.host.ioCommand(w, dataOut: pattern(512, seed: 3))
        #expect(wc.status == .success)
        #expect(backend.read(offset: 0, count: 512) == pattern(512, seed: 3))
    }

    @Test func shutdownStopsTheControllerCleanly() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        #expect(rig.write(1, 0, [7]).value == 1)
        rig.host.shutdown()
        #expect(rig.host.state == .shutDown)
        #expect(rig.controller.mmioRead(offset: 0x14, size: 4) & 1 == 0)
        #expect(rig.controller.mmioRead(offset: 0x1C, size: 4) & 1 == 0)
        #expect(backend.syncCount >= 1)
        #expect(rig.read(1, 0, 1).error?.errno == ENODEV)
        #expect(!rig.space.regions.contains { $0.kind == .hostPrivate })
        rig.host.shutdown()  // idempotent
    }
}
