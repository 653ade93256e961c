import BlockIO
import HostMemory
import NVMeSpec

/// Verify (NVM opcode 0Ch, NVMe 1.4 §6.14): the controller reads the LBAs
/// and their metadata, checks the protection information per PRCHK, and
/// transfers nothing. Like Read it fans out into AIOs (data and metadata),
/// one chunk of at most `maxBackendTransfer` data bytes at a time into the
/// request's own buffers, so a long Verify needs no long buffer.
extension NVMeController {
    func verify(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        // No data crosses the bus: MDTS does not apply.
        if let bad = checkRange(req, ns, op: .read, write: false, dataLength: nil) { return bad }
        let plan = metadataPlan(req, ns)
        if plan.protected {
            if let bad = checkPRInfo(plan, slba: c.slba) {
                ns.accounting.invalid(.read)
                return bad
            }
            // Nothing to insert or strip (as QEMU: Invalid Protection Information).
            if plan.pract {
                ns.accounting.invalid(.read)
                guestError(.invalidPi, [("cid", "\(req.cid)"), ("prinfo", hex(plan.expectation.prinfo.raw))])
                return NVMeStatus.invalidProtectionInformation.withDNR
            }
        }
        let chunkBlocks = max(1, parameters.maxBackendTransfer >> Int(ns.lbads))
        let first = min(chunkBlocks, plan.nlb)
        req.bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: first << Int(ns.lbads), alignment: 4096)
        if ns.format.hasMetadata {
            req.metadataBounce = UnsafeMutableRawBufferPointer.allocate(byteCount: first * ns.ms, alignment: 4096)
        }
        req.accounting.append((ns, ns.accounting.start(.read, bytes: UInt64(plan.dataBytes))))
        verifyChunk(req, ns, plan, from: 0, count: first, chunkBlocks: chunkBlocks)
        return nil
    }

    /// Reads blocks [from, from + count) of the command into its buffers;
    /// the continuation checks them and reads the next chunk.
    private func verifyChunk(_ req: Request, _ ns: Namespace, _ plan: MetadataPlan, from: Int, count: Int, chunkBlocks: Int) {
        guard let data = req.bounce else { return }
        let slba = req.cmd.slba + UInt64(from)
        let dataPiece = IOVector(base: data.baseAddress!, length: count << Int(ns.lbads))
        submitSplit(req, ns, op: .read, offset: slba << UInt64(ns.lbads), iov: [dataPiece])
        if let metadata = req.metadataBounce {
            submitSplit(req, ns, op: .read, offset: ns.metadataOffset(slba),
                        iov: [IOVector(base: metadata.baseAddress!, length: count * ns.ms)], area: .metadata)
        }
        req.continuation = { [unowned self] req in
            if plan.checks, let metadata = req.metadataBounce {
                var chunk = plan
                chunk.nlb = count
                // Types 1 and 2: the chunk's first block carries ILBRT + its index.
                chunk.expectation.initialReferenceTag = plan.expectation.referenceTag(plan.format.pi, block: UInt64(from))
                if let (status, index) = checkProtection(chunk, data: [dataPiece], metadata: UnsafeRawBufferPointer(metadata)) {
                    return protectionFailure(req, status, lba: slba + UInt64(index))
                }
            }
            let next = from + count
            guard next < plan.nlb else { return .success }
            verifyChunk(req, ns, plan, from: next, count: min(chunkBlocks, plan.nlb - next), chunkBlocks: chunkBlocks)
            return nil
        }
    }
}
