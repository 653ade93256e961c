import Testing
import NVMeSpec

@Suite struct NamespaceIdentificationDescriptorTests {
    typealias D = NamespaceIdentificationDescriptor
    typealias L = NamespaceIdentificationDescriptorList

    @Test func typeValuesAndLengths() {
        // NVMe 1.4 Figure 251 (CSI from TP4056).
        #expect(NamespaceIdentifierType.eui64.rawValue == 1 && NamespaceIdentifierType.eui64.expectedLength == 8)
        #expect(NamespaceIdentifierType.nguid.rawValue == 2 && NamespaceIdentifierType.nguid.expectedLength == 16)
        #expect(NamespaceIdentifierType.uuid.rawValue == 3 && NamespaceIdentifierType.uuid.expectedLength == 16)
        #expect(NamespaceIdentifierType.csi.rawValue == 4 && NamespaceIdentifierType.csi.expectedLength == 1)
        #expect(NamespaceIdentifierType(9).expectedLength == nil && NamespaceIdentifierType(9).name == "UNKNOWN")
        #expect(NamespaceIdentifierType.uuid.name == "UUID")
    }

    @Test func descriptorLayout() {
        // Figure 250: NIDT byte 0, NIDL byte 1, 3:2 reserved, NID from byte 4.
        let uuid: [UInt8] = Array(0x10 ..< 0x20)
        let d = D.uuid(uuid)
        #expect(d.bytes == [0x03, 0x10, 0x00, 0x00] + uuid)
        #expect(d.size == 20 && d.nidl == 16 && d.hasValidLength)
        #expect(D(bytes: d.bytes) == d)
        #expect(D.eui64([1, 2, 3, 4, 5, 6, 7, 8]).bytes == [1, 8, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(D.csi(2).bytes == [4, 1, 0, 0, 2])
        #expect(!D(nidt: .eui64, nid: [1, 2]).hasValidLength)
    }

    @Test func descriptorShortInput() {
        let enc = D.nguid(Array(1 ... 16)).bytes
        for n in 0 ..< enc.count { #expect(D(bytes: Array(enc.prefix(n))) == nil, "prefix \(n)") }
        #expect(D(bytes: [0x01, 0x00, 0x00, 0x00]) == nil) // NIDL 0 terminates
    }

    @Test func listEncodesBackToBackAndTerminates() {
        let eui: [UInt8] = [0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x1, 0x2]
        let nguid: [UInt8] = Array(0x30 ..< 0x40)
        let list = L([.eui64(eui), .nguid(nguid), .csi(0)])
        let b = list.bytes
        #expect(b.count == 4096)
        #expect(Array(b[0 ..< 12]) == [1, 8, 0, 0] + eui)
        #expect(Array(b[12 ..< 32]) == [2, 16, 0, 0] + nguid)
        #expect(Array(b[32 ..< 37]) == [4, 1, 0, 0, 0])
        #expect(b[37...].allSatisfy { $0 == 0 })
        #expect(L(bytes: b) == list)
        #expect(L(bytes: [UInt8](repeating: 0, count: 4096))?.descriptors == [])
    }

    @Test func listDropsDescriptorsThatDoNotFit() {
        // 204 UUID descriptors (20 B each) fill 4080 bytes; the 205th would end at 4100.
        let many = (0 ..< 205).map { i in D.uuid(Array(repeating: UInt8(i), count: 16)) }
        let decoded = L(bytes: L(many).bytes)
        #expect(decoded?.descriptors.count == 204)
        #expect(decoded?.descriptors == Array(many.prefix(204)))
    }

    @Test func malformedListIsRejected() {
        var ok = [UInt8](repeating: 0, count: 4096)
        ok[0] = 0x80; ok[1] = 252 // vendor type, 252 bytes: next at 256
        #expect(L(bytes: ok)?.descriptors.count == 1)
        var bad = [UInt8](repeating: 0, count: 4096)
        bad[4090] = 1; bad[4091] = 8
        // A chain of vendor-type descriptors that ends exactly at 4090, then an
        // EUI64 descriptor there whose 8 NID bytes would run past 4096.
        bad[0] = 0x80; bad[1] = 255          // 0 ..< 259
        var at = 259
        while at + 259 <= 4090 { bad[at] = 0x80; bad[at + 1] = 255; at += 259 }
        bad[at] = 0x80; bad[at + 1] = UInt8(4090 - at - 4) // ends exactly at 4090
        #expect(L(bytes: bad) == nil)
        bad[4091] = 2 // fits: 4090 + 4 + 2 = 4096
        #expect(L(bytes: bad)?.descriptors.last == D(nidt: NamespaceIdentifierType(1), nid: [0, 0]))
    }

    @Test func shortPrefixes() {
        checkShortPrefixes(L([.uuid(Array(1 ... 16))]))
    }
}
