/// SMART / Health Information log page, log identifier 02h (NVMe 1.4
/// §5.14.1.2, Figure 196): 512 bytes. The 16-byte counters are 128-bit little
/// endian. Temperatures are in Kelvin.
public struct SMARTHealthLog: Hashable, Sendable, NVMeWireFormat {
    public static let size = 512
    /// Number of temperature sensor fields.
    public static let temperatureSensorCount = 8

    /// Critical warning bits (byte 0). Open option set: unknown bits round-trip.
    public struct CriticalWarning: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Bit 0 — available spare below threshold.
        public static let spare = CriticalWarning(rawValue: 1 << 0)
        /// Bit 1 — a temperature is above an over temperature or below an under temperature threshold.
        public static let temperature = CriticalWarning(rawValue: 1 << 1)
        /// Bit 2 — NVM subsystem reliability degraded.
        public static let reliability = CriticalWarning(rawValue: 1 << 2)
        /// Bit 3 — media placed in read only mode.
        public static let readOnly = CriticalWarning(rawValue: 1 << 3)
        /// Bit 4 — volatile memory backup device failed.
        public static let volatileMemoryBackup = CriticalWarning(rawValue: 1 << 4)
        /// Bit 5 — persistent memory region read only or unreliable.
        public static let persistentMemoryRegion = CriticalWarning(rawValue: 1 << 5)
    }

    /// 0 — critical warning.
    public var criticalWarning: CriticalWarning = []
    /// 2:1 — composite temperature (Kelvin).
    public var compositeTemperature: UInt16 = 0
    /// 3 — available spare, percent.
    public var availableSpare: UInt8 = 0
    /// 4 — available spare threshold, percent.
    public var availableSpareThreshold: UInt8 = 0
    /// 5 — percentage used.
    public var percentageUsed: UInt8 = 0
    /// 6 — endurance group critical warning summary.
    public var enduranceGroupCriticalWarningSummary: UInt8 = 0
    /// 47:32 — data units read (thousands of 512-byte units, rounded up).
    public var dataUnitsRead: UInt128 = 0
    /// 63:48 — data units written (thousands of 512-byte units, rounded up).
    public var dataUnitsWritten: UInt128 = 0
    /// 79:64 — host read commands.
    public var hostReadCommands: UInt128 = 0
    /// 95:80 — host write commands.
    public var hostWriteCommands: UInt128 = 0
    /// 111:96 — controller busy time (minutes).
    public var controllerBusyTime: UInt128 = 0
    /// 127:112 — power cycles.
    public var powerCycles: UInt128 = 0
    /// 143:128 — power on hours.
    public var powerOnHours: UInt128 = 0
    /// 159:144 — unsafe shutdowns.
    public var unsafeShutdowns: UInt128 = 0
    /// 175:160 — media and data integrity errors.
    public var mediaErrors: UInt128 = 0
    /// 191:176 — number of error information log entries over the controller's life.
    public var numberOfErrorInformationLogEntries: UInt128 = 0
    /// 195:192 — warning composite temperature time (minutes).
    public var warningCompositeTemperatureTime: UInt32 = 0
    /// 199:196 — critical composite temperature time (minutes).
    public var criticalCompositeTemperatureTime: UInt32 = 0
    /// 215:200 — temperature sensors 1..8, 2 bytes each (Kelvin, 0 = not reported).
    /// Always 8 entries when decoded; missing entries encode as zero.
    public var temperatureSensors: [UInt16] = Array(repeating: 0, count: 8)
    /// 219:216 — thermal management temperature 1 transition count.
    public var thermalManagementTemperature1TransitionCount: UInt32 = 0
    /// 223:220 — thermal management temperature 2 transition count.
    public var thermalManagementTemperature2TransitionCount: UInt32 = 0
    /// 227:224 — total time for thermal management temperature 1 (seconds).
    public var totalTimeForThermalManagementTemperature1: UInt32 = 0
    /// 231:228 — total time for thermal management temperature 2 (seconds).
    public var totalTimeForThermalManagementTemperature2: UInt32 = 0

    public enum Offset {
        public static let criticalWarning = 0, compositeTemperature = 1, availableSpare = 3
        public static let availableSpareThreshold = 4, percentageUsed = 5, enduranceGroupCriticalWarningSummary = 6
        public static let dataUnitsRead = 32, dataUnitsWritten = 48, hostReadCommands = 64, hostWriteCommands = 80
        public static let controllerBusyTime = 96, powerCycles = 112, powerOnHours = 128, unsafeShutdowns = 144
        public static let mediaErrors = 160, numberOfErrorInformationLogEntries = 176
        public static let warningCompositeTemperatureTime = 192, criticalCompositeTemperatureTime = 196
        public static let temperatureSensor1 = 200
        public static let thermalManagementTemperature1TransitionCount = 216
        public static let thermalManagementTemperature2TransitionCount = 220
        public static let totalTimeForThermalManagementTemperature1 = 224
        public static let totalTimeForThermalManagementTemperature2 = 228
        /// Offset of temperature sensor `number` (1...8).
        @inlinable public static func temperatureSensor(_ number: Int) -> Int { temperatureSensor1 + 2 * (number - 1) }
    }

    public init() {}

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        criticalWarning = CriticalWarning(rawValue: bytes.le8(Offset.criticalWarning))
        compositeTemperature = bytes.le16(Offset.compositeTemperature)
        availableSpare = bytes.le8(Offset.availableSpare)
        availableSpareThreshold = bytes.le8(Offset.availableSpareThreshold)
        percentageUsed = bytes.le8(Offset.percentageUsed)
        enduranceGroupCriticalWarningSummary = bytes.le8(Offset.enduranceGroupCriticalWarningSummary)
        dataUnitsRead = bytes.leWide128(Offset.dataUnitsRead)
        dataUnitsWritten = bytes.leWide128(Offset.dataUnitsWritten)
        hostReadCommands = bytes.leWide128(Offset.hostReadCommands)
        hostWriteCommands = bytes.leWide128(Offset.hostWriteCommands)
        controllerBusyTime = bytes.leWide128(Offset.controllerBusyTime)
        powerCycles = bytes.leWide128(Offset.powerCycles)
        powerOnHours = bytes.leWide128(Offset.powerOnHours)
        unsafeShutdowns = bytes.leWide128(Offset.unsafeShutdowns)
        mediaErrors = bytes.leWide128(Offset.mediaErrors)
        numberOfErrorInformationLogEntries = bytes.leWide128(Offset.numberOfErrorInformationLogEntries)
        warningCompositeTemperatureTime = bytes.le32(Offset.warningCompositeTemperatureTime)
        criticalCompositeTemperatureTime = bytes.le32(Offset.criticalCompositeTemperatureTime)
        temperatureSensors = (1 ... Self.temperatureSensorCount).map { bytes.le16(Offset.temperatureSensor($0)) }
        thermalManagementTemperature1TransitionCount = bytes.le32(Offset.thermalManagementTemperature1TransitionCount)
        thermalManagementTemperature2TransitionCount = bytes.le32(Offset.thermalManagementTemperature2TransitionCount)
        totalTimeForThermalManagementTemperature1 = bytes.le32(Offset.totalTimeForThermalManagementTemperature1)
        totalTimeForThermalManagementTemperature2 = bytes.le32(Offset.totalTimeForThermalManagementTemperature2)
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put8(criticalWarning.rawValue, at: Offset.criticalWarning)
        out.put16(compositeTemperature, at: Offset.compositeTemperature)
        out.put8(availableSpare, at: Offset.availableSpare)
        out.put8(availableSpareThreshold, at: Offset.availableSpareThreshold)
        out.put8(percentageUsed, at: Offset.percentageUsed)
        out.put8(enduranceGroupCriticalWarningSummary, at: Offset.enduranceGroupCriticalWarningSummary)
        out.putWide128(dataUnitsRead, at: Offset.dataUnitsRead)
        out.putWide128(dataUnitsWritten, at: Offset.dataUnitsWritten)
        out.putWide128(hostReadCommands, at: Offset.hostReadCommands)
        out.putWide128(hostWriteCommands, at: Offset.hostWriteCommands)
        out.putWide128(controllerBusyTime, at: Offset.controllerBusyTime)
        out.putWide128(powerCycles, at: Offset.powerCycles)
        out.putWide128(powerOnHours, at: Offset.powerOnHours)
        out.putWide128(unsafeShutdowns, at: Offset.unsafeShutdowns)
        out.putWide128(mediaErrors, at: Offset.mediaErrors)
        out.putWide128(numberOfErrorInformationLogEntries, at: Offset.numberOfErrorInformationLogEntries)
        out.put32(warningCompositeTemperatureTime, at: Offset.warningCompositeTemperatureTime)
        out.put32(criticalCompositeTemperatureTime, at: Offset.criticalCompositeTemperatureTime)
        for (i, t) in temperatureSensors.prefix(Self.temperatureSensorCount).enumerated() {
            out.put16(t, at: Offset.temperatureSensor(i + 1))
        }
        out.put32(thermalManagementTemperature1TransitionCount, at: Offset.thermalManagementTemperature1TransitionCount)
        out.put32(thermalManagementTemperature2TransitionCount, at: Offset.thermalManagementTemperature2TransitionCount)
        out.put32(totalTimeForThermalManagementTemperature1, at: Offset.totalTimeForThermalManagementTemperature1)
        out.put32(totalTimeForThermalManagementTemperature2, at: Offset.totalTimeForThermalManagementTemperature2)
    }
}
