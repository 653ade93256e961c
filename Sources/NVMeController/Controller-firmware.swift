import BlockIO
import NVMeSpec

import Glibc

/// Firmware Image Download (11h, NVMe 1.4 §5.11) and Firmware Commit (10h,
/// §5.12), docs/FIRMWARE.md. FRMW: 7 slots, slot 1 read-only (the built-in
/// firmware, revision `parameters.firmwareRevision`), activation without
/// reset supported. The image being downloaded is controller state (pieces
/// in dwords, `firmwareReceived`); the slots, the active and the pending
/// slot live in `firmwareSlots` and, with a store, in its directory,
/// written off the lock.
extension NVMeController {
    /// FWUG: pieces are multiples of 4 KiB at offsets that are.
    static let firmwareGranule = 4096
    /// The largest image accepted (the end of the last piece).
    static let firmwareMaxImage = 1 << 20

    /// The image in `slot` (1 is the built-in firmware), nil for an empty slot.
    func firmwareImage(slot: Int) -> FirmwareImage? {
        slot == 1 ? FirmwareImage(revision: parameters.firmwareRevision) : firmwareSlots.images[slot]
    }

    /// Firmware Slot Information (log page 03h, §5.14.1.3).
    func firmwareSlotLog() -> FirmwareSlotLog {
        FirmwareSlotLog(activeSlot: UInt8(firmwareSlots.active), nextSlot: UInt8(firmwareSlots.pending?.slot ?? 0),
                        revisions: (1...FirmwareSlots.count).map { firmwareImage(slot: $0)?.revision ?? "" })
    }

    /// Firmware Image Download: CDW10 NUMD (dwords, 0's based), CDW11 OFST
    /// (dwords). Pieces may come in any order; each must meet FWUG (Invalid
    /// Field) and not overlap one already received (Overlapping Range).
    func firmwareImageDownload(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let dwords = UInt64(c.cdw10) + 1, offset = UInt64(c.cdw11)
        traceEvent(.firmwareDownload, [("cid", "\(c.cid)"), ("ofst", "\(offset)"), ("numd", "\(dwords)")])
        let granule = UInt64(Self.firmwareGranule / 4)
        guard offset % granule == 0, dwords % granule == 0 else {
            guestError(.firmwareDownload, [("ofst", "\(offset)"), ("numd", "\(dwords)"), ("reason", "fwug")])
            return NVMeStatus.invalidField.withDNR
        }
        guard (offset + dwords) * 4 <= UInt64(Self.firmwareMaxImage) else {
            guestError(.firmwareDownload, [("ofst", "\(offset)"), ("numd", "\(dwords)"), ("reason", "size")])
            return NVMeStatus.invalidField.withDNR
        }
        if let dword = firmwareReceived.firstMember(start: offset, end: offset + dwords) {
            guestError(.firmwareDownload, [("ofst", "\(offset)"), ("numd", "\(dwords)"), ("overlaps", "\(dword)")])
            return NVMeStatus.overlappingRange.withDNR
        }
        let bytes: [UInt8]
        switch transferFromHost(req, length: Int(dwords * 4)) {
        case .failure(let status): return status
        case .success(let b): bytes = b
        }
        let start = Int(offset * 4)
        if firmwareDownloaded.count < start + bytes.count {
            firmwareDownloaded += [UInt8](repeating: 0, count: start + bytes.count - firmwareDownloaded.count)
        }
        firmwareDownloaded.replaceSubrange(start..<(start + bytes.count), with: bytes)
        firmwareReceived.insert(start: offset, end: offset + dwords)
        return .success
    }

    /// The downloaded image when its pieces cover it from dword 0 without a gap.
    var downloadedImage: [UInt8]? {
        guard firmwareReceived.ranges.count == 1, firmwareReceived.ranges[0].start == 0 else { return nil }
        return firmwareDownloaded
    }

    /// Pieces downloaded and not committed are discarded (§5.11: a reset, a commit).
    func discardDownload() {
        firmwareDownloaded.removeAll()
        firmwareReceived = LBARangeSet()
    }

    /// Firmware Commit: CDW10 FS (bits 2:0, 0: the controller chooses), CA
    /// (bits 5:3). CA 000b replaces the image in the slot with the
    /// downloaded one; 001b also activates it at the next reset; 010b
    /// activates the slot's image at the next reset; 011b replaces and
    /// activates now. Boot partitions (110b, 111b) are not supported and
    /// 100b, 101b are reserved: Invalid Field.
    func firmwareCommit(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let requested = Int(c.cdw10 & 7), action = (c.cdw10 >> 3) & 7
        let before = firmwareSlots
        let status = commitFirmware(req, slot: requested, action: action)
        traceEvent(.firmwareCommit, [("cid", "\(c.cid)"), ("fs", "\(requested)"), ("ca", "\(action)"),
                                     ("status", hex(status.raw)), ("active", "\(firmwareSlots.active)"),
                                     ("pending", "\(firmwareSlots.pending?.slot ?? 0)")])
        // What changed is written to the store as an AIO of the command.
        guard firmwareSlots != before || firmwareToSave != nil, saveFirmware(req) else {
            firmwareToSave = nil
            return status
        }
        req.pendingStatus = status
        return nil
    }

    private func commitFirmware(_ req: Request, slot requested: Int, action: UInt32) -> NVMeStatus {
        switch action {
        case 0, 1, 3:
            // FS 0: the first empty slot, else the first that is neither running nor pending.
            let slot = requested != 0 ? requested
                : (2...FirmwareSlots.count).first { firmwareSlots.images[$0] == nil }
                ?? (2...FirmwareSlots.count).first { $0 != firmwareSlots.active && $0 != firmwareSlots.pending?.slot }!
            guard slot != 1 else {
                guestError(.firmwareCommit, [("fs", "1"), ("reason", "read-only slot")])
                return NVMeStatus.invalidFirmwareSlot.withDNR
            }
            guard let bytes = downloadedImage, let image = FirmwareImage(bytes: bytes) else {
                guestError(.firmwareCommit, [("fs", "\(slot)"), ("reason", downloadedImage == nil ? "no complete image" : "not an nvmefs image")])
                return NVMeStatus.invalidFirmwareImage.withDNR
            }
            if action != 0, image.activation == .prohibited { return NVMeStatus.firmwareActivationProhibited.withDNR }
            firmwareSlots.images[slot] = image
            firmwareToSave = (slot, bytes)
            discardDownload()
            // The image a pending activation was for is gone.
            if firmwareSlots.pending?.slot == slot { firmwareSlots.pending = nil }
            if slot == firmwareSlots.active && action == 0 && image.activation != .prohibited {
                // The running firmware's slot: the new image runs from the next reset.
                firmwareSlots.pending = (slot, .controllerReset)
            }
            return action == 0 ? .success : activateFirmware(slot, image, now: action == 3)
        case 2:
            let slot = requested == 0 ? firmwareSlots.active : requested
            guard let image = firmwareImage(slot: slot) else {
                guestError(.firmwareCommit, [("fs", "\(slot)"), ("reason", "empty slot")])
                return NVMeStatus.invalidFirmwareImage.withDNR
            }
            if image.activation == .prohibited { return NVMeStatus.firmwareActivationProhibited.withDNR }
            return activateFirmware(slot, image, now: false)
        default:
            guestError(.firmwareCommit, [("ca", "\(action)"), ("reason", "unsupported commit action")])
            return NVMeStatus.invalidField.withDNR
        }
    }

    /// Activates `slot` now (commit action 011b) or records it for the
    /// reset its image needs; the status names that reset (§5.12, Figure 123).
    private func activateFirmware(_ slot: Int, _ image: FirmwareImage, now: Bool) -> NVMeStatus {
        switch image.activation {
        case .immediate where now:
            // Longer than MTFA: not activated (§5.12: re-issue with a reset).
            guard image.activationTime <= parameters.firmwareMTFA else {
                return NVMeStatus.firmwareActivationRequiresMaxTimeViolation.withDNR
            }
            firmwareSlots.active = slot
            firmwareSlots.pending = nil
            firmwareRevision = image.revision
            traceEvent(.firmwareActivated, [("slot", "\(slot)"), ("revision", image.revision)])
            return .success
        case .immediate, .controllerReset:
            firmwareSlots.pending = (slot, .controllerReset)
            return now ? NVMeStatus.firmwareActivationRequiresReset : .success
        case .conventionalReset:
            firmwareSlots.pending = (slot, .conventionalReset)
            return NVMeStatus.firmwareActivationRequiresConventionalReset
        case .subsystemReset:
            firmwareSlots.pending = (slot, .subsystemReset)
            return NVMeStatus.firmwareActivationRequiresNVMReset
        case .prohibited:
            return NVMeStatus.firmwareActivationProhibited.withDNR
        }
    }

    /// With a store, queues the write of the committed slot image (if any)
    /// and of the state file as an AIO of `req` on the format queue (a
    /// failure is the command's Write Fault). Returns false without a store.
    private func saveFirmware(_ req: Request) -> Bool {
        let image = firmwareToSave
        firmwareToSave = nil
        guard let store = firmwareStore else { return false }
        let slots = firmwareSlots
        let step = BlockingStep(name: "firmware-slots", queue: formatQueue) { [logger] in
            if let (slot, bytes) = image {
                let err = store.saveSlot(slot, image: bytes)
                if err != 0 { logger.error("cannot store firmware slot \(slot) in \(store.slotPath(slot)): errno \(err)"); return err }
            }
            let err = store.saveState(slots)
            if err != 0 { logger.error("cannot record the firmware state in \(store.statePath): errno \(err)") }
            return err
        }
        submitAIO(req, nsid: 0, AIO(operation: .write, offset: 0, length: 0), on: step, area: .metadata)
        return true
    }

    /// A reset of `kind` (`.controllerReset` for CC.EN 1→0, `.subsystemReset`
    /// for NSSR, which is a Controller Level Reset too): discards a download
    /// in progress and activates the pending slot when this reset is the one
    /// it waits for. A conventional reset is a power cycle: the next mount
    /// (`FirmwareStore.load`).
    func firmwareReset(_ kind: FirmwareActivation) {
        discardDownload()
        guard let pending = firmwareSlots.pending,
              pending.kind == .controllerReset || (pending.kind == .subsystemReset && kind == .subsystemReset) else { return }
        firmwareSlots.active = pending.slot
        firmwareSlots.pending = nil
        firmwareRevision = firmwareImage(slot: pending.slot)?.revision ?? parameters.firmwareRevision
        traceEvent(.firmwareActivated, [("slot", "\(pending.slot)"), ("revision", firmwareRevision)])
        guard let store = firmwareStore else { return }
        let slots = firmwareSlots
        formatQueue.async { [logger] in
            let err = store.saveState(slots)
            if err != 0 { logger.error("cannot record the firmware state in \(store.statePath): errno \(err)") }
        }
    }

    /// The firmware slots as they stand (tests, `info`).
    public var firmwareState: FirmwareSlots { lock.withLock { firmwareSlots } }
}
