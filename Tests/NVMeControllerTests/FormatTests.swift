import BlockIO
import Dispatch
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Format NVM (NVMe 1.4 §5.23, docs/FORMAT.md), driven through registers
/// and host memory.
@Suite("Format NVM")
struct FormatTests {
    /// CDW10 of a Format NVM: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9.
    static func format(nsid: UInt32 = 1, lbaf: UInt32, mset: Bool = false, pi: UInt32 = 0, pil: Bool = false,
                       ses: UInt32 = 0) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: nsid,
                             cdw10: lbaf | (mset ? 0x10 : 0) | pi << 5 | (pil ? 0x100 : 0) | ses << 9)
    }

    /// A temporary image path; its metadata file is `path + MetadataFile.suffix`.
    static func temporaryImage() -> String {
        NSTemporaryDirectory() + "nvmefs-format-\(getpid())-\(UUID().uuidString).img"
    }

    /// A namespace of `blocks` 512-byte blocks on a TestBackend, with a
    /// sidecar metadata store at `image`'s metadata path (unless `store` is false).
    static func namespace(nsid: UInt32 = 1, backend: TestBackend, image: String?, readOnly: Bool = false,
                          store: (any MetadataStore)? = nil) -> Namespace {
        let s = store ?? image.map { SidecarMetadataStore(path: MetadataFile.path(forImage: $0), readOnly: false) }
        return Namespace(nsid: nsid, backend: backend, format: NamespaceFormat(lbads: 9), metadataStore: s, readOnly: readOnly)
    }

    static func host(_ namespaces: [Namespace], _ backends: [TestBackend], chunk: Int? = nil) throws -> TestHost {
        var p = ControllerParameters()
        if let chunk { p.formatChunk = chunk }
        let h = try TestHost(namespaces: namespaces, backends: backends, parameters: p)
        h.bringUp()
        return h
    }

    static func identifyNamespace(_ h: TestHost, _ nsid: UInt32 = 1) throws -> IdentifyNamespace {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid, prp1: TestHost.dataBase, cdw10: 0))
        #expect(e.status == .success)
        return try #require(IdentifyNamespace(bytes: h.peek(TestHost.dataBase, 4096)))
    }

    static func changedNamespaceLog(_ h: TestHost, rae: Bool = false) throws -> [UInt32] {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: 1023 << 16 | (rae ? 0x8000 : 0) | 0x04))
        #expect(e.status == .success)
        return try #require(NamespaceList(bytes: h.peek(TestHost.dataBase, 4096))).nsids
    }

    /// A host whose namespace 1 (1 MiB, 64 KiB format chunks, a metadata
    /// store at `image`'s metadata path if given) is being formatted with
    /// `sqe`, frozen with its first four Write Zeroes AIOs held.
    /// - Returns: the host, the namespace's backend and the format's CID.
    static func frozenFormat(_ sqe: SubmissionQueueEntry = format(lbaf: 4), image: String? = nil) throws
        -> (TestHost, TestBackend, UInt16) {
        let tb = TestBackend(size: 1 << 20)
        let h = try host([namespace(backend: tb, image: image)], [tb], chunk: 64 << 10)
        _ = tb.addRule(.hold(operations: [.writeZeroes]))
        let cid = h.place(sqe, qid: 0)
        h.ring(0)
        #expect(tb.waitForHeld(count: 4))                              // 16 chunks, 4 in flight
        return (h, tb, cid)
    }

    /// The next `count` completions of the admin queue, by CID.
    static func reapAdmin(_ h: TestHost, _ count: Int) -> [UInt16: CompletionQueueEntry] {
        var got: [UInt16: CompletionQueueEntry] = [:]
        for _ in 0..<count { if let e = h.reap(0) { got[e.cid] = e } }
        return got
    }

    static func removeFiles(_ image: String) {
        unlink(image)
        unlink(MetadataFile.path(forImage: image))
    }

    // MARK: statuses

    struct StatusCase: Sendable, CustomTestStringConvertible {
        var name: String
        var sqe: SubmissionQueueEntry
        var expected: NVMeStatus
        var testDescription: String { name }
    }

    /// Namespace 1 writable without a metadata store, namespace 2 read-only, NN 256.
    static let statusCases: [StatusCase] = [
        StatusCase(name: "LBAF past NLBAF", sqe: format(lbaf: 8), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "LBAF 15", sqe: format(lbaf: 15), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "PI without metadata", sqe: format(lbaf: 0, pi: 1), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "PI type 4", sqe: format(lbaf: 1, pi: 4), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "PI type 7", sqe: format(lbaf: 5, pi: 7), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "metadata without a metadata store", sqe: format(lbaf: 1), expected: NVMeStatus.invalidFormat.withDNR),
        StatusCase(name: "SES 3", sqe: format(lbaf: 0, ses: 3), expected: NVMeStatus.invalidField.withDNR),
        StatusCase(name: "SES 7", sqe: format(lbaf: 4, ses: 7), expected: NVMeStatus.invalidField.withDNR),
        StatusCase(name: "read-only namespace", sqe: format(nsid: 2, lbaf: 0), expected: NVMeStatus.namespaceWriteProtected.withDNR),
        StatusCase(name: "broadcast with a read-only namespace", sqe: format(nsid: 0xFFFF_FFFF, lbaf: 0),
                   expected: NVMeStatus.namespaceWriteProtected.withDNR),
        StatusCase(name: "NSID 0", sqe: format(nsid: 0, lbaf: 0), expected: NVMeStatus.invalidNamespace.withDNR),
        StatusCase(name: "NSID above NN", sqe: format(nsid: 257, lbaf: 0), expected: NVMeStatus.invalidNamespace.withDNR),
        StatusCase(name: "inactive NSID", sqe: format(nsid: 3, lbaf: 0), expected: NVMeStatus.invalidField.withDNR),
        StatusCase(name: "512+0, SES 0", sqe: format(lbaf: 0), expected: .success),
        StatusCase(name: "4096+0, MSET and PIL ignored, SES 1", sqe: format(lbaf: 4, mset: true, pil: true, ses: 1), expected: .success),
        StatusCase(name: "cryptographic erase (SES 2) as a user data erase", sqe: format(lbaf: 0, ses: 2), expected: .success),
    ]

    @Test(arguments: statusCases)
    func statuses(_ c: StatusCase) throws {
        let b1 = TestBackend(size: 1 << 20), b2 = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: b1, image: nil),
                               Self.namespace(nsid: 2, backend: b2, image: nil, readOnly: true)], [b1, b2])
        let before = try #require(h.controller.namespaceGeometry(1))
        let e = h.admin(c.sqe)
        #expect(e.status == c.expected)
        if !e.status.isSuccess {
            // A refused format changes nothing and zeroes nothing.
            #expect(h.controller.namespaceGeometry(1) == before)
            #expect(!b1.submitted.contains { $0.operation == .writeZeroes })
        }
    }

    // MARK: formats and their effects

    /// 512+0 → 4096+8 PI type 1 and back: Identify, the metadata file, and
    /// data reading back as zeros with deallocated PI.
    @Test func formatToPIAndBack() throws {
        let image = Self.temporaryImage()
        defer { Self.removeFiles(image) }
        let mdPath = MetadataFile.path(forImage: image)
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: image)], [tb])
        let pattern = TestHost.pattern(4096, seed: 3)
        h.poke(TestHost.dataBase, pattern)
        #expect(h.run(TestHost.write(slba: 0, nlb: 8, prp1: TestHost.dataBase), qid: 1).status == .success)

        #expect(h.admin(Self.format(lbaf: 5, pi: 1)).status == .success)
        let id = try Self.identifyNamespace(h)
        #expect(id.flbas == 0x05 && id.dps == 0x01 && id.nsze == 256 && id.ncap == 256 && id.fpi == 0x80)
        let geometry = try #require(h.controller.namespaceGeometry(1))
        #expect(geometry.format == NamespaceFormat(lbads: 12, ms: 8, pi: .type1) && geometry.formatProgress == nil)
        #expect(try MetadataFile.readFormat(path: mdPath) == NamespaceFormat(lbads: 12, ms: 8, pi: .type1))
        #expect(try FileManager.default.attributesOfItem(atPath: mdPath)[.size] as? Int == 4096 + 256 * 8)
        // The whole image was zeroed; LBA 0 reads as zeros with a deallocated PI tuple.
        #expect(tb.contents.allSatisfy { $0 == 0 })
        h.poke(TestHost.dataBase, [UInt8](repeating: 0xA5, count: 4096))
        h.poke(TestHost.dataBase + 0x10000, [UInt8](repeating: 0xA5, count: 8))
        var read = TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase)
        read.mptr = TestHost.dataBase + 0x10000
        #expect(h.run(read, qid: 1).status == .success)
        #expect(h.peek(TestHost.dataBase, 4096).allSatisfy { $0 == 0 })
        #expect(h.peek(TestHost.dataBase + 0x10000, 8) == [UInt8](repeating: 0xFF, count: 8))

        #expect(h.admin(Self.format(lbaf: 0)).status == .success)
        let back = try Self.identifyNamespace(h)
        #expect(back.flbas == 0 && back.dps == 0 && back.nsze == 2048)
        #expect(try MetadataFile.readFormat(path: mdPath) == NamespaceFormat(lbads: 9))
        #expect(try FileManager.default.attributesOfItem(atPath: mdPath)[.size] as? Int == 4096)
        #expect(h.controller.namespaceGeometry(1)?.capacity == 1 << 20)
    }

    /// Extended LBAs with PI in the first bytes: FLBAS bit 4 and DPS bit 3.
    @Test func formatExtendedPIFirst() throws {
        let image = Self.temporaryImage()
        defer { Self.removeFiles(image) }
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: image)], [tb])
        #expect(h.admin(Self.format(lbaf: 3, mset: true, pi: 3, pil: true)).status == .success)
        let id = try Self.identifyNamespace(h)
        #expect(id.flbas == 0x13 && id.dps == 0x0B && id.nsze == 2048)
        let expected = NamespaceFormat(lbads: 9, ms: 64, extended: true, pi: .type3, piFirst: true)
        #expect(try MetadataFile.readFormat(path: MetadataFile.path(forImage: image)) == expected)
    }

    /// Progress while the zeroing is frozen: Identify FPI, the geometry,
    /// Format In Progress for I/O and a second format; the rest of the
    /// controller keeps working.
    @Test func ioDuringAFormatGetsFormatInProgress() throws {
        let (h, tb, cid) = try Self.frozenFormat()
        #expect(h.controller.namespaceGeometry(1)?.formatProgress == 0)
        #expect(try Self.identifyNamespace(h).fpi == 0x80 | 100)
        for op in [NVMOpcode.read, .write, .flush, .writeZeroes, .compare, .datasetManagement] {
            var e = TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase)
            e.opcode = op.rawValue
            #expect(h.run(e, qid: 1).status == .formatInProgress, "\(op)")
        }
        #expect(h.admin(Self.format(lbaf: 0)).status == .formatInProgress)
        #expect(h.admin(Self.format(nsid: 0xFFFF_FFFF, lbaf: 0)).status == .formatInProgress)
        // Flush of every namespace leaves the one being formatted alone.
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 0xFFFF_FFFF), qid: 1).status == .success)

        #expect(tb.releaseAll() == 4)
        #expect(tb.heldCount == 4)
        #expect(h.controller.namespaceGeometry(1)?.formatProgress == 25)
        #expect(try Self.identifyNamespace(h).fpi == 0x80 | 75)
        #expect(tb.releaseAll() == 4 && tb.releaseAll() == 4)
        #expect(try Self.identifyNamespace(h).fpi == 0x80 | 25)
        #expect(tb.releaseAll() == 4)
        let done = try #require(h.reap(0))
        #expect(done.cid == cid && done.status == .success)
        #expect(h.controller.namespaceGeometry(1)?.formatProgress == nil)
        #expect(try Self.identifyNamespace(h).fpi == 0x80)
        // The zeroes were flushed before the format was installed.
        let ops = tb.submitted.map(\.operation)
        #expect(ops.lastIndex(of: .flush)! > ops.lastIndex(of: .writeZeroes)!)
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
    }

    /// Commands fetched before the format finish first; the format touches
    /// nothing until they have.
    @Test func formatWaitsForIOInFlight() throws {
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: nil)], [tb])
        _ = tb.addRule(.hold(operations: [.read], times: 1))
        let readCID = h.place(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        h.ring(1)
        #expect(tb.waitForHeld(count: 1))
        let formatCID = h.place(Self.format(lbaf: 4), qid: 0)
        h.ring(0)
        #expect(h.run(TestHost.read(slba: 1, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .formatInProgress)
        #expect(h.reap(0, timeout: 0.2) == nil)
        #expect(!tb.submitted.contains { $0.operation == .writeZeroes })
        #expect(tb.releaseAll() == 1)
        let read = try #require(h.reap(1))
        #expect(read.cid == readCID && read.status == .success)
        let format = try #require(h.reap(0))
        #expect(format.cid == formatCID && format.status == .success)
        #expect(h.controller.namespaceGeometry(1)?.lbads == 12)
    }

    /// NSID FFFFFFFFh formats every namespace; both appear in the Changed
    /// Namespace List.
    @Test func broadcastFormatsEveryNamespace() throws {
        let images = [Self.temporaryImage(), Self.temporaryImage()]
        defer { images.forEach(Self.removeFiles) }
        let backends = [TestBackend(size: 1 << 20), TestBackend(size: 2 << 20)]
        for b in backends { b.write([UInt8](repeating: 7, count: 4096), at: 0) }
        let h = try Self.host([Self.namespace(nsid: 1, backend: backends[0], image: images[0]),
                               Self.namespace(nsid: 2, backend: backends[1], image: images[1])], backends)
        #expect(h.admin(Self.format(nsid: 0xFFFF_FFFF, lbaf: 6)).status == .success)
        #expect(try Self.identifyNamespace(h, 1).nsze == 256)
        #expect(try Self.identifyNamespace(h, 2).nsze == 512)
        for (i, b) in backends.enumerated() {
            #expect(b.contents.allSatisfy { $0 == 0 })
            #expect(try MetadataFile.readFormat(path: MetadataFile.path(forImage: images[i])) == NamespaceFormat(lbads: 12, ms: 16))
        }
        #expect(try Self.changedNamespaceLog(h) == [1, 2])
    }

    /// The Changed Namespace List and the Namespace Attribute Changed
    /// notice (AEC bit 8); the list starts over when read with RAE = 0.
    @Test func changedNamespaceLogAndEvent() throws {
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: nil)], [tb])
        // Notices disabled (the default): the list fills, no event.
        let aer = h.place(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue), qid: 0)
        h.ring(0)
        #expect(h.admin(Self.format(lbaf: 4)).status == .success)
        #expect(h.reap(0, timeout: 0.2) == nil)
        #expect(try Self.changedNamespaceLog(h, rae: true) == [1])
        #expect(try Self.changedNamespaceLog(h) == [1])
        #expect(try Self.changedNamespaceLog(h) == [])
        // Notices enabled: one event per change.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x0B, cdw11: 0x100)).status == .success)
        let cid = h.place(Self.format(lbaf: 0), qid: 0)
        h.ring(0)
        let got = Self.reapAdmin(h, 2)
        #expect(got[cid]?.status == .success)
        let event = try #require(got[aer])
        #expect(event.dw0 & 7 == 2)                          // notice
        #expect((event.dw0 >> 8) & 0xFF == 0x00)             // namespace attribute changed
        #expect((event.dw0 >> 16) & 0xFF == 0x04)            // changed namespace list
        #expect(try Self.changedNamespaceLog(h) == [1])
    }

    // MARK: failures, abort and reset

    /// A failed zeroing AIO fails the command (Write Fault); the namespace
    /// keeps its format.
    @Test func zeroingFailureKeepsTheOldFormat() throws {
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: nil)], [tb])
        _ = tb.addRule(.fail(EIO, operations: [.writeZeroes], times: 1))
        #expect(h.admin(Self.format(lbaf: 4)).status == .writeFault)
        let g = try #require(h.controller.namespaceGeometry(1))
        #expect(g.lbads == 9 && g.formatProgress == nil)
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
        #expect(try Self.changedNamespaceLog(h) == [])
    }

    /// Abort of a format that is zeroing: Command Abort Requested, old format.
    @Test func abortDuringZeroing() throws {
        let (h, _, cid) = try Self.frozenFormat()
        let abortCID = h.place(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(cid) << 16), qid: 0)
        h.ring(0)
        let got = Self.reapAdmin(h, 2)
        #expect(got[abortCID]?.status == .success && got[abortCID]?.dw0 == 0)
        #expect(got[cid]?.status == .abortRequested)
        let g = try #require(h.controller.namespaceGeometry(1))
        #expect(g.format == NamespaceFormat(lbads: 9) && g.nsze == 2048 && g.formatProgress == nil)
    }

    /// A reset while the format zeroes: the zeroing is cancelled and
    /// drained, the format abandoned (old format intact), and the
    /// controller comes back with the namespace usable.
    @Test func resetDuringZeroingAbandonsTheFormat() throws {
        let image = Self.temporaryImage()
        defer { Self.removeFiles(image) }
        let (h, tb, _) = try Self.frozenFormat(Self.format(lbaf: 5, pi: 1), image: image)
        h.write32(RegisterOffset.cc, 0)
        #expect(h.wait { !h.csts.rdy })
        #expect(tb.cancelled.count == 4)
        let g = try #require(h.controller.namespaceGeometry(1))
        #expect(g.format == NamespaceFormat(lbads: 9) && g.nsze == 2048 && g.formatProgress == nil)
        #expect(!FileManager.default.fileExists(atPath: MetadataFile.path(forImage: image)))
        tb.clearRules()
        h.bringUp()
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
        #expect(try Self.changedNamespaceLog(h) == [])
        #expect(h.admin(Self.format(lbaf: 5, pi: 1)).status == .success)
    }

    /// A metadata store whose `replace` waits for the test.
    final class GatedStore: MetadataStore {
        let inner: SidecarMetadataStore
        let entered = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        init(path: String) { inner = SidecarMetadataStore(path: path, readOnly: false) }
        var base: UInt64 { inner.base }
        func replace(format: NamespaceFormat, nsze: UInt64) throws -> (any BlockBackend)? {
            entered.signal()
            proceed.wait()
            return try inner.replace(format: format, nsze: nsze)
        }
    }

    /// A reset while the metadata is being re-created: that step cannot be
    /// undone, so the reset waits for it (CSTS.RDY stays 1) and the new
    /// format is installed; the command gets no completion.
    @Test func resetDuringMetadataStepWaitsAndInstalls() throws {
        let image = Self.temporaryImage()
        defer { Self.removeFiles(image) }
        let store = GatedStore(path: MetadataFile.path(forImage: image))
        let tb = TestBackend(size: 1 << 20)
        let h = try Self.host([Self.namespace(backend: tb, image: nil, store: store)], [tb])
        h.place(Self.format(lbaf: 5, pi: 1), qid: 0)
        h.ring(0)
        #expect(store.entered.wait(timeout: .now() + 10) == .success)
        #expect(h.controller.namespaceGeometry(1)?.formatProgress == 99)
        h.write32(RegisterOffset.cc, 0)
        usleep(100_000)
        #expect(h.csts.rdy)                                   // the reset waits for the metadata step
        store.proceed.signal()
        #expect(h.wait { !h.csts.rdy })
        #expect(h.reap(0, timeout: 0.2) == nil)               // its queue is gone: no completion
        let g = try #require(h.controller.namespaceGeometry(1))
        #expect(g.format == NamespaceFormat(lbads: 12, ms: 8, pi: .type1) && g.nsze == 256 && g.formatProgress == nil)
        #expect(try MetadataFile.readFormat(path: MetadataFile.path(forImage: image)) == g.format)
        h.bringUp()
        #expect(try Self.changedNamespaceLog(h) == [1])
        var read = TestHost.read(slba: 0, nlb: 1, prp1: TestHost.dataBase)
        read.mptr = TestHost.dataBase + 0x10000
        #expect(h.run(read, qid: 1).status == .success)
    }

    /// A shutdown (CC.SHN) during a format completes; the format goes on.
    @Test func shutdownDuringAFormat() throws {
        let (h, tb, cid) = try Self.frozenFormat()
        h.write32(RegisterOffset.cc, 0x460001 | 1 << 14)     // SHN = 01b
        #expect(h.wait { h.csts.shst == 2 })
        tb.clearRules()
        while tb.releaseAll() > 0 {}
        let done = try #require(h.reap(0))
        #expect(done.cid == cid && done.status == .success)
        #expect(h.controller.namespaceGeometry(1)?.lbads == 12)
    }
}
