import BlockIO
import HostMemory
import NVMeController
import NVMeSpec

import Glibc

/// Namespaces with metadata and protection information, as Linux's nvme
/// driver serves them with block integrity off: `namespaces/N/data` carries
/// data only, whatever the format (README, "Metadata").
///
/// - PI formats: PRACT = 1 (the controller generates the PI on write and
///   strips or checks it on read, NVMe 1.4 §8.3.1.2); types 1 and 2 also
///   PRCHK guard and reference tag, ILBRT = the low 32 bits of the SLBA
///   (§8.3.1.5); type 3 PRACT only.
/// - With 8 bytes of metadata that are all PI, nothing else changes: with
///   PRACT no metadata crosses the bus (§8.3.1.2), extended or not.
/// - Otherwise the metadata crosses the bus and the host keeps it in a
///   scratch buffer of its own, mapped as a temporary region while the
///   commands run: zeros on write (the controller fills the PI with PRACT),
///   discarded after a read. A separate format points MPTR at it (PSDT 0,
///   dword aligned, §4.2); an extended format gets an SGL alternating each
///   LBA's data (the caller's memory, no copy) and its metadata (the scratch
///   buffer), §8.2.1: one Last Segment per command, its descriptors in the
///   same scratch buffer after the metadata.
extension NamespaceInfo {
    /// The namespace as Identify Namespace describes it; nil for an LBA data
    /// size the host does not serve (below 512 B or above 4 KiB).
    init?(nsid: UInt32, identify id: IdentifyNamespace) {
        let lbaf = id.formattedLBAFormat
        guard lbaf.lbads >= 9, lbaf.lbads <= 12 else { return nil }
        let type = ProtectionType(rawValue: id.dps & 0x7) ?? .none
        self.init(nsid: nsid, nsze: id.nsze,
                  format: NamespaceFormat(lbads: lbaf.lbads, ms: lbaf.ms, extended: id.extendedMetadata, pi: type,
                                          piFirst: id.dps & 0x8 != 0))
    }

    /// PI enabled: every Read, Write and Write Zeroes sets PRACT.
    var protected: Bool { format.pi != .none && format.ms >= UInt16(ProtectionInformation.size) }
    /// Metadata travels with Read and Write: present, and not just PI that PRACT strips.
    var metadataOnBus: Bool { format.ms > 0 && !(protected && format.ms == UInt16(ProtectionInformation.size)) }
    /// Metadata interleaved with the data in the data buffer.
    var interleaved: Bool { metadataOnBus && format.extended }

    /// Blocks per Read/Write command: MDTS counts the whole data buffer,
    /// metadata included when extended (§8.2.1).
    func blocksPerCommand(maxTransfer: Int) -> Int {
        max(1, maxTransfer / (interleaved ? format.extendedLBASize : blockSize))
    }

    /// Scratch bytes for `blocks` blocks: their metadata, then (extended)
    /// two SGL descriptors per block, 16-byte aligned.
    func scratchLayout(blocks: Int) -> (descriptors: Int, total: Int) {
        let metadata = (blocks * Int(format.ms) + 15) & ~15
        return (metadata, metadata + (interleaved ? blocks * 2 * SGLDescriptor.size : 0))
    }

    /// Sets PRINFO (CDW12 bits 29:26) and ILBRT (CDW14) of a Read, Write or
    /// Write Zeroes of `slba` (`check`: PRCHK guard and reference tag for
    /// types 1 and 2; Write Zeroes checks nothing, §6.17).
    func protect(_ sqe: inout SubmissionQueueEntry, slba: UInt64, check: Bool) {
        guard protected else { return }
        var prinfo: UInt32 = 0x8  // PRACT
        if format.pi != .type3 {
            if check { prinfo |= 0x4 | 0x1 }  // guard, reference tag
            sqe.cdw14 = UInt32(truncatingIfNeeded: slba)
        }
        sqe.cdw12 |= prinfo << 26
    }
}

/// Memory the controller may still write after a given-up command returns:
/// freed when the last reference goes (the parking closure holds one).
final class ScratchMemory: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int
    init(count: Int, zeroed: Bool) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: BuiltinHost.page)
        if zeroed { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: count) }
    }
    deinit { pointer.deallocate() }
}

extension BuiltinHost {
    /// Reads or writes `blocks` whole blocks from `firstLBA`, whose data lies
    /// at host address `dataAddress` (a mapped region): commands split per
    /// `blocksPerCommand`, with the metadata buffer and PRINFO the format
    /// needs, and Force Unit Access on writes when `fua` (CDW12 bit 30).
    func runBlocks(_ ns: NamespaceInfo, write: Bool, firstLBA: UInt64, blocks: Int,
                   dataAddress: UInt64, fua: Bool = false) -> Result<[SlotResult], HostError> {
        var metadata: (region: RegionInfo, memory: ScratchMemory)?
        let layout = ns.scratchLayout(blocks: blocks)
        if ns.metadataOnBus {
            let scratch = ScratchMemory(count: layout.total, zeroed: write)
            do {
                let region = try controller.space.mapAnywhere(length: scratch.count, pointer: scratch.pointer,
                                                              name: "host-metadata", kind: .temporary, above: regionEnd)
                metadata = (region, scratch)
            } catch {
                return .failure(HostError(errno: ENOMEM, "cannot map a metadata buffer of \(scratch.count) bytes: \(error)"))
            }
        }
        var allCompleted = false
        defer {
            if let (region, scratch) = metadata {
                retire(region.id, parking: { { _ = scratch } }, barrier: !allCompleted)
            }
        }
        let lbaSize = ns.blockSize, ms = Int(ns.format.ms)
        let perCommand = ns.blocksPerCommand(maxTransfer: maxTransfer)
        let commands = (blocks + perCommand - 1) / perCommand
        let opcode = write ? NVMOpcode.write.rawValue : NVMOpcode.read.rawValue
        let result = runIO(count: commands) { i, slot, q in
            let first = i * perCommand
            let n = min(perCommand, blocks - first)
            var sqe = SubmissionQueueEntry(opcode: opcode, nsid: ns.nsid)
            sqe.slba = firstLBA + UInt64(first)
            sqe.nlb = UInt16(n - 1)
            ns.protect(&sqe, slba: sqe.slba, check: true)
            if fua && write { sqe.cdw12 |= 1 << 30 }
            let data = dataAddress + UInt64(first * lbaSize)
            if let (region, scratch) = metadata, ns.interleaved {
                let list = layout.descriptors + first * 2 * SGLDescriptor.size
                Self.fillInterleavedSGL(&sqe, data: data, metadata: region.base + UInt64(first * ms), blocks: n, lbaSize: lbaSize,
                                   ms: ms, list: (region.base + UInt64(list), scratch.pointer + list))
            } else {
                q.fillPRP(&sqe, address: data, length: n * lbaSize, slot: slot)
                if let (region, _) = metadata { sqe.mptr = region.base + UInt64(first * ms) }
            }
            return sqe
        }
        if case .success(let results) = result {
            allCompleted = results.allSatisfy { if case .completed = $0 { return true } else { return false } }
        }
        return result
    }

    /// An extended-LBA transfer as one SGL (§4.4, §8.2.1): SGL1 is a Last
    /// Segment descriptor for `list` (host address, memory), which gets for
    /// each block a Data Block descriptor of its data, then one of its metadata.
    static func fillInterleavedSGL(_ sqe: inout SubmissionQueueEntry, data: UInt64, metadata: UInt64, blocks: Int,
                            lbaSize: Int, ms: Int, list: (address: UInt64, pointer: UnsafeMutableRawPointer)) {
        let out = UnsafeMutableRawBufferPointer(start: list.pointer, count: 2 * blocks * SGLDescriptor.size)
        for k in 0..<blocks {
            let at = 2 * k * SGLDescriptor.size
            out.put64(data + UInt64(k * lbaSize), at: at)
            out.put64(UInt64(lbaSize), at: at + 8)  // length; type Data Block (0), sub type Address (0)
            out.put64(metadata + UInt64(k * ms), at: at + 16)
            out.put64(UInt64(ms), at: at + 24)
        }
        let segment = SGLDescriptor(address: list.address, length: UInt32(out.count), type: .lastSegment)
        sqe.psdt = 1  // SGL for data; MPTR unused (extended LBAs)
        sqe.prp1 = segment.low
        sqe.prp2 = segment.high
    }

    // MARK: - Namespace changes

    /// After a Namespace Attribute Changed notice (§5.2.1, Figure 145): the
    /// Changed Namespace List (log 04h, read by `record`) names the
    /// namespaces to identify again; FFFFFFFFh in entry 0 means all of them.
    /// The data files' sizes follow the new table at once.
    func namespacesChanged(log: [UInt8]) {
        guard let list = log.withUnsafeBytes({ NamespaceList(bytes: $0) }) else { return }
        let nsids = list.isOverflow ? namespaces.map(\.nsid) : list.nsids
        for nsid in nsids { reidentify(nsid) }
    }

    /// Identify Namespace `nsid` again and replace its table entry (removed
    /// when it is no longer active or no longer servable).
    func reidentify(_ nsid: UInt32) {
        let info: NamespaceInfo?
        do throws(HostError) {
            let data = try identifyNamespace(nsid)
            info = data.withUnsafeBytes { IdentifyNamespace(bytes: $0) }
                .flatMap { $0.nsze > 0 ? NamespaceInfo(nsid: nsid, identify: $0) : nil }
        } catch {
            logger.warning("built-in host: identifying changed namespace \(nsid) failed: \(error)")
            return
        }
        let (old, new) = stateLock.withLock {
            let old = namespaceTable[nsid]
            let new = info.map { keepingInstance($0, of: old) }
            namespaceTable[nsid] = new
            return (old, new)
        }
        if old != new {
            logger.notice("built-in host: namespace \(nsid) is now \(info.map { "\($0.format), \($0.nsze) blocks" } ?? "gone")")
        }
    }
}

extension BuiltinHost {
    /// Reads the Active Namespace ID list (Identify CNS 02h, NVMe 1.4
    /// §5.15.2.3) and identifies every namespace in it and every namespace
    /// in the host's table again, so the table matches the controller now
    /// (what Linux's namespace rescan does; `rescan`, NVME_IOCTL_RESCAN).
    /// - Throws: the `HostError` of the Identify command.
    public func rescanNamespaces() throws(HostError) {
        let (cqe, list) = adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue,
                                                            cdw10: UInt32(IdentifyCNS.activeNamespaceList.rawValue)),
                                       dataIn: 4096)
        guard cqe.status.isSuccess else { throw HostError(status: cqe.status, "Identify Active Namespace List") }
        let active = list.withUnsafeBytes { NamespaceList(bytes: $0)?.nsids ?? [] }
        for nsid in Set(active).union(namespaces.map(\.nsid)).sorted() { reidentify(nsid) }
    }
}
