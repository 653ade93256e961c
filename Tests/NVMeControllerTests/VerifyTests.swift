import BlockIO
import Foundation
import HostMemory
import NVMeController
import NVMeSpec
import Testing

/// Verify (NVM opcode 0Ch, NVMe 1.4 §6.14).
@Suite("Verify")
struct VerifyTests {
    static func verify(slba: UInt64, nlb: Int, prinfo: UInt8 = 0, ilbrt: UInt32 = 0) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: NVMOpcode.verify.rawValue, nsid: 1, prp1: 0xDEAD_0000)
        e.slba = slba
        e.nlb = UInt16(nlb - 1)
        e.cdw12 |= UInt32(prinfo) << 26
        e.cdw14 = ilbrt
        return e
    }

    @Test("Reads the LBAs in chunks of at most 512 KiB and transfers nothing")
    func readsWithoutTransfer() throws {
        let h = try TestHost(blocks: 4096)
        h.bringUp()
        let before = h.peek(TestHost.dataBase, 4096)
        // 2048 blocks of 512 bytes: 1 MiB, two chunks; the data pointer is never used.
        #expect(h.run(Self.verify(slba: 100, nlb: 2048), qid: 1).status == .success)
        let reads = h.testBackend.submitted.filter { $0.operation == .read }
        let expected: [UInt64] = [51_200, 575_488]  // LBA 100 and LBA 1124, × 512
        #expect(reads.map(\.offset) == expected)
        #expect(reads.allSatisfy { $0.length == 524_288 })
        #expect(h.peek(TestHost.dataBase, 4096) == before)
        #expect(h.run(Self.verify(slba: 4095, nlb: 2), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
    }

    @Test("A media error is Unrecovered Read Error")
    func mediaError() throws {
        let h = try TestHost(blocks: 64)
        h.bringUp()
        try h.controller.addFault("1 read 10 EIO once")
        #expect(h.run(Self.verify(slba: 8, nlb: 4), qid: 1).status == NVMeStatus.unrecoveredReadError)
        #expect(h.run(Self.verify(slba: 8, nlb: 4), qid: 1).status == .success)
    }

    @Test("An LBA marked by Write Uncorrectable fails a Verify as it fails a Read")
    func uncorrectable() throws {
        let h = try TestHost(blocks: 64)
        h.bringUp()
        var wu = SubmissionQueueEntry(opcode: NVMOpcode.writeUncorrectable.rawValue, nsid: 1)
        wu.slba = 20
        wu.nlb = 1
        #expect(h.run(wu, qid: 1).status == .success)
        #expect(h.run(Self.verify(slba: 16, nlb: 8), qid: 1).status == NVMeStatus.unrecoveredReadError)
        #expect(h.run(Self.verify(slba: 22, nlb: 8), qid: 1).status == .success)
    }

    @Test("Copy: a marked source is Unrecovered Read Error (DW0 its range); the destination's marks are cleared")
    func copyAndUncorrectable() throws {
        let h = try TestHost(blocks: 64)
        h.bringUp()
        func mark(_ slba: UInt64, _ n: UInt16) -> NVMeStatus {
            var wu = SubmissionQueueEntry(opcode: NVMOpcode.writeUncorrectable.rawValue, nsid: 1)
            wu.slba = slba
            wu.nlb = n - 1
            return h.run(wu, qid: 1).status
        }
        func copy(to sdlba: UInt64, _ ranges: [(UInt64, UInt16)]) -> CompletionQueueEntry {
            var list = [UInt8](repeating: 0, count: 32 * ranges.count)
            for (i, r) in ranges.enumerated() {
                list.withUnsafeMutableBytes { $0.put64(r.0, at: i * 32 + 8); $0.put16(r.1 - 1, at: i * 32 + 16) }
            }
            h.poke(0x300000, list)
            var e = SubmissionQueueEntry(opcode: NVMOpcode.copy.rawValue, nsid: 1, prp1: 0x300000)
            e.slba = sdlba
            e.cdw12 = UInt32(ranges.count - 1)
            return h.run(e, qid: 1)
        }
        #expect(mark(10, 2) == .success && mark(40, 4) == .success)
        let refused = copy(to: 30, [(0, 4), (9, 2)])
        #expect(refused.status == NVMeStatus.unrecoveredReadError && refused.dw0 == 1)
        #expect(copy(to: 38, [(0, 4), (20, 2)]).status == .success)   // LBAs 38-43: 40-43 no longer marked
        #expect(h.run(TestHost.read(slba: 40, nlb: 4, prp1: TestHost.dataBase), qid: 1).status == .success)
    }

    @Test("Identify ONCS bit 7 and the effects log advertise Verify")
    func advertised() throws {
        let h = try TestHost()
        #expect(h.enable().rdy)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: 0x300000, cdw10: 1)).status == .success)
        let id = h.peek(0x300000, 4096).withUnsafeBytes { IdentifyController(bytes: $0)! }
        #expect(id.oncs & 0x80 != 0)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: 0x300000,
                                             cdw10: 0x05 | UInt32(4096 / 4 - 1) << 16)).status == .success)
        let iocs = h.peek(0x300000 + 1024 + 4 * 0x0C, 4)
        #expect(iocs[0] & 1 == 1)
    }

    @Test("PRCHK checks the stored PI, across chunks, with the failing LBA logged; PRACT is refused")
    func protectionChecked() throws {
        let f = NamespaceFormat(lbads: 9, ms: 8, pi: .type1)
        let rig = try MetadataRig(f)
        // 64 blocks of valid PI, written with PRACT in two commands.
        for half in 0..<2 {
            let slba = UInt64(half * 32)
            #expect(rig.write(slba: slba, data: TestHost.pattern(32 * 512, seed: UInt8(half)), meta: [], prinfo: 0x8,
                              ilbrt: UInt32(slba)) == .success)
        }
        #expect(rig.host.run(Self.verify(slba: 0, nlb: 64, prinfo: 0x7, ilbrt: 0), qid: 1).status == .success)
        // Wrong ILBRT for type 1; PRACT on a Verify.
        #expect(rig.host.run(Self.verify(slba: 4, nlb: 4, prinfo: 0x1, ilbrt: 5), qid: 1).status
                == NVMeStatus.invalidProtectionInformation.withDNR)
        #expect(rig.host.run(Self.verify(slba: 4, nlb: 4, prinfo: 0x8, ilbrt: 4), qid: 1).status
                == NVMeStatus.invalidProtectionInformation.withDNR)
        // A corrupted reference tag at LBA 50 fails the check.
        var b = rig.metadata.read(offset: 50 * 8 + 7, count: 1)
        b[0] ^= 0x40
        rig.metadata.write(b, at: 50 * 8 + 7)
        #expect(rig.host.run(Self.verify(slba: 40, nlb: 20, prinfo: 0x1, ilbrt: 40), qid: 1).status
                == NVMeStatus.endToEndReferenceTagCheckError)
        let e = rig.host.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: 0x300000,
                                                    cdw10: 0x01 | UInt32(64 / 4 - 1) << 16))
        #expect(e.status == .success)
        #expect(rig.host.peek(0x300000, 64).withUnsafeBytes { ErrorInformationLogEntry(bytes: $0)! }.lba == 50)
        // Without PRCHK nothing is checked.
        #expect(rig.host.run(Self.verify(slba: 40, nlb: 20), qid: 1).status == .success)
    }

    @Test("Chunks continue the reference tags: a failure in the second chunk names its LBA")
    func referenceTagsAcrossChunks() throws {
        let f = NamespaceFormat(lbads: 9, ms: 8, pi: .type2)
        let data = TestBackend(size: 2048 * 512)
        let metadata = TestBackend(size: 2048 * 8)
        let ns = Namespace(nsid: 1, backend: data, format: f, metadata: metadata)
        let h = try TestHost(namespaces: [ns], backends: [data])
        h.bringUp()
        // Type 2: PI written by the host with reference tags 7000 + i.
        var meta = [UInt8](repeating: 0, count: 2048 * 8)
        let zeros = [UInt8](repeating: 0, count: 512)
        let guardTag = zeros.withUnsafeBytes { CRC16T10DIF.checksum($0) }
        for i in 0..<2048 {
            ProtectionInformation(guardTag: guardTag, applicationTag: 0, referenceTag: 7000 + UInt32(i))
                .withStore(into: &meta, at: i * 8)
        }
        metadata.write(meta, at: 0)
        #expect(h.run(Self.verify(slba: 0, nlb: 2048, prinfo: 0x5, ilbrt: 7000), qid: 1).status == .success)
        meta[1500 * 8] ^= 1  // guard of LBA 1500, in the second 1024-block chunk
        metadata.write(Array(meta[(1500 * 8)..<(1500 * 8 + 8)]), at: 1500 * 8)
        #expect(h.run(Self.verify(slba: 0, nlb: 2048, prinfo: 0x5, ilbrt: 7000), qid: 1).status
                == NVMeStatus.endToEndGuardCheckError)
        #expect(h.run(Self.verify(slba: 0, nlb: 2048, prinfo: 0x1, ilbrt: 7000), qid: 1).status == .success)
    }
}
