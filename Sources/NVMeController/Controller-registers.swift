import NVMeSpec

/// The result of an MMIO write as the bus sees it (the controller never refuses
/// a write; host misuse is traced as a guest error).
extension NVMeController {
    /// Size of BAR0 in bytes: registers, then one SQ/CQ doorbell pair per queue id.
    public var bar0Size: Int { 0x1000 + 8 * (parameters.maxIOQueuePairs + 1) }

    /// Reads `count` bytes of BAR0 at `offset` with no side effects (CONTRACT §3 bar0).
    /// Doorbells read back the last value written.
    public func readBAR(offset: Int, count: Int) -> [UInt8] {
        let end = min(bar0Size, offset + max(0, count))
        guard offset >= 0, offset < end else { return [] }
        var regs = [UInt8](repeating: 0, count: 0x60)
        var db: [UInt32] = []
        locked {
            regs.withUnsafeMutableBytes { r in
                r.put64(cap.raw, at: 0x00)
                r.put32(Version.v1_4.raw, at: 0x08)
                r.put32(intms, at: 0x0C)
                r.put32(intms, at: 0x10)
                r.put32(cc.raw, at: 0x14)
                r.put32(csts.raw, at: 0x1C)
                r.put32(0, at: 0x20)   // NSSR reads as 0
                r.put32(aqa.raw, at: 0x24)
                r.put64(asq, at: 0x28)
                r.put64(acq, at: 0x30)
                // NVMe 1.4 §3.1.11-12: zero until CMBMSC.CRE is set.
                r.put32(cmbmsc.cre ? cmbloc : 0, at: 0x38)
                r.put32(cmbmsc.cre ? cmbsz : 0, at: 0x3C)
                r.put64(cmbmsc.raw, at: 0x50)
                r.put32(cmbsts.raw, at: 0x58)
            }
            if end > 0x1000 { db = doorbellValues.values }
        }
        var out = [UInt8](repeating: 0, count: end - offset)
        for i in offset..<end {
            if i < 0x60 {
                out[i - offset] = regs[i]
            } else if i >= 0x1000 {
                let d = (i - 0x1000) / 4
                out[i - offset] = UInt8(truncatingIfNeeded: db[d] >> (8 * UInt32((i - 0x1000) % 4)))
            }
        }
        return out
    }

    /// An aligned 4- or 8-byte register read (no side effects).
    public func mmioRead(offset: Int, size: Int) -> UInt64 {
        let bytes = readBAR(offset: offset, count: size)
        var v: UInt64 = 0
        for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    /// One MMIO write of `size` (4 or 8) bytes at `offset`, with register
    /// semantics (NVMe 1.4 §3.1). Misaligned or odd-sized writes are guest
    /// errors and change nothing.
    public func mmioWrite(offset: Int, value: UInt64, size: Int) {
        // An I/O SQ's tail doorbell may run its Reads and Writes on the fast path.
        if size == 4, offset >= 0x1000, fastSQTailDoorbell(offset: offset, value: UInt32(truncatingIfNeeded: value)) {
            return
        }
        locked { mmioWriteLocked(offset: offset, value: value, size: size) }
    }

    func mmioWriteLocked(offset: Int, value: UInt64, size: Int) {
        guard size == 4 || size == 8, offset >= 0, offset % size == 0, offset + size <= bar0Size else {
            guestError(.mmiowrMisaligned32, [("offset", hex(offset)), ("size", "\(size)")])
            return
        }
        if tracing { traceEvent(.mmioWrite, [("addr", hex(offset)), ("data", hex(value)), ("size", "\(size)")]) }
        if offset >= 0x1000 {
            if size == 8 {
                processDoorbell(offset: offset, value: UInt32(truncatingIfNeeded: value))
                processDoorbell(offset: offset + 4, value: UInt32(truncatingIfNeeded: value >> 32))
            } else {
                processDoorbell(offset: offset, value: UInt32(truncatingIfNeeded: value))
            }
            return
        }
        if size == 8 {
            switch UInt64(offset) {
            case RegisterOffset.asq: asq = value & ~0xFFF; return
            case RegisterOffset.acq: acq = value & ~0xFFF; return
            case RegisterOffset.cap:
                guestError(.mmiowrRoCap, [("data", hex(value))]); return
            case RegisterOffset.cmbmsc: writeCMBMSC(value); return
            default:
                writeRegister32(offset: offset, value: UInt32(truncatingIfNeeded: value))
                writeRegister32(offset: offset + 4, value: UInt32(truncatingIfNeeded: value >> 32))
                return
            }
        }
        writeRegister32(offset: offset, value: UInt32(truncatingIfNeeded: value))
    }

    func writeRegister32(offset: Int, value: UInt32) {
        switch UInt64(offset) {
        case RegisterOffset.cap, RegisterOffset.cap + 4:
            guestError(.mmiowrRoCap, [("data", hex(value))])
        case RegisterOffset.vs:
            guestError(.mmiowrRoVs, [("data", hex(value))])
        case RegisterOffset.intms:
            intms |= value
            traceEvent(.mmioIntmSet, [("data", hex(value)), ("new_mask", hex(intms))])
        case RegisterOffset.intmc:
            intms &= ~value
            traceEvent(.mmioIntmClr, [("data", hex(value)), ("new_mask", hex(intms))])
            // Unmasking delivers what was held back.
            for v in 0..<min(32, interrupts.count) where value & (1 << UInt32(v)) != 0 && interrupts[v].pending {
                raiseInterrupt(vector: v)
            }
        case RegisterOffset.cc:
            writeCC(ControllerConfiguration(raw: value))
        case RegisterOffset.csts:
            // CSTS.NSSRO is RW1C (§3.1.6); the rest is read-only.
            if value & 0x10 != 0 { csts.nssro = false }
            else { guestError(.mmiowrRoCsts, [("data", hex(value))]) }
        case RegisterOffset.nssr:
            // §3.1.7: writing "NVMe" (4E564D65h) starts an NVM subsystem reset.
            if value == 0x4E56_4D65 {
                traceEvent(.mmioSubsystemReset)
                firmwareReset(.subsystemReset)
                controllerReset()
                csts.nssro = true
            } else {
                guestError(.mmiowrSsresetW1cUnsupported, [("data", hex(value))])
            }
        case RegisterOffset.aqa:
            aqa = AdminQueueAttributes(raw: value & 0x0FFF_0FFF)
            traceEvent(.mmioAqattr, [("data", hex(value))])
        case RegisterOffset.asq:
            asq = (asq & 0xFFFF_FFFF_0000_0000) | UInt64(value & ~0xFFF)
        case RegisterOffset.asq + 4:
            asq = (asq & 0xFFFF_FFFF) | UInt64(value) << 32
        case RegisterOffset.acq:
            acq = (acq & 0xFFFF_FFFF_0000_0000) | UInt64(value & ~0xFFF)
        case RegisterOffset.acq + 4:
            acq = (acq & 0xFFFF_FFFF) | UInt64(value) << 32
        case RegisterOffset.cmbloc:
            guestError(.mmiowrCmblocReserved, [("data", hex(value))])
        case RegisterOffset.cmbsz:
            guestError(.mmiowrCmbszReadonly, [("data", hex(value))])
        case RegisterOffset.cmbmsc:
            writeCMBMSC((cmbmsc.raw & 0xFFFF_FFFF_0000_0000) | UInt64(value))
        case RegisterOffset.cmbmsc + 4:
            // The high half of CBA alone takes effect with the next low write (as QEMU).
            guard cap.cmbs else { return guestError(.mmiowrCmbmscUnsupported, [("data", hex(value))]) }
            cmbmsc.raw = (cmbmsc.raw & 0xFFFF_FFFF) | UInt64(value) << 32
        case RegisterOffset.cmbsts:
            guestError(.mmiowrCmbstsReadonly, [("data", hex(value))])
        default:
            guestError(.mmiowrInvalid, [("offset", hex(offset)), ("data", hex(value))])
        }
    }

    /// CMBMSC write (NVMe 1.4 §3.1.16): CRE makes CMBLOC/CMBSZ readable;
    /// CMSE with CRE places the CMB at CBA in the host address space. A CBA
    /// the controller cannot use (the CMB would wrap past 2^64 or overlap
    /// host memory) sets CMBSTS.CBAI (§3.1.17) and leaves the CMB unmapped.
    func writeCMBMSC(_ value: UInt64) {
        guard cap.cmbs, let memory = cmbMemory else {
            return guestError(.mmiowrCmbmscUnsupported, [("data", hex(value))])
        }
        // Bits 11:2 are reserved.
        let new = CMBMemorySpaceControl(raw: value & ~0xFFC)
        traceEvent(.mmioCmbmsc, [("data", hex(new.raw))])
        cmbmsc = new
        // Under the controller lock (the removal barrier). The CMB's memory
        // lives as long as the controller, so AIOs still using it need no wait.
        if let id = cmbRegion { space.unmapWhenIdle(id, barrier: false); cmbRegion = nil; doorbellPageCache.pages = nil }
        guard new.cre, new.cmse else { return }
        do {
            cmbRegion = try space.map(base: new.cba, length: memory.size, pointer: memory.pointer, name: "cmb",
                                      kind: .controllerMemoryBuffer)
            cmbsts.cbai = false
        } catch {
            guestError(.cmbCbaInvalid, [("cba", hex(new.cba)), ("reason", error.message)])
            cmbsts.cbai = true
        }
    }

    /// CC write side effects (§3.1.5, §7.6): EN 0→1 validates and enables,
    /// EN 1→0 resets, SHN requests a shutdown.
    func writeCC(_ new: ControllerConfiguration) {
        let old = cc
        // Reserved bits (3:1, 31:24) are read-only zero.
        cc = ControllerConfiguration(raw: new.raw & 0x00FF_FFF1)
        if cc.shn != 0 && old.shn == 0 {
            traceEvent(.mmioShutdownSet)
            csts.shst = 1  // processing; completed by the shutdown effect after syncing
            shutdownGeneration &+= 1
            addEffect(.shutdown(generation: shutdownGeneration))
        } else if cc.shn == 0 && old.shn != 0 {
            csts.shst = 0
        }
        if cc.en && !old.en {
            if resetInProgress {
                enableAfterReset = true
            } else {
                startController()
            }
        } else if !cc.en && old.en {
            traceEvent(.mmioStopped)
            controllerReset()
        }
    }

    /// Validates the configuration and creates the admin queues (QEMU nvme_start_ctrl).
    func startController() {
        func fail(_ why: GuestErrorName, _ fields: [(String, String)] = []) {
            guestError(why, fields)
            logger.notice("controller enable failed: \(why)")
            csts.cfs = true
            emit(.fatal)
        }
        let mps = Int(cc.mps)
        // As QEMU: ASQ/ACQ 0 are ordinary addresses (host memory starts at 0 here).
        if sqs[0] != nil || cqs[0] != nil { return fail(.startfailCqOrSq) }
        if mps < Int(cap.mpsmin) { return fail(.startfailPageTooSmall, [("mps", "\(mps)")]) }
        if mps > Int(cap.mpsmax) { return fail(.startfailPageTooLarge, [("mps", "\(mps)")]) }
        let page = UInt64(1) << (12 + UInt64(mps))
        if asq & (page - 1) != 0 { return fail(.startfailAsqMisaligned, [("asq", hex(asq))]) }
        if acq & (page - 1) != 0 { return fail(.startfailAcqMisaligned, [("acq", hex(acq))]) }
        if cc.css != 0 { return fail(.startfailCss, [("css", "\(cc.css)")]) }
        // §3.1.5: the host sets only entry sizes Identify SQES/CQES allow (64 and 16 bytes).
        if cc.iocqes != 4 { return fail(.startfailCqentTooSmall, [("iocqes", "\(cc.iocqes)")]) }
        if cc.iosqes != 6 { return fail(.startfailSqentTooSmall, [("iosqes", "\(cc.iosqes)")]) }
        // CAP.AMS offers round robin only; another CC.AMS is the host's
        // error with no defined outcome: as QEMU, round robin it stays.
        if cc.ams != 0 { guestError(.ccAmsUnsupported, [("ams", "\(cc.ams)")]) }
        if aqa.asqs == 0 { return fail(.startfailAsqentSzZero) }
        if aqa.acqs == 0 { return fail(.startfailAcqentSzZero) }
        let sqSize = Int(aqa.asqs) + 1, cqSize = Int(aqa.acqs) + 1
        if space.pointer(asq, length: sqSize * 64) == nil {
            return fail(.startfailAsqUnbacked, [("asq", hex(asq))])
        }
        if space.pointer(acq, length: cqSize * 16) == nil {
            return fail(.startfailAcqUnbacked, [("acq", hex(acq))])
        }
        pageSize = Int(page)
        cqs[0] = CompletionQueue(cqid: 0, base: acq, size: cqSize, vector: 0, interruptsEnabled: true)
        sqs[0] = SubmissionQueue(sqid: 0, cqid: 0, base: asq, size: sqSize, lock: cqs[0]!.lock)
        activeSQs = [sqs[0]!]
        cqs[0]!.sqids.insert(0)
        csts.cfs = false
        csts.rdy = true
        traceEvent(.mmioStartSuccess)
        emit(.ready)
    }

    /// Controller reset (§7.3.2): queues deleted, outstanding AIOs cancelled or
    /// drained, no completion posted. CSTS.RDY clears once the drain is over.
    func controllerReset() {
        resetInProgress = true
        // §7.3.2: registers return to their reset values except AQA, ASQ and
        // ACQ (CSTS follows once the drain is over).
        cc = ControllerConfiguration(raw: 0)
        intms = 0
        for case let sq? in sqs {
            cancelOutstanding(of: sq, status: .sqDeletion)
            sq.deleted = true
            sq.dropRequests()
            drainingAfterReset += sq.outstandingCount
            foldFastCounters(sq)
        }
        for case let cq? in cqs { foldFastCounters(cq) }
        sqs = Array(repeating: nil, count: sqs.count)
        activeSQs.removeAll()
        cqs = Array(repeating: nil, count: cqs.count)
        aerRequests.removeAll()
        pendingEvents.removeAll()
        maskedEventTypes = 0
        for i in interrupts.indices { interrupts[i].pending = false }
        features.resetVolatile()
        keepAliveGeneration &+= 1
        ioQueuesCreated = false
        // The shadow doorbells end with the queues (QEMU clears them at reset).
        doorbellBuffers = nil
        doorbellPageCache.pages = nil
        // A Controller Level Reset aborts a running Device Self-test (result 2).
        endSelfTest(.abortedByReset)
        // It discards a firmware download and may activate a committed image (§5.11, §5.12).
        firmwareReset(.controllerReset)
        finishResetIfDrained()
    }

    func finishResetIfDrained() {
        guard resetInProgress, drainingAfterReset == 0 else { return }
        resetInProgress = false
        csts.rdy = false
        csts.cfs = false
        csts.shst = 0
        doorbellValues.clear()
        traceEvent(.ctrlResetDone)
        resetsCompleted += 1
        emit(.resetComplete)
        if enableAfterReset {
            enableAfterReset = false
            if cc.en { startController() }
        }
    }

    public var isReady: Bool { lock.withLock { csts.rdy } }
    public var controllerStatus: ControllerStatus { lock.withLock { csts } }
}
