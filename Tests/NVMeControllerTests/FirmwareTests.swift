import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Firmware Image Download (NVMe 1.4 §5.11) and Firmware Commit (§5.12):
/// every status, the slot log and FR, activation at each kind of reset, and
/// the slots kept in a store (docs/FIRMWARE.md).
@Suite("Firmware")
struct FirmwareTests {
    static let buffer = TestHost.dataBase

    /// An nvmefs image of `size` bytes (a payload of `fill`).
    static func image(_ revision: String, _ activation: FirmwareActivation = .immediate, time: UInt16 = 0,
                      size: Int = 8192, fill: UInt8 = 0xA5) -> [UInt8] {
        let header = FirmwareImage(revision: revision, activation: activation, activationTime: time).header
        return header + [UInt8](repeating: fill, count: size - header.count)
    }

    /// Firmware Image Download of `bytes` at byte `offset` (PRP1 and PRP2: up to two pages).
    static func download(_ h: TestHost, _ bytes: [UInt8], at offset: Int = 0) -> NVMeStatus {
        h.poke(buffer, bytes)
        return h.admin(SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue, prp1: buffer,
                                            prp2: buffer + 4096, cdw10: UInt32(bytes.count / 4 - 1),
                                            cdw11: UInt32(offset / 4))).status
    }

    /// Firmware Commit with FS `slot` and CA `action`.
    static func commit(_ h: TestHost, slot: Int, action: Int) -> NVMeStatus {
        h.admin(SubmissionQueueEntry(opcode: AdminOpcode.firmwareCommit.rawValue, cdw10: UInt32(action << 3 | slot))).status
    }

    static func slotLog(_ h: TestHost) throws -> FirmwareSlotLog {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: buffer,
                                             cdw10: 127 << 16 | 0x03))
        #expect(e.status == .success)
        return try #require(FirmwareSlotLog(bytes: h.peek(buffer, 512)))
    }

    static func identify(_ h: TestHost) throws -> IdentifyController {
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: buffer, cdw10: 1)).status == .success)
        return try #require(IdentifyController(bytes: h.peek(buffer, 4096)))
    }

    static func host(firmware: (store: FirmwareStore?, slots: FirmwareSlots)? = nil) throws -> TestHost {
        let b = TestBackend(size: 1 << 20)
        let h = try TestHost(namespaces: [Namespace(nsid: 1, backend: b, lbads: 9)], backends: [b], firmware: firmware)
        precondition(h.enable().rdy)
        return h
    }

    /// CC.EN 1→0 (a Controller Level Reset), then enabled again.
    static func controllerReset(_ h: TestHost) {
        h.write32(RegisterOffset.cc, 0)
        precondition(h.wait { !h.csts.rdy })
        precondition(h.enable().rdy)
    }

    /// NSSR "NVMe" (an NVM Subsystem Reset), then enabled again.
    static func subsystemReset(_ h: TestHost) {
        h.write32(RegisterOffset.nssr, 0x4E56_4D65)
        precondition(h.wait { !h.csts.rdy })
        precondition(h.enable().rdy)
    }

    @Test("Identify: OACS bit 2, FRMW 7 slots with slot 1 read-only and activation without reset, MTFA, FWUG; effects")
    func identifyAndEffects() throws {
        let h = try Self.host()
        let id = try Self.identify(h)
        #expect(id.oacs & 0x4 != 0 && id.frmw == 0x1F && id.mtfa == 10 && id.fwug == 1 && id.fr == "1.0")
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: Self.buffer,
                                             cdw10: 1023 << 16 | 5))
        #expect(e.status == .success)
        let log = try #require(CommandsSupportedAndEffectsLog(bytes: h.peek(Self.buffer, 4096)))
        #expect(log.acs[0x10] == CommandEffects(csupp: true, ccc: true) && log.acs[0x11] == CommandEffects(csupp: true))
        let slots = try Self.slotLog(h)
        #expect(slots.activeSlot == 1 && slots.nextSlot == 0 && slots.frs == ["1.0", "", "", "", "", "", ""])
    }

    @Test("Download: pieces off FWUG or past 1 MiB are Invalid Field, an overlapping piece Overlapping Range; order is free")
    func downloadStatuses() throws {
        let h = try Self.host()
        let img = Self.image("OUTOFORD", size: 12288)
        var e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue, prp1: Self.buffer,
                                             cdw10: 1023, cdw11: 1))  // OFST one dword
        #expect(e.status == NVMeStatus.invalidField.withDNR)
        e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue, prp1: Self.buffer,
                                         cdw10: 511, cdw11: 0))  // 2 KiB
        #expect(e.status == NVMeStatus.invalidField.withDNR)
        e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue, prp1: Self.buffer,
                                         cdw10: 1023, cdw11: UInt32((1 << 20) / 4)))  // past 1 MiB
        #expect(e.status == NVMeStatus.invalidField.withDNR)
        // The last piece first, then the first: a complete image.
        #expect(Self.download(h, Array(img[8192...]), at: 8192) == .success)
        #expect(Self.download(h, Array(img[0..<4096])) == .success)
        #expect(Self.download(h, Array(img[0..<8192])) == NVMeStatus.overlappingRange.withDNR)   // overlaps 0-4K
        #expect(Self.download(h, Array(img[8192...]), at: 8192) == NVMeStatus.overlappingRange.withDNR)
        // A gap (4K-8K) makes the image invalid until it is filled.
        #expect(Self.commit(h, slot: 2, action: 0) == NVMeStatus.invalidFirmwareImage.withDNR)
        #expect(Self.download(h, Array(img[4096..<8192]), at: 4096) == .success)
        #expect(Self.commit(h, slot: 2, action: 0) == .success)
        #expect(try Self.slotLog(h).frs[1] == "OUTOFORD")
    }

    @Test("Commit refusals: the read-only slot, no image, not an nvmefs image, reserved and boot partition actions, an empty slot")
    func commitRefusals() throws {
        let h = try Self.host()
        #expect(Self.commit(h, slot: 2, action: 0) == NVMeStatus.invalidFirmwareImage.withDNR)   // nothing downloaded
        #expect(Self.download(h, Self.image("2.0")) == .success)
        #expect(Self.commit(h, slot: 1, action: 0) == NVMeStatus.invalidFirmwareSlot.withDNR)
        #expect(Self.commit(h, slot: 1, action: 3) == NVMeStatus.invalidFirmwareSlot.withDNR)
        for action in 4...7 { #expect(Self.commit(h, slot: 2, action: action) == NVMeStatus.invalidField.withDNR) }
        #expect(Self.commit(h, slot: 3, action: 2) == NVMeStatus.invalidFirmwareImage.withDNR)   // slot 3 is empty
        // The download survived the refusals; a bad image does not.
        #expect(Self.commit(h, slot: 2, action: 0) == .success)
        var bad = Self.image("3.0"); bad[0] = 0x58
        #expect(Self.download(h, bad) == .success)
        #expect(Self.commit(h, slot: 3, action: 0) == NVMeStatus.invalidFirmwareImage.withDNR)
        var blank = Self.image("3.0"); blank.replaceSubrange(8..<16, with: [UInt8](repeating: 0x20, count: 8))
        h.write32(RegisterOffset.cc, 0); #expect(h.wait { !h.csts.rdy }); #expect(h.enable().rdy)  // discards it
        #expect(Self.download(h, blank) == .success)
        #expect(Self.commit(h, slot: 3, action: 0) == NVMeStatus.invalidFirmwareImage.withDNR)
        let log = try Self.slotLog(h)
        #expect(log.frs == ["1.0", "2.0", "", "", "", "", ""] && log.activeSlot == 1 && log.nextSlot == 0)
    }

    @Test("CA 000b stores without activating; FS 0 picks the first empty slot; CA 010b activates it at the next reset")
    func replaceThenActivateAtReset() throws {
        let h = try Self.host()
        #expect(Self.download(h, Self.image("2.0")) == .success)
        #expect(Self.commit(h, slot: 0, action: 0) == .success)
        #expect(Self.download(h, Self.image("3.0")) == .success)
        #expect(Self.commit(h, slot: 0, action: 0) == .success)
        var log = try Self.slotLog(h)
        #expect(log.frs[1] == "2.0" && log.frs[2] == "3.0" && log.activeSlot == 1 && log.nextSlot == 0)
        #expect(try Self.identify(h).fr == "1.0")
        #expect(Self.commit(h, slot: 3, action: 2) == .success)
        log = try Self.slotLog(h)
        #expect(log.activeSlot == 1 && log.nextSlot == 3)
        #expect(try Self.identify(h).fr == "1.0")
        Self.controllerReset(h)
        log = try Self.slotLog(h)
        #expect(log.activeSlot == 3 && log.nextSlot == 0)
        #expect(try Self.identify(h).fr == "3.0")
        // Back to the built-in firmware of slot 1, and FS 0 of CA 010b: the running slot.
        #expect(Self.commit(h, slot: 1, action: 2) == .success)
        Self.controllerReset(h)
        #expect(try Self.identify(h).fr == "1.0")
        #expect(Self.commit(h, slot: 0, action: 2) == .success)
        #expect(try Self.slotLog(h).nextSlot == 1)
    }

    @Test("CA 011b activates at once; an image needing longer than MTFA gets Maximum Time Violation and stays inactive")
    func activateNow() throws {
        let h = try Self.host()
        #expect(Self.download(h, Self.image("FAST")) == .success)
        #expect(Self.commit(h, slot: 4, action: 3) == .success)
        #expect(try Self.identify(h).fr == "FAST")
        var log = try Self.slotLog(h)
        #expect(log.activeSlot == 4 && log.nextSlot == 0 && log.frs[3] == "FAST")
        #expect(Self.download(h, Self.image("SLOW", time: 11)) == .success)
        #expect(Self.commit(h, slot: 5, action: 3) == NVMeStatus.firmwareActivationRequiresMaxTimeViolation.withDNR)
        log = try Self.slotLog(h)
        #expect(log.activeSlot == 4 && log.nextSlot == 0 && log.frs[4] == "SLOW")
        // Activated with a reset instead.
        #expect(Self.commit(h, slot: 5, action: 2) == .success)
        Self.controllerReset(h)
        #expect(try Self.identify(h).fr == "SLOW")
    }

    @Test("Images needing a reset: Controller Level Reset (CC.EN, NSSR), NVM Subsystem Reset, conventional reset")
    func resetRequirements() throws {
        let h = try Self.host()
        // CA 011b of an image needing a Controller Level Reset: Requires Reset; CC.EN activates it.
        #expect(Self.download(h, Self.image("CLR", .controllerReset)) == .success)
        #expect(Self.commit(h, slot: 2, action: 3) == .firmwareActivationRequiresReset)
        #expect(!NVMeStatus.firmwareActivationRequiresReset.dnr)
        #expect(try Self.slotLog(h).nextSlot == 2 && Self.identify(h).fr == "1.0")
        Self.controllerReset(h)
        #expect(try Self.identify(h).fr == "CLR")
        // CA 001b of one needing an NVM Subsystem Reset: CC.EN does not activate it, NSSR does.
        #expect(Self.download(h, Self.image("NSSR", .subsystemReset)) == .success)
        #expect(Self.commit(h, slot: 3, action: 1) == .firmwareActivationRequiresNVMReset)
        Self.controllerReset(h)
        #expect(try Self.identify(h).fr == "CLR" && Self.slotLog(h).nextSlot == 3)
        Self.subsystemReset(h)
        #expect(try Self.identify(h).fr == "NSSR" && Self.slotLog(h).activeSlot == 3)
        // One needing a conventional reset: neither CC.EN nor NSSR activates it.
        #expect(Self.download(h, Self.image("CONV", .conventionalReset)) == .success)
        #expect(Self.commit(h, slot: 4, action: 3) == .firmwareActivationRequiresConventionalReset)
        Self.controllerReset(h)
        Self.subsystemReset(h)
        #expect(try Self.identify(h).fr == "NSSR" && Self.slotLog(h).nextSlot == 4)
        #expect(h.controller.firmwareState.pending?.kind == .conventionalReset)
    }

    @Test("A prohibited image can be stored but not activated: Firmware Activation Prohibited")
    func prohibited() throws {
        let h = try Self.host()
        #expect(Self.download(h, Self.image("OLD", .prohibited)) == .success)
        #expect(Self.commit(h, slot: 2, action: 1) == NVMeStatus.firmwareActivationProhibited.withDNR)
        #expect(Self.commit(h, slot: 2, action: 3) == NVMeStatus.firmwareActivationProhibited.withDNR)
        #expect(try Self.slotLog(h).frs[1] == "")
        #expect(Self.commit(h, slot: 2, action: 0) == .success)
        #expect(Self.commit(h, slot: 2, action: 2) == NVMeStatus.firmwareActivationProhibited.withDNR)
        let log = try Self.slotLog(h)
        #expect(log.frs[1] == "OLD" && log.activeSlot == 1 && log.nextSlot == 0)
    }

    @Test("A reset discards a download in progress")
    func resetDiscardsDownload() throws {
        let h = try Self.host()
        #expect(Self.download(h, Self.image("2.0")) == .success)
        Self.controllerReset(h)
        #expect(Self.commit(h, slot: 2, action: 0) == NVMeStatus.invalidFirmwareImage.withDNR)
        #expect(Self.download(h, Self.image("2.0")) == .success)   // no overlap with the discarded pieces
        #expect(Self.commit(h, slot: 2, action: 0) == .success)
    }

    @Test("With a store: slot images and state written by the commit; the next power-on activates a pending image")
    func storeKeepsSlots() throws {
        let dir = NSTemporaryDirectory() + "nvmefs-fw-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FirmwareStore(directory: dir)
        var h = try Self.host(firmware: (store, try store.load()))
        let two = Self.image("TWO"), three = Self.image("THREE", .conventionalReset, fill: 3)
        #expect(Self.download(h, two) == .success)
        #expect(Self.commit(h, slot: 2, action: 3) == .success)
        #expect(Self.download(h, three) == .success)
        #expect(Self.commit(h, slot: 3, action: 1) == .firmwareActivationRequiresConventionalReset)
        #expect(FileManager.default.contents(atPath: store.slotPath(2)) == Data(two))
        #expect(FileManager.default.contents(atPath: store.slotPath(3)) == Data(three))
        #expect(String(decoding: FileManager.default.contents(atPath: store.statePath) ?? Data(), as: UTF8.self)
                == "nvmefs-firmware 1\nactive 2\npending 3 conventional-reset\n")
        h.controller.drainAndSync()
        // Power-on: slot 3 runs.
        let slots = try store.load()
        #expect(slots.active == 3 && slots.pending == nil && slots.images[2]?.revision == "TWO" && slots.images[3]?.revision == "THREE")
        #expect(String(decoding: FileManager.default.contents(atPath: store.statePath) ?? Data(), as: UTF8.self)
                == "nvmefs-firmware 1\nactive 3\n")
        h = try Self.host(firmware: (store, slots))
        #expect(try Self.identify(h).fr == "THREE")
        let log = try Self.slotLog(h)
        #expect(log.activeSlot == 3 && log.frs == ["1.0", "TWO", "THREE", "", "", "", ""])
        // A Controller Level Reset activating a pending image records it too.
        #expect(Self.commit(h, slot: 2, action: 2) == .success)
        Self.controllerReset(h)
        h.controller.drainAndSync()
        #expect(try store.load().active == 2)
        // A commit whose files cannot be written fails with Write Fault.
        try FileManager.default.removeItem(atPath: dir)
        #expect(FileManager.default.createFile(atPath: dir, contents: Data([1])))
        #expect(Self.download(h, Self.image("LOST")) == .success)
        #expect(Self.commit(h, slot: 5, action: 0) == .writeFault)
    }
}
