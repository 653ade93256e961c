import NVMeSpec

/// Event types and information codes come from NVMeSpec (`AsyncEventType`,
/// `AsyncEventInfo`, NVMe 1.4 Figures 145-148); this is their raw-value form.
enum EventCode {
    static let error = AsyncEventType.errorStatus.rawValue
    static let smart = AsyncEventType.smartHealthStatus.rawValue
    static let notice = AsyncEventType.notice.rawValue
    static let invalidDoorbellRegister = AsyncEventInfo.errorInvalidDoorbellRegister.rawValue
    static let invalidDoorbellWriteValue = AsyncEventInfo.errorInvalidDoorbellWriteValue.rawValue
    static let smartReliability = AsyncEventInfo.smartReliability.rawValue
    static let smartTemperatureThreshold = AsyncEventInfo.smartTemperatureThreshold.rawValue
    static let smartSpareBelowThreshold = AsyncEventInfo.smartSpareBelowThreshold.rawValue
}

struct AsyncEvent: Sendable, Equatable {
    var type: UInt8
    var info: UInt8
    var logPage: UInt8
    /// AER completion dword 0 (§5.2, Figure 145).
    var dw0: UInt32 { UInt32(type & 7) | UInt32(info) << 8 | UInt32(logPage) << 16 }
}

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
    func enqueueEvent(_ event: AsyncEvent) {
        guard pendingEvents.count < parameters.aerMaxQueued else {
            traceEvent("pci_nvme_enqueue_event_noqueue", [("queued", "\(pendingEvents.count)")])
            return
        }
        traceEvent("pci_nvme_enqueue_event", [("type", "\(event.type)"), ("info", hex(event.info)), ("log_page", hex(event.logPage))])
        pendingEvents.append(event)
        processAERs()
    }

    /// Completes outstanding AERs with queued events whose type is not masked.
    /// A delivered type stays masked until its log page is read with RAE = 0.
    func processAERs() {
        while !aerRequests.isEmpty {
            guard let i = pendingEvents.firstIndex(where: { maskedEventTypes & (1 << $0.type) == 0 }) else { return }
            let event = pendingEvents.remove(at: i)
            maskedEventTypes |= 1 << event.type
            let req = aerRequests.removeFirst()
            req.dw0 = event.dw0
            traceEvent("pci_nvme_aer_post_cqe", [("type", "\(event.type)"), ("info", hex(event.info)), ("log_page", hex(event.logPage))])
            finish(req, status: .success)
        }
    }

    /// Clears the event mask for `type` (a log page was read with RAE = 0).
    func clearEventMask(_ type: UInt8) {
        maskedEventTypes &= ~(1 << type)
        processAERs()
    }

    /// SMART / health events, subject to the Asynchronous Event Configuration.
    func smartEvent(criticalWarningBit: UInt8) {
        guard features.asyncEventConfig & UInt32(criticalWarningBit) != 0 else { return }
        let info: UInt8
        switch criticalWarningBit {
        case 0x01: info = EventCode.smartSpareBelowThreshold
        case 0x02: info = EventCode.smartTemperatureThreshold
        default: info = EventCode.smartReliability
        }
        enqueueEvent(AsyncEvent(type: EventCode.smart, info: info, logPage: 0x02))
    }

    /// Records a failed command in the error information log (ring of ELPE+1 entries).
    func recordError(_ req: Request, status: NVMeStatus) {
        errorCount += 1
        let isRW = req.sq.sqid != 0 && [0x01, 0x02, 0x05, 0x08].contains(req.cmd.opcode)
        let record = ErrorLogRecord(errorCount: errorCount, sqid: req.sq.sqid, cid: req.cid, status: status,
                                    lba: isRW ? req.cmd.slba : 0, nsid: req.cmd.nsid)
        errorLog.append(record)
        if errorLog.count > Int(parameters.elpe) + 1 { errorLog.removeFirst() }
        if status.type == .mediaError {
            mediaErrors += 1
        }
    }
}
