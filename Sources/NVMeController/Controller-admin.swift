import BlockIO
import NVMeSpec

extension NVMeController {
    /// Admin command dispatch (NVMe 1.4 §5). Returns the status, or nil when
    /// the command completes later (AER, Delete SQ draining).
    func adminCommand(_ req: Request) -> NVMeStatus? {
        let cmd = req.cmd
        guard Self.isSupportedAdminOpcode[Int(cmd.opcode)] else {
            guestError(.invalidAdminOpc, [("opc", hex(cmd.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
        // NVMe 1.4 §4.2 (Figure 105, CDW0.PSDT): admin commands over PCIe use
        // PRPs only; checked before any handler looks at the data pointer.
        if cmd.psdt != 0 {
            guestError(.invalidPsdt, [("cid", "\(cmd.cid)"), ("psdt", "\(cmd.psdt)")])
            return NVMeStatus.invalidField.withDNR
        }
        // Fused operations are not supported (FUSES = 0); QEMU leaves DNR clear.
        if cmd.fuse != 0 {
            guestError(.invalidFuse, [("cid", "\(cmd.cid)")])
            return NVMeStatus.invalidField
        }
        switch AdminOpcode(cmd.opcode) {
        case .deleteIOSQ: return deleteSQ(req)
        case .createIOSQ: return createSQ(req)
        case .deleteIOCQ: return deleteCQ(req)
        case .createIOCQ: return createCQ(req)
        case .identify: return identify(req)
        case .getLogPage: return getLogPage(req)
        case .abort: return abort(req)
        case .setFeatures: return setFeatures(req)
        case .getFeatures: return getFeatures(req)
        case .asyncEventRequest: return asyncEventRequest(req)
        case .formatNVM: return formatNVM(req)
        case .deviceSelfTest: return deviceSelfTest(req)
        case .namespaceManagement: return namespaceManagement(req)
        case .namespaceAttachment: return namespaceAttachment(req)
        case .firmwareCommit: return firmwareCommit(req)
        case .firmwareImageDownload: return firmwareImageDownload(req)
        case .doorbellBufferConfig: return doorbellBufferConfig(req)
        case .keepAlive:
            restartKeepAliveTimer()
            return .success
        default:
            guestError(.invalidAdminOpc, [("opc", hex(cmd.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
    }

    /// The admin commands this controller implements (also the Commands
    /// Supported and Effects log's admin half). Namespace Management and
    /// Attachment answer Invalid Command Opcode when the controller has no
    /// `NamespaceProvisioner` (`supportsNamespaceManagement`).
    static let supportedAdminOpcodes: Set<AdminOpcode> = [
        .deleteIOSQ, .createIOSQ, .getLogPage, .deleteIOCQ, .createIOCQ, .identify, .abort,
        .setFeatures, .getFeatures, .asyncEventRequest, .keepAlive, .formatNVM,
        .deviceSelfTest, .namespaceManagement, .namespaceAttachment, .firmwareCommit, .firmwareImageDownload,
        .doorbellBufferConfig,
    ]

    /// The commands that change the namespace inventory (effects NIC).
    static let namespaceInventoryOpcodes: Set<AdminOpcode> = [.namespaceManagement, .namespaceAttachment]

    /// OACS bit 3: Namespace Management and Attachment (with a provisioner).
    var supportsNamespaceManagement: Bool { provisioner != nil }
    /// `supportedAdminOpcodes` indexed by opcode.
    static let isSupportedAdminOpcode: [Bool] = (0..<256).map { supportedAdminOpcodes.contains(AdminOpcode(UInt8($0))) }

    // MARK: Queue management (§5.3-§5.6, statuses as QEMU)

    func createCQ(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let cqid = Int(c.cdw10 & 0xFFFF), qsize = Int(c.cdw10 >> 16)
        let pc = c.cdw11 & 1 != 0, ien = c.cdw11 & 2 != 0
        let vector = Int(c.cdw11 >> 16)
        let base = c.prp1
        traceEvent(.createCq, [("addr", hex(base)), ("cqid", "\(cqid)"), ("vector", "\(vector)"), ("qsize", "\(qsize)"), ("ien", "\(ien)")])
        guard cqid != 0, cqid <= parameters.maxIOQueuePairs, cqs[cqid] == nil else {
            guestError(.invalidCreateCqCqid, [("cqid", "\(cqid)")])
            return NVMeStatus.invalidQueueIdentifier.withDNR
        }
        guard qsize != 0, qsize <= Int(cap.mqes) else {
            guestError(.invalidCreateCqSize, [("qsize", "\(qsize)")])
            return NVMeStatus.invalidQueueSize.withDNR
        }
        // §5.3: PRP1 is page aligned (no offset); QEMU names it Invalid PRP Offset.
        guard base & UInt64(pageSize - 1) == 0 else {
            guestError(.invalidCreateCqAddr, [("addr", hex(base))])
            return NVMeStatus.prpOffsetInvalid.withDNR
        }
        guard vector < parameters.interruptVectors else {
            guestError(.invalidCreateCqVector, [("vector", "\(vector)")])
            return NVMeStatus.invalidInterruptVector.withDNR
        }
        guard pc else {
            guestError(.invalidCreateCqQflags, [("pc", "0")])
            return NVMeStatus.invalidField.withDNR
        }
        // The queue memory must be backed by one region (CONTRACT §1).
        guard space.pointer(base, length: (qsize + 1) * 16) != nil else {
            guestError(.invalidCreateCqAddr, [("addr", hex(base)), ("reason", "unbacked")])
            return NVMeStatus.invalidField.withDNR
        }
        cqs[cqid] = CompletionQueue(cqid: UInt16(cqid), base: base, size: qsize + 1, vector: vector, interruptsEnabled: ien)
        ioQueuesCreated = true
        return .success
    }

    func createSQ(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let sqid = Int(c.cdw10 & 0xFFFF), qsize = Int(c.cdw10 >> 16)
        let pc = c.cdw11 & 1 != 0, qprio = UInt8((c.cdw11 >> 1) & 3)
        let cqid = Int(c.cdw11 >> 16)
        let base = c.prp1
        traceEvent(.createSq, [("addr", hex(base)), ("sqid", "\(sqid)"), ("cqid", "\(cqid)"), ("qsize", "\(qsize)"), ("qprio", "\(qprio)")])
        guard cqid != 0, cqid <= parameters.maxIOQueuePairs, cqs[cqid] != nil else {
            guestError(.invalidCreateSqCqid, [("cqid", "\(cqid)")])
            return NVMeStatus.completionQueueInvalid.withDNR
        }
        guard sqid != 0, sqid <= parameters.maxIOQueuePairs, sqs[sqid] == nil else {
            guestError(.invalidCreateSqSqid, [("sqid", "\(sqid)")])
            return NVMeStatus.invalidQueueIdentifier.withDNR
        }
        guard qsize != 0, qsize <= Int(cap.mqes) else {
            guestError(.invalidCreateSqSize, [("qsize", "\(qsize)")])
            return NVMeStatus.invalidQueueSize.withDNR
        }
        // §5.4: PRP1 is page aligned (no offset); QEMU names it Invalid PRP Offset.
        guard base & UInt64(pageSize - 1) == 0 else {
            guestError(.invalidCreateSqAddr, [("addr", hex(base))])
            return NVMeStatus.prpOffsetInvalid.withDNR
        }
        guard pc else {
            guestError(.invalidCreateSqQflags, [("pc", "0")])
            return NVMeStatus.invalidField.withDNR
        }
        guard space.pointer(base, length: (qsize + 1) * 64) != nil else {
            guestError(.invalidCreateSqAddr, [("addr", hex(base)), ("reason", "unbacked")])
            return NVMeStatus.invalidField.withDNR
        }
        let sq = SubmissionQueue(sqid: UInt16(sqid), cqid: UInt16(cqid), base: base, size: qsize + 1, priority: qprio,
                                 lock: cqs[cqid]!.lock)
        sqs[sqid] = sq
        activeSQs.append(sq)
        activeSQs.sort { $0.sqid < $1.sqid }
        cqs[cqid]!.sqids.insert(UInt16(sqid))
        return .success
    }

    /// Delete I/O SQ (§5.7): outstanding commands are cancelled or drained; the
    /// command completes once none is left, and no CQE of the deleted queue is posted.
    func deleteSQ(_ req: Request) -> NVMeStatus? {
        let qid = Int(req.cmd.cdw10 & 0xFFFF)
        guard qid != 0, qid < sqs.count, let sq = sqs[qid], !sq.deleted else {
            guestError(.invalidDelSq, [("qid", "\(qid)")])
            return NVMeStatus.invalidQueueIdentifier.withDNR
        }
        traceEvent(.delSq, [("qid", "\(qid)")])
        cancelOutstanding(of: sq, status: .sqDeletion)
        sq.deleted = true
        if sq.outstandingCount == 0 {
            removeSQ(sq)
            return .success
        }
        sq.deleteRequest = req
        return nil
    }

    func completeSQDeletion(_ sq: SubmissionQueue) {
        removeSQ(sq)
        if let del = sq.deleteRequest {
            sq.deleteRequest = nil
            finish(del, status: .success)
        }
    }

    func removeSQ(_ sq: SubmissionQueue) {
        foldFastCounters(sq)
        sq.dropRequests()
        sqs[Int(sq.sqid)] = nil
        activeSQs.removeAll { $0 === sq }
        cqs[Int(sq.cqid)]?.sqids.remove(sq.sqid)
    }

    func deleteCQ(_ req: Request) -> NVMeStatus {
        let qid = Int(req.cmd.cdw10 & 0xFFFF)
        guard qid != 0, qid < cqs.count, let cq = cqs[qid] else {
            guestError(.invalidDelCqCqid, [("qid", "\(qid)")])
            return NVMeStatus.invalidQueueIdentifier.withDNR
        }
        // §5.5: the host deletes the CQ's SQs first; a retry afterwards
        // succeeds, so DNR stays clear (as QEMU).
        guard cq.sqids.isEmpty else {
            guestError(.invalidDelCqNotempty, [("qid", "\(qid)")])
            return NVMeStatus.invalidQueueDeletion
        }
        traceEvent(.delCq, [("qid", "\(qid)")])
        foldFastCounters(cq)
        cqs[qid] = nil
        return .success
    }

    // MARK: Abort (§5.1)

    /// Cancels the command (SQID, CID) if it is still queued or in flight.
    /// Dword 0 bit 0 is 0 when the command was aborted, 1 when it was not.
    func abort(_ req: Request) -> NVMeStatus {
        let sqid = Int(req.cmd.cdw10 & 0xFFFF), cid = UInt16(req.cmd.cdw10 >> 16)
        traceEvent(.abort, [("sqid", "\(sqid)"), ("cid", "\(cid)")])
        req.dw0 = 1
        guard sqid < sqs.count, let sq = sqs[sqid], !sq.deleted else {
            return NVMeStatus.invalidField.withDNR
        }
        if sqid == 0 && cid == req.cid { return .success }  // aborting itself: not aborted
        if let target = sq.outstandingRequests.first(where: { $0.cid == cid && $0 !== req && $0.cancelStatus == nil }) {
            if target.isAER {
                // An AER no longer waiting (aborted already, or completed by
                // an event) may still be outstanding, its CQE waiting for
                // room in a full CQ: it is completing, never completed twice.
                guard let i = aerRequests.firstIndex(where: { $0 === target }) else { return .success }
                aerRequests.remove(at: i)
                finish(target, status: .abortRequested)
            } else if sqid == 0 && Self.namespaceInventoryOpcodes.contains(AdminOpcode(target.cmd.opcode)) {
                // Namespace Management and Attachment have changed the
                // namespaces before their file work: not aborted.
                return .success
            } else if let i = deferredCommands.firstIndex(where: { $0 === target }) {
                // Waiting for a fused operation's LBAs: it never started.
                deferredCommands.remove(at: i)
                finish(target, status: .abortRequested)
            } else if !target.aios.isEmpty {
                cancel(target, status: .abortRequested)
            } else {
                return .success  // already completing: not aborted
            }
            req.dw0 = 0
            return .success
        }
        // Still in the submission queue, not yet fetched: abort it when fetched.
        var i = sq.head
        while i != sq.tail {
            if let p = space.pointer(sq.base &+ UInt64(i) &* 64, length: 64),
               UnsafeRawBufferPointer(start: p, count: 64).le16(2) == cid {
                sq.abortOnFetch.insert(cid)
                req.dw0 = 0
                return .success
            }
            i = (i + 1) % sq.size
        }
        return .success
    }

    // MARK: Asynchronous Event Request (§5.2)

    func asyncEventRequest(_ req: Request) -> NVMeStatus? {
        guard aerRequests.count <= Int(parameters.aerl) else {
            guestError(.aerLimit, [("outstanding", "\(aerRequests.count)")])
            return NVMeStatus.asyncEventRequestLimitExceeded
        }
        traceEvent(.aer, [("cid", "\(req.cid)")])
        req.isAER = true
        aerRequests.append(req)
        processAERs()
        return nil
    }
}
