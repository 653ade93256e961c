import BlockIO
import NVMeSpec

extension NVMeController {
    /// Validates FID and NSID as QEMU does for Get/Set Features.
    func checkFeatureTarget(fid: UInt8, nsid: UInt32) -> NVMeStatus? {
        guard let caps = FeatureID.capabilities[fid] else {
            guestError("pci_nvme_err_invalid_getfeat", [("fid", hex(fid))])
            return NVMeStatus.invalidField.withDNR
        }
        if caps & FeatureID.namespaceSpecific != 0 {
            if nsid != 0xFFFF_FFFF && namespace(nsid) == nil {
                return NVMeStatus.invalidNamespace.withDNR
            }
        } else if nsid != 0 && nsid != 0xFFFF_FFFF {
            if namespace(nsid) == nil { return NVMeStatus.invalidNamespace.withDNR }
            return NVMeStatus.featureNotNamespaceSpecific.withDNR
        }
        return nil
    }

    func currentTimestamp() -> UInt64 {
        let elapsedMs = (monotonicNanoseconds() - features.timestampSetAt) / 1_000_000
        return (features.timestampMilliseconds &+ elapsedMs) & 0xFFFF_FFFF_FFFF
    }

    /// Get Features (§5.15): SEL 0 current, 1 default, 2 saved (= default:
    /// nothing is saveable), 3 supported capabilities.
    func getFeatures(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let fid = UInt8(c.cdw10 & 0xFF), sel = (c.cdw10 >> 8) & 7
        traceEvent("pci_nvme_getfeat", [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("fid", hex(fid)), ("sel", "\(sel)"), ("cdw11", hex(c.cdw11))])
        if let bad = checkFeatureTarget(fid: fid, nsid: c.nsid) { return bad }
        switch sel {
        case 0, 1, 2: break
        case 3:
            req.dw0 = FeatureID.capabilities[fid] ?? 0
            return .success
        default:
            return NVMeStatus.invalidField.withDNR
        }
        let f = sel == 0 ? features : {
            var d = FeatureValues(); d.numberOfQueues = features.numberOfQueues; return d
        }()
        switch fid {
        case FeatureID.arbitration: req.dw0 = f.arbitration
        case FeatureID.powerManagement: req.dw0 = f.powerManagement
        case FeatureID.temperatureThreshold:
            let tmpsel = (c.cdw11 >> 16) & 0xF, thsel = (c.cdw11 >> 20) & 3
            guard thsel <= 1 else { return NVMeStatus.invalidField.withDNR }
            if tmpsel == 0 {
                req.dw0 = UInt32(thsel == 0 ? f.temperatureOverThreshold : f.temperatureUnderThreshold)
            } else {
                req.dw0 = thsel == 0 ? 0xFFFF : 0  // other sensors: not implemented, defaults
            }
        case FeatureID.errorRecovery:
            req.dw0 = f.errorRecovery[c.nsid] ?? 0
        case FeatureID.volatileWriteCache: req.dw0 = f.volatileWriteCache
        case FeatureID.numberOfQueues: req.dw0 = f.numberOfQueues
        case FeatureID.interruptCoalescing: req.dw0 = f.interruptCoalescing
        case FeatureID.interruptVectorConfiguration:
            let iv = UInt16(c.cdw11 & 0xFFFF)
            guard Int(iv) < parameters.interruptVectors else { return NVMeStatus.invalidField.withDNR }
            req.dw0 = UInt32(iv) | (f.coalescingDisabled.contains(iv) || iv == 0 ? 1 << 16 : 0)
        case FeatureID.writeAtomicityNormal: req.dw0 = f.writeAtomicity
        case FeatureID.asyncEventConfiguration: req.dw0 = f.asyncEventConfig
        case FeatureID.timestamp:
            var data = [UInt8](repeating: 0, count: 8)
            let ts = sel == 0 ? currentTimestamp() : 0
            data.withUnsafeMutableBytes { b in
                b.put64(ts, at: 0)
                // Byte 6: bit 0 Synch (0: continuous), bits 3:1 Timestamp Origin.
                b[6] = (sel == 0 ? features.timestampOrigin : 0) << 1
                b[7] = 0
            }
            return transferToHost(req, data)
        default:
            return NVMeStatus.invalidField.withDNR
        }
        return .success
    }

    /// Set Features (§5.21). SV (save) is refused: no feature is saveable.
    func setFeatures(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let fid = UInt8(c.cdw10 & 0xFF), save = c.cdw10 & 0x8000_0000 != 0
        let dw11 = c.cdw11
        traceEvent("pci_nvme_setfeat", [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("fid", hex(fid)), ("save", "\(save)"), ("cdw11", hex(dw11))])
        if save {
            guestError("pci_nvme_err_feat_not_saveable", [("fid", hex(fid))])
            return NVMeStatus.featureIdentifierNotSaveable.withDNR
        }
        if let bad = checkFeatureTarget(fid: fid, nsid: c.nsid) { return bad }
        guard let caps = FeatureID.capabilities[fid], caps & FeatureID.changeable != 0 else {
            return NVMeStatus.featureNotChangeable.withDNR
        }
        switch fid {
        case FeatureID.arbitration:
            features.arbitration = dw11 & 0xFFFF_FF07
        case FeatureID.powerManagement:
            // NPSS = 0: only power state 0 exists.
            guard dw11 & 0x1F == 0 else { return NVMeStatus.invalidField.withDNR }
            features.powerManagement = dw11 & 0xFF
        case FeatureID.temperatureThreshold:
            let tmpsel = (dw11 >> 16) & 0xF, thsel = (dw11 >> 20) & 3
            guard thsel <= 1 else { return NVMeStatus.invalidField.withDNR }
            guard tmpsel == 0 else { break }   // other sensors ignored (QEMU)
            if thsel == 0 { features.temperatureOverThreshold = UInt16(dw11 & 0xFFFF) }
            else { features.temperatureUnderThreshold = UInt16(dw11 & 0xFFFF) }
            if temperatureKelvin >= features.temperatureOverThreshold || temperatureKelvin <= features.temperatureUnderThreshold {
                smartEvent(criticalWarningBit: 0x02)
            }
        case FeatureID.errorRecovery:
            if c.nsid == 0xFFFF_FFFF {
                for ns in namespaces { features.errorRecovery[ns.nsid] = dw11 & 0x1_FFFF }
            } else {
                features.errorRecovery[c.nsid] = dw11 & 0x1_FFFF
            }
        case FeatureID.volatileWriteCache:
            features.volatileWriteCache = dw11 & 1
        case FeatureID.numberOfQueues:
            if ioQueuesExist { return NVMeStatus.commandSequenceError.withDNR }
            // §5.21.1.7: FFFFh is not allowed for NSQR or NCQR.
            guard dw11 & 0xFFFF != 0xFFFF, dw11 >> 16 != 0xFFFF else { return NVMeStatus.invalidField.withDNR }
            req.dw0 = features.numberOfQueues
        case FeatureID.interruptCoalescing:
            features.interruptCoalescing = dw11 & 0xFFFF
        case FeatureID.interruptVectorConfiguration:
            let iv = UInt16(dw11 & 0xFFFF)
            guard Int(iv) < parameters.interruptVectors else { return NVMeStatus.invalidField.withDNR }
            if dw11 & 0x1_0000 != 0 { features.coalescingDisabled.insert(iv) } else { features.coalescingDisabled.remove(iv) }
        case FeatureID.writeAtomicityNormal:
            features.writeAtomicity = dw11 & 1
        case FeatureID.asyncEventConfiguration:
            features.asyncEventConfig = dw11 & 0x3FF
        case FeatureID.timestamp:
            switch transferFromHost(req, length: 8) {
            case .failure(let s): return s
            case .success(let data):
                features.timestampMilliseconds = data.withUnsafeBytes { $0.le64(0) } & 0xFFFF_FFFF_FFFF
                features.timestampSetAt = monotonicNanoseconds()
                features.timestampOrigin = 1
            }
        default:
            return NVMeStatus.invalidField.withDNR
        }
        return .success
    }
}
