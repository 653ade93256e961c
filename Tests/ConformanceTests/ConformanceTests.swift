import BlockIO
@testable import Conformance
import Foundation
import Glibc
import NVMeSpec
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

@Suite struct MetadataDeviceTests {
    static func configuration(_ f: NamespaceFormat?) -> DeviceConfiguration {
        var c = DeviceConfiguration()
        c.namespaceFormat = f
        return c
    }

    @Test func qemuGetsAnNVMeNamespaceDeviceOnlyForAFormat() {
        let plain = QEMUDevice.arguments(socket: "s", image: "i", configuration: Self.configuration(nil), clock: .qtestAccelerator)
        #expect(plain.contains { $0.hasPrefix("nvme,serial=NVMEFS0001,drive=d0,") })
        #expect(!plain.contains { $0.hasPrefix("nvme-ns") })
        let f = NamespaceFormat(lbads: 12, ms: 16, extended: true, pi: .type2, piFirst: true)
        let md = QEMUDevice.arguments(socket: "s", image: "i", configuration: Self.configuration(f), clock: .qtestAccelerator)
        #expect(md.contains { $0.hasPrefix("nvme,serial=NVMEFS0001,id=nvme0,") })
        #expect(md.suffix(2) == ["-device", "nvme-ns,drive=d0,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096"
                                 + ",ms=16,mset=1,pi=2,pil=1"])
    }

    @Test func qemuGetsTwoNamespaceDevicesForASecondNamespace() {
        for readOnly in [false, true] {
            var c = DeviceConfiguration()
            c.secondNamespace = .init(readOnly: readOnly)
            let args = QEMUDevice.arguments(socket: "s", image: "i", configuration: c, clock: .qtestAccelerator)
            #expect(args.contains { $0.hasPrefix("nvme,serial=NVMEFS0001,id=nvme0,") })
            #expect(args.contains { $0.hasPrefix("nvme-ns,drive=d0,bus=nvme0,nsid=1,logical_block_size=512,") })
            #expect(args.contains { $0.hasPrefix("nvme-ns,drive=d1,bus=nvme0,nsid=2,logical_block_size=512,") })
            let drive = "file=i.ns2,if=none,id=d1,format=raw,cache=writeback,discard=unmap" + (readOnly ? ",readonly=on" : "")
            #expect(args.contains(drive))
        }
    }

    @Test func qemuImageHoldsTheDataThenDeallocatedMetadata() throws {
        let path = NSTemporaryDirectory() + "/conformance-md-\(getpid()).img"
        defer { unlink(path) }
        let data = [UInt8](repeating: 0x5A, count: 4 * 512)
        try Data(data).write(to: URL(fileURLWithPath: path))
        try Runner.appendMetadata(image: path, format: NamespaceFormat(lbads: 9, ms: 16, pi: .type1))
        let image = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(image.count == 4 * (512 + 16))
        #expect(Array(image.prefix(4 * 512)) == data)
        // Each block: 8 zero bytes, then the PI (last eight bytes) all FFh.
        let block = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0xFF, count: 8)
        #expect(Array(image.suffix(4 * 16)) == block + block + block + block)
    }

    @Test func metadataFormatsAreValidAndNamedOnce() {
        let formats = DirectedTable.metadataFormats
        #expect(Set(formats.map(\.tag)).count == formats.count)
        for (_, f) in formats { #expect(f.invalidReason == nil && f.hasMetadata) }
        let names = DirectedTable.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.filter { $0.hasPrefix("md-") }.count == 7 * formats.count)
    }
}

@Suite struct MetadataHostTests {
    /// A device no test touches: the host's block builders do not use it.
    final class NoDevice: ConformanceDevice {
        let name = "none"
        struct Unused: Error {}
        func read32(_ offset: Int) throws -> UInt32 { throw Unused() }
        func read64(_ offset: Int) throws -> UInt64 { throw Unused() }
        func write32(_ offset: Int, _ value: UInt32) throws { throw Unused() }
        func write64(_ offset: Int, _ value: UInt64) throws { throw Unused() }
        func memWrite(_ address: UInt64, _ bytes: [UInt8]) throws { throw Unused() }
        func memRead(_ address: UInt64, _ count: Int) throws -> [UInt8] { throw Unused() }
        func advance() throws {}
        var cmbBase: UInt64? { nil }
        func close() {}
    }

    func host(_ f: NamespaceFormat) -> MetadataHost { MetadataHost(s: Session(device: NoDevice()), f: f) }

    @Test func hostPIFollowsTheFormat() {
        // PI last of 16 bytes: the guard covers the data and the 8 metadata bytes before the tuple.
        let last = host(NamespaceFormat(lbads: 9, ms: 16, pi: .type1))
        let b = last.blocks(slba: 0x1_0000_0005, count: 2, seed: 3, app: 0xABCD)
        let md = b.metadata[1]
        let crc = (b.data[1] + md[0..<8]).withUnsafeBytes { CRC16T10DIF.checksum($0) }
        #expect(md[8..<16] == [UInt8(crc >> 8), UInt8(crc & 0xFF), 0xAB, 0xCD, 0, 0, 0, 6])
        // PI first: the guard covers the data only; type 3 keeps ILBRT on every block.
        let first = host(NamespaceFormat(lbads: 9, ms: 16, pi: .type3, piFirst: true))
        let c = first.blocks(slba: 40, count: 2, seed: 3, app: 1, ilbrt: 7)
        let crc1 = c.data[1].withUnsafeBytes { CRC16T10DIF.checksum($0) }
        #expect(c.metadata[1][0..<8] == [UInt8(crc1 >> 8), UInt8(crc1 & 0xFF), 0, 1, 0, 0, 0, 7])
    }

    @Test func transferLengthsFollowPRACT() {
        typealias P = MetadataHost.Protection
        let ext8 = host(NamespaceFormat(lbads: 12, ms: 8, extended: true, pi: .type1))
        #expect(ext8.dataLength(2, P()) == 2 * 4104)
        #expect(ext8.dataLength(2, P(prinfo: P.pract)) == 2 * 4096)
        let sep16 = host(NamespaceFormat(lbads: 9, ms: 16, pi: .type1))
        #expect(sep16.metadataLength(4, P(prinfo: P.pract)) == 64)
        #expect(sep16.dataLength(4, P(prinfo: P.pract)) == 2048)
        let noPI = host(NamespaceFormat(lbads: 9, ms: 8))
        #expect(noPI.metadataLength(4, P(prinfo: P.pract)) == 32)
        let type3 = host(NamespaceFormat(lbads: 12, ms: 8, extended: true, pi: .type3))
        #expect(type3.prchk(P.allChecks, slba: 9).prinfo == P.guardCheck | P.appCheck)
        #expect(type3.prchk(P.allChecks, slba: 9, keepReferenceCheck: true).prinfo == P.allChecks)
    }
}

@Suite struct FormatScenarioTests {
    @Test func formatCommandPacksCDW10() {
        let e = DirectedTable.formatNVM(nsid: 0xFFFF_FFFF, lbaf: 5, mset: true, pi: 2, pil: true, ses: 1)
        #expect(e.opcode == 0x80 && e.nsid == 0xFFFF_FFFF)
        #expect(e.cdw10 == 5 | 0x10 | 2 << 5 | 0x100 | 1 << 9)
    }

    @Test func oneScenarioPerLBAFormatAndPIOnlyWithMetadata() {
        let names = DirectedTable.format.map(\.name)
        #expect(names.filter { $0.hasPrefix("format-lbaf") } == ["format-lbaf0-512", "format-lbaf1-512+8", "format-lbaf2-512+16",
                                                                  "format-lbaf3-512+64", "format-lbaf4-4096", "format-lbaf5-4096+8",
                                                                  "format-lbaf6-4096+16", "format-lbaf7-4096+64"])
        #expect(DirectedTable.formatVariants(ms: 0).allSatisfy { $0.pi == 0 })
        for ms: UInt16 in [8, 16, 64] {
            let variants = DirectedTable.formatVariants(ms: ms)
            #expect(Set(variants.map(\.tag)).count == variants.count)
            #expect(Set(variants.map(\.pi)) == [0, 1, 2, 3])
        }
    }

    /// The in-process device has a metadata store (as a mount): Format NVM
    /// gives the plain namespace metadata and PI, and Identify shows it.
    @Test func nvmefsDeviceTakesAFormatWithMetadata() throws {
        let image = NSTemporaryDirectory() + "/conformance-format-\(getpid()).img"
        defer { unlink(image); unlink(image + ".nvmefs-md") }
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: image))
        let device = try NVMefsDevice(imagePath: image, configuration: DeviceConfiguration())
        defer { device.close() }
        let s = Session(device: device)
        try s.bringUp()
        let e = try s.command("format", DirectedTable.formatNVM(lbaf: 5, mset: true, pi: 1))
        #expect(e?.status.isSuccess == true)
        try DirectedTable.observeFormat(s, "ns1")
        let seen = Dictionary(s.observations.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(seen["ns1.flbas"] == "0x15")
        #expect(seen["ns1.dps"] == "0x01")
        #expect(seen["ns1.nsze"] == "0x0000000000000100")
    }
}
