import BlockIO
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Write Uncorrectable (NVMe 1.4 §6.16): marks, the Reads they fail, the
/// writes that clear them, and the sidecar file that keeps them.
@Suite("Write Uncorrectable")
struct WriteUncorrectableTests {
    static func uncor(nsid: UInt32 = 1, slba: UInt64, nlb: Int) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: NVMOpcode.writeUncorrectable.rawValue, nsid: nsid)
        e.slba = slba; e.nlb = UInt16(nlb - 1)
        return e
    }

    static func read(_ h: TestHost, slba: UInt64, nlb: Int) -> NVMeStatus {
        h.run(TestHost.read(slba: slba, nlb: nlb, prp1: TestHost.dataBase), qid: 1).status
    }

    static func newestError(_ h: TestHost) throws -> ErrorInformationLogEntry {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: 15 << 16 | 0x01))
        #expect(e.status == .success)
        return try #require(ErrorInformationLogEntry(bytes: h.peek(TestHost.dataBase, 64)))
    }

    @Test("LBA set: insert merges touching ranges, remove splits, lookups find the first member")
    func rangeSet() {
        var s = LBARangeSet()
        var changed = false
        #expect(s.isEmpty && s.firstMember(start: 0, end: 100) == nil)
        changed = s.insert(start: 10, end: 13)
        #expect(changed)
        changed = s.insert(start: 20, end: 25)
        #expect(changed)
        changed = s.insert(start: 11, end: 12)
        #expect(!changed)
        changed = s.insert(start: 13, end: 20)  // fills the gap: one range
        #expect(changed)
        #expect(s.ranges.count == 1 && s.count == 15)
        changed = s.remove(start: 14, end: 16)
        #expect(changed)
        #expect(s.ranges.map { [$0.start, $0.end] } == [[10, 14], [16, 25]] && s.count == 13)
        #expect(s.firstMember(start: 0, end: 10) == nil)
        #expect(s.firstMember(start: 0, end: 11) == 10)
        #expect(s.firstMember(start: 14, end: 30) == 16)
        #expect(s.firstMember(start: 14, end: 16) == nil)
        #expect(s.firstMember(start: 24, end: 26) == 24)
        #expect(s.firstMember(start: 25, end: 99) == nil)
        changed = s.remove(start: 30, end: 40)
        #expect(!changed)
        changed = s.remove(start: 0, end: .max)
        #expect(changed && s.isEmpty)
        // The file format, converted between block sizes.
        let t = LBARangeSet([(start: 8, end: 11), (start: 100, end: 101)])
        let text = UncorrectableFile.render(t, lbads: 9)
        #expect(text == "nvmefs-uncorrectable 1 lbads 9\n8 3\n100 1\n")
        #expect((try? UncorrectableFile.parse(text, lbads: 9)) == t)
        #expect((try? UncorrectableFile.parse(text, lbads: 12))?.ranges.map { [$0.start, $0.end] } == [[1, 2], [12, 13]])
        #expect(throws: UncorrectableFileError.self) { try UncorrectableFile.parse("nvmefs-uncorrectable 1 lbads 9\n8\n", lbads: 9) }
        #expect(throws: UncorrectableFileError.self) { try UncorrectableFile.parse("something else\n", lbads: 9) }
    }

    @Test("Marked LBAs fail Reads inside and overlapping the range; neighbours read; the error log has the first marked LBA")
    func markAndRead() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(h.run(Self.uncor(slba: 8, nlb: 3), qid: 1).status == .success)
        #expect(h.controller.uncorrectableCount(1) == 3)
        #expect(Self.read(h, slba: 9, nlb: 1) == .unrecoveredReadError)
        #expect(!NVMeStatus.unrecoveredReadError.dnr)
        #expect(Self.read(h, slba: 4, nlb: 8) == .unrecoveredReadError)
        let entry = try Self.newestError(h)
        #expect(entry.status == .unrecoveredReadError && entry.lba == 8 && entry.nsid == 1 && entry.sqid == 1)
        #expect(Self.read(h, slba: 10, nlb: 4) == .unrecoveredReadError)
        #expect(try Self.newestError(h).lba == 10)
        #expect(Self.read(h, slba: 7, nlb: 1) == .success)
        #expect(Self.read(h, slba: 11, nlb: 5) == .success)
        #expect(Self.read(h, slba: 0, nlb: 8) == .success)
        // Compare reads too.
        var cmp = TestHost.read(slba: 8, nlb: 1, prp1: TestHost.dataBase)
        cmp.opcode = NVMOpcode.compare.rawValue
        #expect(h.run(cmp, qid: 1).status == .unrecoveredReadError)
        // No data moves: PRPs are ignored (0 is fine), the medium is untouched.
        #expect(h.testBackend.submitted.allSatisfy { $0.operation != .write })
        #expect(h.controller.uncorrectableCount(2) == nil)
    }

    @Test("Write clears the blocks it writes, Write Zeroes and deallocate theirs")
    func writesClear() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(h.run(Self.uncor(slba: 100, nlb: 20), qid: 1).status == .success)
        h.poke(TestHost.dataBase, TestHost.pattern(2 * 512, seed: 3))
        #expect(h.run(TestHost.write(slba: 105, nlb: 2, prp1: TestHost.dataBase), qid: 1).status == .success)
        #expect(h.controller.uncorrectableCount(1) == 18)
        #expect(Self.read(h, slba: 105, nlb: 2) == .success)
        #expect(h.peek(TestHost.dataBase, 1024) == TestHost.pattern(2 * 512, seed: 3))
        #expect(Self.read(h, slba: 104, nlb: 2) == .unrecoveredReadError)
        #expect(Self.read(h, slba: 107, nlb: 1) == .unrecoveredReadError)
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 98; wz.nlb = 5  // 98...103
        #expect(h.run(wz, qid: 1).status == .success)
        #expect(h.controller.uncorrectableCount(1) == 14)
        #expect(Self.read(h, slba: 98, nlb: 6) == .success)
        #expect(Self.read(h, slba: 104, nlb: 1) == .unrecoveredReadError)
        let buf = TestHost.dataBase + 0x10000
        h.poke(buf, DatasetManagementRange(slba: 110, nlb: 10).bytes)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: buf, cdw10: 0, cdw11: 4),
                      qid: 1).status == .success)
        #expect(h.controller.uncorrectableCount(1) == 4)  // 104, 107, 108, 109
        #expect(Self.read(h, slba: 110, nlb: 10) == .success)
        #expect(Self.read(h, slba: 109, nlb: 1) == .unrecoveredReadError)
        // DSM without AD deallocates nothing and clears nothing.
        h.poke(buf, DatasetManagementRange(slba: 104, nlb: 1).bytes)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: buf, cdw10: 0, cdw11: 1),
                      qid: 1).status == .success)
        #expect(Self.read(h, slba: 104, nlb: 1) == .unrecoveredReadError)
    }

    @Test("Statuses: LBA Out of Range, Namespace Write Protected, Invalid Namespace or Format; ONCS bit 1 and the effects log")
    func statuses() throws {
        let h = try TestHost(backends: [(TestBackend(size: 2048 * 512), 9), (TestBackend(size: 2048 * 512), 9)], readOnly: [2])
        h.bringUp()
        #expect(h.run(Self.uncor(slba: 2047, nlb: 1), qid: 1).status == .success)
        #expect(h.run(Self.uncor(slba: 2047, nlb: 2), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(try Self.newestError(h).lba == 2047)
        #expect(h.run(Self.uncor(slba: 2048, nlb: 1), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(h.run(Self.uncor(slba: .max, nlb: 2), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(h.run(Self.uncor(slba: 0, nlb: 65536), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(h.run(Self.uncor(slba: 0, nlb: 2048), qid: 1).status == .success)
        #expect(h.controller.uncorrectableCount(1) == 2048)
        #expect(h.run(Self.uncor(nsid: 2, slba: 0, nlb: 1), qid: 1).status == NVMeStatus.namespaceWriteProtected.withDNR)
        #expect(h.run(Self.uncor(nsid: 0, slba: 0, nlb: 1), qid: 1).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(h.run(Self.uncor(nsid: 0xFFFF_FFFF, slba: 0, nlb: 1), qid: 1).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(h.controller.uncorrectableCount(2) == 0)
        let id = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1))
        #expect(id.status == .success)
        let ctrl = try #require(IdentifyController(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(ctrl.oncs & 0x02 != 0)
        let log = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: TestHost.dataBase,
                                               cdw10: 1023 << 16 | 0x05))
        #expect(log.status == .success)
        let effects = try #require(CommandsSupportedAndEffectsLog(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(effects.iocs[4] == CommandEffects(csupp: true, lbcc: true))
    }

    @Test("The marks survive a remount in the sidecar file; Format NVM clears them")
    func persistence() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nvmefs-uc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/ns.img"
        let sidecar = UncorrectableFile.path(forImage: image)
        try ImageBackend.create(path: image, size: 1 << 20)
        func mount() throws -> TestHost {
            let s = try NamespaceStorage.open(imagePath: image, requested: NamespaceFormat(lbads: 9), explicit: false,
                                              readOnly: false, mode: .inline)
            let ns = Namespace(nsid: 1, backend: s.data, format: s.format, metadata: s.metadata, metadataBase: MetadataFile.headerSize,
                               metadataStore: s.store, uncorrectableFile: s.uncorrectable, uncorrectableMarks: s.marks)
            let h = try TestHost(namespaces: [ns], backends: [s.data])
            h.bringUp()
            return h
        }
        func unmount(_ h: TestHost) {
            h.controller.drainAndSync()
            h.controller.closeBackends()
        }
        var h = try mount()
        #expect(!FileManager.default.fileExists(atPath: sidecar))
        #expect(h.run(Self.uncor(slba: 8, nlb: 3), qid: 1).status == .success)
        #expect(h.run(Self.uncor(slba: 100, nlb: 1), qid: 1).status == .success)
        // The command completed once the file was written.
        #expect(try String(contentsOfFile: sidecar, encoding: .utf8) == "nvmefs-uncorrectable 1 lbads 9\n8 3\n100 1\n")
        h.poke(TestHost.dataBase, TestHost.pattern(512, seed: 1))
        #expect(h.run(TestHost.write(slba: 9, nlb: 1, prp1: TestHost.dataBase), qid: 1).status == .success)
        #expect(try String(contentsOfFile: sidecar, encoding: .utf8) == "nvmefs-uncorrectable 1 lbads 9\n8 1\n10 1\n100 1\n")
        unmount(h)

        h = try mount()
        #expect(h.controller.uncorrectableCount(1) == 3)
        #expect(Self.read(h, slba: 8, nlb: 1) == .unrecoveredReadError)
        #expect(Self.read(h, slba: 9, nlb: 1) == .success)
        #expect(Self.read(h, slba: 100, nlb: 1) == .unrecoveredReadError)
        // Format NVM (LBA format 0, 512 bytes) clears every mark, and the file.
        let f = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: 1, cdw10: 0))
        #expect(f.status == .success)
        #expect(h.controller.uncorrectableCount(1) == 0)
        #expect(Self.read(h, slba: 8, nlb: 1) == .success)
        unmount(h)
        #expect(!FileManager.default.fileExists(atPath: sidecar))
        h = try mount()
        #expect(h.controller.uncorrectableCount(1) == 0)
        // Writing the last mark away removes the file.
        #expect(h.run(Self.uncor(slba: 0, nlb: 1), qid: 1).status == .success)
        #expect(FileManager.default.fileExists(atPath: sidecar))
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 0; wz.nlb = 0
        #expect(h.run(wz, qid: 1).status == .success)
        #expect(!FileManager.default.fileExists(atPath: sidecar))
        unmount(h)
    }

    @Test("With metadata and PI: marked LBAs fail Reads, a PRACT Write clears them; traced")
    func withMetadata() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 9, ms: 8, pi: .type1))
        #expect(rig.host.run(Self.uncor(slba: 4, nlb: 2), qid: 1).status == .success)
        #expect(rig.trace.lines.contains { $0.hasPrefix("nvmefs_write_uncor") && $0.contains("marked=2") })
        #expect(rig.read(slba: 3, nlb: 2, prinfo: 0x8).status == .unrecoveredReadError)
        #expect(rig.trace.lines.contains { $0.hasPrefix("nvmefs_uncorrectable_read") && $0.contains("lba=4") })
        #expect(rig.read(slba: 6, nlb: 2, prinfo: 0x8).status == .success)
        #expect(rig.write(slba: 4, data: TestHost.pattern(512, seed: 1), meta: [], prinfo: 0x8) == .success)
        #expect(rig.trace.lines.contains { $0.hasPrefix("nvmefs_uncorrectable_cleared") && $0.contains("marked=1") })
        #expect(rig.read(slba: 4, nlb: 1, prinfo: 0x8).status == .success)
        #expect(rig.read(slba: 5, nlb: 1, prinfo: 0x8).status == .unrecoveredReadError)
        #expect(rig.host.controller.uncorrectableCount(1) == 1)
    }
}
