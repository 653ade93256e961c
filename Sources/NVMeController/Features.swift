import NVMeSpec

/// Feature values (NVMe 1.4 §5.21.1). Nothing is saveable (as in QEMU).
struct FeatureValues: Sendable {
    /// Arbitration (01h): AB bits 2:0 (7 = no limit, QEMU's value), LPW, MPW, HPW.
    var arbitration: UInt32 = 7
    /// Power Management (02h): PS 4:0, WH 7:5.
    var powerManagement: UInt32 = 0
    /// Temperature Threshold (04h) for the composite sensor, Kelvin.
    var temperatureOverThreshold: UInt16 = 0x157   // QEMU NVME_TEMPERATURE_WARNING
    var temperatureUnderThreshold: UInt16 = 0
    /// Error Recovery (05h) per namespace: TLER 15:0, DULBE 16.
    var errorRecovery: [UInt32: UInt32] = [:]
    /// Volatile Write Cache (06h): WCE bit 0.
    var volatileWriteCache: UInt32 = 1
    /// Number of Queues (07h) result: NSQA 15:0, NCQA 31:16 (0's based).
    var numberOfQueues: UInt32 = 0
    /// Interrupt Coalescing (08h): THR 7:0, TIME 15:8.
    var interruptCoalescing: UInt32 = 0
    /// Interrupt Vector Configuration (09h): CD bit 16 per vector.
    var coalescingDisabled: Set<UInt16> = []
    /// Write Atomicity Normal (0Ah): DN bit 0.
    var writeAtomicity: UInt32 = 0
    /// Asynchronous Event Configuration (0Bh): SMART warnings 7:0, NAN 8, FAN 9.
    var asyncEventConfig: UInt32 = 0
    /// Timestamp (0Eh): milliseconds set by the host, and when (monotonic ns).
    var timestampMilliseconds: UInt64 = 0
    var timestampSetAt: UInt64 = 0
    var timestampOrigin: UInt8 = 0
    /// Keep Alive Timer (0Fh): KATO in milliseconds; 0 = disabled.
    var keepAliveTimeout: UInt32 = 0
    /// Host Behavior Support (16h): byte 0 ACRE; bytes 511:1 reserved.
    var advancedCommandRetry: UInt8 = 0

    /// Commands fetched from one SQ per arbitration round (2^AB; AB = 7: no limit).
    var arbitrationBurst: Int {
        let ab = arbitration & 7
        return ab == 7 ? Int.max : 1 << Int(ab)
    }

    /// A controller reset restores defaults of what it governs.
    mutating func resetVolatile() {
        let queues = numberOfQueues
        self = FeatureValues()
        numberOfQueues = queues
    }
}

/// What Get Features with SEL = 3 reports for a feature (NVMe 1.4 §5.15,
/// Figure 272): bit 0 saveable, bit 1 namespace specific, bit 2 changeable.
struct FeatureCapabilities: OptionSet, Sendable {
    let rawValue: UInt32
    static let saveable = FeatureCapabilities(rawValue: 1 << 0)
    static let namespaceSpecific = FeatureCapabilities(rawValue: 1 << 1)
    static let changeable = FeatureCapabilities(rawValue: 1 << 2)
}

extension FeatureIdentifier {
    /// The features this controller supports, with their capabilities. Unlike
    /// QEMU, Arbitration, Power Management and the interrupt features are
    /// changeable: nvmefs honours the arbitration burst and interrupt
    /// coalescing (docs/CONFORMANCE.md).
    static let supported: [FeatureIdentifier: FeatureCapabilities] = [
        .arbitration: .changeable,
        .powerManagement: .changeable,
        .temperatureThreshold: .changeable,
        .errorRecovery: [.changeable, .namespaceSpecific],
        .volatileWriteCache: .changeable,
        .numberOfQueues: .changeable,
        .interruptCoalescing: .changeable,
        .interruptVectorConfiguration: .changeable,
        .writeAtomicityNormal: .changeable,
        .asyncEventConfiguration: .changeable,
        .timestamp: .changeable,
        .keepAliveTimer: .changeable,
        .hostBehaviorSupport: .changeable,
    ]
}
