import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

/// Copy (19h, NVMe 2.0 NVM Command Set §3.2.2), source range format 0: N
/// source ranges become N read AIOs into one bounce buffer, then the write of
/// the destination, in one request that completes once.
@Suite("Copy")
struct CopyTests {
    static let ranges: UInt64 = 0x300000

    /// A host over one namespace of `format` on test backends, traced.
    struct Rig {
        let host: TestHost
        let data: TestBackend
        let metadata: TestBackend
        let trace = EventLog()
        let format: NamespaceFormat

        init(_ format: NamespaceFormat = NamespaceFormat(lbads: 9), blocks: UInt64 = 1024, readOnly: Bool = false,
             parameters: ControllerParameters = ControllerParameters()) throws {
            self.format = format
            data = TestBackend(size: blocks << UInt64(format.lbads))
            metadata = TestBackend(size: max(1, blocks * UInt64(format.ms)))
            let ns = Namespace(nsid: 1, backend: data, format: format, metadata: format.hasMetadata ? metadata : nil,
                               readOnly: readOnly)
            host = try TestHost(namespaces: [ns], backends: [data], parameters: parameters, trace: trace)
            host.bringUp()
        }

        var blockSize: Int { format.lbaSize }

        /// Runs a Copy of `ranges` (SLBA, block count) to `sdlba`.
        func copy(_ ranges: [(UInt64, Int)], to sdlba: UInt64, cdw12: UInt32 = 0, nr: Int? = nil,
                  prp1: UInt64 = CopyTests.ranges) -> CompletionQueueEntry {
            let entries = ranges.map { CopySourceRange(slba: $0.0, nlb: UInt16(truncatingIfNeeded: $0.1 - 1)) }
            host.poke(CopyTests.ranges, CopySourceRange.encodeList(entries))
            var e = SubmissionQueueEntry(opcode: NVMOpcode.copy.rawValue, nsid: 1, prp1: prp1)
            e.cdw10 = UInt32(truncatingIfNeeded: sdlba)
            e.cdw11 = UInt32(truncatingIfNeeded: sdlba >> 32)
            e.cdw12 = UInt32((nr ?? ranges.count) - 1) | cdw12
            return host.run(e, qid: 1)
        }

        func blocks(_ lba: UInt64, _ count: Int) -> [UInt8] {
            data.read(offset: lba * UInt64(blockSize), count: count * blockSize)
        }

        func fill(_ lba: UInt64, _ count: Int, seed: UInt8) -> [UInt8] {
            let p = TestHost.pattern(count * blockSize, seed: seed)
            data.write(p, at: lba * UInt64(blockSize))
            return p
        }

        var writes: [TestBackend.LogEntry] { data.submitted.filter { $0.operation == .write } }
    }

    @Test func identifyAdvertisesCopy() throws {
        let rig = try Rig()
        let h = rig.host
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1)).status == .success)
        let ctrl = try #require(IdentifyController(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(ctrl.oncs & 0x100 != 0 && ctrl.ocfs == 0x1)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: 1, prp1: TestHost.dataBase)).status == .success)
        let ns = try #require(IdentifyNamespace(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(ns.mssrl == 128 && ns.mcl == 128 && ns.msrc == 127)
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: 1023 << 16 | 5))
        #expect(e.status == .success)
        let log = try #require(CommandsSupportedAndEffectsLog(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(log.iocs[0x19].csupp && log.iocs[0x19].lbcc)
    }

    @Test func configuredLimitsAreAdvertisedAndEnforced() throws {
        var p = ControllerParameters()
        p.copyMSSRL = 4
        p.copyMCL = 6
        p.copyMSRC = 1
        let rig = try Rig(parameters: p)
        #expect(rig.host.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: 1, prp1: TestHost.dataBase)).status == .success)
        let ns = try #require(IdentifyNamespace(bytes: rig.host.peek(TestHost.dataBase, 4096)))
        #expect(ns.mssrl == 4 && ns.mcl == 6 && ns.msrc == 1)
        let csl = NVMeStatus.commandSizeLimitExceeded.withDNR
        #expect(rig.copy([(0, 1), (1, 1), (2, 1)], to: 100).status == csl)        // 3 ranges > MSRC + 1
        #expect(rig.copy([(0, 4), (8, 3)], to: 100).status == csl)                // 7 blocks > MCL
        let e = rig.copy([(0, 1), (8, 5)], to: 100)                              // 5 blocks > MSSRL
        #expect(e.status == csl && e.dw0 == 1)
        #expect(rig.copy([(0, 4), (8, 2)], to: 100).status == .success)
        #expect(rig.writes.count == 1)
    }

    @Test func oneRange() throws {
        let rig = try Rig()
        let p = rig.fill(10, 8, seed: 3)
        let e = rig.copy([(10, 8)], to: 100)
        #expect(e.status == .success && e.dw0 == 0)
        #expect(rig.blocks(100, 8) == p)
        #expect(rig.blocks(10, 8) == p)
    }

    @Test func manyRangesLandBackToBack() throws {
        let rig = try Rig()
        let a = rig.fill(5, 2, seed: 1), b = rig.fill(40, 3, seed: 2), c = rig.fill(7, 1, seed: 9)
        #expect(rig.copy([(5, 2), (40, 3), (7, 1)], to: 200).status == .success)
        #expect(rig.blocks(200, 6) == a + b + c)
        // One write for the whole destination, after three reads.
        #expect(rig.writes.count == 1 && rig.writes[0].offset == 200 * 512 && rig.writes[0].length == 6 * 512)
    }

    /// A destination overlapping its source: the source as it was before the
    /// command (QEMU reads a range wholly before writing it too).
    @Test func overlappingSourceAndDestination() throws {
        let rig = try Rig()
        let p = rig.fill(10, 8, seed: 4)
        #expect(rig.copy([(10, 8)], to: 12).status == .success)
        #expect(rig.blocks(12, 8) == p)
        #expect(rig.blocks(10, 2) == Array(p[0..<1024]))
        // Every range is read before anything is written (docs/CONFORMANCE.md D-copy-all-or-nothing).
        let q = rig.fill(300, 2, seed: 5), r = rig.fill(302, 2, seed: 6)
        #expect(rig.copy([(300, 2), (302, 2)], to: 302).status == .success)
        #expect(rig.blocks(302, 4) == q + r)
    }

    @Test func theTraceShowsTheReadsThenTheWrite() throws {
        let rig = try Rig()
        rig.trace.clear()
        #expect(rig.copy([(1, 1), (20, 2), (50, 4)], to: 500).status == .success)
        let lines = rig.trace.lines
        #expect(lines.contains { $0.hasPrefix("pci_nvme_copy ") && $0.contains("nr=3") && $0.contains("format=0") })
        let aios = lines.filter { $0.hasPrefix("pci_nvme_req_add_aio") }
        #expect(aios.count == 4)
        #expect(aios.prefix(3).allSatisfy { $0.contains("op=read") })
        #expect(aios[0].contains("offset=512 len=512") && aios[1].contains("offset=10240 len=1024")
                && aios[2].contains("offset=25600 len=2048"))
        #expect(aios[3].contains("op=write") && aios[3].contains("offset=256000 len=3584"))
        #expect(lines.filter { $0.hasPrefix("pci_nvme_copy_source_range") }.count == 3)
        let out = try #require(lines.firstIndex { $0.hasPrefix("pci_nvme_copy_out") })
        #expect(lines[out] == "pci_nvme_copy_out slba=500 nlb=7")
        #expect(lines.filter { $0.hasPrefix("pci_nvme_enqueue_req_completion") }.count == 1)
    }

    @Test func statuses() throws {
        let rig = try Rig(blocks: 1024)
        let dnr = { (s: NVMeStatus) in s.withDNR }
        // Descriptor formats 1-15: Invalid Field (OCFS bit 0 only).
        for f: UInt32 in [1, 2, 3, 15] {
            #expect(rig.copy([(0, 1)], to: 100, cdw12: f << 8).status == dnr(.invalidField))
        }
        // MSRC 127: 129 ranges are too many.
        #expect(rig.copy([(0, 1)], to: 100, nr: 129).status == dnr(.commandSizeLimitExceeded))
        #expect(rig.copy(Array(repeating: (0, 1), count: 128), to: 100).status == .success)
        // MSSRL 128 per range, MCL 128 per command.
        var e = rig.copy([(0, 1), (0, 129)], to: 100)
        #expect(e.status == dnr(.commandSizeLimitExceeded) && e.dw0 == 0)  // MCL is checked first (no range index)
        e = rig.copy([(0, 100), (200, 29)], to: 300)
        #expect(e.status == dnr(.commandSizeLimitExceeded))
        #expect(rig.copy([(0, 128)], to: 300).status == .success)
        // A source past the end: LBA Out of Range, DW0 the index of the range.
        e = rig.copy([(0, 1), (1020, 8), (2000, 1)], to: 100)
        #expect(e.status == dnr(.lbaOutOfRange) && e.dw0 == 1)
        e = rig.copy([(UInt64.max, 2)], to: 100)
        #expect(e.status == dnr(.lbaOutOfRange) && e.dw0 == 0)
        // A destination past the end: the range whose blocks do not fit.
        e = rig.copy([(0, 2), (4, 2), (8, 2)], to: 1019)
        #expect(e.status == dnr(.lbaOutOfRange) && e.dw0 == 2)
        e = rig.copy([(0, 1)], to: 1024)
        #expect(e.status == dnr(.lbaOutOfRange) && e.dw0 == 0)
        // The range list outside host memory.
        #expect(!rig.copy([(0, 1)], to: 100, prp1: 0x1_0000_0000).status.isSuccess)
        // Nothing above wrote anything it should not have.
        #expect(rig.writes.count == 2)
        // A fused first with no second: Missing Fused Command, as every I/O command.
        var fused = SubmissionQueueEntry(opcode: NVMOpcode.copy.rawValue, nsid: 1, prp1: Self.ranges)
        fused.fuse = 1
        #expect(rig.host.run(fused, qid: 1).status == .missingFused)
        // NSIDs: inactive, invalid, broadcast.
        for (nsid, status) in [(2 as UInt32, dnr(.invalidField)), (0, dnr(.invalidNamespace)), (0xFFFF_FFFF, dnr(.invalidNamespace))] {
            let s = rig.host.run(SubmissionQueueEntry(opcode: NVMOpcode.copy.rawValue, nsid: nsid, prp1: Self.ranges), qid: 1).status
            #expect(s == status)
        }
    }

    @Test func readOnlyNamespaceIsWriteProtected() throws {
        let rig = try Rig(readOnly: true)
        #expect(rig.copy([(0, 1)], to: 100).status == NVMeStatus.namespaceWriteProtected.withDNR)
        #expect(rig.data.submitted.isEmpty)
    }

    @Test func protectionInformationIsRefused() throws {
        let rig = try Rig(NamespaceFormat(lbads: 9, ms: 8, pi: .type1))
        #expect(rig.copy([(0, 1)], to: 100).status == NVMeStatus.invalidField.withDNR)
        #expect(rig.data.submitted.isEmpty && rig.metadata.submitted.isEmpty)
    }

    @Test func aFailedReadWritesNothing() throws {
        let rig = try Rig()
        rig.data.addRule(.fail(EIO, operations: [.read], range: 40 * 512 ..< 41 * 512, times: 1))
        let before = rig.blocks(200, 6)
        _ = rig.fill(5, 2, seed: 1)
        let e = rig.copy([(5, 2), (40, 3), (7, 1)], to: 200)
        #expect(e.status == .unrecoveredReadError)
        #expect(rig.writes.isEmpty)
        #expect(rig.blocks(200, 6) == before)
        #expect(rig.data.submitted.filter { $0.operation == .read }.count == 3)
    }

    @Test func aFailedWriteIsWriteFault() throws {
        let rig = try Rig()
        rig.data.addRule(.fail(EIO, operations: [.write], times: 1))
        #expect(rig.copy([(5, 2), (40, 3)], to: 200).status == .writeFault)
        #expect(rig.copy([(5, 2), (40, 3)], to: 200).status == .success)
    }

    @Test func metadataIsCopied() throws {
        for format in [NamespaceFormat(lbads: 9, ms: 8), NamespaceFormat(lbads: 9, ms: 16, extended: true),
                       NamespaceFormat(lbads: 12, ms: 64)] {
            let rig = try Rig(format)
            let ms = Int(format.ms)
            let a = rig.fill(3, 2, seed: 7), b = rig.fill(30, 1, seed: 8)
            let ma = TestHost.pattern(2 * ms, seed: 11), mb = TestHost.pattern(ms, seed: 12)
            rig.metadata.write(ma, at: 3 * UInt64(ms))
            rig.metadata.write(mb, at: 30 * UInt64(ms))
            rig.trace.clear()
            #expect(rig.copy([(3, 2), (30, 1)], to: 60).status == .success)
            #expect(rig.blocks(60, 3) == a + b)
            #expect(rig.metadata.read(offset: 60 * UInt64(ms), count: 3 * ms) == ma + mb)
            let aios = rig.trace.lines.filter { $0.hasPrefix("pci_nvme_req_add_aio") }
            #expect(aios.filter { $0.contains("op=read") }.count == 4)
            #expect(aios.suffix(2).allSatisfy { $0.contains("op=write") })
            #expect(aios.filter { $0.contains("area=metadata") }.count == 3)
            // A failed metadata read fails the command and writes nothing.
            rig.metadata.addRule(.fail(EIO, operations: [.read], times: 1))
            #expect(rig.copy([(3, 2)], to: 90).status == .unrecoveredReadError)
            #expect(rig.metadata.submitted.filter { $0.operation == .write }.count == 1)
        }
    }

    @Test func writeThroughFlushesAfterTheWrite() throws {
        let rig = try Rig()
        // Set Features Volatile Write Cache (06h): WCE = 0.
        #expect(rig.host.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x06, cdw11: 0)).status == .success)
        rig.trace.clear()
        #expect(rig.copy([(0, 1)], to: 8).status == .success)
        let ops = rig.data.submitted.map(\.operation)
        #expect(Array(ops.suffix(3)) == [.read, .write, .flush])
    }
}
