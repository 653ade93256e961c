import HostMemory
import NVMeController
import NVMeSpec

import Glibc

/// Generic passthrough for the `cmd` file and the nvme-cli style subcommands.
///
/// The host chooses the CID and fills PSDT=0 and PRP1/PRP2 to point at a
/// page-aligned buffer of its own, mapped as a temporary region for the
/// command: `dataOut` is copied into it before submission, and the first
/// `dataIn` bytes are returned after completion. With no data, PRP1 and PRP2
/// are left as given (Create I/O SQ/CQ name queue memory in `mem` there). Pointers past the buffer are poisoned (an unmapped address), so a
/// command that transfers more than the caller gave fails with Data Transfer
/// Error; with a buffer of two pages exactly, a controller that transfers
/// more reads the second page as a PRP list, as with any host that
/// under-sizes its buffer.
///
/// Delete I/O SQ/CQ naming one of the host's own queues is refused with a
/// synthetic Invalid Queue Identifier (DNR): the host would lose its queues.
///
/// Failures of the host itself are reported as synthetic completions with
/// the host's CID: Command Aborted due to SQ Deletion (08h) when a controller
/// reset dropped the command, Internal Error (06h, DNR) when the controller is
/// dead, shut down, or the bring-up cannot proceed.
extension BuiltinHost {
    public func adminCommand(_ sqe: SubmissionQueueEntry, dataIn: Int = 0, dataOut: [UInt8]? = nil)
        -> (CompletionQueueEntry, [UInt8]) {
        passthrough(sqe, admin: true, dataIn: dataIn, dataOut: dataOut)
    }

    public func ioCommand(_ sqe: SubmissionQueueEntry, dataIn: Int = 0, dataOut: [UInt8]? = nil)
        -> (CompletionQueueEntry, [UInt8]) {
        passthrough(sqe, admin: false, dataIn: dataIn, dataOut: dataOut)
    }

    /// Identify Controller data (4096 bytes).
    public func identifyController() throws(HostError) -> [UInt8] {
        try checked(adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, cdw10: 1), dataIn: 4096),
                    "Identify Controller")
    }

    /// Identify Namespace data (4096 bytes) of `nsid`.
    public func identifyNamespace(_ nsid: UInt32) throws(HostError) -> [UInt8] {
        try checked(adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid, cdw10: 0),
                                 dataIn: 4096), "Identify Namespace \(nsid)")
    }

    /// Get Log Page (NVMe 1.4 §5.14): `length` bytes (a multiple of 4) of log
    /// `lid` from byte `offset`; `rae` keeps asynchronous events masked.
    public func getLogPage(lid: UInt8, length: Int, nsid: UInt32 = 0xFFFF_FFFF, offset: UInt64 = 0,
                           rae: Bool = false) throws(HostError) -> [UInt8] {
        guard length >= 4, length % 4 == 0 else {
            throw HostError(errno: EINVAL, "Get Log Page: length \(length) is not a positive multiple of 4")
        }
        let numd = UInt32(length / 4 - 1)
        var sqe = SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: nsid)
        // CDW10: LID 7:0, RAE 15, NUMDL 31:16; CDW11: NUMDU 15:0; CDW12/13: LPOL/LPOU.
        sqe.cdw10 = UInt32(lid) | (rae ? 1 << 15 : 0) | (numd & 0xFFFF) << 16
        sqe.cdw11 = numd >> 16
        sqe.cdw12 = UInt32(truncatingIfNeeded: offset)
        sqe.cdw13 = UInt32(truncatingIfNeeded: offset >> 32)
        return try checked(adminCommand(sqe, dataIn: length), "Get Log Page \(lid)")
    }

    /// Firmware Image Download (NVMe 1.4 §5.11) of `bytes` at byte `offset`,
    /// in commands of at most 256 KiB. Pieces must be whole dwords at dword
    /// offsets (EINVAL); the controller's own rules (FWUG, overlaps) come
    /// back as the errno of its status.
    public func firmwareImageDownload(_ bytes: UnsafeRawBufferPointer, offset: UInt64) throws(HostError) {
        guard bytes.count % 4 == 0, offset % 4 == 0, (offset + UInt64(bytes.count)) / 4 <= UInt64(UInt32.max) else {
            throw HostError(errno: EINVAL, "Firmware Image Download: \(bytes.count) bytes at \(offset) are not whole dwords")
        }
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, 256 << 10)
            let sqe = SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue, cdw10: UInt32(n / 4 - 1),
                                           cdw11: UInt32((offset + UInt64(done)) / 4))
            _ = try checked(adminCommand(sqe, dataOut: Array(bytes[done..<(done + n)])), "Firmware Image Download")
            done += n
        }
    }

    private func checked(_ r: (CompletionQueueEntry, [UInt8]), _ what: String) throws(HostError) -> [UInt8] {
        guard r.0.status.isSuccess else { throw HostError(status: r.0.status, what) }
        return r.1
    }

    private func synthetic(_ status: NVMeStatus, qid: UInt16) -> CompletionQueueEntry {
        CompletionQueueEntry(sqid: qid, status: status)
    }

    func passthrough(_ command: SubmissionQueueEntry, admin isAdmin: Bool, dataIn: Int, dataOut: [UInt8]?)
        -> (CompletionQueueEntry, [UInt8]) {
        let length = max(0, dataIn, dataOut?.count ?? 0)
        let limit = max(maxTransfer, Self.page)
        guard length <= limit else {
            return (synthetic(NVMeStatus.invalidField.withDNR, qid: isAdmin ? 0 : 1), [])
        }
        // Asynchronous Event Requests are the host's own (see `events`): one
        // from outside would wait for an event with no one to read its log page.
        if isAdmin, command.opcode == AdminOpcode.asyncEventRequest.rawValue {
            logger.notice("built-in host: passthrough Asynchronous Event Request refused (the host owns AERs)")
            return (synthetic(NVMeStatus.invalidField.withDNR, qid: 0), [])
        }
        // Doorbell Buffer Config would move the doorbells of the host's own
        // queues into pages it does not write (§7.13): refused.
        if isAdmin, command.opcode == AdminOpcode.doorbellBufferConfig.rawValue {
            logger.notice("built-in host: passthrough Doorbell Buffer Config refused (the host owns its doorbells)")
            return (synthetic(NVMeStatus.invalidField.withDNR, qid: 0), [])
        }
        // Deleting the host's own I/O queues would strand its commands: refused.
        if isAdmin, command.opcode == AdminOpcode.deleteIOSQ.rawValue || command.opcode == AdminOpcode.deleteIOCQ.rawValue,
           ownedQueueIDs.contains(UInt16(truncatingIfNeeded: command.cdw10)) {
            return (synthetic(NVMeStatus.invalidQueueIdentifier.withDNR, qid: 0), [])
        }
        var sqe = command
        sqe.psdt = 0
        var buffer: UnsafeMutableRawBufferPointer?
        var region: RegionInfo?
        defer {
            // The buffer is freed once no backend I/O of a given-up command can reach it.
            let b = buffer.map { UnsafeSendableBuffer($0) }
            if let region, let release = controller.space.unmapWhenIdle(region.id) {
                release.notify { b?.buffer.deallocate() }
            } else {
                b?.buffer.deallocate()
            }
        }
        if length > 0 {
            let size = (length + Self.page - 1) / Self.page * Self.page
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: Self.page)
            b.initializeMemory(as: UInt8.self, repeating: 0)
            if let out = dataOut { b.copyBytes(from: out) }
            buffer = b
            do {
                region = try controller.space.mapAnywhere(length: size, pointer: b.baseAddress!, name: "host-cmd",
                                                          kind: .temporary, above: regionEnd)
            } catch {
                return (synthetic(NVMeStatus.internalError.withDNR, qid: isAdmin ? 0 : 1), [])
            }
        }
        if let e = waitUntilLive() {
            _ = e
            return (synthetic(NVMeStatus.internalError.withDNR, qid: isAdmin ? 0 : 1), [])
        }
        let q = isAdmin ? self.admin : pickIOQueue()
        let (results, _) = execute(on: q, count: 1, bringUp: false) { _, slot, q in
            var e = sqe
            if let region { q.fillPRP(&e, address: region.base, length: region.length, slot: slot) }
            return e
        }
        let cqe: CompletionQueueEntry
        switch results[0] {
        case .completed(let c): cqe = c
        case .aborted(retryable: true): cqe = synthetic(.sqDeletion, qid: q.qid)
        case .aborted(retryable: false), .pending: cqe = synthetic(NVMeStatus.internalError.withDNR, qid: q.qid)
        }
        var data: [UInt8] = []
        if dataIn > 0, let b = buffer { data = Array(b.prefix(dataIn)) }
        // A Format NVM, Namespace Attachment or Namespace Management (delete)
        // sent through here changed the namespaces: learn it before the
        // caller sees the completion, rather than when the Namespace
        // Attribute Changed notice arrives (§5.23, §5.19, §5.20).
        let changesNamespaces: Set<UInt8> = [AdminOpcode.formatNVM.rawValue, AdminOpcode.namespaceAttachment.rawValue,
                                             AdminOpcode.namespaceManagement.rawValue]
        if isAdmin, changesNamespaces.contains(command.opcode), cqe.status.isSuccess, command.nsid != 0 {
            let nsids = command.nsid == 0xFFFF_FFFF ? namespaces.map(\.nsid) : [command.nsid]
            for nsid in nsids { reidentify(nsid) }
        }
        return (cqe, data)
    }
}

/// A buffer handed to the closure that frees it.
struct UnsafeSendableBuffer: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }
}
