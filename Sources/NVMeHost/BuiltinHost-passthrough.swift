import HostMemory
import NVMeController
import NVMeSpec

import Glibc

/// Generic passthrough for the `cmd` and `passthru` files and the
/// convenience commands (Identify, Get Log Page, Firmware Image Download).
///
/// The host chooses the CID and fills PSDT=0 and PRP1/PRP2 to point at a
/// page-aligned buffer of its own, mapped as a temporary region for the
/// command (and MPTR at a second one, for a `passthru` request with
/// metadata): the data-out bytes are copied into it before submission, and
/// the data-in bytes are returned after completion. With no data, PRP1 and
/// PRP2 are left as given (Create I/O SQ/CQ name queue memory in `mem`
/// there). Pointers past the buffer are poisoned (an unmapped address), so a
/// command that transfers more than the caller gave fails with Data Transfer
/// Error; with a buffer of two pages exactly, a controller that transfers
/// more reads the second page as a PRP list, as with any host that
/// under-sizes its buffer.
///
/// Commands the host keeps for itself — Asynchronous Event Request,
/// Doorbell Buffer Config, Delete I/O SQ/CQ of one of its own queues — are
/// refused: with EBUSY through `passthru`, with a synthetic Invalid Field or
/// Invalid Queue Identifier (DNR) through `cmd`.
///
/// Failures of the host itself: Command Aborted due to SQ Deletion (08h, a
/// synthetic completion with the host's CID) when a controller reset dropped
/// the command; when the controller is dead, shut down, or the bring-up
/// cannot proceed, EIO/ENODEV through `passthru` and a synthetic Internal
/// Error (06h, DNR) through `cmd`. A command not completed within its
/// timeout (the request's own, or the host's) starts controller recovery,
/// as Linux's nvme driver resets a controller that does not answer.
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

    /// Runs one request of the `passthru` file (`PassthroughHeader`,
    /// docs/PASSTHRU.md): `dataOut` and `metadataOut` are the bytes that
    /// follow the header (empty unless the direction sends data).
    ///
    /// - Throws: `HostError` when the host does not run the command: EINVAL
    ///   (direction and lengths do not fit the opcode, or the out bytes do
    ///   not match the lengths), E2BIG (past MDTS), EBUSY (an Asynchronous
    ///   Event Request, Doorbell Buffer Config, or deleting one of the host's
    ///   own queues: they belong to the host), EIO/ENODEV (the controller is
    ///   dead or the host shut down), ENOMEM.
    public func passthrough(_ header: PassthroughHeader, dataOut: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                            metadataOut: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0))
        throws(HostError) -> PassthroughResponse {
        try checkPassthrough(header)
        let expected = header.direction.toController ? (Int(header.dataLength), Int(header.metadataLength)) : (0, 0)
        guard dataOut.count == expected.0, metadataOut.count == expected.1 else {
            throw HostError(errno: EINVAL, "passthru: \(dataOut.count) data and \(metadataOut.count) metadata bytes "
                                + "given for \(expected.0) and \(expected.1)")
        }
        let isAdmin = header.queue == .admin
        let timeout = header.timeoutMilliseconds == 0 ? nil : Duration.milliseconds(Int64(header.timeoutMilliseconds))
        let r = run(header.sqe, admin: isAdmin, data: Int(header.dataLength), dataOut: dataOut,
                    metadata: Int(header.metadataLength), metadataOut: metadataOut,
                    copyBack: header.direction.fromController, timeout: timeout)
        switch r {
        case .success(let (cqe, data, metadata)): return PassthroughResponse(cqe: cqe, data: data, metadata: metadata)
        case .failure(let e): throw e
        }
    }

    /// Whether `passthrough(_:dataOut:metadataOut:)` would run the request
    /// of `header` (everything but the bytes that follow it).
    /// - Throws: `HostError` with EINVAL, E2BIG or EBUSY (see there).
    public func checkPassthrough(_ header: PassthroughHeader) throws(HostError) {
        try header.validate(maxTransfer: max(maxTransfer, Self.page))
        if let r = refusal(header.sqe, admin: header.queue == .admin) { throw HostError(errno: EBUSY, "passthru: \(r.reason)") }
    }

    /// A command the host keeps for itself: its status for `cmd` callers, its reason.
    private func refusal(_ command: SubmissionQueueEntry, admin isAdmin: Bool) -> (status: NVMeStatus, reason: String)? {
        guard isAdmin else { return nil }
        switch AdminOpcode(command.opcode) {
        // Asynchronous Event Requests are the host's own (see `events`): one
        // from outside would wait for an event with no one to read its log page.
        case .asyncEventRequest:
            return (NVMeStatus.invalidField.withDNR, "Asynchronous Event Request refused (the host owns AERs)")
        // Doorbell Buffer Config would move the doorbells of the host's own
        // queues into pages it does not write (§7.13).
        case .doorbellBufferConfig:
            return (NVMeStatus.invalidField.withDNR, "Doorbell Buffer Config refused (the host owns its doorbells)")
        // Deleting the host's own I/O queues would strand its commands.
        case .deleteIOSQ, .deleteIOCQ:
            let qid = UInt16(truncatingIfNeeded: command.cdw10)
            guard ownedQueueIDs.contains(qid) else { return nil }
            return (NVMeStatus.invalidQueueIdentifier.withDNR, "deleting queue \(qid) refused (the host's own)")
        default:
            return nil
        }
    }

    /// `cmd`'s form: one data buffer of max(dataIn, dataOut) bytes, and
    /// every refusal as a synthetic completion (see the type's comment).
    func passthrough(_ command: SubmissionQueueEntry, admin isAdmin: Bool, dataIn: Int, dataOut: [UInt8]?)
        -> (CompletionQueueEntry, [UInt8]) {
        let qid: UInt16 = isAdmin ? 0 : 1
        let length = max(0, dataIn, dataOut?.count ?? 0)
        guard length <= max(maxTransfer, Self.page) else { return (synthetic(NVMeStatus.invalidField.withDNR, qid: qid), []) }
        if let r = refusal(command, admin: isAdmin) {
            logger.notice("built-in host: passthrough \(r.reason)")
            return (synthetic(r.status, qid: 0), [])
        }
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        let result = (dataOut ?? []).withUnsafeBytes { out in
            run(command, admin: isAdmin, data: length, dataOut: out, metadata: 0, metadataOut: none,
                copyBack: dataIn > 0, timeout: nil)
        }
        switch result {
        case .success(let (cqe, data, _)): return (cqe, Array(data.prefix(dataIn)))
        case .failure: return (synthetic(NVMeStatus.internalError.withDNR, qid: qid), [])
        }
    }

    /// Runs `command` with a data buffer of `data` bytes (starting with
    /// `dataOut`, zero-filled) and a metadata buffer of `metadata` bytes
    /// (MPTR), each a temporary region; returns the CQE and, with
    /// `copyBack`, both buffers as the command left them. A controller reset
    /// that drops the command gives a synthetic Command Aborted due to SQ
    /// Deletion; a host that is not live in time, or a controller that died
    /// meanwhile, a `HostError`.
    private func run(_ command: SubmissionQueueEntry, admin isAdmin: Bool, data: Int, dataOut: UnsafeRawBufferPointer,
                     metadata: Int, metadataOut: UnsafeRawBufferPointer, copyBack: Bool, timeout: Duration?)
        -> Result<(CompletionQueueEntry, [UInt8], [UInt8]), HostError> {
        var sqe = command
        sqe.psdt = 0
        var buffers: [(buffer: UnsafeMutableRawBufferPointer, region: RegionInfo?)] = []
        defer {
            // A buffer is freed once no backend I/O of a given-up command can reach it.
            for (buffer, region) in buffers {
                let b = UnsafeSendableBuffer(buffer)
                if let region, let release = controller.space.unmapWhenIdle(region.id) {
                    release.notify { b.buffer.deallocate() }
                } else {
                    b.buffer.deallocate()
                }
            }
        }
        /// A zero-filled buffer of `length` bytes starting with `out`, mapped; nil on failure.
        func mapped(_ length: Int, _ out: UnsafeRawBufferPointer) -> (UnsafeMutableRawBufferPointer, RegionInfo)? {
            let size = (length + Self.page - 1) / Self.page * Self.page
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: Self.page)
            b.initializeMemory(as: UInt8.self, repeating: 0)
            if out.count > 0 { b.copyMemory(from: out) }
            let region = try? controller.space.mapAnywhere(length: size, pointer: b.baseAddress!, name: "host-cmd",
                                                           kind: .temporary, above: regionEnd)
            buffers.append((b, region))
            return region.map { (b, $0) }
        }
        var dataBuffer: (UnsafeMutableRawBufferPointer, RegionInfo)?
        var metadataBuffer: (UnsafeMutableRawBufferPointer, RegionInfo)?
        if data > 0 { dataBuffer = mapped(data, dataOut) }
        if metadata > 0 { metadataBuffer = mapped(metadata, metadataOut) }
        guard (data == 0) == (dataBuffer == nil), (metadata == 0) == (metadataBuffer == nil) else {
            return .failure(HostError(errno: ENOMEM, "passthru: cannot map a buffer into the host address space"))
        }
        if let (_, region) = metadataBuffer { sqe.mptr = region.base }
        if let e = waitUntilLive() { return .failure(e) }
        let q = isAdmin ? self.admin : pickIOQueue()
        let (results, _) = execute(on: q, count: 1, bringUp: false, timeout: timeout) { _, slot, q in
            var e = sqe
            if let (_, region) = dataBuffer { q.fillPRP(&e, address: region.base, length: region.length, slot: slot) }
            return e
        }
        let cqe: CompletionQueueEntry
        switch results[0] {
        case .completed(let c): cqe = c
        case .aborted(retryable: true): cqe = synthetic(.sqDeletion, qid: q.qid)
        case .aborted(retryable: false), .pending:
            return .failure(HostError(errno: EIO, "passthru: the controller failed while the command ran"))
        }
        var dataIn: [UInt8] = [], metadataIn: [UInt8] = []
        if copyBack, let (b, _) = dataBuffer { dataIn = Array(b.prefix(data)) }
        if copyBack, let (b, _) = metadataBuffer { metadataIn = Array(b.prefix(metadata)) }
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
        return .success((cqe, dataIn, metadataIn))
    }
}

/// A buffer handed to the closure that frees it.
struct UnsafeSendableBuffer: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }
}
