import Conformance
import Testing

@Suite struct QTestProtocolTests {
    @Test func encodesCommands() {
        #expect(QTestProtocol.writel(0xC000_0014, 0x46_0001) == "writel 0xc0000014 0x460001")
        #expect(QTestProtocol.readq(0xC000_0000) == "readq 0xc0000000")
        #expect(QTestProtocol.write(0x1000, [0x00, 0xAB, 0x7F]) == "write 0x1000 0x3 0x00ab7f")
        #expect(QTestProtocol.read(0x2000, count: 16) == "read 0x2000 0x10")
        #expect(QTestProtocol.outl(0xCF8, QTestProtocol.configAddress(device: 4, register: 0x10)) == "outl 0xcf8 0x80002010")
    }

    @Test func parsesReplies() throws {
        #expect(QTestProtocol.parse("OK") == .ok(nil))
        #expect(QTestProtocol.parse("OK 0x00000000deadbeef") == .ok("0x00000000deadbeef"))
        #expect(QTestProtocol.parse("FAIL Unknown command 'x'") == .fail("Unknown command 'x'"))
        #expect(QTestProtocol.parse("IRQ raise 3") == .notice("IRQ raise 3"))
        #expect(try QTestProtocol.value(.ok("0x00000000deadbeef")) == 0xDEAD_BEEF)
        #expect(try QTestProtocol.bytes(.ok("0x00ff10Ab"), count: 4) == [0x00, 0xFF, 0x10, 0xAB])
        #expect(throws: QTestProtocol.ProtocolError.self) { try QTestProtocol.bytes(.ok("0x00ff"), count: 4) }
        #expect(throws: QTestProtocol.ProtocolError.self) { try QTestProtocol.value(.fail("x")) }
    }

    @Test func splitsLines() {
        var b = LineBuffer()
        b.append(Array("OK\nOK 0x1".utf8))
        #expect(b.nextLine() == "OK")
        #expect(b.nextLine() == nil)
        b.append(Array("2\n".utf8))
        #expect(b.nextLine() == "OK 0x12")
    }
}

@Suite struct DeliberateTableTests {
    static let markdown = """
        # title
        | ID | Match | NVMe 1.4 | nvmefs | QEMU 7.2 |
        |----|-------|----------|--------|----------|
        | D-vid | `identify-controller/ctrl.vid` | §5.15.2.2 | 1b36? | 1b36 |
        | `D-names` | `identify-*/ctrl.mn`, `identify-*/ctrl.fr` | §5.15.2.2 | nvmefs | QEMU |
        | not-an-id | `x` | | | |
        | D-empty |  | | | |
        """

    @Test func parsesRows() {
        let t = DeliberateTable(markdown: Self.markdown)
        #expect(t.rows == [DeliberateTable.Row(id: "D-vid", patterns: ["identify-controller/ctrl.vid"]),
                           DeliberateTable.Row(id: "D-names", patterns: ["identify-*/ctrl.mn", "identify-*/ctrl.fr"])])
        #expect(t.match("identify-controller/ctrl.fr") == "D-names")
        #expect(t.match("identify-controller/ctrl.sn") == nil)
    }

    @Test func globs() {
        #expect(DeliberateTable.glob("a*c", "abbbc"))
        #expect(DeliberateTable.glob("*", ""))
        #expect(DeliberateTable.glob("a?c", "abc"))
        #expect(!DeliberateTable.glob("a?c", "ac"))
        #expect(DeliberateTable.glob("random-*/cmd*-admin-06.status", "random-1-2/cmd03-admin-06.status"))
        #expect(!DeliberateTable.glob("abc", "abcd"))
    }
}

@Suite struct ObservationDiffTests {
    @Test func diffsByKey() {
        let t = DeliberateTable(rows: [.init(id: "D-x", patterns: ["s/x"])])
        let q = [Observation("a", "1"), Observation("x", "q"), Observation("only-qemu", "1")]
        let n = [Observation("x", "n"), Observation("a", "1"), Observation("only-nvmefs", "2")]
        let (compared, d) = ObservationDiff.diff(scenario: "s", qemu: q, nvmefs: n, table: t)
        #expect(compared == 4)
        #expect(d == [Difference(scenario: "s", key: "x", qemu: "q", nvmefs: "n", deliberate: "D-x"),
                      Difference(scenario: "s", key: "only-qemu", qemu: "1", nvmefs: nil),
                      Difference(scenario: "s", key: "only-nvmefs", qemu: nil, nvmefs: "2")])
    }

    @Test func seededGeneratorIsStable() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        #expect((0..<8).map { _ in a.next() } == (0..<8).map { _ in b.next() })
        #expect(RandomSequences.scenarios(count: 2, seed: 7, commands: 3).map(\.name) == ["random-7-0", "random-7-1"])
    }
}
