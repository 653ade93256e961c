import Testing
@testable import NVMeSpec

@Suite struct WireFormatTests {
    @Test func wideFields() {
        var buf = [UInt8](repeating: 0xEE, count: 20)
        buf.withUnsafeMutableBytes { $0.putWide128(UInt128(0x0102_0304_0506_0708) << 64 | 0x090A_0B0C_0D0E_0F10, at: 2) }
        #expect(buf[0 ..< 2] == [0xEE, 0xEE] && buf[18 ..< 20] == [0xEE, 0xEE])
        #expect(Array(buf[2 ..< 18]) == [0x10, 0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09,
                                         0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01])
        #expect(buf.withUnsafeBytes { $0.leWide128(2) } == UInt128(0x0102_0304_0506_0708) << 64 | 0x090A_0B0C_0D0E_0F10)
        var three = [UInt8](repeating: 0xEE, count: 5)
        three.withUnsafeMutableBytes { $0.putWide24(0xFF12_3456, at: 1) }
        #expect(three == [0xEE, 0x56, 0x34, 0x12, 0xEE])
        #expect(three.withUnsafeBytes { $0.leWide24(1) } == 0x12_3456)
    }

    @Test func textFields() {
        var buf = [UInt8](repeating: 0xEE, count: 10)
        buf.withUnsafeMutableBytes { $0.putNulTerminated("abcdefgh", at: 1, width: 6) }
        #expect(buf == [0xEE, 0x61, 0x62, 0x63, 0x64, 0x65, 0x00, 0xEE, 0xEE, 0xEE])
        #expect(buf.withUnsafeBytes { $0.nulTerminatedField(1, width: 6) } == "abcde")
        let padded: [UInt8] = [0x41, 0x20, 0x42, 0x20, 0x00, 0x20]
        #expect(padded.withUnsafeBytes { $0.asciiField(0, width: 6) } == "A B") // inner space kept
        #expect(padded.withUnsafeBytes { $0.asciiField(4, width: 2) } == "")
        var raw = [UInt8](repeating: 0xEE, count: 6)
        raw.withUnsafeMutableBytes { $0.putRawField([1, 2], at: 1, count: 4) }
        #expect(raw == [0xEE, 1, 2, 0, 0, 0xEE])
        raw.withUnsafeMutableBytes { $0.putRawField([9, 9, 9, 9, 9, 9], at: 0, count: 3) }
        #expect(raw == [9, 9, 9, 0, 0, 0xEE])
    }

    @Test func protocolDefaults() {
        // The protocol's [UInt8] initialiser and `bytes` agree with the raw-buffer forms.
        func roundTrip<T: NVMeWireFormat & Equatable>(_ v: T) -> Bool {
            let b: [UInt8] = v.bytes
            return b.count == T.size && T(bytes: b) == v
        }
        #expect(roundTrip(DatasetManagementRange(slba: 1, nlb: 2)))
        #expect(roundTrip(SubmissionQueueEntry(opcode: 6, cid: 9)))
        #expect(roundTrip(CompletionQueueEntry(cid: 3, phase: true)))
        #expect(roundTrip(NamespaceList([1])))
    }

    @Test func encodeZeroesReservedBytes() {
        // Encoding into a dirty buffer leaves no stale bytes in reserved fields.
        var dirty = [UInt8](repeating: 0xAA, count: 4096)
        dirty.withUnsafeMutableBytes { IdentifyNamespace().encode(into: $0) }
        #expect(dirty == IdentifyNamespace().bytes)
        var dirty2 = [UInt8](repeating: 0xAA, count: 4096)
        dirty2.withUnsafeMutableBytes { IdentifyController().encode(into: $0) }
        #expect(dirty2 == IdentifyController().bytes)
        var dirty3 = [UInt8](repeating: 0xAA, count: 64)
        dirty3.withUnsafeMutableBytes { ErrorInformationLogEntry().encode(into: $0) }
        #expect(dirty3.allSatisfy { $0 == 0 })
    }
}
