import Testing
import NVMeSpec

@Suite struct OpcodesTests {
    @Test func adminOpcodeValues() {
        // NVMe 1.4 Figure 139.
        let table: [(AdminOpcode, UInt8)] = [
            (.deleteIOSQ, 0x00), (.createIOSQ, 0x01), (.getLogPage, 0x02), (.deleteIOCQ, 0x04),
            (.createIOCQ, 0x05), (.identify, 0x06), (.abort, 0x08), (.setFeatures, 0x09),
            (.getFeatures, 0x0A), (.asyncEventRequest, 0x0C), (.namespaceManagement, 0x0D),
            (.firmwareCommit, 0x10), (.firmwareImageDownload, 0x11), (.deviceSelfTest, 0x14),
            (.namespaceAttachment, 0x15), (.keepAlive, 0x18), (.directiveSend, 0x19),
            (.directiveReceive, 0x1A), (.virtualizationManagement, 0x1C), (.doorbellBufferConfig, 0x7C),
            (.formatNVM, 0x80), (.securitySend, 0x81), (.securityReceive, 0x82), (.sanitize, 0x84),
            (.getLBAStatus, 0x86),
        ]
        for (op, v) in table { #expect(op.rawValue == v, "\(op)") }
        #expect(Set(table.map(\.0.name)).count == table.count)
        #expect(!table.contains { $0.0.name.hasSuffix("UNKNOWN") })
        #expect(AdminOpcode.identify.name == "NVME_ADM_CMD_IDENTIFY")
        #expect(AdminOpcode(0xC0).name == "NVME_ADM_CMD_UNKNOWN")
        #expect(AdminOpcode(0xC0).rawValue == 0xC0)
    }

    @Test func nvmOpcodeValues() {
        // NVMe 1.4 Figure 346 (plus Copy, 19h).
        let table: [(NVMOpcode, UInt8)] = [
            (.flush, 0x00), (.write, 0x01), (.read, 0x02), (.writeUncorrectable, 0x04), (.compare, 0x05),
            (.writeZeroes, 0x08), (.datasetManagement, 0x09), (.verify, 0x0C), (.reservationRegister, 0x0D),
            (.reservationReport, 0x0E), (.reservationAcquire, 0x11), (.reservationRelease, 0x15), (.copy, 0x19),
        ]
        for (op, v) in table { #expect(op.rawValue == v, "\(op)") }
        #expect(Set(table.map(\.0.name)).count == table.count)
        #expect(NVMOpcode.read.description == "NVME_NVM_CMD_READ")
        #expect(NVMOpcode(0x7F).name == "NVME_NVM_CMD_UNKNOWN")
    }
}
