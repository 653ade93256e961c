import BlockIO
import Foundation
import HostMemory
import NVMeController
import NVMeSpec
import Testing

/// Collects trace events (the controller's `TraceSink`).
final class EventLog: TraceSink, @unchecked Sendable {
    private let events = Locked<[TraceEvent]>([])
    var isEnabled: Bool { true }
    func record(_ event: TraceEvent) { events.withLock { $0.append(event) } }
    var lines: [String] { events.withLock { $0.map(\.line) } }
    func clear() { events.withLock { $0.removeAll() } }
}

/// A namespace of one format on test backends (data and metadata in
/// memory, metadata of LBA n at n × ms), driven through registers and
/// host memory: data buffer at `dataAddress`, separate metadata at `metadataAddress`.
struct MetadataRig {
    let host: TestHost
    let data: TestBackend
    let metadata: TestBackend
    let format: NamespaceFormat
    let trace: EventLog
    static let dataAddress: UInt64 = TestHost.dataBase
    static let metadataAddress: UInt64 = 0x700000
    static let blocks: UInt64 = 64

    init(_ format: NamespaceFormat, deallocated: Bool = false) throws {
        self.format = format
        data = TestBackend(size: Self.blocks << UInt64(format.lbads))
        metadata = TestBackend(size: max(1, Self.blocks * UInt64(format.ms)))
        if deallocated && format.ms > 0 {
            var m = [UInt8](repeating: 0, count: Int(Self.blocks) * Int(format.ms))
            m.withUnsafeMutableBytes { format.deallocatedMetadata(into: $0) }
            metadata.write(m, at: 0)
        }
        trace = EventLog()
        let ns = Namespace(nsid: 1, backend: data, format: format, metadata: format.hasMetadata ? metadata : nil)
        host = try TestHost(namespaces: [ns], backends: [data], trace: trace)
        host.bringUp()
    }

    /// A Read/Write/Compare with an SGL data block for the data buffer and
    /// MPTR at `metadataAddress` (PSDT 01b: a contiguous metadata buffer).
    func command(_ op: NVMOpcode, slba: UInt64, nlb: Int, prinfo: UInt8 = 0, ilbrt: UInt32 = 0,
                 appTag: UInt16 = 0, appMask: UInt16 = 0, hostDataBytes: Int) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: op.rawValue, nsid: 1)
        e.psdt = 1
        let d = SGLDescriptor(address: Self.dataAddress, length: UInt32(hostDataBytes), type: .dataBlock)
        e.prp1 = d.low
        e.prp2 = d.high
        e.mptr = Self.metadataAddress
        e.slba = slba
        e.nlb = UInt16(nlb - 1)
        e.cdw12 |= UInt32(prinfo) << 26
        e.cdw14 = ilbrt
        e.cdw15 = UInt32(appMask) << 16 | UInt32(appTag)
        return e
    }

    /// True when PRACT strips the PI (no metadata on the bus).
    func stripped(_ prinfo: UInt8) -> Bool { format.pi != .none && prinfo & 8 != 0 && format.ms == 8 }

    func hostDataBytes(nlb: Int, prinfo: UInt8) -> Int {
        format.extended && !stripped(prinfo) ? nlb * format.extendedLBASize : nlb * format.lbaSize
    }

    /// Places `data` and `meta` (nlb blocks each) in host memory the way the
    /// format transfers them.
    func place(data: [UInt8], meta: [UInt8], nlb: Int, prinfo: UInt8) {
        if format.extended && !stripped(prinfo) {
            var buffer: [UInt8] = []
            for i in 0..<nlb {
                buffer += data[(i * format.lbaSize)..<((i + 1) * format.lbaSize)]
                buffer += meta[(i * Int(format.ms))..<((i + 1) * Int(format.ms))]
            }
            host.poke(Self.dataAddress, buffer)
        } else {
            host.poke(Self.dataAddress, data)
            if !stripped(prinfo) { host.poke(Self.metadataAddress, meta) }
        }
    }

    /// The data and metadata a read left in host memory.
    func fetch(nlb: Int, prinfo: UInt8) -> (data: [UInt8], meta: [UInt8]) {
        let ms = Int(format.ms)
        if format.extended && !stripped(prinfo) {
            let buffer = host.peek(Self.dataAddress, nlb * format.extendedLBASize)
            var d: [UInt8] = [], m: [UInt8] = []
            for i in 0..<nlb {
                let at = i * format.extendedLBASize
                d += buffer[at..<(at + format.lbaSize)]
                m += buffer[(at + format.lbaSize)..<(at + format.extendedLBASize)]
            }
            return (d, m)
        }
        return (host.peek(Self.dataAddress, nlb * format.lbaSize), stripped(prinfo) ? [] : host.peek(Self.metadataAddress, nlb * ms))
    }

    func write(slba: UInt64, data: [UInt8], meta: [UInt8], prinfo: UInt8 = 0, ilbrt: UInt32 = 0, appTag: UInt16 = 0,
               appMask: UInt16 = 0) -> NVMeStatus {
        let nlb = data.count / format.lbaSize
        place(data: data, meta: meta, nlb: nlb, prinfo: prinfo)
        return host.run(command(.write, slba: slba, nlb: nlb, prinfo: prinfo, ilbrt: ilbrt, appTag: appTag, appMask: appMask,
                                hostDataBytes: hostDataBytes(nlb: nlb, prinfo: prinfo)), qid: 1).status
    }

    func read(slba: UInt64, nlb: Int, prinfo: UInt8 = 0, ilbrt: UInt32 = 0, appTag: UInt16 = 0, appMask: UInt16 = 0)
        -> (status: NVMeStatus, data: [UInt8], meta: [UInt8]) {
        host.poke(Self.dataAddress, [UInt8](repeating: 0xEE, count: nlb * format.extendedLBASize))
        host.poke(Self.metadataAddress, [UInt8](repeating: 0xEE, count: nlb * Int(format.ms)))
        let s = host.run(command(.read, slba: slba, nlb: nlb, prinfo: prinfo, ilbrt: ilbrt, appTag: appTag, appMask: appMask,
                                 hostDataBytes: hostDataBytes(nlb: nlb, prinfo: prinfo)), qid: 1).status
        let (d, m) = fetch(nlb: nlb, prinfo: prinfo)
        return (s, d, m)
    }

    /// The stored metadata of `nlb` blocks from `slba`.
    func stored(slba: UInt64, nlb: Int) -> [UInt8] {
        metadata.read(offset: slba * UInt64(format.ms), count: nlb * Int(format.ms))
    }

    /// The PI tuple the host computes for block `i` (reference: bitwise CRC).
    func expectedPI(data: [UInt8], meta: [UInt8], block i: Int, appTag: UInt16, ilbrt: UInt32) -> ProtectionInformation {
        let ms = Int(format.ms)
        var bytes = Array(data[(i * format.lbaSize)..<((i + 1) * format.lbaSize)])
        bytes += meta[(i * ms)..<(i * ms + format.piOffset)]
        let crc = bytes.withUnsafeBytes { CRC16T10DIF.bitwise($0) }
        let ref = format.pi == .type3 ? ilbrt : ilbrt &+ UInt32(i)
        return ProtectionInformation(guardTag: crc, applicationTag: appTag, referenceTag: ref)
    }

    static func pi(in meta: [UInt8], block i: Int, format: NamespaceFormat) -> ProtectionInformation {
        meta.withUnsafeBytes { ProtectionInformation(at: $0.baseAddress! + i * Int(format.ms) + format.piOffset) }
    }
}

/// One cell of the round-trip matrix.
struct MetadataCase: CustomStringConvertible, Sendable {
    var format: NamespaceFormat
    var pract: Bool
    var description: String { "\(format)\(pract ? ", PRACT" : "")" }

    static let all: [MetadataCase] = {
        var out: [MetadataCase] = []
        for lbads: UInt8 in [9, 12] {
            for ms: UInt16 in [8, 16, 64] {
                for extended in [false, true] {
                    for pi in ProtectionType.allCases {
                        for piFirst in pi == .none ? [false] : [false, true] {
                            for pract in [false, true] {
                                out.append(MetadataCase(format: NamespaceFormat(lbads: lbads, ms: ms, extended: extended,
                                                                                pi: pi, piFirst: piFirst), pract: pract))
                            }
                        }
                    }
                }
            }
        }
        return out
    }()
}

@Suite("Metadata and end-to-end protection (NVMe 1.4 §8.2, §8.3)")
struct MetadataTests {
    @Test("CRC-16 T10-DIF: check value, tables against the bitwise reference")
    func crc() {
        let check = Array("123456789".utf8).withUnsafeBytes { CRC16T10DIF.checksum($0) }
        #expect(check == 0xD0DB)
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 7, 8, 9, 63, 512, 4096, 4099] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes.withUnsafeBytes { #expect(CRC16T10DIF.checksum($0) == CRC16T10DIF.bitwise($0)) }
            // Continuing over two pieces equals one pass.
            let split = n / 3
            let a = bytes.withUnsafeBytes { CRC16T10DIF.update(0, UnsafeRawBufferPointer(rebasing: $0[0..<split])) }
            let b = bytes.withUnsafeBytes { CRC16T10DIF.update(a, UnsafeRawBufferPointer(rebasing: $0[split...])) }
            bytes.withUnsafeBytes { #expect(b == CRC16T10DIF.bitwise($0)) }
        }
    }

    @Test("Identify Namespace advertises the formats, MC, DPC and the formatted DPS/FLBAS")
    func identify() throws {
        let f = NamespaceFormat(lbads: 12, ms: 16, extended: true, pi: .type2, piFirst: true)
        let rig = try MetadataRig(f)
        let e = rig.host.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: 1, prp1: 0x300000, cdw10: 0))
        #expect(e.status == .success)
        let id = rig.host.peek(0x300000, 4096).withUnsafeBytes { IdentifyNamespace(bytes: $0)! }
        #expect(id.nlbaf == 7 && id.mc == 3 && id.dpc == 0x1F)
        #expect(id.flbas == 0x16 && id.dps == 0x0A)
        #expect(id.formattedLBAFormat == LBAFormat(ms: 16, lbads: 12, rp: 1))
        #expect((0..<8).map { id.lbaf[$0] } == NamespaceFormat.lbaFormats)
    }

    @Test("Write then read back, every format × extended/separate × PI type × PIL × PRACT", arguments: MetadataCase.all)
    func roundTrip(_ c: MetadataCase) throws {
        let f = c.format
        let rig = try MetadataRig(f)
        let nlb = 3, slba: UInt64 = 5
        let ms = Int(f.ms)
        let appTag: UInt16 = 0x1234
        let ilbrt = f.pi == .type1 ? UInt32(slba) : 0xABC0
        let data = TestHost.pattern(nlb * f.lbaSize, seed: 7)
        var meta = TestHost.pattern(nlb * ms, seed: 99)
        // Every check the type has (type 3 has no reference tag check).
        let prinfo: UInt8 = (c.pract ? 0x8 : 0) | (f.pi == .type3 ? 0x6 : 0x7)
        if f.pi != .none && !c.pract {
            // The host supplies valid PI itself.
            for i in 0..<nlb {
                let pi = rig.expectedPI(data: data, meta: meta, block: i, appTag: appTag, ilbrt: ilbrt)
                meta.withUnsafeMutableBytes { pi.store(to: $0.baseAddress! + i * ms + f.piOffset) }
            }
        }
        #expect(rig.write(slba: slba, data: data, meta: meta, prinfo: prinfo, ilbrt: ilbrt, appTag: appTag, appMask: 0xFFFF) == .success)
        #expect(rig.data.read(offset: slba << UInt64(f.lbads), count: data.count) == data)
        let stored = rig.stored(slba: slba, nlb: nlb)
        for i in 0..<nlb {
            let range = (i * ms)..<((i + 1) * ms)
            if f.pi == .none {
                #expect(Array(stored[range]) == Array(meta[range]), "metadata of block \(i) stored as sent")
                continue
            }
            let hostMeta = rig.stripped(prinfo) ? [UInt8](repeating: 0, count: nlb * ms) : meta
            #expect(MetadataRig.pi(in: stored, block: i, format: f)
                    == rig.expectedPI(data: data, meta: hostMeta, block: i, appTag: appTag, ilbrt: ilbrt), "PI of block \(i)")
            if !rig.stripped(prinfo) {
                // Bytes outside the tuple are the host's.
                for b in 0..<ms where !(f.piOffset..<(f.piOffset + 8)).contains(b) {
                    #expect(stored[i * ms + b] == meta[i * ms + b])
                }
            }
        }
        let back = rig.read(slba: slba, nlb: nlb, prinfo: prinfo, ilbrt: ilbrt, appTag: appTag, appMask: 0xFFFF)
        #expect(back.status == .success)
        #expect(back.data == data)
        if !rig.stripped(prinfo) { #expect(back.meta == stored) }
    }

    @Test("A separate-metadata Read issues one data AIO and one metadata AIO, and completes once")
    func twoAIOsInTheTrace() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 9, ms: 8))
        #expect(rig.write(slba: 0, data: TestHost.pattern(1024, seed: 1), meta: TestHost.pattern(16, seed: 2)) == .success)
        rig.trace.clear()
        #expect(rig.read(slba: 0, nlb: 2).status == .success)
        let adds = rig.trace.lines.filter { $0.hasPrefix("pci_nvme_req_add_aio") }
        #expect(adds.count == 2)
        #expect(adds.contains { $0.contains("op=read") && $0.contains("area=data") && $0.contains("offset=0 len=1024") })
        #expect(adds.contains { $0.contains("op=read") && $0.contains("area=metadata") && $0.contains("offset=0 len=16") })
        #expect(rig.trace.lines.filter { $0.hasPrefix("pci_nvme_enqueue_req_completion") }.count == 1)
    }

    @Test("PRACT without PRCHK on a read of PI-only metadata reads no metadata at all")
    func strippedUncheckedReadSkipsMetadata() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 12, ms: 8, pi: .type3))
        #expect(rig.write(slba: 0, data: TestHost.pattern(4096, seed: 1), meta: [], prinfo: 0x8) == .success)
        rig.trace.clear()
        #expect(rig.read(slba: 0, nlb: 1, prinfo: 0x8).status == .success)
        #expect(rig.trace.lines.filter { $0.hasPrefix("pci_nvme_req_add_aio") }.map { $0.contains("area=data") } == [true])
    }

    @Test("Failing only the metadata AIO is Unrecovered Read Error; failing both keeps the first error, one CQE")
    func metadataAIOErrors() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 9, ms: 8))
        try rig.host.controller.addFault("1 read:metadata 0-3 EIO once")
        #expect(rig.host.controller.faultLines().first?.hasPrefix("1 read:metadata 0-3 EIO times=1") == true)
        let r = rig.read(slba: 2, nlb: 1)
        #expect(r.status == NVMeStatus.unrecoveredReadError)  // media error: DNR clear
        #expect(rig.read(slba: 2, nlb: 1).status == .success)  // `once`
        // Data-only rules leave the metadata alone.
        try rig.host.controller.addFault("1 read:data all EIO once")
        #expect(rig.read(slba: 2, nlb: 1).status == NVMeStatus.unrecoveredReadError)
        // Both fail (a rule without an area matches both): one completion.
        try rig.host.controller.addFault("1 read 2 EIO times=2")
        rig.trace.clear()
        #expect(rig.read(slba: 2, nlb: 1).status == NVMeStatus.unrecoveredReadError)
        let lines = rig.trace.lines
        #expect(lines.filter { $0.hasPrefix("pci_nvme_err_aio") }.count == 2)
        #expect(lines.filter { $0.hasPrefix("pci_nvme_enqueue_req_completion") }.count == 1)
        #expect(throws: FaultSpecError.self) { try rig.host.controller.addFault("1 read:meta all EIO") }
    }

    @Test("An Internal Error of the data AIO trumps the metadata AIO's Write Fault, whichever ends first",
          arguments: [false, true])
    func internalErrorTrumpsMetadataWriteFault(metadataFirst: Bool) throws {
        let f = NamespaceFormat(lbads: 9, ms: 8, pi: .type1)
        let rig = try MetadataRig(f)
        rig.data.addRule(.init(.hold, operations: [.discard]))
        rig.metadata.addRule(.init(.hold, operations: [.write]))
        // Dataset Management, deallocate LBAs 0-3: a discard AIO on the image and a metadata write.
        var range = [UInt8](repeating: 0, count: 16)
        range.withUnsafeMutableBytes { DatasetManagementRange(slba: 0, nlb: 4).encode(into: $0) }
        rig.host.poke(0x300000, range)
        let cid = rig.host.place(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: 0x300000,
                                                      cdw10: 0, cdw11: 0x4), qid: 1)
        rig.host.ring(1)
        #expect(rig.data.waitForHeld(count: 1) && rig.metadata.waitForHeld(count: 1))
        if metadataFirst {
            #expect(rig.metadata.releaseAll(errno: EIO) == 1)
            #expect(rig.host.peekCQE(1) == nil)
            #expect(rig.data.releaseAll(errno: EIO) == 1)
        } else {
            #expect(rig.data.releaseAll(errno: EIO) == 1)
            #expect(rig.host.peekCQE(1) == nil)
            #expect(rig.metadata.releaseAll(errno: EIO) == 1)
        }
        let e = try #require(rig.host.reap(1))
        #expect(e.cid == cid && e.status == NVMeStatus.internalError)
    }

    @Test("A corrupted PI byte in the metadata is the matching check error, logged with its LBA")
    func corruptedPI() throws {
        let f = NamespaceFormat(lbads: 9, ms: 8, pi: .type1)
        let rig = try MetadataRig(f)
        let data = TestHost.pattern(4 * 512, seed: 3)
        #expect(rig.write(slba: 8, data: data, meta: [], prinfo: 0x8 | 0x7, ilbrt: 8, appTag: 0x42) == .success)
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0xF, ilbrt: 8, appTag: 0x42, appMask: 0xFFFF).status == .success)
        // Flip one guard byte of LBA 10 (block 2 of the read).
        var b = rig.metadata.read(offset: 10 * 8, count: 1)
        b[0] ^= 0x01
        rig.metadata.write(b, at: 10 * 8)
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x4, ilbrt: 8).status == NVMeStatus.endToEndGuardCheckError)
        // Without the guard check the same read passes.
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x1, ilbrt: 8).status == .success)
        // Error log entry 0 (newest): the failing LBA.
        let e = rig.host.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: 0x300000,
                                                    cdw10: 0x01 | UInt32(64 / 4 - 1) << 16))
        #expect(e.status == .success)
        let entry = rig.host.peek(0x300000, 64).withUnsafeBytes { ErrorInformationLogEntry(bytes: $0)! }
        #expect(entry.lba == 10 && entry.status == NVMeStatus.endToEndGuardCheckError)
        // Application tag and reference tag mismatches.
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x2, ilbrt: 8, appTag: 0x43, appMask: 0xFFFF).status
                == NVMeStatus.endToEndApplicationTagCheckError)
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x2, ilbrt: 8, appTag: 0x43, appMask: 0xFF00).status == .success)
        b = rig.metadata.read(offset: 9 * 8 + 7, count: 1)
        b[0] ^= 0x80
        rig.metadata.write(b, at: 9 * 8 + 7)
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x1, ilbrt: 8).status == NVMeStatus.endToEndReferenceTagCheckError)
        // Type 1: ILBRT must be the SLBA's low 32 bits when the reference tag is checked.
        #expect(rig.read(slba: 8, nlb: 4, prinfo: 0x8 | 0x1, ilbrt: 9).status == NVMeStatus.invalidProtectionInformation.withDNR)
    }

    @Test("The corrupt fault flips a bit of a read; PI catches it in the data or in the metadata")
    func corruptFault() throws {
        let f = NamespaceFormat(lbads: 9, ms: 16, pi: .type1, piFirst: false)
        let rig = try MetadataRig(f)
        let data = TestHost.pattern(4 * 512, seed: 12)
        #expect(rig.write(slba: 0, data: data, meta: [UInt8](repeating: 0, count: 64), prinfo: 0x8, ilbrt: 0) == .success)
        let c = rig.host.controller
        try c.addFault("1 read:data 2 corrupt once")
        var r = rig.read(slba: 0, nlb: 4, prinfo: 0x4, ilbrt: 0)
        #expect(r.status == NVMeStatus.endToEndGuardCheckError)
        var flipped = data
        flipped[2 * 512] ^= 1
        #expect(r.data == flipped)
        // Metadata: the first byte of LBA 3's metadata (before the PI, so in the guard's range).
        try c.addFault("1 read:metadata 3 corrupt once")
        r = rig.read(slba: 1, nlb: 3, prinfo: 0x4, ilbrt: 1)
        #expect(r.status == NVMeStatus.endToEndGuardCheckError)
        #expect(r.meta[2 * 16] == 1)
        #expect(rig.read(slba: 0, nlb: 4, prinfo: 0x7, ilbrt: 0).status == .success)
        #expect(throws: FaultSpecError.self) { try c.addFault("1 write 0 corrupt") }
        #expect(c.faultLines().isEmpty)
        try c.addFault("* read 0-1 corrupt times=2")
        #expect(c.faultLines() == ["1 read 0-1 corrupt times=2 # id 3"])
    }

    @Test("A bad PI in a Write is refused before anything is written")
    func writeCheckedBeforeWriting() throws {
        let f = NamespaceFormat(lbads: 9, ms: 8, pi: .type2)
        let rig = try MetadataRig(f)
        let data = TestHost.pattern(1024, seed: 5)
        var meta = [UInt8](repeating: 0, count: 16)
        for i in 0..<2 {
            let pi = rig.expectedPI(data: data, meta: meta, block: i, appTag: 7, ilbrt: 100)
            meta.withUnsafeMutableBytes { pi.store(to: $0.baseAddress! + i * 8) }
        }
        meta[8] ^= 0xFF  // guard of block 1
        #expect(rig.write(slba: 0, data: data, meta: meta, prinfo: 0x7, ilbrt: 100, appTag: 7, appMask: 0xFFFF)
                == NVMeStatus.endToEndGuardCheckError)
        #expect(rig.data.submitted.isEmpty && rig.metadata.submitted.isEmpty)
        // Not checked without PRCHK.
        #expect(rig.write(slba: 0, data: data, meta: meta, prinfo: 0, ilbrt: 100) == .success)
    }

    @Test("Escapes: application tag FFFFh disables checks; type 3 needs the reference tag FFFFFFFFh too")
    func escapes() throws {
        for type in [ProtectionType.type1, .type3] {
            let f = NamespaceFormat(lbads: 9, ms: 8, pi: type)
            let rig = try MetadataRig(f)
            let data = TestHost.pattern(512, seed: 9)
            var meta = [UInt8](repeating: 0, count: 8)
            ProtectionInformation(guardTag: 0xBAD, applicationTag: 0xFFFF, referenceTag: 0x1234).withStore(into: &meta)
            #expect(rig.write(slba: 3, data: data, meta: meta) == .success)
            let checks: UInt8 = type == .type3 ? 0x6 : 0x7
            let s = rig.read(slba: 3, nlb: 1, prinfo: checks, ilbrt: 3, appTag: 1, appMask: 0xFFFF).status
            #expect(s == (type == .type1 ? .success : NVMeStatus.endToEndGuardCheckError))
            ProtectionInformation(guardTag: 0xBAD, applicationTag: 0xFFFF, referenceTag: 0xFFFF_FFFF).withStore(into: &meta)
            #expect(rig.write(slba: 3, data: data, meta: meta) == .success)
            #expect(rig.read(slba: 3, nlb: 1, prinfo: checks, ilbrt: 3, appTag: 1, appMask: 0xFFFF).status == .success)
            if type == .type3 {
                // No reference tag check on type 3: PRCHK bit 0 is refused, without DNR (QEMU 7.2).
                #expect(rig.read(slba: 3, nlb: 1, prinfo: 0x1, ilbrt: 3).status == NVMeStatus.invalidProtectionInformation)
                #expect(rig.write(slba: 3, data: data, meta: meta, prinfo: 0x9, ilbrt: 3) == NVMeStatus.invalidProtectionInformation)
            }
        }
    }

    @Test("Deallocated and never written blocks read back with checks (PI all FFh); Write Zeroes per PRACT")
    func deallocatedAndZeroed() throws {
        let f = NamespaceFormat(lbads: 12, ms: 16, pi: .type1)
        let rig = try MetadataRig(f, deallocated: true)
        #expect(rig.read(slba: 20, nlb: 2, prinfo: 0x7, ilbrt: 20).status == .success)
        let data = TestHost.pattern(2 * 4096, seed: 4)
        #expect(rig.write(slba: 20, data: data, meta: [UInt8](repeating: 0x11, count: 32), prinfo: 0x8, ilbrt: 20) == .success)
        // Deallocate: data discarded, PI back to FFh, the rest of the metadata zero.
        var range = [UInt8](repeating: 0, count: 16)
        range.withUnsafeMutableBytes { DatasetManagementRange(slba: 20, nlb: 2).encode(into: $0) }
        rig.host.poke(0x300000, range)
        #expect(rig.host.run(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: 0x300000,
                                                  cdw11: 0x4), qid: 1).status == .success)
        var expected = [UInt8](repeating: 0, count: 32)
        expected.withUnsafeMutableBytes { f.deallocatedMetadata(into: $0) }
        #expect(rig.stored(slba: 20, nlb: 2) == expected)
        #expect(rig.read(slba: 20, nlb: 2, prinfo: 0x7, ilbrt: 20).status == .success)
        // Write Zeroes with PRACT: PI generated for zeroed data.
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 30; wz.nlb = 1
        wz.cdw12 |= 0x8 << 26
        wz.cdw14 = 30
        wz.cdw15 = 0x55
        #expect(rig.host.run(wz, qid: 1).status == .success)
        let zeros = [UInt8](repeating: 0, count: 2 * 4096)
        let stored = rig.stored(slba: 30, nlb: 2)
        for i in 0..<2 {
            #expect(MetadataRig.pi(in: stored, block: i, format: f)
                    == rig.expectedPI(data: zeros, meta: [UInt8](repeating: 0, count: 32), block: i, appTag: 0x55, ilbrt: 30))
        }
        #expect(rig.read(slba: 30, nlb: 2, prinfo: 0x8 | 0x7, ilbrt: 30, appTag: 0x55, appMask: 0xFFFF).status == .success)
        // Without PRACT the PI is zero (§6.17), so a reference tag check of LBA 31 fails.
        wz.cdw12 &= ~(UInt32(0xF) << 26)
        #expect(rig.host.run(wz, qid: 1).status == .success)
        #expect(rig.stored(slba: 30, nlb: 2) == [UInt8](repeating: 0, count: 32))
        #expect(rig.read(slba: 31, nlb: 1, prinfo: 0x1, ilbrt: 31).status == NVMeStatus.endToEndReferenceTagCheckError)
        // PRCHK on Write Zeroes: Invalid Protection Information.
        wz.cdw12 |= 0x4 << 26
        #expect(rig.host.run(wz, qid: 1).status == NVMeStatus.invalidProtectionInformation.withDNR)
    }

    @Test("PRINFO is ignored on a namespace without protection information")
    func prinfoIgnoredWithoutPI() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 9, ms: 8))
        let meta = TestHost.pattern(8, seed: 1)
        #expect(rig.write(slba: 1, data: TestHost.pattern(512, seed: 2), meta: meta, prinfo: 0xF, ilbrt: 77) == .success)
        #expect(rig.stored(slba: 1, nlb: 1) == meta)
        #expect(rig.read(slba: 1, nlb: 1, prinfo: 0xF, ilbrt: 5).status == .success)
    }

    @Test("Metadata pointer errors: misaligned, outside memory, metadata SGL length")
    func metadataPointerErrors() throws {
        let rig = try MetadataRig(NamespaceFormat(lbads: 9, ms: 16))
        var e = rig.command(.read, slba: 0, nlb: 2, hostDataBytes: 1024)
        e.mptr = MetadataRig.metadataAddress + 2
        #expect(rig.host.run(e, qid: 1).status == NVMeStatus.invalidField.withDNR)
        e.mptr = UInt64(TestHost.memorySize) - 16  // 32 bytes needed, 16 inside
        #expect(rig.host.run(e, qid: 1).status.kind == NVMeStatus.dataTransferError.kind)
        // PSDT 10b: MPTR points at one SGL descriptor.
        e.psdt = 2
        e.mptr = 0x300000
        rig.host.poke(0x300000, SGLDescriptor(address: MetadataRig.metadataAddress, length: 32).bytes)
        #expect(rig.host.run(e, qid: 1).status == .success)
        rig.host.poke(0x300000, SGLDescriptor(address: MetadataRig.metadataAddress, length: 16).bytes)
        #expect(rig.host.run(e, qid: 1).status == NVMeStatus.metadataSGLLengthInvalid.withDNR)
        e.mptr = 0x300004
        #expect(rig.host.run(e, qid: 1).status == NVMeStatus.invalidField.withDNR)
        // Only the one good command reached the backends.
        #expect(rig.data.submitted.count == 1 && rig.metadata.submitted.count == 1)
    }

    @Test("A checked read whose metadata goes to a bit bucket is checked on the command's own copy")
    func bitBucketMetadataIsStillChecked() throws {
        let f = NamespaceFormat(lbads: 9, ms: 16, pi: .type1)
        let rig = try MetadataRig(f)
        #expect(rig.write(slba: 0, data: TestHost.pattern(2048, seed: 2), meta: [UInt8](repeating: 0, count: 64),
                          prinfo: 0x8, ilbrt: 0) == .success)
        var e = rig.command(.read, slba: 0, nlb: 4, prinfo: 0x7, ilbrt: 0, hostDataBytes: 2048)
        e.psdt = 2
        e.mptr = 0x300000
        rig.host.poke(0x300000, SGLDescriptor(address: 0, length: 64, type: .bitBucket).bytes)
        #expect(rig.host.run(e, qid: 1).status == .success)
        #expect(rig.host.peek(MetadataRig.dataAddress, 2048) == TestHost.pattern(2048, seed: 2))
        var b = rig.metadata.read(offset: 2 * 16 + 8, count: 1)  // guard of LBA 2 (PI last)
        b[0] ^= 0x10
        rig.metadata.write(b, at: 2 * 16 + 8)
        #expect(rig.host.run(e, qid: 1).status == NVMeStatus.endToEndGuardCheckError)
    }

    @Test("Compare checks data and metadata (not the PI tuple), Flush flushes both backends")
    func compareAndFlush() throws {
        let f = NamespaceFormat(lbads: 9, ms: 16, pi: .type1, piFirst: true)
        let rig = try MetadataRig(f)
        let data = TestHost.pattern(1024, seed: 6)
        var meta = TestHost.pattern(32, seed: 8)
        #expect(rig.write(slba: 4, data: data, meta: meta, prinfo: 0x8, ilbrt: 4) == .success)
        rig.place(data: data, meta: meta, nlb: 2, prinfo: 0x7)
        let cmp = rig.command(.compare, slba: 4, nlb: 2, prinfo: 0x7, ilbrt: 4, hostDataBytes: 1024)
        #expect(rig.host.run(cmp, qid: 1).status == .success)  // host PI bytes differ: not compared
        meta[12] ^= 1  // a non-PI byte of block 0
        rig.place(data: data, meta: meta, nlb: 2, prinfo: 0x7)
        #expect(rig.host.run(cmp, qid: 1).status == NVMeStatus.compareFailure)
        rig.trace.clear()
        #expect(rig.host.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1).status == .success)
        let adds = rig.trace.lines.filter { $0.hasPrefix("pci_nvme_req_add_aio") }
        #expect(adds.count == 2 && adds.allSatisfy { $0.contains("op=flush") })
        #expect(adds.contains { $0.contains("area=data") } && adds.contains { $0.contains("area=metadata") })
    }

    @Test("A namespace opened from files keeps its format in the metadata file; conflicting options are refused")
    func storage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nvmefs-md-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/ns.img"
        try ImageBackend.create(path: image, size: 1 << 20)
        let f = NamespaceFormat(lbads: 12, ms: 8, pi: .type1)
        var s = try NamespaceStorage.open(imagePath: image, requested: f, explicit: true, readOnly: false)
        #expect(s.nsze == 256 && s.format == f && s.metadata?.size == MetadataFile.headerSize + 256 * 8)
        s.data.close(); s.metadata?.close()
        // Without options the recorded format wins; other explicit options are an error.
        s = try NamespaceStorage.open(imagePath: image, requested: NamespaceFormat(), explicit: false, readOnly: false)
        #expect(s.format == f)
        s.data.close(); s.metadata?.close()
        #expect(throws: NamespaceStorageError.self) {
            try NamespaceStorage.open(imagePath: image, requested: NamespaceFormat(lbads: 9), explicit: true, readOnly: false)
        }
        // Never written blocks read back through the controller with every check on.
        s = try NamespaceStorage.open(imagePath: image, requested: f, explicit: false, readOnly: false, mode: .inline)
        let ns = Namespace(nsid: 1, backend: s.data, format: s.format, metadata: s.metadata, metadataBase: MetadataFile.headerSize,
                           metadataStore: s.store)
        let host = try TestHost(namespaces: [ns], backends: [s.data])
        host.bringUp()
        var e = TestHost.read(slba: 17, nlb: 1, prp1: TestHost.dataBase)
        e.cdw12 |= 0x8 << 26 | 0x7 << 26
        e.cdw14 = 17
        #expect(host.run(e, qid: 1).status == .success)
        host.controller.drainAndSync()
        host.controller.closeBackends()
    }

    @Test("Files kept beside an image are no more open than the image (docs/PERMISSIONS.md)", arguments: [0o600, 0o640, 0o644])
    func sidecarsFollowTheImageMode(imageMode: Int) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nvmefs-md-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/ns.img"
        try ImageBackend.create(path: image, size: 1 << 20)
        func mode(_ path: String) -> mode_t {
            var st = stat()
            return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
        }
        #expect(mode(image) == 0o600)
        #expect(chmod(image, mode_t(imageMode)) == 0)
        let s = try NamespaceStorage.open(imagePath: image, requested: NamespaceFormat(lbads: 12, ms: 8), explicit: true, readOnly: false)
        defer { s.data.close(); s.metadata?.close() }
        #expect(mode(MetadataFile.path(forImage: image)) == mode_t(imageMode))
        var marks = LBARangeSet()
        _ = marks.insert(start: 3, end: 5)
        #expect(s.uncorrectable.save(marks, lbads: 12) == 0)
        #expect(mode(UncorrectableFile.path(forImage: image)) == mode_t(imageMode))
    }
}

extension ProtectionInformation {
    func withStore(into bytes: inout [UInt8], at offset: Int = 0) {
        bytes.withUnsafeMutableBytes { store(to: $0.baseAddress! + offset) }
    }
}
