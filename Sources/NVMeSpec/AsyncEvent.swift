/// Asynchronous event type, completion dword 0 bits 2:0 of an Asynchronous
/// Event Request (NVMe 1.4 §5.2, Figure 146). Open enum-like struct.
public struct AsyncEventType: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let errorStatus = AsyncEventType(0)
    public static let smartHealthStatus = AsyncEventType(1)
    public static let notice = AsyncEventType(2)
    public static let ioCommandSpecificStatus = AsyncEventType(6)
    public static let vendorSpecific = AsyncEventType(7)

    public var name: String {
        switch rawValue {
        case 0: "Error"
        case 1: "SMART / Health"
        case 2: "Notice"
        case 6: "I/O Command Specific"
        case 7: "Vendor Specific"
        default: "Reserved"
        }
    }
    public var description: String { name }
}

/// Asynchronous event information, completion dword 0 bits 15:8 (NVMe 1.4
/// Figures 147-150). The meaning depends on the event type, so the constants
/// are prefixed with their type. Open enum-like struct.
public struct AsyncEventInfo: Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    // Error status (type 0), Figure 147.
    /// 00h — write to invalid doorbell register (a queue that does not exist).
    public static let errorInvalidDoorbellRegister = AsyncEventInfo(0x00)
    /// 00h — the NVMe 1.0 name of `errorInvalidDoorbellRegister`.
    public static let errorInvalidSubmissionQueue = AsyncEventInfo(0x00)
    /// 01h — invalid doorbell write value.
    public static let errorInvalidDoorbellWriteValue = AsyncEventInfo(0x01)
    /// 02h — diagnostic failure.
    public static let errorDiagnosticFailure = AsyncEventInfo(0x02)
    /// 03h — persistent internal error.
    public static let errorPersistentInternal = AsyncEventInfo(0x03)
    /// 04h — transient internal error.
    public static let errorTransientInternal = AsyncEventInfo(0x04)
    /// 05h — firmware image load error.
    public static let errorFirmwareImageLoad = AsyncEventInfo(0x05)

    // SMART / Health status (type 1), Figure 148.
    /// 00h — NVM subsystem reliability.
    public static let smartReliability = AsyncEventInfo(0x00)
    /// 01h — temperature threshold.
    public static let smartTemperatureThreshold = AsyncEventInfo(0x01)
    /// 02h — spare below threshold.
    public static let smartSpareBelowThreshold = AsyncEventInfo(0x02)

    // Notice (type 2), Figure 149.
    /// 00h — namespace attribute changed (read the Changed Namespace List log).
    public static let noticeNamespaceAttributeChanged = AsyncEventInfo(0x00)
    /// 01h — firmware activation starting.
    public static let noticeFirmwareActivationStarting = AsyncEventInfo(0x01)
    /// 02h — telemetry log changed.
    public static let noticeTelemetryLogChanged = AsyncEventInfo(0x02)
    /// 03h — asymmetric namespace access change.
    public static let noticeANAChange = AsyncEventInfo(0x03)
    /// 04h — predictable latency event aggregate log change.
    public static let noticePredictableLatencyEventAggregateLogChange = AsyncEventInfo(0x04)
    /// 05h — LBA status information alert.
    public static let noticeLBAStatusInformationAlert = AsyncEventInfo(0x05)
    /// 06h — endurance group event aggregate log page change.
    public static let noticeEnduranceGroupEventAggregateLogChange = AsyncEventInfo(0x06)

    // I/O command specific status (type 6), Figure 150.
    /// 00h — reservation log page available.
    public static let ioReservationLogPageAvailable = AsyncEventInfo(0x00)
    /// 01h — sanitize operation completed.
    public static let ioSanitizeOperationCompleted = AsyncEventInfo(0x01)
    /// 02h — sanitize operation completed with unexpected deallocation.
    public static let ioSanitizeOperationCompletedWithUnexpectedDeallocation = AsyncEventInfo(0x02)

    /// Display name of this information value for an event of `type`.
    public func name(for type: AsyncEventType) -> String {
        let table: [String]
        switch type.rawValue {
        case 0:
            table = ["Write to Invalid Doorbell Register", "Invalid Doorbell Write Value", "Diagnostic Failure",
                     "Persistent Internal Error", "Transient Internal Error", "Firmware Image Load Error"]
        case 1:
            table = ["NVM Subsystem Reliability", "Temperature Threshold", "Spare Below Threshold"]
        case 2:
            table = ["Namespace Attribute Changed", "Firmware Activation Starting", "Telemetry Log Changed",
                     "Asymmetric Namespace Access Change", "Predictable Latency Event Aggregate Log Change",
                     "LBA Status Information Alert", "Endurance Group Event Aggregate Log Page Change"]
        case 6:
            table = ["Reservation Log Page Available", "Sanitize Operation Completed",
                     "Sanitize Operation Completed With Unexpected Deallocation"]
        default:
            table = []
        }
        return Int(rawValue) < table.count ? table[Int(rawValue)] : "Unknown"
    }
}

/// Completion dword 0 of an Asynchronous Event Request (NVMe 1.4 §5.2.1,
/// Figure 145): bits 2:0 event type, 15:8 event information, 23:16 log page
/// identifier; other bits reserved (zero).
public struct AsyncEventCompletion: Hashable, Sendable {
    public var type: AsyncEventType
    public var info: AsyncEventInfo
    /// The log page to read to clear the event.
    public var logPage: LogPageIdentifier

    public init(type: AsyncEventType, info: AsyncEventInfo, logPage: LogPageIdentifier) {
        self.type = type; self.info = info; self.logPage = logPage
    }

    /// Decodes a completion dword 0 (reserved bits ignored).
    public init(dw0: UInt32) {
        type = AsyncEventType(UInt8(dw0 & 0x7))
        info = AsyncEventInfo(UInt8(truncatingIfNeeded: dw0 >> 8))
        logPage = LogPageIdentifier(UInt8(truncatingIfNeeded: dw0 >> 16))
    }

    /// The completion dword 0.
    public var dw0: UInt32 { Self.dword0(type: type, info: info, logPage: logPage) }

    /// Builds completion dword 0: type in bits 2:0, info in 15:8, log page in 23:16.
    @inlinable public static func dword0(type: AsyncEventType, info: AsyncEventInfo, logPage: LogPageIdentifier) -> UInt32 {
        UInt32(type.rawValue & 0x7) | UInt32(info.rawValue) << 8 | UInt32(logPage.rawValue) << 16
    }

    // Common events, with the log page the specification names for them.
    public static let invalidDoorbellRegister =
        AsyncEventCompletion(type: .errorStatus, info: .errorInvalidDoorbellRegister, logPage: .errorInformation)
    public static let invalidDoorbellWriteValue =
        AsyncEventCompletion(type: .errorStatus, info: .errorInvalidDoorbellWriteValue, logPage: .errorInformation)
    public static let temperatureThreshold =
        AsyncEventCompletion(type: .smartHealthStatus, info: .smartTemperatureThreshold, logPage: .smartHealth)
    public static let spareBelowThreshold =
        AsyncEventCompletion(type: .smartHealthStatus, info: .smartSpareBelowThreshold, logPage: .smartHealth)
    public static let namespaceAttributeChanged =
        AsyncEventCompletion(type: .notice, info: .noticeNamespaceAttributeChanged, logPage: .changedNamespaceList)
    public static let firmwareActivationStarting =
        AsyncEventCompletion(type: .notice, info: .noticeFirmwareActivationStarting, logPage: .firmwareSlot)
}
