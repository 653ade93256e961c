import BlockIO
import NVMeSpec

import Glibc

/// Makes, removes and records the storage of namespaces created by
/// Namespace Management. Only it opens images (the controller never does).
/// Every method blocks; the controller calls them off its lock, one at a
/// time, on its management queue.
public protocol NamespaceProvisioner: AnyObject, Sendable {
    /// Creates storage for `nsze` blocks of `format` (any left over from an
    /// earlier namespace of that NSID is replaced) and returns the namespace
    /// on it, not yet allocated.
    func create(nsid: UInt32, format: NamespaceFormat, nsze: UInt64, nmic: UInt8) throws -> Namespace
    /// Removes the storage of a created namespace (its backends are closed).
    func remove(nsid: UInt32) throws
    /// Records the created namespaces (replacing the previous record).
    func save(_ records: [NamespaceRecord]) throws
}

/// Namespace Management (NVMe 1.4 §5.20) and Namespace Attachment (§5.19)
/// for one controller of CNTLID 0 (docs/NAMESPACES.md). The checks and the
/// change of the attached set run under the lock; making, removing and
/// recording storage runs on the management queue as one AIO of the
/// command (a `BlockingStep`), whose failure is the command's Internal Error.
extension NVMeController {
    /// This controller's identifier (Identify Controller CNTLID).
    static let controllerID: UInt16 = 0

    /// Bytes still free for creating namespaces (UNVMCAP): TNVMCAP less
    /// every allocated namespace and the creations in progress.
    var unallocatedCapacity: UInt64 {
        let used = allocated.values.reduce(UInt64(0)) { $0 + $1.allocatedBytes } + pendingCreations.values.reduce(0, +)
        return totalCapacity > used ? totalCapacity - used : 0
    }

    /// The created namespaces as the state file records them (under the lock).
    var namespaceRecords: [NamespaceRecord] {
        allocated.values.filter(\.isCreated).sorted { $0.nsid < $1.nsid }
            .map { NamespaceRecord(nsid: $0.nsid, attached: namespace($0.nsid) != nil, nmic: $0.nmic) }
    }

    /// Namespace Management: CDW10 SEL (3:0) 0h create, 1h delete.
    func namespaceManagement(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let sel = c.cdw10 & 0xF
        traceEvent(.nsManagement, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("sel", "\(sel)")])
        guard let provisioner else {
            guestError(.invalidAdminOpc, [("opc", hex(c.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
        switch sel {
        case 0: return createNamespace(req, provisioner)
        case 1: return deleteNamespaces(req, provisioner)
        default: return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "sel \(sel)")
        }
    }

    /// A refused Namespace Management or Attachment: a guest error naming the reason.
    func refuseNamespaceCommand(_ req: Request, _ status: NVMeStatus, _ reason: String) -> NVMeStatus {
        guestError(.nsCommandRefused, [("cid", "\(req.cid)"), ("opc", hex(req.cmd.opcode)), ("nsid", hex(req.cmd.nsid)),
                                        ("cdw10", hex(req.cmd.cdw10)), ("reason", reason)])
        return status
    }

    /// Create (§5.20.1): the host's NSZE, NCAP, FLBAS, DPS and NMIC; the new
    /// NSID, the lowest free one, in DW0. The namespace is not attached.
    func createNamespace(_ req: Request, _ provisioner: any NamespaceProvisioner) -> NVMeStatus? {
        // The NSID field is reserved for create.
        guard req.cmd.nsid == 0 else { return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "nsid") }
        let data: [UInt8]
        switch transferFromHost(req, length: NamespaceManagementCreate.size) {
        case .failure(let status): return status
        case .success(let d): data = d
        }
        let spec = data.withUnsafeBytes { NamespaceManagementCreate(bytes: $0) }!
        // FLBAS: 3:0 an advertised LBA format, 4 extended LBAs, 7:5 reserved;
        // DPS: 2:0 protection type, 3 PI first, 7:4 reserved. A format the
        // namespace cannot have is Invalid Format, as for Format NVM (§5.23),
        // and the metadata placement only counts with metadata.
        let lbaf = Int(spec.flbas & 0xF)
        guard lbaf < NamespaceFormat.lbaFormats.count, spec.flbas & 0xE0 == 0 else {
            return refuseNamespaceCommand(req, NVMeStatus.invalidFormat.withDNR, "flbas")
        }
        guard spec.dps & 0xF0 == 0, let type = ProtectionType(rawValue: spec.dps & 0x7) else {
            return refuseNamespaceCommand(req, NVMeStatus.invalidFormat.withDNR, "dps")
        }
        let advertised = NamespaceFormat.lbaFormats[lbaf]
        let format = NamespaceFormat(lbads: advertised.lbads, ms: advertised.ms,
                                     extended: spec.flbas & 0x10 != 0 && advertised.ms > 0,
                                     pi: type, piFirst: spec.dps & 0x8 != 0 && type != .none)
        if let why = format.invalidReason { return refuseNamespaceCommand(req, NVMeStatus.invalidFormat.withDNR, why) }
        // NMIC: bit 0 shared; the others are reserved.
        guard spec.nmic & 0xFE == 0 else { return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "nmic") }
        guard spec.nsze > 0, spec.ncap <= spec.nsze else {
            return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "nsze \(spec.nsze) ncap \(spec.ncap)")
        }
        // No thin provisioning (NSFEAT bit 0 clear): NCAP is NSZE.
        guard spec.ncap == spec.nsze else {
            return refuseNamespaceCommand(req, NVMeStatus.thinProvisioningNotSupported.withDNR, "ncap \(spec.ncap) < nsze")
        }
        let (bytes, overflow) = spec.nsze.multipliedReportingOverflow(by: UInt64(format.lbaSize))
        guard !overflow, bytes <= unallocatedCapacity else {
            return refuseNamespaceCommand(req, NVMeStatus.namespaceInsufficientCapacity.withDNR,
                                          "\(spec.nsze) blocks, \(unallocatedCapacity) bytes free")
        }
        guard let nsid = (1...UInt32(nn)).first(where: { allocated[$0] == nil && pendingCreations[$0] == nil }) else {
            return refuseNamespaceCommand(req, NVMeStatus.namespaceIdentifierUnavailable.withDNR, "all \(nn) NSIDs allocated")
        }
        pendingCreations[nsid] = bytes
        traceEvent(.nsCreate, [("cid", "\(req.cid)"), ("nsid", "\(nsid)"), ("nsze", "\(spec.nsze)"), ("format", "\(format)"),
                               ("nmic", "\(spec.nmic)")])
        let nsze = spec.nsze, nmic = spec.nmic
        submitManagementStep(req, nsid: nsid) { [weak self] in
            self?.makeStorage(nsid: nsid, format: format, nsze: nsze, nmic: nmic, provisioner) ?? ECANCELED
        }
        req.continuation = { req in
            req.dw0 = nsid
            return .success
        }
        return nil
    }

    /// On the management queue: creates the storage, records it, then
    /// allocates the namespace. Nothing is left behind when a step fails.
    /// - Returns: 0, or the errno of the failure.
    func makeStorage(nsid: UInt32, format: NamespaceFormat, nsze: UInt64, nmic: UInt8,
                     _ provisioner: any NamespaceProvisioner) -> Int32 {
        let ns: Namespace
        do {
            ns = try provisioner.create(nsid: nsid, format: format, nsze: nsze, nmic: nmic)
        } catch {
            logger.error("namespace management: cannot create namespace \(nsid): \(error)")
            locked { pendingCreations[nsid] = nil }
            return errnoOf(error)
        }
        let records = locked { namespaceRecords } + [NamespaceRecord(nsid: nsid, attached: false, nmic: nmic)]
        do {
            try provisioner.save(records.sorted { $0.nsid < $1.nsid })
        } catch {
            logger.error("namespace management: cannot record namespace \(nsid): \(error)")
            for b in ns.backends { b.close() }
            do { try provisioner.remove(nsid: nsid) } catch {
                logger.error("namespace management: cannot remove the storage of namespace \(nsid): \(error)")
            }
            locked { pendingCreations[nsid] = nil }
            return errnoOf(error)
        }
        locked {
            pendingCreations[nsid] = nil
            allocated[nsid] = ns
            giveWriteCache(ns)
        }
        return 0
    }

    /// Delete (§5.20.1): one created namespace, or with FFFFFFFFh every
    /// created one (the namespaces given with `--namespace` stay: their
    /// images are the user's). An attached namespace is detached first.
    func deleteNamespaces(_ req: Request, _ provisioner: any NamespaceProvisioner) -> NVMeStatus? {
        let c = req.cmd
        let targets: [Namespace]
        if c.nsid == Self.broadcastNSID {
            targets = allocated.values.filter(\.isCreated).sorted { $0.nsid < $1.nsid }
        } else {
            guard isValidNSID(c.nsid) else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            guard let ns = allocated[c.nsid] else {
                return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "not allocated")
            }
            guard ns.isCreated else {
                return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "given with --namespace, not created")
            }
            targets = [ns]
        }
        for ns in targets {
            if let busy = formatInProgress(req, ns) { return busy }
        }
        guard !targets.isEmpty else { return .success }
        abortSelfTest(targets, result: .abortedByNamespaceRemoval)
        // The NSIDs and their capacity are free at once: a Create of the same
        // NSID queued right after makes its storage on the same serial
        // management queue, after this deletion has removed the old one.
        for ns in targets {
            if namespace(ns.nsid) != nil { setAttached(ns, false) }
            allocated[ns.nsid] = nil
            // A namespace created again with this NSID starts from the defaults.
            features.errorRecovery[ns.nsid] = nil
        }
        traceEvent(.nsDelete, [("cid", "\(c.cid)"), ("nsids", targets.map { "\($0.nsid)" }.joined(separator: ","))])
        submitManagementStep(req, nsid: c.nsid) { [weak self] in
            self?.removeStorage(targets, provisioner) ?? ECANCELED
        }
        return nil
    }

    /// On the management queue: records the deletion, then closes and
    /// removes each namespace's storage once its I/O has drained.
    /// - Returns: 0, or the errno of the first failure.
    func removeStorage(_ targets: [Namespace], _ provisioner: any NamespaceProvisioner) -> Int32 {
        var result: Int32 = 0
        do { try provisioner.save(locked { namespaceRecords }) } catch {
            logger.error("namespace management: cannot record the deletion: \(error)")
            result = errnoOf(error)
        }
        // A rewrite of the Write Uncorrectable marks already queued ends
        // first, so it cannot leave a file behind.
        formatQueue.sync {}
        for ns in targets {
            for b in ns.backends {
                b.drainAndSync()
                b.close()
            }
            do { try provisioner.remove(nsid: ns.nsid) } catch {
                logger.error("namespace management: cannot remove the storage of namespace \(ns.nsid): \(error)")
                if result == 0 { result = errnoOf(error) }
            }
        }
        return result
    }

    /// Namespace Attachment (§5.19): CDW10 SEL (3:0) 0h attach, 1h detach,
    /// to the controllers of the list in the data (this one, CNTLID 0).
    /// Checks in QEMU's order: the NSID, its allocation, the list, then SEL.
    func namespaceAttachment(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let sel = c.cdw10 & 0xF
        traceEvent(.nsAttachment, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("sel", "\(sel)")])
        guard provisioner != nil else {
            guestError(.invalidAdminOpc, [("opc", hex(c.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
        // 0 and NSIDs above NN are invalid; FFFFFFFFh names no allocated namespace.
        guard c.nsid == Self.broadcastNSID || isValidNSID(c.nsid) else {
            guestError(.invalidNs, [("nsid", hex(c.nsid))])
            return NVMeStatus.invalidNamespace.withDNR
        }
        guard let ns = allocated[c.nsid] else {
            return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "not allocated")
        }
        let list: ControllerList
        switch transferFromHost(req, length: ControllerList.size) {
        case .failure(let status): return status
        case .success(let data): list = ControllerList(bytes: data)!
        }
        // A count past the 2047 identifiers a list can hold is invalid too.
        guard !list.ids.isEmpty, Int(list.count) <= ControllerList.capacity,
              list.ids.allSatisfy({ $0 == Self.controllerID }) else {
            return refuseNamespaceCommand(req, NVMeStatus.controllerListInvalid.withDNR, "controllers \(list.ids.prefix(8))")
        }
        // This controller named more than once: a private namespace cannot
        // be attached to several controllers; for a shared one the list
        // repeats an identifier.
        if list.ids.count > 1 {
            return ns.nmic & 1 == 0
                ? refuseNamespaceCommand(req, NVMeStatus.namespaceIsPrivate.withDNR, "private, \(list.ids.count) controllers")
                : refuseNamespaceCommand(req, NVMeStatus.controllerListInvalid.withDNR, "controller listed twice")
        }
        switch sel {
        case 0:
            guard namespace(c.nsid) == nil else {
                return refuseNamespaceCommand(req, NVMeStatus.namespaceAlreadyAttached.withDNR, "attached")
            }
            setAttached(ns, true)
        case 1:
            guard namespace(c.nsid) != nil else {
                return refuseNamespaceCommand(req, NVMeStatus.namespaceNotAttached.withDNR, "not attached")
            }
            abortSelfTest([ns], result: .abortedByNamespaceRemoval)
            setAttached(ns, false)
        default:
            return refuseNamespaceCommand(req, NVMeStatus.invalidField.withDNR, "sel \(sel)")
        }
        guard let provisioner, ns.isCreated else { return .success }
        // The attachment of created namespaces is recorded.
        submitManagementStep(req, nsid: c.nsid) { [weak self] in
            guard let self else { return ECANCELED }
            do { try provisioner.save(locked { namespaceRecords }) } catch {
                logger.error("namespace attachment: cannot record the attachment of namespace \(ns.nsid): \(error)")
                return errnoOf(error)
            }
            return 0
        }
        return nil
    }

    /// Attaches or detaches `ns` (under the lock): it becomes active or
    /// inactive at once, joins the Changed Namespace List and, with AEC
    /// bit 8 set, raises a Namespace Attribute Changed notice (§5.2.1).
    func setAttached(_ ns: Namespace, _ attached: Bool) {
        activeTable[Int(ns.nsid)] = attached ? ns : nil
        namespaces = activeTable.compactMap { $0 }
        traceEvent(attached ? .nsAttach : .nsDetach, [("nsid", "\(ns.nsid)")])
        namespaceChanged(ns.nsid)
    }

    /// Queues blocking namespace work as an AIO of `req` on the management
    /// queue (a failure, its errno, is Internal Error: BlockIO's mapping of
    /// a failed operation other than a read or a write).
    func submitManagementStep(_ req: Request, nsid: UInt32, _ work: @escaping @Sendable () -> Int32) {
        let step = BlockingStep(name: "namespace-management", queue: managementQueue, work: work)
        submitAIO(req, nsid: nsid, AIO(operation: .flush, offset: 0, length: 0), on: step, area: .data)
    }

    func errnoOf(_ error: any Error) -> Int32 {
        (error as? ImageBackendError)?.errno ?? EIO
    }

    // MARK: Identify (§5.15.2: CNS 10h-13h)

    /// Identify CNS 10h-13h; nil for any other CNS.
    func identifyAllocated(_ req: Request, _ cns: IdentifyCNS) -> NVMeStatus? {
        let c = req.cmd
        // CDW10 CNTID (31:16): the lowest controller identifier listed.
        let cntid = UInt16(c.cdw10 >> 16)
        switch cns {
        case .allocatedNamespaceList:
            guard c.nsid < 0xFFFF_FFFE else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            return transferToHost(req, NamespaceList(ascending: allocated.keys, after: c.nsid).bytes)
        case .identifyNamespaceAllocated:
            guard isValidNSID(c.nsid) else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            let data = allocated[c.nsid].map { identifyNamespaceData($0).bytes } ?? [UInt8](repeating: 0, count: 4096)
            return transferToHost(req, data)
        case .namespaceAttachedControllerList:
            // As QEMU: an NSID that names no allocated namespace is Invalid Field.
            guard allocated[c.nsid] != nil else {
                guestError(.inactiveNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidField.withDNR
            }
            let attached = namespace(c.nsid) != nil && Self.controllerID >= cntid
            return transferToHost(req, ControllerList(attached ? [Self.controllerID] : []).bytes)
        case .controllerList:
            return transferToHost(req, ControllerList(Self.controllerID >= cntid ? [Self.controllerID] : []).bytes)
        default:
            return nil
        }
    }
}
