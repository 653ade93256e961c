import Testing
import NVMeSpec

@Suite struct LogPageIdentifierTests {
    @Test func values() {
        // NVMe 1.4 Figure 191.
        let table: [(LogPageIdentifier, UInt8)] = [
            (.errorInformation, 0x01), (.smartHealth, 0x02), (.firmwareSlot, 0x03), (.changedNamespaceList, 0x04),
            (.commandsSupportedAndEffects, 0x05), (.deviceSelfTest, 0x06), (.telemetryHostInitiated, 0x07),
            (.telemetryControllerInitiated, 0x08), (.enduranceGroupInformation, 0x09),
            (.predictableLatencyPerNVMSet, 0x0A), (.predictableLatencyEventAggregate, 0x0B),
            (.asymmetricNamespaceAccess, 0x0C), (.persistentEventLog, 0x0D), (.lbaStatusInformation, 0x0E),
            (.enduranceGroupEventAggregate, 0x0F), (.discovery, 0x70), (.reservationNotification, 0x80),
            (.sanitizeStatus, 0x81),
        ]
        for (l, v) in table {
            #expect(l.rawValue == v && LogPageIdentifier(rawValue: v) == l)
            #expect(l.name != "Unknown")
        }
        #expect(Set(table.map(\.0.name)).count == table.count)
        #expect(LogPageIdentifier.smartHealth.description == "SMART / Health Information")
        #expect(LogPageIdentifier(0xC3).name == "Unknown" && LogPageIdentifier(0xC3).rawValue == 0xC3)
    }
}
