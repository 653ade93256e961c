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

/// Feature identifiers with their capabilities (Get Features SEL = 3: bit 0
/// saveable, bit 1 namespace specific, bit 2 changeable).
enum FeatureID {
    static let arbitration: UInt8 = 0x01
    static let powerManagement: UInt8 = 0x02
    static let temperatureThreshold: UInt8 = 0x04
    static let errorRecovery: UInt8 = 0x05
    static let volatileWriteCache: UInt8 = 0x06
    static let numberOfQueues: UInt8 = 0x07
    static let interruptCoalescing: UInt8 = 0x08
    static let interruptVectorConfiguration: UInt8 = 0x09
    static let writeAtomicityNormal: UInt8 = 0x0A
    static let asyncEventConfiguration: UInt8 = 0x0B
    static let timestamp: UInt8 = 0x0E

    static let changeable: UInt32 = 1 << 2
    static let namespaceSpecific: UInt32 = 1 << 1

    /// Supported features and their capabilities. Unlike QEMU, Arbitration,
    /// Power Management and the interrupt features are changeable: nvmefs
    /// honours the arbitration burst and interrupt coalescing (SPEC §4).
    static let capabilities: [UInt8: UInt32] = [
        arbitration: changeable,
        powerManagement: changeable,
        temperatureThreshold: changeable,
        errorRecovery: changeable | namespaceSpecific,
        volatileWriteCache: changeable,
        numberOfQueues: changeable,
        interruptCoalescing: changeable,
        interruptVectorConfiguration: changeable,
        writeAtomicityNormal: changeable,
        asyncEventConfiguration: changeable,
        timestamp: changeable,
    ]
}
