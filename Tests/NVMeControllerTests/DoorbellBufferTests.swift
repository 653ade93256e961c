import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Doorbell Buffer Config (NVMe 1.4 §5.7) and shadow doorbells (§7.13),
/// with QEMU's model: the controller reads an SQ tail from the Shadow
/// Doorbell buffer at a doorbell write of the SQ (whatever value the write
/// carries) and, after writing EventIdx = the tail it had, after each
/// command fetched; it reads a CQ head from the buffer (after writing
/// EventIdx = the head it had) before each CQE it posts.
/// MMIO writes to the admin doorbells are copied into the buffer.
@Suite("Doorbell Buffer Config")
struct DoorbellBufferTests {
    static let shadow: UInt64 = 0x300000, eventIdx: UInt64 = 0x301000
    static let identifyController = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1)

    static func config(_ prp1: UInt64 = shadow, _ prp2: UInt64 = eventIdx) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: AdminOpcode.doorbellBufferConfig.rawValue, prp1: prp1, prp2: prp2)
    }

    /// Entry `index` (doorbell numbering: 2·qid SQ tail, 2·qid+1 CQ head) of the page at `base`.
    static func dword(_ h: TestHost, _ base: UInt64, _ index: Int) -> UInt32 {
        h.peek(base + UInt64(4 * index), 4).withUnsafeBytes { $0.le32(0) }
    }

    static func setDword(_ h: TestHost, _ base: UInt64, _ index: Int, _ value: UInt32) {
        var b = [UInt8](repeating: 0, count: 4)
        b.withUnsafeMutableBytes { $0.put32(value, at: 0) }
        h.poke(base + UInt64(4 * index), b)
    }

    /// Brought up with I/O queue pair 1 of `entries`, buffers zeroed and configured.
    static func configured(entries: Int = 64) throws -> TestHost {
        let h = try TestHost()
        h.bringUp(entries: entries)
        h.poke(shadow, [UInt8](repeating: 0, count: 8192))
        #expect(h.admin(config()).status == .success)
        return h
    }

    @Test("statuses: misaligned or unbacked buffers are Invalid Field (DNR); OACS bit 8 and the effects log advertise it")
    func statuses() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(h.admin(Self.config(Self.shadow + 0x800)).status == NVMeStatus.invalidField.withDNR)
        #expect(h.admin(Self.config(Self.shadow, Self.eventIdx + 4)).status == NVMeStatus.invalidField.withDNR)
        #expect(h.admin(Self.config(Self.shadow + 1, Self.eventIdx)).status == NVMeStatus.invalidField.withDNR)
        // Page aligned, but outside every host memory region (8 MiB of memory).
        #expect(h.admin(Self.config(64 << 20)).status == NVMeStatus.invalidField.withDNR)
        #expect(h.admin(Self.config(Self.shadow, 64 << 20)).status == NVMeStatus.invalidField.withDNR)
        // The last page of memory is fine; one that runs past its end is not.
        #expect(h.admin(Self.config(UInt64(TestHost.memorySize) - 4096 + 2048)).status == NVMeStatus.invalidField.withDNR)
        #expect(h.controller.doorbellBufferAddresses == nil)
        #expect(h.admin(Self.config()).status == .success)
        #expect(h.controller.doorbellBufferAddresses?.shadow == Self.shadow)
        #expect(h.controller.doorbellBufferAddresses?.eventIdx == Self.eventIdx)
        // A second configuration replaces the first.
        #expect(h.admin(Self.config(UInt64(TestHost.memorySize) - 8192, UInt64(TestHost.memorySize) - 4096)).status == .success)
        #expect(h.controller.doorbellBufferAddresses?.shadow == UInt64(TestHost.memorySize) - 8192)

        #expect(h.admin(Self.identifyController).status == .success)
        let id = try #require(IdentifyController(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(id.oacs & 1 << 8 != 0)
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: 1023 << 16 | 0x05))
        #expect(e.status == .success)
        #expect(Self.dword(h, TestHost.dataBase, 0x7C) & 1 == 1)  // ACS7Ch CSUPP
    }

    @Test("the configuration writes each existing queue's tail and head into the shadow buffer; EventIdx follows the admin SQ")
    func configWritesCurrentValues() throws {
        let h = try TestHost()
        h.bringUp()
        // Queue 1 has moved on: three reads.
        for _ in 0..<3 { #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success) }
        h.poke(Self.shadow, [UInt8](repeating: 0xEE, count: 8192))
        #expect(h.admin(Self.config()).status == .success)
        let adminTail = UInt32(h.queues[0]!.sqTail)
        #expect(Self.dword(h, Self.shadow, 0) == adminTail)
        // The admin CQ head as the controller knew it when the command ran,
        // mirrored again by the MMIO head write of `reap`.
        #expect(Self.dword(h, Self.shadow, 1) == UInt32(h.queues[0]!.cqHead))
        #expect(Self.dword(h, Self.shadow, 2) == 3)
        #expect(Self.dword(h, Self.shadow, 3) == 3)
        // Queues that do not exist are left alone.
        #expect(Self.dword(h, Self.shadow, 4) == 0xEEEE_EEEE)
        // After the command was fetched: EventIdx = the admin tail; the CQE's post wrote the admin CQ's.
        #expect(Self.dword(h, Self.eventIdx, 0) == adminTail)
        #expect(Self.dword(h, Self.eventIdx, 1) == adminTail - 1)
        #expect(Self.dword(h, Self.eventIdx, 2) == 0xEEEE_EEEE)
    }

    @Test("I/O SQ: the shadow tail wins over a stale MMIO write, and EventIdx becomes the tail consumed")
    func shadowTailConsumption() throws {
        let h = try Self.configured()
        let data = TestHost.pattern(1024, seed: 3)
        h.poke(TestHost.dataBase, data)
        let stale = UInt32(h.queues[1]!.sqTail)
        h.place(TestHost.write(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.place(TestHost.write(slba: 1, nlb: 1, prp1: TestHost.dataBase + 512), qid: 1)
        Self.setDword(h, Self.shadow, 2, UInt32(h.queues[1]!.sqTail))
        // The MMIO write only wakes the controller; the tail comes from the shadow entry.
        h.write32(RegisterOffset.sqTailDoorbell(1), stale)
        #expect(h.reap(1)?.status == .success)
        #expect(h.reap(1)?.status == .success)
        #expect(Self.dword(h, Self.eventIdx, 2) == stale + 2)
        #expect(h.testBackend.read(offset: 0, count: 1024) == data)
    }

    @Test("a tail published without an MMIO write waits for a doorbell write of its own SQ (as QEMU)")
    func shadowOnlySubmission() throws {
        let h = try Self.configured()
        let doorbellsBefore = h.controller.statistics().doorbellWrites
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        Self.setDword(h, Self.shadow, 2, UInt32(h.queues[1]!.sqTail))
        // Another queue's doorbell does not read SQ 1's shadow entry.
        #expect(h.admin(Self.identifyController).status == .success)
        #expect(h.reap(1, timeout: 0.2) == nil)
        #expect(h.controller.statistics().doorbellWrites == doorbellsBefore + 2)
        // Any write to SQ 1's doorbell does, whatever its value.
        h.write32(RegisterOffset.sqTailDoorbell(1), 0)
        #expect(h.reap(1)?.status == .success)
        #expect(Self.dword(h, Self.eventIdx, 2) == 1)
    }

    @Test("CQ: the controller reads the head from the shadow buffer when it posts; EventIdx is the head it had")
    func shadowHeadMakesRoom() throws {
        let h = try Self.configured(entries: 4)  // a CQ of 4 entries holds 3 CQEs
        for _ in 0..<3 {
            h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        }
        Self.setDword(h, Self.shadow, 2, UInt32(h.queues[1]!.sqTail))
        h.write32(RegisterOffset.sqTailDoorbell(1), 0)
        for _ in 0..<3 { #expect(h.reap(1, ringHead: false)?.status == .success) }
        // The CQ is full as far as the controller knows: the next CQE waits.
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        Self.setDword(h, Self.shadow, 2, UInt32(h.queues[1]!.sqTail))
        h.write32(RegisterOffset.sqTailDoorbell(1), 0)
        #expect(h.reap(1, timeout: 0.2, ringHead: false) == nil)
        #expect(Self.dword(h, Self.eventIdx, 3) == 0)
        // A head past the queue is ignored (a guest error); the CQE still waits.
        let guestErrors = h.controller.statistics().guestErrors
        Self.setDword(h, Self.shadow, 3, 4)
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        Self.setDword(h, Self.shadow, 2, UInt32(h.queues[1]!.sqTail))
        h.write32(RegisterOffset.sqTailDoorbell(1), 0)
        #expect(h.reap(1, timeout: 0.2, ringHead: false) == nil)
        #expect(h.controller.statistics().guestErrors > guestErrors)
        // The host publishes its head in the shadow entry only; the next
        // post (here: the CQ doorbell's) finds the room.
        Self.setDword(h, Self.shadow, 3, UInt32(h.queues[1]!.cqHead))
        h.write32(RegisterOffset.cqHeadDoorbell(1), 0)
        #expect(h.reap(1, ringHead: false)?.status == .success)
        #expect(h.reap(1, ringHead: false)?.status == .success)
        #expect(Self.dword(h, Self.eventIdx, 3) == 3)
    }

    @Test("an SQ tail past the queue in the shadow buffer is ignored (guest error)")
    func invalidShadowTail() throws {
        let h = try Self.configured(entries: 8)
        let guestErrors = h.controller.statistics().guestErrors
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        Self.setDword(h, Self.shadow, 2, 8)
        h.write32(RegisterOffset.sqTailDoorbell(1), 1)
        // The MMIO value stands: the command runs.
        #expect(h.reap(1)?.status == .success)
        #expect(h.controller.statistics().guestErrors > guestErrors)
    }

    @Test("admin queue: MMIO doorbell writes are copied into the shadow buffer, so they stay authoritative")
    func adminQueueMirrorsMMIO() throws {
        let h = try Self.configured()
        #expect(h.admin(Self.identifyController).status == .success)
        #expect(Self.dword(h, Self.shadow, 0) == UInt32(h.queues[0]!.sqTail))
        #expect(Self.dword(h, Self.shadow, 1) == UInt32(h.queues[0]!.cqHead))
        // A shadow tail ahead of the MMIO value fetches the entry; the MMIO
        // value written next replaces the shadow entry (as QEMU).
        h.place(Self.identifyController)
        Self.setDword(h, Self.shadow, 0, UInt32(h.queues[0]!.sqTail))
        h.write32(RegisterOffset.sqTailDoorbell(0), UInt32(h.queues[0]!.sqTail) - 1)
        #expect(Self.dword(h, Self.shadow, 0) == UInt32(h.queues[0]!.sqTail) - 1)
        #expect(h.reap(0, timeout: 0.2) == nil)
        h.ring(0)
        #expect(h.reap(0)?.status == .success)
    }

    @Test("queues created after the configuration use the buffers; deletion leaves the entries alone")
    func queueCreatedLater() throws {
        let h = try Self.configured()
        #expect(h.createCQ(qid: 2, entries: 16, vector: 2).isSuccess)
        #expect(h.createSQ(qid: 2, entries: 16, cqid: 2).isSuccess)
        #expect(Self.dword(h, Self.shadow, 4) == 0)  // creation writes nothing
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 2)
        Self.setDword(h, Self.shadow, 4, 1)
        h.write32(RegisterOffset.sqTailDoorbell(2), 0)
        #expect(h.reap(2)?.status == .success)
        #expect(Self.dword(h, Self.eventIdx, 4) == 1)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOSQ.rawValue, cdw10: 2)).status == .success)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.deleteIOCQ.rawValue, cdw10: 2)).status == .success)
        #expect(Self.dword(h, Self.shadow, 4) == 1)
        #expect(Self.dword(h, Self.eventIdx, 4) == 1)
    }

    @Test("a controller reset ends the configuration: the admin doorbells are no longer mirrored")
    func resetClears() throws {
        let h = try Self.configured()
        #expect(h.controller.doorbellBufferAddresses != nil)
        h.write32(RegisterOffset.cc, 0)
        #expect(h.wait { !h.csts.rdy })
        #expect(h.controller.doorbellBufferAddresses == nil)
        let before = (Self.dword(h, Self.shadow, 0), Self.dword(h, Self.eventIdx, 0))
        #expect(h.enable().rdy)
        #expect(h.admin(Self.identifyController).status == .success)
        #expect(Self.dword(h, Self.shadow, 0) == before.0)
        #expect(Self.dword(h, Self.eventIdx, 0) == before.1)
    }

    @Test("pages in a region that goes away (the CMB disabled): guest errors, the MMIO values stand, nothing breaks")
    func pagesThatGoAway() throws {
        var p = ControllerParameters()
        p.cmbSize = 1 << 20
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9)], parameters: p)
        h.bringUp()
        let cba: UInt64 = 0x80_0000_0000
        h.write64(RegisterOffset.cmbmsc, cba | 3)
        h.poke(cba, [UInt8](repeating: 0, count: 8192))
        #expect(h.admin(Self.config(cba, cba + 4096)).status == .success)
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        Self.setDword(h, cba, 2, 1)
        h.ring(1)
        #expect(h.reap(1)?.status == .success)
        #expect(Self.dword(h, cba + 4096, 2) == 1)
        let guestErrors = h.controller.statistics().guestErrors
        h.write64(RegisterOffset.cmbmsc, 1)  // CMSE clear: the CMB leaves the address space
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.ring(1)
        #expect(h.reap(1)?.status == .success)
        #expect(h.reap(1)?.status == .success)
        #expect(h.controller.statistics().guestErrors > guestErrors)
        #expect(h.admin(Self.identifyController).status == .success)
    }
}
