import Testing
import NVMeSpec

@Suite struct FeatureIdentifierTests {
    @Test func values() {
        // NVMe 1.4 Figure 271.
        let table: [(FeatureIdentifier, UInt8, String)] = [
            (.arbitration, 0x01, "Arbitration"), (.powerManagement, 0x02, "Power Management"),
            (.lbaRangeType, 0x03, "LBA Range Type"), (.temperatureThreshold, 0x04, "Temperature Threshold"),
            (.errorRecovery, 0x05, "Error Recovery"), (.volatileWriteCache, 0x06, "Volatile Write Cache"),
            (.numberOfQueues, 0x07, "Number of Queues"), (.interruptCoalescing, 0x08, "Interrupt Coalescing"),
            (.interruptVectorConfiguration, 0x09, "Interrupt Vector Configuration"),
            (.writeAtomicityNormal, 0x0A, "Write Atomicity Normal"),
            (.asyncEventConfiguration, 0x0B, "Asynchronous Event Configuration"),
            (.autonomousPowerStateTransition, 0x0C, "Autonomous Power State Transition"),
            (.hostMemoryBuffer, 0x0D, "Host Memory Buffer"), (.timestamp, 0x0E, "Timestamp"),
            (.keepAliveTimer, 0x0F, "Keep Alive Timer"),
            (.hostControlledThermalManagement, 0x10, "Host Controlled Thermal Management"),
            (.nonOperationalPowerStateConfig, 0x11, "Non-Operational Power State Config"),
            (.readRecoveryLevelConfig, 0x12, "Read Recovery Level Config"),
            (.predictableLatencyModeConfig, 0x13, "Predictable Latency Mode Config"),
            (.predictableLatencyModeWindow, 0x14, "Predictable Latency Mode Window"),
            (.lbaStatusInformationReportInterval, 0x15, "LBA Status Information Report Interval"),
            (.hostBehaviorSupport, 0x16, "Host Behavior Support"), (.sanitizeConfig, 0x17, "Sanitize Config"),
            (.enduranceGroupEventConfiguration, 0x18, "Endurance Group Event Configuration"),
            (.softwareProgressMarker, 0x80, "Software Progress Marker"), (.hostIdentifier, 0x81, "Host Identifier"),
            (.reservationNotificationMask, 0x82, "Reservation Notification Mask"),
            (.reservationPersistence, 0x83, "Reservation Persistence"),
            (.namespaceWriteProtectionConfig, 0x84, "Namespace Write Protection Config"),
        ]
        for (f, v, name) in table {
            #expect(f.rawValue == v && f.name == name && f.description == name)
            #expect(FeatureIdentifier(rawValue: v) == f)
        }
        #expect(FeatureIdentifier.all == table.map(\.0))
    }

    @Test func unknownValuesRoundTrip() {
        let f = FeatureIdentifier(0xC0)
        #expect(f.rawValue == 0xC0 && f.name == "Unknown")
        #expect(f != .arbitration)
    }

    @Test func selectValues() {
        // Get Features SEL, Figure 269.
        #expect(FeatureSelect.current.rawValue == 0 && FeatureSelect.default.rawValue == 1)
        #expect(FeatureSelect.saved.rawValue == 2 && FeatureSelect.supportedCapabilities.rawValue == 3)
    }
}
