import BlockIO
import HostMemory
import NVMeSpec

import Glibc

extension NVMeController {
    /// The namespace of an I/O command, or the status for its NSID (§6.1):
    /// an invalid one (0, above NN, FFFFFFFFh) is Invalid Namespace or
    /// Format, an inactive one Invalid Field in Command.
    func ioNamespace(_ req: Request) -> Result<Namespace, NVMeStatus> {
        let nsid = req.cmd.nsid
        guard isValidNSID(nsid) else {
            guestError(.invalidNs, [("nsid", hex(nsid))])
            return .failure(NVMeStatus.invalidNamespace.withDNR)
        }
        guard let ns = namespace(nsid) else {
            guestError(.inactiveNs, [("nsid", hex(nsid))])
            return .failure(NVMeStatus.invalidField.withDNR)
        }
        return .success(ns)
    }

    /// NVM command set dispatch (NVMe 1.4 §6). Returns a status, or nil while
    /// the request's AIOs are in flight.
    ///
    /// Checks in QEMU's order: an invalid NSID, then Flush (which alone
    /// takes the broadcast NSID), then an inactive NSID, Flush again (which
    /// QEMU runs whatever its fused bits), the opcode, a format in
    /// progress, and the fused bits (here only those of a command that is
    /// not half of a fused pair). Unlike QEMU, a Flush of a namespace
    /// being formatted gets Format In Progress too (docs/FORMAT.md). A
    /// command touching the LBAs of a fused Compare and Write waits for it.
    func ioCommand(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let isFlush = NVMOpcode(c.opcode) == .flush
        // NVMe 1.4 §6.1 (namespace IDs): FFFFFFFFh is every namespace for
        // Flush; for any other command it is invalid (`ioNamespace`).
        if isFlush && c.nsid == Self.broadcastNSID {
            return flushAll(req)
        }
        let ns: Namespace
        switch ioNamespace(req) {
        case .failure(let status): return status
        case .success(let n): ns = n
        }
        // As QEMU, Flush is dispatched before the fused bits are looked at.
        if isFlush { return formatInProgress(req, ns) ?? flush(req, [ns]) }
        guard Self.isSupportedIOOpcode[Int(c.opcode)] else {
            guestError(.invalidOpc, [("opc", hex(c.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
        if let busy = formatInProgress(req, ns) { return busy }
        // A well-formed fused pair never gets here (`fusedCompareAndWrite`).
        if c.fuse != 0 { return unpairedFuseStatus(req) }
        // A fused Compare and Write holds its LBAs: wait until it ends (§4.12).
        if !fusedOperations.isEmpty, let op = blockingFusedOperation(c, ns) {
            if tracing { traceEvent(.fusedWait, [("cid", "\(c.cid)"), ("sqid", "\(req.sqid)"), ("for", "\(op.compare.sqid):\(op.compare.cid)")]) }
            deferredCommands.append(req)
            return nil
        }
        switch NVMOpcode(c.opcode) {
        case .read: return readWrite(req, ns, write: false)
        case .write: return readWrite(req, ns, write: true)
        case .flush: return flush(req, [ns])
        case .writeZeroes: return writeZeroes(req, ns)
        case .datasetManagement: return datasetManagement(req, ns)
        case .compare: return compare(req, ns)
        case .verify: return verify(req, ns)
        case .writeUncorrectable: return writeUncorrectable(req, ns)
        case .copy: return copy(req, ns)
        default:
            guestError(.invalidOpc, [("opc", hex(c.opcode))])
            return NVMeStatus.invalidOpcode.withDNR
        }
    }

    /// The NVM commands this controller implements (also the Commands
    /// Supported and Effects log's I/O half).
    static let supportedIOOpcodes: Set<NVMOpcode> = [.flush, .write, .read, .compare, .writeZeroes, .datasetManagement,
                                                     .writeUncorrectable, .verify, .copy]
    /// `supportedIOOpcodes` indexed by opcode (no hashing per command).
    static let isSupportedIOOpcode: [Bool] = (0..<256).map { supportedIOOpcodes.contains(NVMOpcode(UInt8($0))) }

    /// Common LBA-range checks; records an "invalid" accounting entry on failure.
    func checkRange(_ req: Request, _ ns: Namespace, op: AIOOperation, write: Bool, dataLength: Int?) -> NVMeStatus? {
        let c = req.cmd
        let nlb = UInt64(c.nlb) + 1
        if write && ns.isReadOnly {
            ns.accounting.invalid(op)
            guestError(.nsReadonly, [("nsid", "\(ns.nsid)")])
            return NVMeStatus.namespaceWriteProtected.withDNR
        }
        if let len = dataLength, let mdts = parameters.maxDataTransfer, len > mdts {
            ns.accounting.invalid(op)
            guestError(.mdts, [("cid", "\(c.cid)"), ("len", "\(len)")])
            return NVMeStatus.invalidField.withDNR
        }
        guard ns.inBounds(slba: c.slba, nlb: nlb) else {
            ns.accounting.invalid(op)
            guestError(.invalidLbaRange, [("slba", "\(c.slba)"), ("nlb", "\(nlb)"), ("nsze", "\(ns.nsze)")])
            return NVMeStatus.lbaOutOfRange.withDNR
        }
        // §6.16: a marked LBA fails a command reading it.
        if !write { return uncorrectableStatus(req, ns, slba: c.slba, nlb: nlb, op: op) }
        return nil
    }

    /// Issues one AIO per `maxBackendTransfer` bytes of the scatter-gather list.
    func submitSplit(_ req: Request, _ ns: Namespace, op: AIOOperation, offset: UInt64, iov: [IOVector],
                     area: AIOArea = .data) {
        let chunk = parameters.maxBackendTransfer
        let total = iov.reduce(0) { $0 + $1.length }
        if total <= chunk {
            // One AIO (every 4 KiB command): the list as mapped, no copy.
            if total > 0 { submitAIO(req, ns, AIO(operation: op, offset: offset, length: UInt64(total), iov: iov), area: area) }
            return
        }
        var pieces: [IOVector] = []
        var pieceLength = 0
        var pieceOffset = offset
        for var v in iov {
            while v.length > 0 {
                let take = min(v.length, chunk - pieceLength)
                pieces.append(IOVector(base: v.base, length: take))
                pieceLength += take
                v.base += take
                v.length -= take
                if pieceLength == chunk {
                    submitAIO(req, ns, AIO(operation: op, offset: pieceOffset, length: UInt64(pieceLength), iov: pieces), area: area)
                    pieceOffset += UInt64(pieceLength)
                    pieces.removeAll(keepingCapacity: true)
                    pieceLength = 0
                }
            }
        }
        if pieceLength > 0 {
            submitAIO(req, ns, AIO(operation: op, offset: pieceOffset, length: UInt64(pieceLength), iov: pieces), area: area)
        }
    }

    func readWrite(_ req: Request, _ ns: Namespace, write: Bool) -> NVMeStatus? {
        if ns.format.hasMetadata { return readWriteWithMetadata(req, ns, write: write) }
        let c = req.cmd
        let op: AIOOperation = write ? .write : .read
        let length = (Int(c.nlb) + 1) << Int(ns.lbads)
        if let bad = checkRange(req, ns, op: op, write: write, dataLength: length) { return bad }
        if let cache = ns.writeCache { return cachedReadWrite(req, ns, cache, write: write, length: length) }
        return transfer(req, ns, write: write, length: length)
    }

    /// A checked Read or Write between host memory and the image; a read
    /// through a write cache that holds data returns the cached bytes.
    @inline(__always)
    func transfer(_ req: Request, _ ns: Namespace, write: Bool, length: Int, overlay cache: WriteCache? = nil) -> NVMeStatus? {
        let c = req.cmd
        let op: AIOOperation = write ? .write : .read
        let iov: [IOVector]
        switch mapData(req, length: length, direction: write ? .hostToController : .controllerToHost, checkMDTS: false,
                       pinning: true) {
        case .failure(let status):
            ns.accounting.invalid(op)
            return status
        case .success(let v): iov = v
        }
        req.accounting.append((ns, ns.accounting.start(op, bytes: UInt64(length))))
        if write {
            writeThroughWhenCacheDisabled(req, ns, fua: c.fua)
            clearUncorrectable(req, ns, slba: c.slba, nlb: UInt64(c.nlb) + 1)
        }
        submitSplit(req, ns, op: op, offset: c.slba << UInt64(ns.lbads), iov: iov)
        if let cache { overlayOnCompletion(req, cache, start: c.slba << UInt64(ns.lbads), length: length, iov: iov) }
        return nil
    }

    /// With the volatile write cache disabled (Set Features 06h, WCE = 0),
    /// or with Force Unit Access (CDW12 bit 30 of Write, Write Zeroes and
    /// Copy, §6.15), a command that changes the medium completes only once
    /// its data is on stable storage (§5.21.1.6): after its write AIOs, one
    /// flush AIO of the namespace, issued by the request's continuation.
    func writeThroughWhenCacheDisabled(_ req: Request, _ ns: Namespace, fua: Bool = false) {
        guard features.volatileWriteCache & 1 == 0 || fua else { return }
        req.continuation = { [unowned self] req in
            self.flushImage(req, ns)
            return nil
        }
    }

    /// One flush AIO per target namespace and backend (its metadata too),
    /// each accounted on its namespace.
    func flush(_ req: Request, _ targets: [Namespace]) -> NVMeStatus? {
        guard !targets.isEmpty else { return .success }
        // With a write cache (docs/WRITE-CACHE.md) the dirty extents are
        // written back first; the image flushes follow them.
        var afterWriteBack: [Namespace] = []
        for ns in targets {
            req.accounting.append((ns, ns.accounting.start(.flush, bytes: 0)))
            if ns.writeCache != nil, flushWriteCache(req, ns) { afterWriteBack.append(ns); continue }
            flushImage(req, ns)
        }
        if !afterWriteBack.isEmpty {
            req.continuation = { [unowned self] req in
                for ns in afterWriteBack { self.flushImage(req, ns) }
                return nil
            }
        }
        return nil
    }

    /// One flush AIO of the namespace's image, and of its metadata.
    func flushImage(_ req: Request, _ ns: Namespace) {
        submitAIO(req, ns, AIO(operation: .flush, offset: 0, length: 0))
        if ns.metadataBackend != nil { submitAIO(req, ns, AIO(operation: .flush, offset: 0, length: 0), area: .metadata) }
    }

    /// Flush with NSID FFFFFFFFh flushes every namespace: one AIO each (VWC
    /// bits 2:1 = 11b). A namespace being formatted is skipped: its backends
    /// are being rewritten, and the format syncs them itself.
    func flushAll(_ req: Request) -> NVMeStatus? {
        flush(req, namespacesNotFormatting)
    }

    func writeZeroes(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        if let bad = checkRange(req, ns, op: .writeZeroes, write: true, dataLength: nil) { return bad }
        let length = (UInt64(c.nlb) + 1) << UInt64(ns.lbads)
        if ns.writeCache != nil, bypassWriteCache(req, ns, ranges: [(c.slba << UInt64(ns.lbads), length)]) { return nil }
        if ns.format.hasMetadata, let bad = writeZeroesMetadata(req, ns) {
            ns.accounting.invalid(.writeZeroes)
            return bad
        }
        req.accounting.append((ns, ns.accounting.start(.writeZeroes, bytes: length)))
        writeThroughWhenCacheDisabled(req, ns, fua: c.fua)
        clearUncorrectable(req, ns, slba: c.slba, nlb: UInt64(c.nlb) + 1)
        submitAIO(req, ns, AIO(operation: .writeZeroes, offset: c.slba << UInt64(ns.lbads), length: length))
        return nil
    }

    /// Dataset Management (§6.7): with AD set, each non-empty range becomes one
    /// discard AIO; the command completes when all of them have.
    func datasetManagement(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        let nr = Int(c.cdw10 & 0xFF) + 1
        let deallocate = c.cdw11 & 0x4 != 0
        // Without AD the ranges carry only hints (IDR, IDW) that nvmefs has
        // no use for: nothing to read or do (as QEMU).
        guard deallocate else { return .success }
        let data: [UInt8]
        switch transferFromHost(req, length: nr * DatasetManagementRange.size) {
        case .failure(let s):
            ns.accounting.invalid(.discard)
            return s
        case .success(let d): data = d
        }
        if ns.isReadOnly {
            ns.accounting.invalid(.discard)
            return NVMeStatus.namespaceWriteProtected.withDNR
        }
        var ranges: [(UInt64, UInt64)] = []
        for i in 0..<nr {
            let r = data.withUnsafeBytes { DatasetManagementRange(bytes: UnsafeRawBufferPointer(rebasing: $0[(i * 16)..<(i * 16 + 16)]))! }
            let nlb = UInt64(r.nlb)
            if nlb == 0 { continue }
            guard ns.inBounds(slba: r.slba, nlb: nlb) else {
                ns.accounting.invalid(.discard)
                guestError(.invalidLbaRange, [("slba", "\(r.slba)"), ("nlb", "\(nlb)")])
                return NVMeStatus.lbaOutOfRange.withDNR
            }
            ranges.append((r.slba << UInt64(ns.lbads), nlb << UInt64(ns.lbads)))
        }
        if ranges.isEmpty { return .success }
        if ns.writeCache != nil, bypassWriteCache(req, ns, ranges: ranges) { return nil }
        // A deallocated block reads as DLFEAT says, not as an error (§6.7).
        for (offset, length) in ranges {
            clearUncorrectable(req, ns, slba: offset >> UInt64(ns.lbads), nlb: length >> UInt64(ns.lbads))
        }
        req.accounting.append((ns, ns.accounting.start(.discard, bytes: ranges.reduce(0) { $0 + $1.1 })))
        writeThroughWhenCacheDisabled(req, ns)
        for (offset, length) in ranges {
            submitAIO(req, ns, AIO(operation: .discard, offset: offset, length: length))
        }
        if ns.format.hasMetadata { deallocateMetadata(req, ns, ranges: ranges) }
        return nil
    }

    /// Compare (§6.6): reads the LBAs into a bounce buffer, then compares them
    /// with the host data; a mismatch is Compare Failure.
    func compare(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        if ns.format.hasMetadata { return compareWithMetadata(req, ns) }
        let c = req.cmd
        let length = (Int(c.nlb) + 1) << Int(ns.lbads)
        if let bad = checkRange(req, ns, op: .read, write: false, dataLength: length) { return bad }
        let hostData: [IOVector]
        // Pinned: the continuation reads the host data long after the mapping.
        switch mapData(req, length: length, direction: .hostToController, checkMDTS: false, pinning: true) {
        case .failure(let status):
            ns.accounting.invalid(.read)
            return status
        case .success(let v): hostData = v
        }
        let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
        req.bounce = bounce
        req.accounting.append((ns, ns.accounting.start(.read, bytes: UInt64(length))))
        // The media as the host would read it: with the write cache's bytes.
        let cached = ns.writeCache == nil ? [] : cachedExtents(ns, start: c.slba << UInt64(ns.lbads), length: length)
        req.continuation = { req in
            guard let media = req.bounce else { return NVMeStatus.internalError }
            if !cached.isEmpty {
                applyOverlay(cached, start: c.slba << UInt64(ns.lbads), iov: [IOVector(base: media.baseAddress!, length: media.count)])
            }
            let host = UnsafeMutableRawBufferPointer.allocate(byteCount: media.count, alignment: 16)
            defer { host.deallocate() }
            gather(hostData, into: host)
            // §6.6: a mismatch is Compare Failure; DNR clear, as QEMU 7.2.
            return memcmp(host.baseAddress!, media.baseAddress!, media.count) == 0 ? .success : NVMeStatus.compareFailure
        }
        submitSplit(req, ns, op: .read, offset: c.slba << UInt64(ns.lbads), iov: [IOVector(base: bounce.baseAddress!, length: length)])
        return nil
    }
}
