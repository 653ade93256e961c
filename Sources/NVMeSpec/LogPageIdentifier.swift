/// Log page identifiers for Get Log Page (NVMe 1.4 §5.14.1, Figure 191).
/// Open enum-like struct: unknown values round-trip.
public struct LogPageIdentifier: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let errorInformation = LogPageIdentifier(0x01)
    public static let smartHealth = LogPageIdentifier(0x02)
    public static let firmwareSlot = LogPageIdentifier(0x03)
    public static let changedNamespaceList = LogPageIdentifier(0x04)
    public static let commandsSupportedAndEffects = LogPageIdentifier(0x05)
    public static let deviceSelfTest = LogPageIdentifier(0x06)
    public static let telemetryHostInitiated = LogPageIdentifier(0x07)
    public static let telemetryControllerInitiated = LogPageIdentifier(0x08)
    public static let enduranceGroupInformation = LogPageIdentifier(0x09)
    public static let predictableLatencyPerNVMSet = LogPageIdentifier(0x0A)
    public static let predictableLatencyEventAggregate = LogPageIdentifier(0x0B)
    public static let asymmetricNamespaceAccess = LogPageIdentifier(0x0C)
    public static let persistentEventLog = LogPageIdentifier(0x0D)
    public static let lbaStatusInformation = LogPageIdentifier(0x0E)
    public static let enduranceGroupEventAggregate = LogPageIdentifier(0x0F)
    public static let discovery = LogPageIdentifier(0x70)
    public static let reservationNotification = LogPageIdentifier(0x80)
    public static let sanitizeStatus = LogPageIdentifier(0x81)

    static let names: [UInt8: String] = [
        0x01: "Error Information", 0x02: "SMART / Health Information", 0x03: "Firmware Slot Information",
        0x04: "Changed Namespace List", 0x05: "Commands Supported and Effects", 0x06: "Device Self-test",
        0x07: "Telemetry Host-Initiated", 0x08: "Telemetry Controller-Initiated",
        0x09: "Endurance Group Information", 0x0A: "Predictable Latency Per NVM Set",
        0x0B: "Predictable Latency Event Aggregate", 0x0C: "Asymmetric Namespace Access",
        0x0D: "Persistent Event Log", 0x0E: "LBA Status Information",
        0x0F: "Endurance Group Event Aggregate", 0x70: "Discovery", 0x80: "Reservation Notification",
        0x81: "Sanitize Status",
    ]
    /// Display name as in the specification, "Unknown" otherwise.
    public var name: String { Self.names[rawValue] ?? "Unknown" }
    public var description: String { name }
}
