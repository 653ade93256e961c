import BlockIO
import NVMeController
import NVMeSpec
import Testing

@Suite("Admin commands")
struct AdminTests {
    func identify(_ h: TestHost, cns: UInt32, nsid: UInt32 = 0, buffer: UInt64 = TestHost.dataBase) -> (NVMeStatus, [UInt8]) {
        h.poke(buffer, [UInt8](repeating: 0xEE, count: 4096))
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid, prp1: buffer, cdw10: cns))
        return (e.status, h.peek(buffer, 4096))
    }

    @Test func identifyController() throws {
        var p = ControllerParameters()
        p.serial = "SER123"; p.model = "Model X"; p.mdts = 5
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 12)], parameters: p)
        h.enable()
        let (s, data) = identify(h, cns: 1)
        #expect(s == .success)
        let id = try #require(IdentifyController(bytes: data))
        #expect(id.sn == "SER123")
        #expect(id.mn == "Model X")
        #expect(id.mdts == 5)
        #expect(id.nn == 256)   // QEMU's NN: NSIDs 3...256 are valid and inactive
        #expect(id.sqes == 0x66 && id.cqes == 0x44)
        #expect(id.ver == 0x10400)
        #expect(id.oncs & 0x0D == 0x0D)
        #expect(id.aerl == 3)
    }

    @Test func identifyNamespaceBothLBASizes() throws {
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 12)])
        h.enable()
        let ns1 = try #require(IdentifyNamespace(bytes: identify(h, cns: 0, nsid: 1).1))
        #expect(ns1.nsze == 2048 && ns1.ncap == 2048)
        #expect(ns1.lbaf[Int(ns1.flbas & 0xF)].lbads == 9)
        let ns2 = try #require(IdentifyNamespace(bytes: identify(h, cns: 0, nsid: 2).1))
        #expect(ns2.nsze == 256)
        #expect(ns2.lbaf[Int(ns2.flbas & 0xF)].lbads == 12)
        // Inactive NSID: zero-filled, success.
        let (s3, d3) = identify(h, cns: 0, nsid: 7)
        #expect(s3 == .success && d3.allSatisfy { $0 == 0 })
        #expect(identify(h, cns: 0, nsid: 0).0 == NVMeStatus.invalidNamespace.withDNR)
        #expect(identify(h, cns: 0, nsid: 0xFFFF_FFFF).0 == NVMeStatus.invalidNamespace.withDNR)
    }

    @Test func activeNamespaceListAndDescriptors() throws {
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 9)])
        h.enable()
        let list = try #require(NamespaceList(bytes: identify(h, cns: 2, nsid: 0).1))
        #expect(list.nsids == [1, 2])
        let after1 = try #require(NamespaceList(bytes: identify(h, cns: 2, nsid: 1).1))
        #expect(after1.nsids == [2])
        #expect(identify(h, cns: 2, nsid: 0xFFFF_FFFE).0 == NVMeStatus.invalidNamespace.withDNR)
        let (s, d) = identify(h, cns: 3, nsid: 2)
        #expect(s == .success)
        let descs = try #require(NamespaceIdentificationDescriptorList(bytes: d))
        #expect(descs.descriptors.map(\.nidt) == [.nguid, .eui64, .csi])
        #expect(identify(h, cns: 3, nsid: 9).0 == NVMeStatus.invalidField.withDNR)
        #expect(identify(h, cns: 0x7F).0 == NVMeStatus.invalidField.withDNR)
    }

    @Test func identifyIntoUnbackedMemoryIsDataTransferError() throws {
        let h = try TestHost()
        h.enable()
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: 0x7000_0000, cdw10: 1))
        #expect(e.status.kind == .dataTransferError)
    }

    @Test func createQueueStatuses() throws {
        var p = ControllerParameters()
        p.maxIOQueuePairs = 4
        p.mqes = 255
        let h = try TestHost(parameters: p)
        h.enable()
        // CQ errors
        #expect(h.createCQ(qid: 0, entries: 16) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(h.createCQ(qid: 5, entries: 16) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(h.createCQ(qid: 1, entries: 1) == NVMeStatus.invalidQueueSize.withDNR)      // qsize 0
        #expect(h.createCQ(qid: 1, entries: 257) == NVMeStatus.invalidQueueSize.withDNR)    // > MQES
        #expect(h.createCQ(qid: 1, entries: 16, base: 0x80800) == NVMeStatus.prpOffsetInvalid.withDNR)
        #expect(h.createCQ(qid: 1, entries: 16, base: 0x7000_0000) == NVMeStatus.invalidField.withDNR)
        #expect(h.createCQ(qid: 1, entries: 16, vector: 5) == NVMeStatus.invalidInterruptVector.withDNR)
        let noPC = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.createIOCQ.rawValue, prp1: 0x90000, cdw10: 15 << 16 | 1, cdw11: 0))
        #expect(noPC.status == NVMeStatus.invalidField.withDNR)
        #expect(h.createCQ(qid: 1, entries: 16).isSuccess)
        #expect(h.createCQ(qid: 1, entries: 16) == NVMeStatus.invalidQueueIdentifier.withDNR)
        // SQ errors
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 2) == NVMeStatus.completionQueueInvalid.withDNR)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 0) == NVMeStatus.completionQueueInvalid.withDNR)
        #expect(h.createSQ(qid: 0, entries: 16, cqid: 1) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(h.createSQ(qid: 5, entries: 16, cqid: 1) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(h.createSQ(qid: 1, entries: 1, cqid: 1) == NVMeStatus.invalidQueueSize.withDNR)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 1, base: 0x10010) == NVMeStatus.prpOffsetInvalid.withDNR)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 1, base: 0x7000_0000) == NVMeStatus.invalidField.withDNR)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 1).isSuccess)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 1) == NVMeStatus.invalidQueueIdentifier.withDNR)
    }

    @Test func deleteQueueStatuses() throws {
        let h = try TestHost()
        h.bringUp()
        func del(_ op: AdminOpcode, _ qid: UInt32) -> NVMeStatus {
            h.admin(SubmissionQueueEntry(opcode: op.rawValue, cdw10: qid)).status
        }
        #expect(del(.deleteIOCQ, 1) == NVMeStatus.invalidQueueDeletion)   // SQ 1 still bound; retry later (no DNR)
        #expect(del(.deleteIOSQ, 0) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(del(.deleteIOSQ, 9) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(del(.deleteIOCQ, 0) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(del(.deleteIOSQ, 1) == .success)
        #expect(del(.deleteIOSQ, 1) == NVMeStatus.invalidQueueIdentifier.withDNR)
        #expect(del(.deleteIOCQ, 1) == .success)
        #expect(del(.deleteIOCQ, 1) == NVMeStatus.invalidQueueIdentifier.withDNR)
    }

    @Test func invalidAdminOpcode() throws {
        let h = try TestHost()
        h.enable()
        #expect(h.admin(SubmissionQueueEntry(opcode: 0xC3)).status == NVMeStatus.invalidOpcode.withDNR)
    }

    // MARK: Features

    func getFeature(_ h: TestHost, _ fid: UInt8, sel: UInt32 = 0, nsid: UInt32 = 0, cdw11: UInt32 = 0) -> CompletionQueueEntry {
        h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getFeatures.rawValue, nsid: nsid, prp1: TestHost.dataBase,
                                     cdw10: sel << 8 | UInt32(fid), cdw11: cdw11))
    }
    func setFeature(_ h: TestHost, _ fid: UInt8, _ cdw11: UInt32, save: Bool = false, nsid: UInt32 = 0) -> CompletionQueueEntry {
        h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, nsid: nsid, prp1: TestHost.dataBase,
                                     cdw10: (save ? 0x8000_0000 : 0) | UInt32(fid), cdw11: cdw11))
    }

    @Test(arguments: [
        (UInt8(0x01), UInt32(0x0302_0103)),   // arbitration
        (UInt8(0x04), UInt32(0x0000_0150)),   // temperature threshold (over, composite)
        (UInt8(0x06), UInt32(0)),             // volatile write cache off
        (UInt8(0x08), UInt32(0x0A04)),        // interrupt coalescing
        (UInt8(0x0A), UInt32(1)),             // write atomicity normal
        (UInt8(0x0B), UInt32(0x1FF)),         // async event configuration
    ])
    func setThenGetCurrentAndDefault(_ c: (UInt8, UInt32)) throws {
        let h = try TestHost()
        h.enable()
        let def = getFeature(h, c.0, sel: 1).dw0
        #expect(setFeature(h, c.0, c.1).status == .success)
        #expect(getFeature(h, c.0).dw0 == c.1)
        #expect(getFeature(h, c.0, sel: 1).dw0 == def)
        #expect(getFeature(h, c.0, sel: 2).dw0 == def)
        #expect(getFeature(h, c.0, sel: 3).dw0 & 0x4 != 0)   // changeable
        #expect(setFeature(h, c.0, c.1, save: true).status == NVMeStatus.featureIdentifierNotSaveable.withDNR)
    }

    @Test func featureErrors() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(getFeature(h, 0x7D).status == NVMeStatus.invalidField.withDNR)
        #expect(setFeature(h, 0x7D, 0).status == NVMeStatus.invalidField.withDNR)
        // Get ignores the NSID of a feature that is not namespace specific; Set refuses it (QEMU).
        #expect(getFeature(h, 0x06, nsid: 1).status == .success)
        #expect(getFeature(h, 0x06, nsid: 500).status == .success)
        #expect(setFeature(h, 0x06, 1, nsid: 1).status == NVMeStatus.featureNotNamespaceSpecific.withDNR)
        #expect(setFeature(h, 0x06, 1, nsid: 5).status == NVMeStatus.featureNotNamespaceSpecific.withDNR)
        #expect(setFeature(h, 0x06, 1, nsid: 500).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(setFeature(h, 0x02, 3).status == NVMeStatus.invalidField.withDNR)         // no power state 3
        #expect(setFeature(h, 0x04, 2 << 20).status == NVMeStatus.invalidField.withDNR)   // THSEL reserved
        #expect(setFeature(h, 0x09, 0xFFFF).status == NVMeStatus.invalidField.withDNR)    // vector out of range
        // Number of queues: reports the maximum; refused once I/O queues exist.
        #expect(setFeature(h, 0x07, 0x0003_0003).status == NVMeStatus.commandSequenceError.withDNR)
        #expect(getFeature(h, 0x07).dw0 == 63 << 16 | 63)
        // Error recovery is namespace specific.
        #expect(setFeature(h, 0x05, 0x1_0010, nsid: 1).status == .success)
        #expect(getFeature(h, 0x05, nsid: 1).dw0 == 0x1_0010)
        #expect(getFeature(h, 0x05, nsid: 9).status == NVMeStatus.invalidField.withDNR)         // inactive
        #expect(getFeature(h, 0x05, nsid: 300).status == NVMeStatus.invalidNamespace.withDNR)   // above NN
        #expect(getFeature(h, 0x05, nsid: 0xFFFF_FFFF).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(setFeature(h, 0x05, 0x20, nsid: 0xFFFF_FFFF).status == .success)               // every namespace
    }

    @Test func numberOfQueuesBeforeQueuesExist() throws {
        let h = try TestHost()
        h.enable()
        let e = setFeature(h, 0x07, 0x0003_0003)
        #expect(e.status == .success)
        #expect(e.dw0 == 63 << 16 | 63)
        #expect(setFeature(h, 0x07, 0xFFFF).status == NVMeStatus.invalidField.withDNR)
    }

    @Test func interruptVectorConfiguration() throws {
        let h = try TestHost()
        h.enable()
        #expect(setFeature(h, 0x09, 1 << 16 | 3).status == .success)
        #expect(getFeature(h, 0x09, cdw11: 3).dw0 == 1 << 16 | 3)
        #expect(getFeature(h, 0x09, cdw11: 4).dw0 == 4)
    }

    @Test func timestampRoundTrip() throws {
        let h = try TestHost()
        h.enable()
        h.poke64(TestHost.dataBase, 1_700_000_000_000)
        #expect(setFeature(h, 0x0E, 0).status == .success)
        h.poke64(TestHost.dataBase, 0)
        #expect(getFeature(h, 0x0E).status == .success)
        let data = h.peek(TestHost.dataBase, 8)
        let ts = data.withUnsafeBytes { $0.le64(0) } & 0xFFFF_FFFF_FFFF
        #expect(ts >= 1_700_000_000_000 && ts < 1_700_000_000_000 + 60_000)
        #expect((data[6] >> 1) & 7 == 1)   // origin: set by host
    }

    // MARK: Logs

    func getLog(_ h: TestHost, lid: UInt8, dwords: Int, offset: UInt64 = 0, rae: Bool = false, nsid: UInt32 = 0xFFFF_FFFF) -> (NVMeStatus, [UInt8]) {
        let numd = UInt32(dwords - 1)
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: nsid, prp1: TestHost.dataBase,
                                             cdw10: (numd & 0xFFFF) << 16 | (rae ? 0x8000 : 0) | UInt32(lid),
                                             cdw11: numd >> 16, cdw12: UInt32(truncatingIfNeeded: offset), cdw13: UInt32(offset >> 32)))
        return (e.status, h.peek(TestHost.dataBase, dwords * 4))
    }

    @Test func errorLogRecordsFailedCommands() throws {
        let h = try TestHost()
        h.bringUp()
        let bad = h.run(TestHost.read(nsid: 1, slba: 5000, nlb: 1, prp1: TestHost.dataBase), qid: 1)
        #expect(bad.status == NVMeStatus.lbaOutOfRange.withDNR)
        let bad2 = h.admin(SubmissionQueueEntry(opcode: 0xC3))
        let (s, page) = getLog(h, lid: 1, dwords: 32)
        #expect(s == .success)
        let newest = try #require(ErrorInformationLogEntry(bytes: Array(page[0..<64])))
        let older = try #require(ErrorInformationLogEntry(bytes: Array(page[64..<128])))
        #expect(newest.errorCount == 2 && newest.cid == bad2.cid && newest.sqid == 0)
        #expect(newest.status == NVMeStatus.invalidOpcode.withDNR)
        #expect(older.errorCount == 1 && older.cid == bad.cid && older.sqid == 1 && older.lba == 5000 && older.nsid == 1)
        #expect(older.status == NVMeStatus.lbaOutOfRange.withDNR)
    }

    @Test func smartLogCountsEngineAccounting() throws {
        let h = try TestHost()
        h.bringUp()
        for i in 0..<3 { #expect(h.run(TestHost.write(slba: UInt64(i) * 8, nlb: 8, prp1: TestHost.dataBase), qid: 1).status == .success) }
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: TestHost.dataBase), qid: 1).status == .success)
        let (s, page) = getLog(h, lid: 2, dwords: 128)
        #expect(s == .success)
        let smart = try #require(SMARTHealthLog(bytes: page))
        #expect(smart.hostWriteCommands == 3)
        #expect(smart.hostReadCommands == 1)
        #expect(smart.dataUnitsWritten == 1)   // 12 KiB = 24 units of 512 B → rounds up to 1 thousand
        #expect(smart.dataUnitsRead == 1)
        #expect(smart.compositeTemperature == 0x143)
        #expect(smart.availableSpare == 100)
        // Per namespace (LPA bit 0): NSID 1 holds all of it; inactive NSID 2 is refused.
        let (s1, page1) = getLog(h, lid: 2, dwords: 128, nsid: 1)
        #expect(s1 == .success && SMARTHealthLog(bytes: page1)?.hostWriteCommands == 3)
        #expect(getLog(h, lid: 2, dwords: 128, nsid: 2).0 == NVMeStatus.invalidNamespace.withDNR)
    }

    @Test func firmwareSlotAndEffectsAndOffsets() throws {
        var p = ControllerParameters()
        p.firmwareRevision = "FW42"
        let h = try TestHost(parameters: p)
        h.enable()
        let (s, page) = getLog(h, lid: 3, dwords: 128)
        #expect(s == .success)
        let fw = try #require(FirmwareSlotLog(bytes: page))
        #expect(fw.activeSlot == 1)
        #expect(fw.frs[0] == "FW42")
        let (s5, eff) = getLog(h, lid: 5, dwords: 1024)
        #expect(s5 == .success)
        let effects = try #require(CommandsSupportedAndEffectsLog(bytes: eff))
        #expect(effects.iocs[Int(NVMOpcode.write.rawValue)].csupp && effects.iocs[Int(NVMOpcode.write.rawValue)].lbcc)
        #expect(effects.acs[Int(AdminOpcode.identify.rawValue)].csupp)
        #expect(effects.acs[Int(AdminOpcode.formatNVM.rawValue)] == .supportedLBCC)
        // Offset into the firmware slot log: frs1 starts at byte 8.
        let (so, part) = getLog(h, lid: 3, dwords: 2, offset: 8)
        #expect(so == .success && Array(part[0..<4]) == Array("FW42".utf8))
        #expect(getLog(h, lid: 3, dwords: 1, offset: 2).0 == NVMeStatus.invalidField.withDNR)     // not dword aligned
        #expect(getLog(h, lid: 3, dwords: 1, offset: 512).0 == NVMeStatus.invalidField.withDNR)   // past the page
        #expect(getLog(h, lid: 0x7F, dwords: 1).0 == NVMeStatus.invalidField.withDNR)
        #expect(getLog(h, lid: 4, dwords: 1024).0 == .success)
    }
}
