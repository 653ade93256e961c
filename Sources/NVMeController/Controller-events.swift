import NVMeSpec

/// One recorded failure for the Error Information log page.
struct ErrorLogRecord: Sendable {
    var errorCount: UInt64
    var sqid: UInt16
    var cid: UInt16
    var status: NVMeStatus
    var lba: UInt64
    var nsid: UInt32
}

extension NVMeController {
    /// Queues an event (bounded, QEMU aer_max_queued) and delivers what it can.
    func enqueueEvent(_ event: AsyncEventCompletion) {
        guard pendingEvents.count < parameters.aerMaxQueued else {
            traceEvent(.enqueueEventNoqueue, [("queued", "\(pendingEvents.count)")])
            return
        }
        traceEvent(.enqueueEvent, [("type", "\(event.type.rawValue)"), ("info", hex(event.info.rawValue)),
                                              ("log_page", hex(event.logPage.rawValue))])
        pendingEvents.append(event)
        processAERs()
    }

    /// Completes outstanding AERs with queued events (oldest event first)
    /// whose type is not masked. A delivered type stays masked until its log
    /// page is read with RAE = 0 (§5.2). The specification leaves open which
    /// outstanding request carries an event; as QEMU, the one submitted last.
    func processAERs() {
        while !aerRequests.isEmpty {
            guard let i = pendingEvents.firstIndex(where: { maskedEventTypes & Self.maskBit($0.type) == 0 }) else { return }
            let event = pendingEvents.remove(at: i)
            maskedEventTypes |= Self.maskBit(event.type)
            let req = aerRequests.removeLast()
            req.dw0 = event.dw0
            traceEvent(.aerPostCqe, [("type", "\(event.type.rawValue)"), ("info", hex(event.info.rawValue)),
                                                 ("log_page", hex(event.logPage.rawValue))])
            finish(req, status: .success)
        }
    }

    static func maskBit(_ type: AsyncEventType) -> UInt8 { 1 << (type.rawValue & 7) }

    /// Clears the event mask for `type` (its log page was read with RAE = 0)
    /// and delivers what was held back.
    func clearEventMask(_ type: AsyncEventType) {
        maskedEventTypes &= ~Self.maskBit(type)
        processAERs()
    }

    /// SMART / health events, subject to the Asynchronous Event Configuration.
    func smartEvent(criticalWarningBit: UInt8) {
        guard features.asyncEventConfig & UInt32(criticalWarningBit) != 0 else { return }
        let info: AsyncEventInfo
        switch criticalWarningBit {
        case 0x01: info = .smartSpareBelowThreshold
        case 0x02: info = .smartTemperatureThreshold
        default: info = .smartReliability
        }
        enqueueEvent(AsyncEventCompletion(type: .smartHealthStatus, info: info, logPage: .smartHealth))
    }

    /// Records a failed command in the error information log (ring of ELPE+1 entries).
    func recordError(_ req: Request, status: NVMeStatus) {
        let isRW = req.sq.sqid != 0 && [0x01, 0x02, 0x04, 0x05, 0x08, 0x0C].contains(req.cmd.opcode)
        appendErrorRecord(sqid: req.sq.sqid, cid: req.cid, status: status, lba: isRW ? req.errorLBA ?? req.cmd.slba : 0, nsid: req.cmd.nsid)
    }

    /// Records an error that belongs to no command (SQID and CID FFFFh, §5.14.1.1).
    func recordControllerError(status: NVMeStatus) {
        appendErrorRecord(sqid: 0xFFFF, cid: 0xFFFF, status: status, lba: 0, nsid: 0)
    }

    private func appendErrorRecord(sqid: UInt16, cid: UInt16, status: NVMeStatus, lba: UInt64, nsid: UInt32) {
        errorCount += 1
        errorLog.append(ErrorLogRecord(errorCount: errorCount, sqid: sqid, cid: cid, status: status, lba: lba, nsid: nsid))
        if errorLog.count > Int(parameters.elpe) + 1 { errorLog.removeFirst() }
        if status.type == .mediaError {
            mediaErrors += 1
        }
    }
}
