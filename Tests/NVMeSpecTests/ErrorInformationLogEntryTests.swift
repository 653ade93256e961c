import Testing
import NVMeSpec

@Suite struct ErrorInformationLogEntryTests {
    typealias E = ErrorInformationLogEntry

    /// NVMe 1.4 Figure 194.
    static var pins: [FieldPin<E>] { [
        .int("error count 7:0", 0, 8, \.errorCount),
        .int("sqid 9:8", 8, 2, \.sqid),
        .int("cid 11:10", 10, 2, \.cid),
        FieldPin("status field 13:12", 12, [0x05, 0x80]) { $0.phaseTag = true; $0.status = NVMeStatus.invalidField.withDNR },
        .int("parameter error location 15:14", 14, 2, \.parameterErrorLocation),
        .int("lba 23:16", 16, 8, \.lba),
        .int("nsid 27:24", 24, 4, \.nsid),
        .int("vendor specific information available 28", 28, 1, \.vendorSpecificInformationAvailable),
        .int("trtype 29", 29, 1, \.trtype),
        .int("command specific information 39:32", 32, 8, \.commandSpecificInformation),
        .int("transport type specific information 41:40", 40, 2, \.transportTypeSpecificInformation),
    ] }

    @Test func fieldOffsets() {
        checkPins(E(), Self.pins)
    }

    @Test func statusFieldBits() {
        // Bit 0 phase tag, bits 15:1 status.
        var e = E()
        e.phaseTag = true
        #expect(Array(e.bytes[12 ..< 14]) == [0x01, 0x00])
        e = E()
        e.status = NVMeStatus(raw: 0x7FFF)
        #expect(Array(e.bytes[12 ..< 14]) == [0xFE, 0xFF])
        #expect(e.statusField == 0xFFFE)
        let d = E(bytes: e.bytes)
        #expect(d?.status == NVMeStatus(raw: 0x7FFF) && d?.phaseTag == false)
    }

    @Test func parameterErrorLocation() {
        // Bits 7:0 byte, 10:8 bit.
        let loc = E.parameterErrorLocation(byte: 40, bit: 5)
        #expect(loc == 0x0528)
        var e = E()
        e.parameterErrorLocation = loc
        #expect(e.parameterErrorByte == 40 && e.parameterErrorBit == 5)
        #expect(Array(e.bytes[14 ..< 16]) == [0x28, 0x05])
        #expect(E.parameterErrorLocation(byte: 0, bit: 0xFF) == 0x0700) // bit masked to 3 bits
        e.parameterErrorLocation = E.notApplicable
        #expect(e.parameterErrorByte == 0xFF && e.parameterErrorBit == 7)
    }

    @Test func convenienceInitialiser() {
        let e = E(errorCount: 7, sqid: 1, cid: 0x10, status: .unrecoveredReadError, lba: 99, nsid: 1)
        #expect(e.parameterErrorLocation == 0xFFFF)
        let b = e.bytes
        #expect(Array(b[0 ..< 8]) == le(7, 8))
        #expect(Array(b[12 ..< 14]) == le(0x281 << 1, 2))
        #expect(E(bytes: b) == e)
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(E(), Self.pins)
        checkShortPrefixes(full)
        #expect(E.size == 64)
        #expect(full.bytes[30 ..< 32].allSatisfy { $0 == 0 } && full.bytes[42...].allSatisfy { $0 == 0 })
    }
}
