import Testing
import NVMeSpec

/// The controller list (NVMe 1.4 §4.10) and the host-specified fields of a
/// Namespace Management create (§5.20, Identify Namespace layout).
@Suite struct ControllerListTests {
    @Test func countThenConsecutiveWords() {
        let list = ControllerList([0, 0x0102, 0xFFFF])
        let b = list.bytes
        #expect(b.count == 4096)
        #expect(Array(b[0 ..< 8]) == [3, 0, 0, 0, 0x02, 0x01, 0xFF, 0xFF])
        #expect(b[8...].allSatisfy { $0 == 0 })
        #expect(ControllerList(bytes: b) == list)
    }

    @Test func everyEntryOffset() {
        let ids = (0 ..< 2047).map { UInt16($0 * 3 + 1) }
        let b = ControllerList(ids).bytes
        #expect(Array(b[0 ..< 2]) == [0xFF, 0x07])
        for i in 0 ..< 2047 { #expect(Array(b[2 + 2 * i ..< 4 + 2 * i]) == le(UInt128(ids[i]), 2)) }
        #expect(ControllerList(bytes: b)?.ids == ids)
    }

    @Test func countAboveTheCapacityReadsTheCapacity() {
        var raw = [UInt8](repeating: 0, count: 4096)
        raw[0] = 0xFF; raw[1] = 0xFF
        let list = ControllerList(bytes: raw)
        #expect(list?.count == 0xFFFF && list?.ids.count == 2047)
        #expect(ControllerList((0 ..< 3000).map { UInt16($0) }).ids.count == 2047)
    }

    @Test func shortInput() {
        #expect(ControllerList(bytes: [UInt8](repeating: 0, count: 4095)) == nil)
        #expect([UInt8](repeating: 0, count: 30).withUnsafeBytes { NamespaceManagementCreate(bytes: $0) } == nil)
    }

    @Test func createFieldOffsets() {
        let c = NamespaceManagementCreate(nsze: 0x0102_0304_0506_0708, ncap: 0x1112_1314_1516_1718, flbas: 0x14,
                                          dps: 0x09, nmic: 0x01)
        let b = c.bytes
        #expect(b.count == 4096)
        #expect(Array(b[0 ..< 8]) == le(0x0102_0304_0506_0708, 8))
        #expect(Array(b[8 ..< 16]) == le(0x1112_1314_1516_1718, 8))
        #expect(b[26] == 0x14 && b[29] == 0x09 && b[30] == 0x01)
        var others = b
        for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 26, 29, 30] { others[i] = 0 }
        #expect(others.allSatisfy { $0 == 0 })
        #expect(b.withUnsafeBytes { NamespaceManagementCreate(bytes: $0) } == c)
        // It reads the Identify Namespace fields at their offsets.
        var id = IdentifyNamespace()
        id.nsze = 5; id.ncap = 4; id.flbas = 0x11; id.dps = 3; id.nmic = 1
        #expect(id.bytes.withUnsafeBytes { NamespaceManagementCreate(bytes: $0) }
                == NamespaceManagementCreate(nsze: 5, ncap: 4, flbas: 0x11, dps: 3, nmic: 1))
    }
}
