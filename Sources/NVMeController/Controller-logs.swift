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
        traceEvent("pci_nvme_get_log", [("cid", "\(c.cid)"), ("lid", hex(lid)), ("rae", "\(rae)"), ("len", "\(length)"), ("off", "\(offset)")])
        guard offset & 3 == 0 else { return NVMeStatus.invalidField.withDNR }
        if let mdts = parameters.maxDataTransfer, length > UInt64(mdts) { return NVMeStatus.invalidField.withDNR }
        let page: [UInt8]
        switch lid {
        case 0x01:
            page = errorLogPage()
            if !rae { clearEventMask(EventCode.error) }
        case 0x02:
            guard c.nsid == 0 || c.nsid == 0xFFFF_FFFF else { return NVMeStatus.invalidField.withDNR }
            page = smartLog().bytes
            if !rae { clearEventMask(EventCode.smart) }
        case 0x03:
            page = FirmwareSlotLog(activeSlot: 1, revisions: [parameters.firmwareRevision]).bytes
        case 0x04:
            page = NamespaceList([]).bytes
            if !rae { clearEventMask(EventCode.notice) }
        case 0x05:
            page = commandEffectsLog().bytes
        default:
            guestError("pci_nvme_err_invalid_log_page", [("cid", "\(c.cid)"), ("lid", hex(lid))])
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

    /// SMART / Health information (Figure 196) from the engine's accounting.
    func smartLog() -> SMARTHealthLog {
        var log = SMARTHealthLog()
        var bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, reads: UInt64 = 0, writes: UInt64 = 0
        for ns in namespaces {
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
            log.acs[Int(op.rawValue)] = CommandEffects(csupp: true)
        }
        for op: NVMOpcode in [.flush, .write, .writeZeroes, .datasetManagement] {
            log.iocs[Int(op.rawValue)] = CommandEffects(csupp: true, lbcc: true)
        }
        for op: NVMOpcode in [.read, .compare] {
            log.iocs[Int(op.rawValue)] = CommandEffects(csupp: true)
        }
        return log
    }
}
