import NVMeSpec
import Testing

@Suite("SGL descriptor wire format (NVMe 1.4 Figure 112)")
struct SGLDescriptorTests {
    @Test func fieldOffsets() {
        let d = SGLDescriptor(address: 0x0807_0605_0403_0201, length: 0x0C0B_0A09, type: .lastSegment,
                              subtype: .offset, reserved: 0x0F_0E0D)
        #expect(SGLDescriptor.size == 16)
        #expect(SGLDescriptor.Offset.address == 0)
        #expect(SGLDescriptor.Offset.length == 8)
        #expect(SGLDescriptor.Offset.reserved == 12)
        #expect(SGLDescriptor.Offset.identifier == 15)
        #expect(d.bytes == [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                            0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x31])
    }

    @Test(arguments: [
        (UInt8(0x00), SGLDescriptorType.dataBlock, SGLDescriptorSubtype.address),
        (UInt8(0x01), .dataBlock, .offset),
        (UInt8(0x10), .bitBucket, .address),
        (UInt8(0x20), .segment, .address),
        (UInt8(0x30), .lastSegment, .address),
        (UInt8(0x40), .keyedDataBlock, .address),
        (UInt8(0x5A), .transportDataBlock, SGLDescriptorSubtype(rawValue: 0xA)),
        (UInt8(0xF0), .vendorSpecific, .address),
        (UInt8(0x7F), SGLDescriptorType(rawValue: 7), SGLDescriptorSubtype(rawValue: 0xF)),
    ])
    func identifierByte(_ id: UInt8, _ type: SGLDescriptorType, _ subtype: SGLDescriptorSubtype) {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[15] = id
        let d = SGLDescriptor(bytes: bytes)!
        #expect(d.type == type)
        #expect(d.subtype == subtype)
        #expect(d.identifier == id)
        #expect(d.bytes == bytes)
    }

    @Test func decodeEncodeRoundTripAndQuadwords() {
        let bytes: [UInt8] = (0 ..< 16).map { UInt8($0 * 17 & 0xFF) }
        let d = SGLDescriptor(bytes: bytes)!
        #expect(d.bytes == bytes)
        let lo = bytes.withUnsafeBytes { $0.le64(0) }, hi = bytes.withUnsafeBytes { $0.le64(8) }
        #expect(d.low == lo && d.high == hi)
        #expect(SGLDescriptor(low: lo, high: hi) == d)
    }

    @Test func shortInputIsNil() {
        for n in 0 ..< 16 { #expect(SGLDescriptor(bytes: [UInt8](repeating: 0, count: n)) == nil) }
    }
}
