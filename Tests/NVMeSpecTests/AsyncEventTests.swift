import Testing
import NVMeSpec

@Suite struct AsyncEventTests {
    @Test func typeValues() {
        // NVMe 1.4 Figure 146.
        #expect(AsyncEventType.errorStatus.rawValue == 0 && AsyncEventType.smartHealthStatus.rawValue == 1)
        #expect(AsyncEventType.notice.rawValue == 2 && AsyncEventType.ioCommandSpecificStatus.rawValue == 6)
        #expect(AsyncEventType.vendorSpecific.rawValue == 7)
        #expect(AsyncEventType.notice.name == "Notice" && AsyncEventType(3).name == "Reserved")
    }

    @Test func infoValues() {
        // Figures 147-150.
        let table: [(AsyncEventInfo, UInt8, AsyncEventType, String)] = [
            (.errorInvalidDoorbellRegister, 0x00, .errorStatus, "Write to Invalid Doorbell Register"),
            (.errorInvalidSubmissionQueue, 0x00, .errorStatus, "Write to Invalid Doorbell Register"),
            (.errorInvalidDoorbellWriteValue, 0x01, .errorStatus, "Invalid Doorbell Write Value"),
            (.errorDiagnosticFailure, 0x02, .errorStatus, "Diagnostic Failure"),
            (.errorPersistentInternal, 0x03, .errorStatus, "Persistent Internal Error"),
            (.errorTransientInternal, 0x04, .errorStatus, "Transient Internal Error"),
            (.errorFirmwareImageLoad, 0x05, .errorStatus, "Firmware Image Load Error"),
            (.smartReliability, 0x00, .smartHealthStatus, "NVM Subsystem Reliability"),
            (.smartTemperatureThreshold, 0x01, .smartHealthStatus, "Temperature Threshold"),
            (.smartSpareBelowThreshold, 0x02, .smartHealthStatus, "Spare Below Threshold"),
            (.noticeNamespaceAttributeChanged, 0x00, .notice, "Namespace Attribute Changed"),
            (.noticeFirmwareActivationStarting, 0x01, .notice, "Firmware Activation Starting"),
            (.noticeTelemetryLogChanged, 0x02, .notice, "Telemetry Log Changed"),
            (.noticeANAChange, 0x03, .notice, "Asymmetric Namespace Access Change"),
            (.noticePredictableLatencyEventAggregateLogChange, 0x04, .notice, "Predictable Latency Event Aggregate Log Change"),
            (.noticeLBAStatusInformationAlert, 0x05, .notice, "LBA Status Information Alert"),
            (.noticeEnduranceGroupEventAggregateLogChange, 0x06, .notice, "Endurance Group Event Aggregate Log Page Change"),
            (.ioReservationLogPageAvailable, 0x00, .ioCommandSpecificStatus, "Reservation Log Page Available"),
            (.ioSanitizeOperationCompleted, 0x01, .ioCommandSpecificStatus, "Sanitize Operation Completed"),
            (.ioSanitizeOperationCompletedWithUnexpectedDeallocation, 0x02, .ioCommandSpecificStatus,
             "Sanitize Operation Completed With Unexpected Deallocation"),
        ]
        for (info, v, type, name) in table {
            #expect(info.rawValue == v && info.name(for: type) == name)
        }
        #expect(AsyncEventInfo(0x10).name(for: .errorStatus) == "Unknown")
        #expect(AsyncEventInfo(0).name(for: .vendorSpecific) == "Unknown")
    }

    @Test func completionDword0Layout() {
        // Figure 145: type 2:0, info 15:8, log page 23:16, rest reserved.
        #expect(AsyncEventCompletion.dword0(type: AsyncEventType(7), info: AsyncEventInfo(0), logPage: LogPageIdentifier(0)) == 0x0000_0007)
        #expect(AsyncEventCompletion.dword0(type: .errorStatus, info: AsyncEventInfo(0xFF), logPage: LogPageIdentifier(0)) == 0x0000_FF00)
        #expect(AsyncEventCompletion.dword0(type: .errorStatus, info: AsyncEventInfo(0), logPage: LogPageIdentifier(0xFF)) == 0x00FF_0000)
        #expect(AsyncEventCompletion.dword0(type: AsyncEventType(0xFF), info: AsyncEventInfo(0), logPage: LogPageIdentifier(0)) == 7)
        #expect(AsyncEventCompletion.invalidDoorbellWriteValue.dw0 == 0x0001_0100)
        #expect(AsyncEventCompletion.invalidDoorbellRegister.dw0 == 0x0001_0000)
        #expect(AsyncEventCompletion.temperatureThreshold.dw0 == 0x0002_0101)
        #expect(AsyncEventCompletion.spareBelowThreshold.dw0 == 0x0002_0201)
        #expect(AsyncEventCompletion.namespaceAttributeChanged.dw0 == 0x0004_0002)
        #expect(AsyncEventCompletion.firmwareActivationStarting.dw0 == 0x0003_0102)
    }

    @Test func completionDecode() {
        let c = AsyncEventCompletion(dw0: 0xFF04_0002)
        #expect(c == .namespaceAttributeChanged) // reserved bits 31:24 ignored
        let d = AsyncEventCompletion(dw0: 0x0002_01F9) // reserved bits 7:3 ignored
        #expect(d.type == .smartHealthStatus && d.info == .smartTemperatureThreshold && d.logPage == .smartHealth)
        for e in [AsyncEventCompletion.invalidDoorbellRegister, .temperatureThreshold, .firmwareActivationStarting] {
            #expect(AsyncEventCompletion(dw0: e.dw0) == e)
        }
    }
}
