import BlockIO
import NVMeSpec

extension NVMeController {
    /// The status for a Get/Set Features NSID, as QEMU decides it. For a
    /// namespace-specific feature: FFFFFFFFh is "every namespace" (Set only),
    /// an invalid NSID is Invalid Namespace or Format and an inactive one
    /// Invalid Field. Get ignores the NSID of any other feature; Set refuses
    /// a valid one with Feature Not Namespace Specific.
    func checkFeatureNSID(_ fid: FeatureIdentifier, _ caps: FeatureCapabilities, nsid: UInt32, set: Bool) -> NVMeStatus? {
        if caps.contains(.namespaceSpecific) {
            if set && nsid == Self.broadcastNSID { return nil }
            guard isValidNSID(nsid) else {
                guestError(.invalidNs, [("nsid", hex(nsid)), ("fid", hex(fid.rawValue))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            guard namespace(nsid) != nil else {
                guestError(.inactiveNs, [("nsid", hex(nsid)), ("fid", hex(fid.rawValue))])
                return NVMeStatus.invalidField.withDNR
            }
            return nil
        }
        guard set, nsid != 0, nsid != Self.broadcastNSID else { return nil }
        guard isValidNSID(nsid) else {
            guestError(.invalidNs, [("nsid", hex(nsid)), ("fid", hex(fid.rawValue))])
            return NVMeStatus.invalidNamespace.withDNR
        }
        guestError(.featNotNsSpec, [("nsid", hex(nsid)), ("fid", hex(fid.rawValue))])
        return NVMeStatus.featureNotNamespaceSpecific.withDNR
    }

    func currentTimestamp() -> UInt64 {
        let elapsedMs = (monotonicNanoseconds() - features.timestampSetAt) / 1_000_000
        return (features.timestampMilliseconds &+ elapsedMs) & 0xFFFF_FFFF_FFFF
    }

    /// Temperature Threshold's sensor and threshold selects (§5.21.1.4):
    /// TMPSEL 0 composite, 1-8 sensors (not implemented: read 0, writes
    /// have no effect, as QEMU), 9-14 reserved, 15 every sensor (Set only);
    /// THSEL 0 over, 1 under, 2-3 reserved.
    func temperatureSelect(_ dw11: UInt32, set: Bool) -> (composite: Bool, over: Bool)? {
        let tmpsel = (dw11 >> 16) & 0xF, thsel = (dw11 >> 20) & 3
        guard thsel <= 1, tmpsel <= 8 || (set && tmpsel == 15) else { return nil }
        return (tmpsel == 0 || tmpsel == 15, thsel == 0)
    }

    /// Get Features (§5.15): SEL 0 current, 1 default, 2 saved (= default:
    /// nothing is saveable), 3 supported capabilities; 4-7 reserved.
    func getFeatures(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let fid = FeatureIdentifier(UInt8(c.cdw10 & 0xFF)), sel = FeatureSelect(UInt8((c.cdw10 >> 8) & 7))
        traceEvent(.getfeat, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("fid", hex(fid.rawValue)),
                                        ("sel", "\(sel.rawValue)"), ("cdw11", hex(c.cdw11))])
        guard let caps = FeatureIdentifier.supported[fid] else {
            guestError(.invalidGetfeat, [("fid", hex(fid.rawValue))])
            return NVMeStatus.invalidField.withDNR
        }
        if let bad = checkFeatureNSID(fid, caps, nsid: c.nsid, set: false) { return bad }
        switch sel {
        case .current, .default, .saved: break
        case .supportedCapabilities:
            req.dw0 = caps.rawValue
            return .success
        default:
            guestError(.invalidGetfeatSel, [("sel", "\(sel.rawValue)")])
            return NVMeStatus.invalidField.withDNR
        }
        let f = sel == .current ? features : {
            var d = FeatureValues(); d.numberOfQueues = features.numberOfQueues; return d
        }()
        switch fid {
        case .arbitration: req.dw0 = f.arbitration
        case .powerManagement: req.dw0 = f.powerManagement
        case .temperatureThreshold:
            guard let which = temperatureSelect(c.cdw11, set: false) else {
                guestError(.invalidGetfeatTemp, [("cdw11", hex(c.cdw11))])
                return NVMeStatus.invalidField.withDNR
            }
            req.dw0 = which.composite ? UInt32(which.over ? f.temperatureOverThreshold : f.temperatureUnderThreshold) : 0
        case .errorRecovery:
            req.dw0 = f.errorRecovery[c.nsid] ?? 0
        case .volatileWriteCache: req.dw0 = f.volatileWriteCache
        case .numberOfQueues: req.dw0 = f.numberOfQueues
        case .interruptCoalescing: req.dw0 = f.interruptCoalescing
        case .interruptVectorConfiguration:
            let iv = UInt16(c.cdw11 & 0xFFFF)
            guard Int(iv) < parameters.interruptVectors else {
                guestError(.invalidIv, [("iv", "\(iv)")])
                return NVMeStatus.invalidField.withDNR
            }
            req.dw0 = UInt32(iv) | (f.coalescingDisabled.contains(iv) || iv == 0 ? 1 << 16 : 0)
        case .writeAtomicityNormal: req.dw0 = f.writeAtomicity
        case .asyncEventConfiguration: req.dw0 = f.asyncEventConfig
        case .keepAliveTimer: req.dw0 = f.keepAliveTimeout
        case .timestamp:
            var data = [UInt8](repeating: 0, count: 8)
            let ts = sel == .current ? currentTimestamp() : 0
            data.withUnsafeMutableBytes { b in
                b.put64(ts, at: 0)
                // Byte 6: bit 0 Synch (0: continuous), bits 3:1 Timestamp Origin.
                b[6] = (sel == .current ? features.timestampOrigin : 0) << 1
                b[7] = 0
            }
            return transferToHost(req, data)
        case .hostBehaviorSupport:
            var data = [UInt8](repeating: 0, count: 512)
            data[0] = f.advancedCommandRetry
            return transferToHost(req, data)
        default:
            return NVMeStatus.invalidField.withDNR
        }
        return .success
    }

    /// Set Features (§5.21). SV (save) is refused: no feature is saveable.
    /// Returns nil while a Volatile Write Cache disable flushes the namespaces.
    func setFeatures(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let fid = FeatureIdentifier(UInt8(c.cdw10 & 0xFF)), save = c.cdw10 & 0x8000_0000 != 0
        let dw11 = c.cdw11
        traceEvent(.setfeat, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("fid", hex(fid.rawValue)),
                                        ("save", "\(save)"), ("cdw11", hex(dw11))])
        if save {
            guestError(.featNotSaveable, [("fid", hex(fid.rawValue))])
            return NVMeStatus.featureIdentifierNotSaveable.withDNR
        }
        guard let caps = FeatureIdentifier.supported[fid] else {
            guestError(.invalidSetfeat, [("fid", hex(fid.rawValue))])
            return NVMeStatus.invalidField.withDNR
        }
        if let bad = checkFeatureNSID(fid, caps, nsid: c.nsid, set: true) { return bad }
        guard caps.contains(.changeable) else {
            guestError(.featNotChangeable, [("fid", hex(fid.rawValue))])
            return NVMeStatus.featureNotChangeable.withDNR
        }
        switch fid {
        case .arbitration:
            features.arbitration = dw11 & 0xFFFF_FF07
        case .powerManagement:
            // NPSS = 0: only power state 0 exists.
            guard dw11 & 0x1F == 0 else { return NVMeStatus.invalidField.withDNR }
            features.powerManagement = dw11 & 0xFF
        case .temperatureThreshold:
            guard let which = temperatureSelect(dw11, set: true) else {
                guestError(.invalidSetfeatTemp, [("cdw11", hex(dw11))])
                return NVMeStatus.invalidField.withDNR
            }
            guard which.composite else { break }
            if which.over { features.temperatureOverThreshold = UInt16(dw11 & 0xFFFF) }
            else { features.temperatureUnderThreshold = UInt16(dw11 & 0xFFFF) }
            if temperatureKelvin >= features.temperatureOverThreshold || temperatureKelvin <= features.temperatureUnderThreshold {
                smartEvent(criticalWarningBit: 0x02)
            }
        case .errorRecovery:
            if c.nsid == Self.broadcastNSID {
                for ns in namespaces { features.errorRecovery[ns.nsid] = dw11 & 0x1_FFFF }
            } else {
                features.errorRecovery[c.nsid] = dw11 & 0x1_FFFF
            }
        case .volatileWriteCache:
            let wasEnabled = features.volatileWriteCache & 1 != 0
            features.volatileWriteCache = dw11 & 1
            // Turning the cache off writes back what it holds first (as QEMU):
            // one flush AIO per namespace; the command completes after them.
            if wasEnabled && dw11 & 1 == 0 { return flush(req, namespacesNotFormatting) }
        case .numberOfQueues:
            // §5.21.1.7: only before any I/O queue is created (since the last reset, as QEMU).
            if ioQueuesCreated { return NVMeStatus.commandSequenceError.withDNR }
            // §5.21.1.7: FFFFh is not allowed for NSQR or NCQR.
            guard dw11 & 0xFFFF != 0xFFFF, dw11 >> 16 != 0xFFFF else { return NVMeStatus.invalidField.withDNR }
            req.dw0 = features.numberOfQueues
        case .interruptCoalescing:
            features.interruptCoalescing = dw11 & 0xFFFF
        case .interruptVectorConfiguration:
            let iv = UInt16(dw11 & 0xFFFF)
            guard Int(iv) < parameters.interruptVectors else { return NVMeStatus.invalidField.withDNR }
            if dw11 & 0x1_0000 != 0 { features.coalescingDisabled.insert(iv) } else { features.coalescingDisabled.remove(iv) }
        case .writeAtomicityNormal:
            features.writeAtomicity = dw11 & 1
        case .asyncEventConfiguration:
            features.asyncEventConfig = dw11 & 0x3FF
        case .keepAliveTimer:
            // §5.21.1.15: KATO rounds up to the granularity KAS advertises.
            // A value whose rounding would not fit in 32 bits keeps the
            // largest multiple of the granularity that does (found by the
            // fuzzer: the rounding overflowed and trapped).
            let unit = UInt64(Self.keepAliveGranularityMs)
            let roundedUp = (UInt64(dw11) + unit - 1) / unit * unit
            features.keepAliveTimeout = UInt32(min(roundedUp, UInt64(UInt32.max) / unit * unit))
            restartKeepAliveTimer()
        case .timestamp:
            switch transferFromHost(req, length: 8) {
            case .failure(let s): return s
            case .success(let data):
                features.timestampMilliseconds = data.withUnsafeBytes { $0.le64(0) } & 0xFFFF_FFFF_FFFF
                features.timestampSetAt = monotonicNanoseconds()
                features.timestampOrigin = 1
            }
        case .hostBehaviorSupport:
            switch transferFromHost(req, length: 512) {
            case .failure(let s): return s
            case .success(let data):
                // Byte 0 ACRE is 0 or 1; the rest is reserved.
                guard data[0] <= 1 else { return NVMeStatus.invalidField.withDNR }
                features.advancedCommandRetry = data[0]
            }
        default:
            return NVMeStatus.invalidField.withDNR
        }
        return .success
    }

    // MARK: Keep Alive (§5.16, §7.12)

    /// KAS: the Keep Alive Timer's granularity, 100 ms units.
    static let keepAliveGranularityMs = 100

    /// (Re)starts the Keep Alive Timer after Set Features KATO or a Keep
    /// Alive command; KATO 0 stops it.
    func restartKeepAliveTimer() {
        keepAliveGeneration &+= 1
        let kato = features.keepAliveTimeout
        guard kato > 0, csts.rdy else { return }
        let generation = keepAliveGeneration
        addEffect(.timer(microseconds: Int(kato) * 1000) { [weak self] in
            guard let self else { return }
            self.locked { self.keepAliveExpired(generation) }
        })
    }

    /// §7.12.1: no Keep Alive within KATO: an error log entry with Keep
    /// Alive Timer Expired, and the controller stops (CSTS.CFS).
    func keepAliveExpired(_ generation: UInt64) {
        guard generation == keepAliveGeneration, features.keepAliveTimeout > 0, csts.rdy, !csts.cfs else { return }
        guestError(.keepAliveExpired, [("kato", "\(features.keepAliveTimeout)")])
        recordControllerError(status: .keepAliveTimerExpired)
        csts.cfs = true
        emit(.fatal)
    }
}
