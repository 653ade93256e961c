import Testing
import NVMeSpec

@Suite struct ByteCodingTests {
    @Test func littleEndianReads() {
        let b: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09]
        b.withLE { p in
            #expect(p.le8(0) == 0x01)
            #expect(p.le16(0) == 0x0201)
            #expect(p.le16(1) == 0x0302)
            #expect(p.le32(0) == 0x0403_0201)
            #expect(p.le64(0) == 0x0807_0605_0403_0201)
            #expect(p.le64(1) == 0x0908_0706_0504_0302)
        }
    }

    @Test func littleEndianWrites() {
        var b = [UInt8](repeating: 0xEE, count: 12)
        b.withUnsafeMutableBytes { p in
            p.put8(0x11, at: 0)
            p.put16(0x2322, at: 1)
            p.put32(0x2726_2524, at: 3)
            p.put64(0x0F0E_0D0C_0B0A_0908, at: 3)
        }
        #expect(b == [0x11, 0x22, 0x23, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0xEE])
    }

    @Test func asciiPadding() {
        var b = [UInt8](repeating: 0, count: 8)
        b.withUnsafeMutableBytes { $0.putASCII("ab", at: 1, width: 5) }
        #expect(b == [0, 0x61, 0x62, 0x20, 0x20, 0x20, 0, 0])
        b.withUnsafeMutableBytes { $0.putASCII("abcdefgh", at: 0, width: 3) }
        #expect(b == [0x61, 0x62, 0x63, 0x20, 0x20, 0x20, 0, 0])
    }

    @Test func bitHelpers() {
        #expect(bits(UInt32(0xABCD_1234), 15, 8) == 0x12)
        #expect(bits(UInt32(0xABCD_1234), 31, 0) == 0xABCD_1234)
        #expect(bits(UInt64.max, 63, 63) == 1)
        #expect(settingBits(UInt32(0xFFFF_FFFF), 11, 8, to: 0) == 0xFFFF_F0FF)
        #expect(settingBits(UInt32(0), 11, 8, to: 0xFF) == 0x0000_0F00) // field masked to its width
        #expect(settingBits(UInt64(0), 63, 0, to: 5) == 5)
    }
}
