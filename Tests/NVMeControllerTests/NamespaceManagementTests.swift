import BlockIO
import Dispatch
import Foundation
import NVMeController
import NVMeSpec
import Testing

/// Namespace Management (NVMe 1.4 §5.20) and Namespace Attachment (§5.19),
/// Identify CNS 10h-13h, driven through registers and host memory with a
/// namespace directory in a temporary directory (docs/NAMESPACES.md).
@Suite("Namespace Management and Attachment")
struct NamespaceManagementTests {
    static let data = TestHost.dataBase

    /// A temporary namespace directory (removed by `cleanUp`).
    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "nvmefs-nsdir-\(getpid())-\(UUID().uuidString)"
    }

    static func cleanUp(_ dir: String) { try? FileManager.default.removeItem(atPath: dir) }

    /// A host with namespace 1 (a TestBackend, given, 1 MiB) and a provisioner over `dir`.
    static func host(_ dir: String, capacity: UInt64 = 64 << 20, maxNamespaces: Int = 256,
                     provisioner: (any NamespaceProvisioner)? = nil) throws -> TestHost {
        var p = ControllerParameters()
        p.namespaceCapacity = capacity
        p.maxNamespaces = maxNamespaces
        let tb = TestBackend(size: 1 << 20)
        let given = Namespace(nsid: 1, backend: tb, lbads: 9)
        let prov = try provisioner ?? DirectoryProvisioner(directory: NamespaceDirectory(path: dir))
        let h = try TestHost(namespaces: [given], backends: [tb], parameters: p, provisioner: prov)
        h.bringUp()
        return h
    }

    static func create(_ h: TestHost, _ spec: NamespaceManagementCreate, nsid: UInt32 = 0, sel: UInt32 = 0) -> CompletionQueueEntry {
        h.poke(data, spec.bytes)
        return h.admin(SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue, nsid: nsid, prp1: data, cdw10: sel))
    }

    static func delete(_ h: TestHost, _ nsid: UInt32) -> NVMeStatus {
        h.admin(SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue, nsid: nsid, cdw10: 1)).status
    }

    /// Namespace Attachment of `nsid` (sel 0 attach, 1 detach) with a controller list of `ids` (count as given).
    static func attach(_ h: TestHost, _ nsid: UInt32, sel: UInt32 = 0, ids: [UInt16] = [0], count: UInt16? = nil) -> NVMeStatus {
        var list = ControllerList(ids)
        if let count { list.count = count }
        h.poke(data + 0x2000, list.bytes)
        return h.admin(SubmissionQueueEntry(opcode: AdminOpcode.namespaceAttachment.rawValue, nsid: nsid, prp1: data + 0x2000,
                                            cdw10: sel)).status
    }

    static func identify(_ h: TestHost, cns: UInt32, nsid: UInt32 = 0, cntid: UInt32 = 0) -> (NVMeStatus, [UInt8]) {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid, prp1: data, cdw10: cns | cntid << 16))
        return (e.status, h.peek(data, 4096))
    }

    static func nsList(_ h: TestHost, cns: UInt32) -> [UInt32] {
        NamespaceList(bytes: identify(h, cns: cns).1)!.nsids
    }

    static func controllers(_ h: TestHost, cns: UInt32, nsid: UInt32 = 0, cntid: UInt32 = 0) -> [UInt16]? {
        let (status, bytes) = identify(h, cns: cns, nsid: nsid, cntid: cntid)
        return status == .success ? ControllerList(bytes: bytes)!.ids : nil
    }

    // MARK: create, attach, I/O, detach, delete

    @Test func lifeCycle() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir)
        // Create 256 blocks of LBA format 4 (4096 bytes): NSID 2, not attached.
        let e = Self.create(h, NamespaceManagementCreate(nsze: 256, ncap: 256, flbas: 4))
        #expect(e.status == .success && e.dw0 == 2)
        #expect(Self.nsList(h, cns: 0x10) == [1, 2])
        #expect(Self.nsList(h, cns: 0x02) == [1])
        let allocatedID = try #require(IdentifyNamespace(bytes: Self.identify(h, cns: 0x11, nsid: 2).1))
        #expect(allocatedID.nsze == 256 && allocatedID.flbas == 4)
        #expect(Self.identify(h, cns: 0x00, nsid: 2) == (.success, [UInt8](repeating: 0, count: 4096)))
        #expect(Self.controllers(h, cns: 0x12, nsid: 2) == [])
        #expect(FileManager.default.fileExists(atPath: dir + "/ns2.img"))
        #expect(try String(contentsOfFile: dir + "/namespaces.state", encoding: .utf8)
                == "nvmefs namespaces 1\nnsid=2 attached=0 nmic=0\n")
        // I/O to the inactive NSID is refused.
        #expect(h.run(TestHost.write(nsid: 2, slba: 0, nlb: 1, prp1: Self.data), qid: 1).status == NVMeStatus.invalidField.withDNR)

        // Attach: active, in the Changed Namespace List, I/O works.
        #expect(Self.attach(h, 2) == .success)
        #expect(Self.nsList(h, cns: 0x02) == [1, 2])
        #expect(try FormatTests.changedNamespaceLog(h) == [2])
        #expect(Self.controllers(h, cns: 0x12, nsid: 2) == [0])
        #expect(Self.controllers(h, cns: 0x12, nsid: 2, cntid: 1) == [])
        h.poke(Self.data, [UInt8](repeating: 0xA5, count: 4096))
        #expect(h.run(TestHost.write(nsid: 2, slba: 255, nlb: 1, prp1: Self.data), qid: 1).status == .success)
        #expect(h.run(TestHost.write(nsid: 2, slba: 256, nlb: 1, prp1: Self.data), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(try String(contentsOfFile: dir + "/namespaces.state", encoding: .utf8).contains("nsid=2 attached=1 nmic=0"))
        #expect(Self.attach(h, 2) == NVMeStatus.namespaceAlreadyAttached.withDNR)

        // Detach: inactive again; a second detach is refused.
        #expect(Self.attach(h, 2, sel: 1) == .success)
        #expect(Self.nsList(h, cns: 0x02) == [1])
        #expect(try FormatTests.changedNamespaceLog(h) == [2])
        #expect(Self.attach(h, 2, sel: 1) == NVMeStatus.namespaceNotAttached.withDNR)

        // The given namespace is an ordinary attached one: it detaches and attaches.
        #expect(Self.attach(h, 1, sel: 1) == .success)
        #expect(Self.nsList(h, cns: 0x02) == [])
        #expect(Self.attach(h, 1) == .success)

        // Delete (attached again first: delete detaches it): gone with its files.
        #expect(Self.attach(h, 2) == .success)
        _ = try FormatTests.changedNamespaceLog(h)
        #expect(Self.delete(h, 2) == .success)
        #expect(Self.nsList(h, cns: 0x10) == [1])
        #expect(Self.nsList(h, cns: 0x02) == [1])
        #expect(try FormatTests.changedNamespaceLog(h) == [2])
        #expect(!FileManager.default.fileExists(atPath: dir + "/ns2.img"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/ns2.img" + MetadataFile.suffix))
        #expect(try String(contentsOfFile: dir + "/namespaces.state", encoding: .utf8) == "nvmefs namespaces 1\n")
        // The NSID is free again: the next create reuses it.
        #expect(Self.create(h, NamespaceManagementCreate(nsze: 8, ncap: 8)).dw0 == 2)
    }

    /// The Namespace Attribute Changed notice reaches an outstanding AER when AEC bit 8 is set.
    @Test func attachRaisesTheNotice() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, cdw10: 0x0B, cdw11: 0x100)).status == .success)
        #expect(Self.create(h, NamespaceManagementCreate(nsze: 8, ncap: 8)).status == .success)
        let aer = h.place(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue), qid: 0)
        h.ring(0)
        var list = ControllerList([0])
        list.count = 1
        h.poke(Self.data + 0x2000, list.bytes)
        let cid = h.place(SubmissionQueueEntry(opcode: AdminOpcode.namespaceAttachment.rawValue, nsid: 2, prp1: Self.data + 0x2000), qid: 0)
        h.ring(0)
        let got = FormatTests.reapAdmin(h, 2)
        #expect(got[cid]?.status == .success)
        let event = try #require(got[aer])
        #expect(event.dw0 == 0x0004_0002)  // notice, namespace attribute changed, log page 04h
    }

    // MARK: statuses

    @Test func createStatuses() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir, capacity: 1 << 20)
        let invalidField = NVMeStatus.invalidField.withDNR, invalidFormat = NVMeStatus.invalidFormat.withDNR
        let cases: [(String, NamespaceManagementCreate, UInt32, UInt32, NVMeStatus)] = [
            ("nsid given", .init(nsze: 8, ncap: 8), 1, 0, invalidField),
            ("sel 2", .init(nsze: 8, ncap: 8), 0, 2, invalidField),
            ("sel f", .init(nsze: 8, ncap: 8), 0, 0xF, invalidField),
            ("lbaf 8", .init(nsze: 8, ncap: 8, flbas: 8), 0, 0, invalidFormat),
            ("lbaf 15", .init(nsze: 8, ncap: 8, flbas: 15), 0, 0, invalidFormat),
            ("flbas bit 5", .init(nsze: 8, ncap: 8, flbas: 0x20), 0, 0, invalidFormat),
            ("pi 4", .init(nsze: 8, ncap: 8, flbas: 1, dps: 4), 0, 0, invalidFormat),
            ("pi without metadata", .init(nsze: 8, ncap: 8, flbas: 0, dps: 1), 0, 0, invalidFormat),
            ("dps bit 4", .init(nsze: 8, ncap: 8, dps: 0x10), 0, 0, invalidFormat),
            ("nmic bit 1", .init(nsze: 8, ncap: 8, nmic: 2), 0, 0, invalidField),
            ("nsze 0", .init(nsze: 0, ncap: 0), 0, 0, invalidField),
            ("ncap above nsze", .init(nsze: 8, ncap: 9), 0, 0, invalidField),
            ("ncap below nsze", .init(nsze: 8, ncap: 4), 0, 0, NVMeStatus.thinProvisioningNotSupported.withDNR),
            ("capacity", .init(nsze: 2049, ncap: 2049), 0, 0, NVMeStatus.namespaceInsufficientCapacity.withDNR),
            ("nsze overflows", .init(nsze: 1 << 62, ncap: 1 << 62, flbas: 4), 0, 0,
             NVMeStatus.namespaceInsufficientCapacity.withDNR),
        ]
        for (label, spec, nsid, sel, status) in cases {
            #expect(Self.create(h, spec, nsid: nsid, sel: sel).status == status, "\(label)")
        }
        #expect(Self.nsList(h, cns: 0x10) == [1])
        // The whole capacity (1 MiB beyond the given namespace), then none left.
        #expect(Self.create(h, .init(nsze: 2048, ncap: 2048)).status == .success)
        #expect(Self.create(h, .init(nsze: 1, ncap: 1)).status == NVMeStatus.namespaceInsufficientCapacity.withDNR)
        // A format with metadata and PI is kept.
        #expect(Self.delete(h, 2) == .success)
        let e = Self.create(h, .init(nsze: 16, ncap: 16, flbas: 0x11, dps: 0x9, nmic: 1))
        #expect(e.status == .success)
        let id = try #require(IdentifyNamespace(bytes: Self.identify(h, cns: 0x11, nsid: e.dw0).1))
        #expect(id.flbas == 0x11 && id.dps == 0x9 && id.nmic == 1 && id.nsze == 16)
    }

    @Test func identifierUnavailable() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir, maxNamespaces: 3)
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 2)
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 3)
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).status == NVMeStatus.namespaceIdentifierUnavailable.withDNR)
        // The lowest free NSID comes first.
        #expect(Self.delete(h, 2) == .success)
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 2)
    }

    @Test func deleteStatuses() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir)
        #expect(Self.delete(h, 0) == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.delete(h, 257) == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.delete(h, 5) == NVMeStatus.invalidField.withDNR)      // not allocated
        #expect(Self.delete(h, 1) == NVMeStatus.invalidField.withDNR)      // given with --namespace
        // FFFFFFFFh deletes every created namespace and keeps the given one.
        #expect(Self.delete(h, 0xFFFF_FFFF) == .success)
        for _ in 0..<3 { #expect(Self.create(h, .init(nsze: 8, ncap: 8)).status == .success) }
        #expect(Self.attach(h, 3) == .success)
        #expect(Self.delete(h, 0xFFFF_FFFF) == .success)
        #expect(Self.nsList(h, cns: 0x10) == [1])
        #expect(Self.nsList(h, cns: 0x02) == [1])
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == ["namespaces.lock", "namespaces.state"])
    }

    @Test func attachmentStatuses() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir)
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 2)                  // private
        #expect(Self.create(h, .init(nsze: 8, ncap: 8, nmic: 1)).dw0 == 3)         // shared
        let listInvalid = NVMeStatus.controllerListInvalid.withDNR
        #expect(Self.attach(h, 0) == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.attach(h, 257) == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.attach(h, 0xFFFF_FFFF) == NVMeStatus.invalidField.withDNR)
        #expect(Self.attach(h, 9) == NVMeStatus.invalidField.withDNR)             // not allocated
        #expect(Self.attach(h, 2, ids: []) == listInvalid)
        #expect(Self.attach(h, 2, ids: [1]) == listInvalid)
        #expect(Self.attach(h, 2, ids: [0, 1]) == listInvalid)
        #expect(Self.attach(h, 2, ids: [0, 0]) == NVMeStatus.namespaceIsPrivate.withDNR)
        #expect(Self.attach(h, 3, ids: [0, 0]) == listInvalid)
        #expect(Self.attach(h, 2, sel: 2) == NVMeStatus.invalidField.withDNR)
        // A count above the 2047 identifiers a list holds is invalid.
        #expect(Self.attach(h, 2, ids: [0], count: 2048) == listInvalid)
        #expect(Self.attach(h, 3, ids: [0], count: 0xFFFF) == listInvalid)
        // 2047 identifiers: the zeros after the first name controller 0 again.
        #expect(Self.attach(h, 2, ids: [0], count: 2047) == NVMeStatus.namespaceIsPrivate.withDNR)
        #expect(Self.nsList(h, cns: 0x02) == [1])
        #expect(Self.attach(h, 3, ids: [0]) == .success)
        #expect(Self.nsList(h, cns: 0x02) == [1, 3])
    }

    @Test func identifyLists() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let h = try Self.host(dir)
        for _ in 0..<3 { _ = Self.create(h, .init(nsze: 8, ncap: 8)) }
        #expect(Self.identify(h, cns: 0x10, nsid: 2).0 == .success)
        #expect(NamespaceList(bytes: Self.identify(h, cns: 0x10, nsid: 2).1)!.nsids == [3, 4])
        #expect(Self.identify(h, cns: 0x10, nsid: 0xFFFF_FFFE).0 == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.identify(h, cns: 0x11, nsid: 0).0 == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.identify(h, cns: 0x11, nsid: 0xFFFF_FFFF).0 == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.identify(h, cns: 0x11, nsid: 9) == (.success, [UInt8](repeating: 0, count: 4096)))
        #expect(Self.controllers(h, cns: 0x12, nsid: 1) == [0])
        #expect(Self.identify(h, cns: 0x12, nsid: 9).0 == NVMeStatus.invalidField.withDNR)
        #expect(Self.identify(h, cns: 0x12, nsid: 0xFFFF_FFFF).0 == NVMeStatus.invalidField.withDNR)
        #expect(Self.controllers(h, cns: 0x13) == [0])
        #expect(Self.controllers(h, cns: 0x13, cntid: 1) == [])
        // CNS 00h of FFFFFFFFh: what every namespace shares (the formats a create may choose).
        let (status, bytes) = Self.identify(h, cns: 0, nsid: 0xFFFF_FFFF)
        let common = try #require(IdentifyNamespace(bytes: bytes))
        #expect(status == .success && common.nsze == 0 && common.nlbaf == 7 && common.lbaf[4].lbads == 12)
        #expect(common.mc == 0x03 && common.dpc == 0x1F)
        // Identify Controller: OACS Format NVM, firmware, Namespace Management (bit 3), self-test;
        // TNVMCAP (the given 1 MiB + 64 MiB), UNVMCAP.
        let id = try #require(IdentifyController(bytes: Self.identify(h, cns: 1).1))
        #expect(id.oacs == 0x11E)
        #expect(id.tnvmcap == UInt128((64 << 20) + (1 << 20)))
        #expect(id.unvmcap == UInt128((64 << 20) - 3 * 8 * 512))
        // Commands Supported and Effects: both commands change the namespace inventory.
        let log = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: Self.data, cdw10: 1023 << 16 | 0x05))
        #expect(log.status == .success)
        let effects = try #require(CommandsSupportedAndEffectsLog(bytes: h.peek(Self.data, 4096)))
        #expect(effects.acs[0x0D] == CommandEffects(csupp: true, nic: true))
        #expect(effects.acs[0x15] == CommandEffects(csupp: true, nic: true))
        #expect(effects.acs[0x10] == CommandEffects(csupp: true, ccc: true))  // Firmware Commit beside them
    }

    /// Without a provisioner neither command exists, and OACS bit 3 is clear.
    @Test func withoutProvisioner() throws {
        let h = try TestHost()
        h.bringUp()
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue)).status == NVMeStatus.invalidOpcode.withDNR)
        #expect(Self.attach(h, 1, sel: 1) == NVMeStatus.invalidOpcode.withDNR)
        let id = try #require(IdentifyController(bytes: Self.identify(h, cns: 1).1))
        #expect(id.oacs == 0x116 && id.tnvmcap == 0)
        #expect(Self.identify(h, cns: 0, nsid: 0xFFFF_FFFF).0 == NVMeStatus.invalidNamespace.withDNR)
        #expect(Self.nsList(h, cns: 0x10) == [1])
    }

    /// A fused Compare and Write whose namespace is detached before a half
    /// starts: that half is Invalid Field (an inactive NSID), nothing is
    /// written. Waiting behind a held Write, the Compare never starts (the
    /// Write then fails as fused); with the Compare's read held, the
    /// Compare completes and the Write is refused.
    @Test func detachBeforeAFusedHalfStarts() throws {
        for compareStarted in [false, true] {
            let dir = Self.temporaryDirectory()
            defer { Self.cleanUp(dir) }
            let h = try Self.host(dir)
            FusedTests.addQueues(h, upTo: 2)
            let buffer = TestHost.dataBase + 0x8000
            h.poke(buffer, [UInt8](repeating: 0, count: 512))  // the Compare's: the fresh image's zeros
            h.poke(buffer + 0x1000, [UInt8](repeating: 7, count: 512))
            _ = h.testBackend.addRule(.hold(operations: [compareStarted ? .read : .write], times: 1))
            if !compareStarted {
                h.place(TestHost.write(slba: 0, nlb: 1, prp1: buffer + 0x1000), qid: 2)
                h.ring(2)
                #expect(h.testBackend.waitForHeld(count: 1))
            }
            var compare = TestHost.read(slba: 0, nlb: 1, prp1: buffer)
            compare.opcode = NVMOpcode.compare.rawValue
            compare.fuse = 1
            var write = TestHost.write(slba: 0, nlb: 1, prp1: buffer + 0x1000)
            write.fuse = 2
            let ids = (h.place(compare, qid: 1), h.place(write, qid: 1))
            h.ring(1)
            if compareStarted { #expect(h.testBackend.waitForHeld(count: 1)) } else { usleep(20_000) }
            #expect(Self.attach(h, 1, sel: 1) == .success)
            h.testBackend.releaseAll()
            let done = try FusedTests.reap(h, 2)
            if compareStarted {
                #expect(done[ids.0]?.status == .success && done[ids.1]?.status == NVMeStatus.invalidField.withDNR)
                #expect(h.testBackend.submitted.filter { $0.operation == .write }.isEmpty)
            } else {
                #expect(done[ids.0]?.status == NVMeStatus.invalidField.withDNR && done[ids.1]?.status == .failedFused)
                #expect(h.testBackend.submitted.filter { $0.operation == .read }.isEmpty)
                #expect(h.testBackend.submitted.filter { $0.operation == .write }.count == 1)
            }
        }
    }

    // MARK: persistence and failures

    /// Created namespaces, their formats and attachment come back from the directory.
    @Test func stateSurvivesAReload() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        do {
            let h = try Self.host(dir)
            #expect(Self.create(h, .init(nsze: 64, ncap: 64, flbas: 4)).dw0 == 2)
            #expect(Self.create(h, .init(nsze: 32, ncap: 32, flbas: 1, dps: 1, nmic: 1)).dw0 == 3)
            #expect(Self.attach(h, 2) == .success)
            h.poke(Self.data, [UInt8](repeating: 0x3C, count: 4096))
            #expect(h.run(TestHost.write(nsid: 2, slba: 7, nlb: 1, prp1: Self.data), qid: 1).status == .success)
            h.controller.drainAndSync()
            h.controller.closeBackends()
        }
        let provisioner = DirectoryProvisioner(directory: try NamespaceDirectory(path: dir))
        let (namespaces, detached, missing) = try provisioner.load()
        #expect(namespaces.map(\.nsid) == [2, 3] && detached == [3] && missing.isEmpty)
        #expect(namespaces.map(\.format) == [NamespaceFormat(lbads: 12), NamespaceFormat(lbads: 9, ms: 8, pi: .type1)])
        #expect(namespaces.map(\.nmic) == [0, 1] && namespaces.allSatisfy(\.isCreated))
        let h = try TestHost(namespaces: namespaces, backends: namespaces.map(\.backend), detached: detached,
                             provisioner: provisioner)
        h.bringUp()
        #expect(Self.nsList(h, cns: 0x02) == [2])
        #expect(h.run(TestHost.read(nsid: 2, slba: 7, nlb: 1, prp1: Self.data + 0x4000), qid: 1).status == .success)
        #expect(h.peek(Self.data + 0x4000, 4096) == [UInt8](repeating: 0x3C, count: 4096))
        h.controller.closeBackends()
    }

    /// A recorded namespace whose image is gone (a deletion whose state could
    /// not be written) is left out of a reload, and named; the others load.
    @Test func reloadLeavesOutAMissingImage() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        do {
            let h = try Self.host(dir)
            #expect(Self.create(h, .init(nsze: 64, ncap: 64)).dw0 == 2)
            #expect(Self.create(h, .init(nsze: 64, ncap: 64)).dw0 == 3)
            h.controller.drainAndSync()
            h.controller.closeBackends()
        }
        let directory = try NamespaceDirectory(path: dir)
        #expect(unlink(directory.imagePath(2)) == 0)
        let (namespaces, detached, missing) = try DirectoryProvisioner(directory: directory).load()
        #expect(namespaces.map(\.nsid) == [3] && detached == [3] && missing == [2])
        for ns in namespaces { for b in ns.backends { b.close() } }
    }

    /// The directory belongs to one controller at a time.
    @Test func directoryLock() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let first = try NamespaceDirectory(path: dir)
        #expect(throws: NamespaceStorageError.self) { try NamespaceDirectory(path: dir) }
        _ = first
    }

    /// A directory opened with `create: false` is made (and locked) by the first creation only.
    @Test func lazyDirectory() throws {
        let dir = Self.temporaryDirectory() + "/inner"
        defer { Self.cleanUp(Self.parentOf(dir)) }
        let provisioner = DirectoryProvisioner(directory: try NamespaceDirectory(path: dir, create: false))
        #expect(try provisioner.load().namespaces.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir))
        let h = try Self.host(dir, provisioner: provisioner)
        #expect(Self.attach(h, 1, sel: 1) == .success)     // a given namespace: nothing recorded
        #expect(!FileManager.default.fileExists(atPath: dir))
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 2)
        #expect(FileManager.default.fileExists(atPath: dir + "/ns2.img"))
        #expect(throws: NamespaceStorageError.self) { try NamespaceDirectory(path: dir, create: false) }
    }

    static func parentOf(_ path: String) -> String { String(path[..<path.lastIndex(of: "/")!]) }

    /// Storage that cannot be made or recorded: Internal Error, nothing allocated, the capacity back.
    @Test func provisionerFailures() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let failing = FailingProvisioner(DirectoryProvisioner(directory: try NamespaceDirectory(path: dir)))
        let h = try Self.host(dir, capacity: 8 * 512, provisioner: failing)
        failing.failCreate = true
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).status == .internalError)
        failing.failCreate = false
        failing.failSave = true
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).status == .internalError)
        #expect(Self.nsList(h, cns: 0x10) == [1])
        #expect(!FileManager.default.fileExists(atPath: dir + "/ns2.img"))
        failing.failSave = false
        #expect(Self.create(h, .init(nsze: 8, ncap: 8)).dw0 == 2)
        // Recording an attachment fails: Internal Error; the attachment holds until unmount.
        failing.failSave = true
        #expect(Self.attach(h, 2) == .internalError)
        #expect(Self.nsList(h, cns: 0x02) == [1, 2])
    }

    /// Abort leaves a create whose storage is being made alone (DW0 bit 0 set): it completes with its NSID.
    @Test func abortDoesNotAbortACreate() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let held = FailingProvisioner(DirectoryProvisioner(directory: try NamespaceDirectory(path: dir)))
        held.holdCreate = true
        let h = try Self.host(dir, provisioner: held)
        h.poke(Self.data, NamespaceManagementCreate(nsze: 8, ncap: 8).bytes)
        let create = h.place(SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue, prp1: Self.data), qid: 0)
        h.ring(0)
        let abort = h.place(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(create) << 16), qid: 0)
        h.ring(0)
        let first = try #require(h.reap(0))
        #expect(first.cid == abort && first.status == .success && first.dw0 & 1 == 1)
        held.release.signal()
        let second = try #require(h.reap(0))
        #expect(second.cid == create && second.status == .success && second.dw0 == 2)
    }

    // MARK: the state file

    @Test func stateFileRoundTrip() throws {
        let records = [NamespaceRecord(nsid: 2, attached: true, nmic: 0), NamespaceRecord(nsid: 7, attached: false, nmic: 1)]
        let text = NamespaceDirectory.stateText(records)
        #expect(text == "nvmefs namespaces 1\nnsid=2 attached=1 nmic=0\nnsid=7 attached=0 nmic=1\n")
        #expect(try NamespaceDirectory.parseState(text) == records)
        #expect(try NamespaceDirectory.parseState("nvmefs namespaces 1\n") == [])
    }

    @Test(arguments: [
        "", "nvmefs namespaces 2\n", "nvmefs namespaces 1\nnsid=2 attached=1\n",
        "nvmefs namespaces 1\nnsid=2 attached=2 nmic=0\n", "nvmefs namespaces 1\nnsid=0 attached=1 nmic=0\n",
        "nvmefs namespaces 1\nnsid=2 attached=1 nmic=0 x=1\n", "nvmefs namespaces 1\nnsid=2 nsid=3 attached=1\n",
        "nvmefs namespaces 1\nnsid=2 attached=1 nmic=0\nnsid=2 attached=0 nmic=0\n",
        "nvmefs namespaces 1\nnsid=-2 attached=1 nmic=0\n", "nvmefs namespaces 1\n\n",
    ])
    func stateFileErrors(_ text: String) {
        #expect(throws: NamespaceStorageError.self) { try NamespaceDirectory.parseState(text) }
    }
}

/// A provisioner whose create and save fail on demand, and whose create
/// can be held until released.
final class FailingProvisioner: NamespaceProvisioner, @unchecked Sendable {
    let inner: DirectoryProvisioner
    private let lock = NSLock()
    private var _failCreate = false, _failSave = false, _holdCreate = false
    var failCreate: Bool { get { lock.withLock { _failCreate } } set { lock.withLock { _failCreate = newValue } } }
    var failSave: Bool { get { lock.withLock { _failSave } } set { lock.withLock { _failSave = newValue } } }
    var holdCreate: Bool { get { lock.withLock { _holdCreate } } set { lock.withLock { _holdCreate = newValue } } }
    let release = DispatchSemaphore(value: 0)

    init(_ inner: DirectoryProvisioner) { self.inner = inner }

    func create(nsid: UInt32, format: NamespaceFormat, nsze: UInt64, nmic: UInt8) throws -> Namespace {
        if holdCreate { release.wait() }
        if failCreate { throw ImageBackendError(path: "ns\(nsid).img", operation: "create", errno: ENOSPC) }
        return try inner.create(nsid: nsid, format: format, nsze: nsze, nmic: nmic)
    }
    func remove(nsid: UInt32) throws { try inner.remove(nsid: nsid) }
    func save(_ records: [NamespaceRecord]) throws {
        if failSave { throw ImageBackendError(path: "namespaces.state", operation: "write", errno: EIO) }
        try inner.save(records)
    }
}
