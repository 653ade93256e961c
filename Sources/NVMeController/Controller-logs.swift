import BlockIO
import NVMeSpec

extension NVMeController {
    /// Get Log Page (§5.14): error information, SMART / health, firmware slot,
    /// changed namespace list, commands supported and effects.
    func getLogPage(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let lid = UInt8(c.cdw10 & 0xFF)
        let rae = c.cdw10 & 0x8000 != 0
        let numd = (UInt64(c.cdw11 & 0xFFFF) << 16 | UInt64(c.cdw10 >> 16)) + 1
        let length = numd * 4
        let offset = UInt64(c.cdw13) << 32 | UInt64(c.cdw12)
        traceEvent(.getLog, [("cid", "\(c.cid)"), ("lid", hex(lid)), ("rae", "\(rae)"), ("len", "\(length)"), ("off", "\(offset)")])
        guard offset & 3 == 0 else { return NVMeStatus.invalidField.withDNR }
        if let mdts = parameters.maxDataTransfer, length > UInt64(mdts) { return NVMeStatus.invalidField.withDNR }
        let page: [UInt8]
        // Only the SMART / Health page is namespace specific; the others
        // ignore the NSID (as QEMU).
        switch LogPageIdentifier(lid) {
        case .errorInformation:
            page = errorLogPage()
            if !rae { clearEventMask(.errorStatus) }
        case .smartHealth:
            // §5.14.1.2: NSID FFFFFFFFh (or 0h) asks for the controller; an
            // active NSID for that namespace (LPA bit 0); any other NSID is
            // Invalid Namespace or Format.
            let scope: [Namespace]
            if c.nsid == 0 || c.nsid == Self.broadcastNSID {
                scope = namespaces
            } else if let ns = namespace(c.nsid) {
                scope = [ns]
            } else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            page = smartLog(scope).bytes
            if !rae { clearEventMask(.smartHealthStatus) }
        case .firmwareSlot:
            page = firmwareSlotLog().bytes
        case .changedNamespaceList:
            // §5.14.1.4: up to 1024 NSIDs, FFFFFFFFh first when more changed;
            // the list starts over once read with RAE = 0.
            page = NamespaceList.changedNamespaces(changedNamespaces.sorted()).bytes
            if !rae {
                changedNamespaces.removeAll()
                clearEventMask(.notice)
            }
        case .commandsSupportedAndEffects:
            page = commandEffectsLog().bytes
        case .deviceSelfTest:
            page = selfTestLog().bytes
        default:
            guestError(.invalidLogPage, [("cid", "\(c.cid)"), ("lid", hex(lid))])
            return NVMeStatus.invalidField.withDNR
        }
        guard offset < UInt64(page.count) else { return NVMeStatus.invalidField.withDNR }
        let n = Int(min(UInt64(page.count) - offset, length))
        return transferToHost(req, Array(page[Int(offset)..<Int(offset) + n]))
    }

    /// Error information entries, newest first, ELPE+1 entries (Figure 194).
    func errorLogPage() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (Int(parameters.elpe) + 1) * ErrorInformationLogEntry.size)
        out.withUnsafeMutableBytes { b in
            for (i, r) in errorLog.reversed().enumerated() {
                var e = ErrorInformationLogEntry(errorCount: r.errorCount, sqid: r.sqid, cid: r.cid, status: r.status)
                e.parameterErrorLocation = 0xFFFF
                e.lba = r.lba
                e.nsid = r.nsid
                e.encode(into: UnsafeMutableRawBufferPointer(rebasing: b[(i * 64)..<(i * 64 + 64)]))
            }
        }
        return out
    }

    /// SMART / Health information (Figure 196) from the engine's accounting:
    /// data units and command counts of the namespaces in `scope`; the rest
    /// is the controller's.
    func smartLog(_ scope: [Namespace]) -> SMARTHealthLog {
        var log = SMARTHealthLog()
        var bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, reads: UInt64 = 0, writes: UInt64 = 0
        for ns in scope {
            let s = ns.accounting.snapshot()
            bytesRead += s[.read].bytes
            bytesWritten += s[.write].bytes
            reads += s[.read].ops
            writes += s[.write].ops
        }
        // Data units are thousands of 512-byte units, rounded up (§5.14.1.2).
        log.dataUnitsRead = UInt128(((bytesRead >> 9) + 999) / 1000)
        log.dataUnitsWritten = UInt128(((bytesWritten >> 9) + 999) / 1000)
        log.hostReadCommands = UInt128(reads)
        log.hostWriteCommands = UInt128(writes)
        log.compositeTemperature = temperatureKelvin
        log.availableSpare = 100
        log.availableSpareThreshold = 10
        log.percentageUsed = 0
        log.powerCycles = UInt128(powerCycles)
        log.unsafeShutdowns = UInt128(unsafeShutdowns)
        log.powerOnHours = UInt128((monotonicNanoseconds() - startTime) / 3_600_000_000_000)
        log.mediaErrors = UInt128(mediaErrors)
        log.numberOfErrorInformationLogEntries = UInt128(errorCount)
        if temperatureKelvin >= features.temperatureOverThreshold || temperatureKelvin <= features.temperatureUnderThreshold {
            log.criticalWarning.insert(.temperature)
        }
        return log
    }

    func commandEffectsLog() -> CommandsSupportedAndEffectsLog {
        var log = CommandsSupportedAndEffectsLog()
        for op in Self.supportedAdminOpcodes {
            // Format NVM changes logical block content (LBCC), as QEMU says;
            // Namespace Management and Attachment change the namespace inventory (NIC);
            // Firmware Commit may change the controller's capabilities (CCC: FR).
            let inventory = Self.namespaceInventoryOpcodes.contains(op)
            if inventory && !supportsNamespaceManagement { continue }
            log.acs[Int(op.rawValue)] = CommandEffects(csupp: true, lbcc: op == .formatNVM, nic: inventory,
                                                       ccc: op == .firmwareCommit)
        }
        // Commands that change logical block content carry LBCC.
        let changesContent: Set<NVMOpcode> = [.flush, .write, .writeZeroes, .datasetManagement, .writeUncorrectable, .copy]
        for op in Self.supportedIOOpcodes {
            log.iocs[Int(op.rawValue)] = CommandEffects(csupp: true, lbcc: changesContent.contains(op))
        }
        return log
    }
}
