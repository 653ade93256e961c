import Testing
import NVMeSpec

@Suite struct CopySourceRangeTests {
    typealias R = CopySourceRange

    /// NVMe 2.0 NVM Command Set, Copy Source Range Entry format 0: SLBA 15:8,
    /// NLB 17:16 (0's based), EILBRT 23:20, ELBAT 25:24, ELBATM 27:26.
    static var pins: [FieldPin<R>] { [
        .int("starting LBA 15:8", 8, 8, \.slba),
        .int("number of logical blocks 17:16", 16, 2, \.nlb),
        .int("EILBRT 23:20", 20, 4, \.eilbrt),
        .int("ELBAT 25:24", 24, 2, \.elbat),
        .int("ELBATM 27:26", 26, 2, \.elbatm),
    ] }

    @Test func fieldOffsets() {
        checkPins(R(), Self.pins)
    }

    @Test func golden() {
        let r = R(slba: 0x1_0000_0010, nlb: 7, eilbrt: 0x1234_5678, elbat: 0xABCD, elbatm: 0xFF00)
        #expect(r.bytes == [0, 0, 0, 0, 0, 0, 0, 0,
                            0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                            0x07, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12,
                            0xCD, 0xAB, 0x00, 0xFF, 0, 0, 0, 0])
        #expect(r.blocks == 8)
    }

    @Test func rangeLists() {
        let ranges = (0 ..< 4).map { R(slba: UInt64($0) * 100, nlb: UInt16($0)) }
        let bytes = R.encodeList(ranges)
        #expect(bytes.count == 128)
        #expect(Array(bytes[32 ..< 64]) == ranges[1].bytes)
        #expect(bytes.withUnsafeBytes { R.decodeList($0, count: 4) } == ranges)
        #expect(bytes.withUnsafeBytes { R.decodeList($0, count: 5) } == nil)
        #expect(bytes.withUnsafeBytes { R.decodeList($0, count: 0) } == [])
    }

    @Test func shortPrefixesAndRoundTrip() {
        let full = checkPins(R(), Self.pins)
        checkShortPrefixes(full)
        #expect(R.size == 32)
    }
}
