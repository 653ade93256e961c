import BlockIO
import HostMemory
import NVMeSpec

/// Copy (opcode 19h; NVMe 2.0 NVM Command Set Specification §3.2.2, from
/// TP 4065) on this NVMe 1.4 controller: source range descriptor format 0
/// only (OCFS bit 0), within one namespace.
///
/// On the multi-AIO engine: the NR+1 source ranges become one read AIO each
/// (more where a range is larger than `maxBackendTransfer`) into one bounce
/// buffer; when every read has finished, the request's continuation issues
/// the destination's write AIO(s); the command completes once. A failed read
/// is Unrecovered Read Error and nothing is written; a failed write is Write
/// Fault (`nvmeStatus(forFailed:errno:)`). On a namespace with metadata the
/// metadata of each range is read and written the same way, on the metadata
/// backend (docs/METADATA.md). Copy is refused on a namespace with end-to-end
/// protection (Invalid Field in Command; docs/METADATA.md).
extension NVMeController {
    func copy(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        let nr = Int(c.cdw12 & 0xFF) + 1
        let descriptorFormat = (c.cdw12 >> 8) & 0xF
        if tracing {
            traceEvent(.copy, [("cid", "\(c.cid)"), ("nsid", "\(ns.nsid)"), ("nr", "\(nr)"), ("format", "\(descriptorFormat)")])
        }
        // OCFS advertises format 0 only: any other is Invalid Field (as QEMU).
        guard descriptorFormat == 0 else {
            guestError(.copyInvalidFormat, [("format", "\(descriptorFormat)")])
            return NVMeStatus.invalidField.withDNR
        }
        // More ranges than MSRC + 1: Command Size Limit Exceeded.
        guard nr <= Int(parameters.copyMSRC) + 1 else { return NVMeStatus.commandSizeLimitExceeded.withDNR }
        // End-to-end protection (PRINFOR/PRINFOW, EILBRT/ELBAT/ELBATM) is not
        // implemented: refused, docs/METADATA.md "Copy".
        if ns.format.pi != .none {
            guestError(.invalidPi, [("cid", "\(c.cid)"), ("opc", hex(c.opcode))])
            return NVMeStatus.invalidField.withDNR
        }
        if ns.isReadOnly {
            guestError(.nsReadonly, [("nsid", "\(ns.nsid)")])
            return NVMeStatus.namespaceWriteProtected.withDNR
        }
        let ranges: [CopySourceRange]
        switch transferFromHost(req, length: nr * CopySourceRange.size) {
        case .failure(let s): return s
        case .success(let bytes): ranges = bytes.withUnsafeBytes { CopySourceRange.decodeList($0, count: nr)! }
        }
        let total = ranges.reduce(UInt64(0)) { $0 + $1.blocks }
        guard total <= UInt64(parameters.copyMCL) else { return NVMeStatus.commandSizeLimitExceeded.withDNR }
        if let bad = checkCopyRanges(req, ns, ranges) { return bad }
        // The destination bypasses the write cache (docs/WRITE-CACHE.md).
        if ns.writeCache != nil,
           bypassWriteCache(req, ns, ranges: [(c.slba << UInt64(ns.lbads), total << UInt64(ns.lbads))]) { return nil }
        return submitCopy(req, ns, ranges, blocks: total)
    }

    /// Each range in order, as QEMU runs them: its length against MSSRL,
    /// its source, then its part of the destination against the namespace
    /// size. The first failure is the status, and DW0 the index of its range.
    func checkCopyRanges(_ req: Request, _ ns: Namespace, _ ranges: [CopySourceRange]) -> NVMeStatus? {
        var destination = req.cmd.slba
        for (i, r) in ranges.enumerated() {
            var status: NVMeStatus?
            if r.blocks > UInt64(parameters.copyMSSRL) {
                status = NVMeStatus.commandSizeLimitExceeded.withDNR
            } else if !ns.inBounds(slba: r.slba, nlb: r.blocks) {
                guestError(.invalidLbaRange, [("slba", "\(r.slba)"), ("nlb", "\(r.blocks)"), ("nsze", "\(ns.nsze)")])
                status = NVMeStatus.lbaOutOfRange.withDNR
            } else if !ns.inBounds(slba: destination, nlb: r.blocks) {
                guestError(.invalidLbaRange, [("slba", "\(destination)"), ("nlb", "\(r.blocks)"), ("nsze", "\(ns.nsze)")])
                status = NVMeStatus.lbaOutOfRange.withDNR
            } else if r.blocks > 0, let marked = uncorrectableStatus(req, ns, slba: r.slba, nlb: r.blocks, op: .read) {
                // A source LBA marked by Write Uncorrectable reads as a media error.
                status = marked
            }
            if let status {
                req.dw0 = UInt32(i)
                return status
            }
            destination &+= r.blocks
        }
        return nil
    }

    /// The read AIOs of every range into one bounce buffer (and one for the
    /// metadata); their continuation writes the destination.
    func submitCopy(_ req: Request, _ ns: Namespace, _ ranges: [CopySourceRange], blocks: UInt64) -> NVMeStatus? {
        let lbads = UInt64(ns.lbads)
        let ms = Int(ns.format.ms)
        let hasMetadata = ns.format.hasMetadata
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(blocks << lbads), alignment: 4096)
        req.bounce = data
        var metadata: UnsafeMutableRawBufferPointer?
        if hasMetadata {
            metadata = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(blocks) * ms, alignment: 4096)
            req.metadataBounce = metadata
        }
        req.accounting.append((ns, ns.accounting.start(.read, bytes: blocks << lbads)))
        req.accounting.append((ns, ns.accounting.start(.write, bytes: blocks << lbads)))
        var done = 0  // blocks already placed in the bounce buffers
        var cached: [(extents: [CacheExtent], start: UInt64, at: Int)] = []
        for r in ranges {
            if ns.writeCache != nil {
                let extents = cachedExtents(ns, start: r.slba << lbads, length: Int(r.blocks << lbads))
                if !extents.isEmpty { cached.append((extents, r.slba << lbads, done << Int(lbads))) }
            }
            if tracing { traceEvent(.copySourceRange, [("slba", "\(r.slba)"), ("nlb", "\(r.blocks)")]) }
            let n = Int(r.blocks)
            submitSplit(req, ns, op: .read, offset: r.slba << lbads,
                        iov: [IOVector(base: data.baseAddress! + (done << Int(lbads)), length: n << Int(lbads))])
            if let metadata {
                submitSplit(req, ns, op: .read, offset: ns.metadataOffset(r.slba),
                            iov: [IOVector(base: metadata.baseAddress! + done * ms, length: n * ms)], area: .metadata)
            }
            done += n
        }
        let sdlba = req.cmd.slba
        req.continuation = { [unowned self] req in
            guard let data = req.bounce else { return NVMeStatus.internalError }
            // Sources read through the write cache see its bytes.
            for piece in cached {
                let length = piece.extents.reduce(0) { max($0, Int($1.end - piece.start)) }
                applyOverlay(piece.extents, start: piece.start, iov: [IOVector(base: data.baseAddress! + piece.at, length: length)])
            }
            if self.tracing { self.traceEvent(.copyOut, [("slba", "\(sdlba)"), ("nlb", "\(blocks)")]) }
            self.clearUncorrectable(req, ns, slba: sdlba, nlb: blocks)
            self.submitSplit(req, ns, op: .write, offset: sdlba << lbads, iov: [IOVector(base: data.baseAddress!, length: data.count)])
            if let metadata = req.metadataBounce {
                self.submitSplit(req, ns, op: .write, offset: ns.metadataOffset(sdlba),
                                 iov: [IOVector(base: metadata.baseAddress!, length: metadata.count)], area: .metadata)
            }
            // With the write cache disabled or FUA, a flush follows the writes.
            self.writeThroughWhenCacheDisabled(req, ns, fua: req.cmd.fua)
            return nil
        }
        return nil
    }
}
