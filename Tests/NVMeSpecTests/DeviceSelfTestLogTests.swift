import Testing
import NVMeSpec

@Suite struct DeviceSelfTestLogTests {
    /// NVMe 1.4 Figure 204: the Self-test Result Data Structure's offsets.
    @Test func resultOffsets() {
        var r = DeviceSelfTestResult(operation: .extended, result: .failedSegment, powerOnHours: 0x0102_0304_0506_0708)
        r.segment = 2
        r.validDiagnostics = 0x0F
        r.nsid = 0xA1B2_C3D4
        r.failingLBA = 0x1122_3344_5566_7788
        r.statusCodeType = 2
        r.statusCode = 0x81
        r.vendorSpecific = 0xBEEF
        let b = r.bytes
        #expect(b.count == 28)
        #expect(b[0] == 0x27 && b[1] == 2 && b[2] == 0x0F && b[3] == 0)
        #expect(Array(b[4 ..< 12]) == [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01])
        #expect(Array(b[12 ..< 16]) == [0xD4, 0xC3, 0xB2, 0xA1])
        #expect(Array(b[16 ..< 24]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(b[24] == 2 && b[25] == 0x81 && b[26] == 0xEF && b[27] == 0xBE)
        #expect(DeviceSelfTestResult(bytes: b) == r)
        #expect(r.operation == .extended && r.result == .failedSegment)
    }

    /// Figure 203: operation at 0, completion at 1, 20 results from byte 4, newest first.
    @Test func logLayout() {
        var log = DeviceSelfTestLog()
        log.currentOperation = 1
        log.currentCompletion = 0xC2  // bit 7 reserved
        log.results = [DeviceSelfTestResult(operation: .short, result: .completed),
                       DeviceSelfTestResult(operation: .extended, result: .abortedByCommand)]
        let b = log.bytes
        #expect(b.count == 564)
        #expect(b[0] == 1 && b[1] == 0x42 && b[2] == 0 && b[3] == 0)
        #expect(b[4] == 0x10 && b[32] == 0x21)
        for i in 2 ..< 20 { #expect(b[4 + 28 * i] == 0x0F) }  // unused entries
        let d = DeviceSelfTestLog(bytes: b)
        #expect(d?.results.count == 20 && d?.results[1].result == .abortedByCommand && d?.results[2].result == .unused)
        #expect(d?.currentCompletion == 0x42)
        #expect(DeviceSelfTestLog(bytes: [UInt8](repeating: 0, count: 563)) == nil)
        #expect(DeviceSelfTestLog.Offset.result(19) + 28 == 564)
    }
}
