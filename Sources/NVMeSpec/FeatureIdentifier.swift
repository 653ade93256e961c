/// Feature identifiers for Get/Set Features (NVMe 1.4 §5.21.1, Figure 271).
/// Open enum-like struct: unknown values round-trip.
public struct FeatureIdentifier: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let arbitration = FeatureIdentifier(0x01)
    public static let powerManagement = FeatureIdentifier(0x02)
    public static let lbaRangeType = FeatureIdentifier(0x03)
    public static let temperatureThreshold = FeatureIdentifier(0x04)
    public static let errorRecovery = FeatureIdentifier(0x05)
    public static let volatileWriteCache = FeatureIdentifier(0x06)
    public static let numberOfQueues = FeatureIdentifier(0x07)
    public static let interruptCoalescing = FeatureIdentifier(0x08)
    public static let interruptVectorConfiguration = FeatureIdentifier(0x09)
    public static let writeAtomicityNormal = FeatureIdentifier(0x0A)
    public static let asyncEventConfiguration = FeatureIdentifier(0x0B)
    public static let autonomousPowerStateTransition = FeatureIdentifier(0x0C)
    public static let hostMemoryBuffer = FeatureIdentifier(0x0D)
    public static let timestamp = FeatureIdentifier(0x0E)
    public static let keepAliveTimer = FeatureIdentifier(0x0F)
    public static let hostControlledThermalManagement = FeatureIdentifier(0x10)
    public static let nonOperationalPowerStateConfig = FeatureIdentifier(0x11)
    public static let readRecoveryLevelConfig = FeatureIdentifier(0x12)
    public static let predictableLatencyModeConfig = FeatureIdentifier(0x13)
    public static let predictableLatencyModeWindow = FeatureIdentifier(0x14)
    public static let lbaStatusInformationReportInterval = FeatureIdentifier(0x15)
    public static let hostBehaviorSupport = FeatureIdentifier(0x16)
    public static let sanitizeConfig = FeatureIdentifier(0x17)
    public static let enduranceGroupEventConfiguration = FeatureIdentifier(0x18)
    public static let softwareProgressMarker = FeatureIdentifier(0x80)
    public static let hostIdentifier = FeatureIdentifier(0x81)
    public static let reservationNotificationMask = FeatureIdentifier(0x82)
    public static let reservationPersistence = FeatureIdentifier(0x83)
    public static let namespaceWriteProtectionConfig = FeatureIdentifier(0x84)

    /// Every named feature, in numeric order.
    public static let all: [FeatureIdentifier] = names.keys.sorted().map { FeatureIdentifier($0) }

    static let names: [UInt8: String] = [
        0x01: "Arbitration", 0x02: "Power Management", 0x03: "LBA Range Type",
        0x04: "Temperature Threshold", 0x05: "Error Recovery", 0x06: "Volatile Write Cache",
        0x07: "Number of Queues", 0x08: "Interrupt Coalescing", 0x09: "Interrupt Vector Configuration",
        0x0A: "Write Atomicity Normal", 0x0B: "Asynchronous Event Configuration",
        0x0C: "Autonomous Power State Transition", 0x0D: "Host Memory Buffer", 0x0E: "Timestamp",
        0x0F: "Keep Alive Timer", 0x10: "Host Controlled Thermal Management",
        0x11: "Non-Operational Power State Config", 0x12: "Read Recovery Level Config",
        0x13: "Predictable Latency Mode Config", 0x14: "Predictable Latency Mode Window",
        0x15: "LBA Status Information Report Interval", 0x16: "Host Behavior Support",
        0x17: "Sanitize Config", 0x18: "Endurance Group Event Configuration",
        0x80: "Software Progress Marker", 0x81: "Host Identifier", 0x82: "Reservation Notification Mask",
        0x83: "Reservation Persistence", 0x84: "Namespace Write Protection Config",
    ]
    /// Display name as in the specification (nvme-cli spelling), "Unknown" otherwise.
    public var name: String { Self.names[rawValue] ?? "Unknown" }
    public var description: String { name }
}

/// Get Features select field, CDW10 bits 10:8 (NVMe 1.4 Figure 269).
public struct FeatureSelect: Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    public static let current = FeatureSelect(0)
    public static let `default` = FeatureSelect(1)
    public static let saved = FeatureSelect(2)
    public static let supportedCapabilities = FeatureSelect(3)
}
