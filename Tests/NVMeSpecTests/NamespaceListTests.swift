import Testing
import NVMeSpec

@Suite struct NamespaceListTests {
    @Test func entriesAreConsecutiveDwords() {
        let list = NamespaceList([1, 0x0203_0405, 0xFFFF_FFFE])
        let b = list.bytes
        #expect(b.count == 4096)
        #expect(Array(b[0 ..< 12]) == [1, 0, 0, 0, 0x05, 0x04, 0x03, 0x02, 0xFE, 0xFF, 0xFF, 0xFF])
        #expect(b[12...].allSatisfy { $0 == 0 })
        #expect(NamespaceList(bytes: b) == list)
    }

    @Test func everyEntryOffset() {
        let ids = (1 ... 1024).map { UInt32($0) * 0x0101 }
        let b = NamespaceList(ids).bytes
        for i in 0 ..< 1024 {
            #expect(Array(b[4 * i ..< 4 * i + 4]) == le(UInt128(ids[i]), 4))
        }
        #expect(NamespaceList(bytes: b)?.nsids == ids)
    }

    @Test func decodingStopsAtTheFirstZero() {
        var raw = [UInt8](repeating: 0, count: 4096)
        raw[0] = 3; raw[4] = 0; raw[8] = 9
        #expect(NamespaceList(bytes: raw)?.nsids == [3])
        #expect(NamespaceList(bytes: [UInt8](repeating: 0, count: 4096))?.nsids == [])
    }

    @Test func extraEntriesAreDropped() {
        let ids = (1 ... 1100).map { UInt32($0) }
        #expect(NamespaceList(bytes: NamespaceList(ids).bytes)?.nsids == Array(ids.prefix(1024)))
    }

    @Test func activeListIsAscendingAboveNSID() {
        // Identify CNS 02h: NSIDs greater than CDW1.NSID, increasing order.
        let list = NamespaceList(ascending: [5, 1, 3, 2], after: 1)
        #expect(list.nsids == [2, 3, 5])
        #expect(NamespaceList(ascending: [1, 2], after: 0xFFFF_FFFE).nsids == [])
        #expect(NamespaceList(ascending: (1 ... 2000).map { UInt32($0) }, after: 0).nsids.count == 1024)
    }

    @Test func changedNamespaceListOverflow() {
        #expect(NamespaceList.changedNamespaces([4, 7]).nsids == [4, 7])
        let over = NamespaceList.changedNamespaces((1 ... 1025).map { UInt32($0) })
        #expect(over.isOverflow)
        #expect(Array(over.bytes[0 ..< 8]) == [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(!NamespaceList.changedNamespaces((1 ... 1024).map { UInt32($0) }).isOverflow)
    }

    @Test func shortPrefixes() {
        checkShortPrefixes(NamespaceList([1, 2, 3]))
    }
}
