import BlockIO
import HostMemory
import NVMeSpec

import Glibc

/// Reads, writes and compares on namespaces with metadata (NVMe 1.4 §8.2)
/// and end-to-end protection (§8.3), on the multi-AIO engine: a command
/// issues its data AIOs on the image and its metadata AIOs on the metadata
/// backend, and completes once, when all have finished (docs/METADATA.md).
extension NVMeController {
    /// What one Read, Write or Compare moves on a namespace with metadata.
    struct MetadataPlan {
        var format: NamespaceFormat
        var nlb: Int
        var expectation: ProtectionExpectation
        /// PI enabled on the namespace (PRINFO is ignored otherwise).
        var protected: Bool { format.pi != .none }
        /// PRACT with PI: the controller inserts (write) or strips (read) the PI.
        var pract: Bool { protected && expectation.prinfo.action }
        /// The metadata is exactly the PI and PRACT is set: no metadata
        /// crosses the bus (§8.3.1.2).
        var stripped: Bool { pract && format.ms == UInt16(ProtectionInformation.size) }
        var dataBytes: Int { nlb << Int(format.lbads) }
        var metadataBytes: Int { nlb * Int(format.ms) }
        /// Bytes of the data buffer: data and, for extended LBAs, metadata.
        var hostDataBytes: Int { format.extended && !stripped ? dataBytes + metadataBytes : dataBytes }
        /// PI checks to run (PRCHK on a PI namespace).
        var checks: Bool { protected && expectation.prinfo.checksAnything }
    }

    func metadataPlan(_ req: Request, _ ns: Namespace) -> MetadataPlan {
        let c = req.cmd
        return MetadataPlan(format: ns.format, nlb: Int(c.nlb) + 1,
                            expectation: ProtectionExpectation(cdw12: c.cdw12, cdw14: c.cdw14, cdw15: c.cdw15))
    }

    /// §8.3.1.5 (as QEMU): for type 1 with the reference tag checked, ILBRT
    /// must be the low 32 bits of the SLBA (Invalid Protection Information,
    /// DNR); type 3 has no reference tag to check, so PRCHK bit 0 is Invalid
    /// Protection Information (without DNR, as QEMU 7.2).
    func checkPRInfo(_ plan: MetadataPlan, slba: UInt64) -> NVMeStatus? {
        guard plan.protected, plan.expectation.prinfo.checkReferenceTag else { return nil }
        if plan.format.pi == .type3 {
            guestError(.invalidPi, [("slba", "\(slba)"), ("prinfo", hex(plan.expectation.prinfo.raw))])
            return NVMeStatus.invalidProtectionInformation
        }
        guard plan.format.pi == .type1, UInt32(truncatingIfNeeded: slba) != plan.expectation.initialReferenceTag else { return nil }
        guestError(.invalidPi, [("slba", "\(slba)"), ("ilbrt", hex(plan.expectation.initialReferenceTag))])
        return NVMeStatus.invalidProtectionInformation.withDNR
    }

    /// Maps the host's data (and, for extended LBAs, interleaved metadata)
    /// and the separate metadata buffer: the data and metadata pieces, in
    /// LBA order. `metadata` is empty when no metadata crosses the bus.
    func mapWithMetadata(_ req: Request, _ plan: MetadataPlan, direction: DataDirection)
        -> Result<(data: [IOVector], metadata: [IOVector]), NVMeStatus> {
        let host: [IOVector]
        switch mapData(req, length: plan.hostDataBytes, direction: direction, checkMDTS: false, pinning: true) {
        case .failure(let s): return .failure(s)
        case .success(let v): host = v
        }
        if plan.stripped { return .success((host, [])) }
        if plan.format.extended {
            var data: [IOVector] = [], metadata: [IOVector] = []
            var cursor = IOVCursor(host)
            for _ in 0..<plan.nlb {
                cursor.append(plan.format.lbaSize, to: &data)
                cursor.append(Int(plan.format.ms), to: &metadata)
            }
            return .success((data, metadata))
        }
        var metadata: [IOVector] = []
        var pin: DMAPin? = DMAPin()
        let status = MetadataPointerMapper.map(mptr: req.cmd.mptr, psdt: req.cmd.psdt, length: plan.metadataBytes,
                                               direction: direction, into: &metadata, pinning: &pin, in: space)
        guard status.isSuccess else {
            guestError(.invalidMptr, [("cid", "\(req.cid)"), ("mptr", hex(req.cmd.mptr)), ("status", hex(status.raw))])
            return .failure(status)
        }
        if let pin { if req.pin == nil { req.pin = pin } else { req.pin!.absorb(pin) } }
        return .success((host, metadata))
    }

    /// Read or Write of a namespace with metadata: data AIOs on the image,
    /// metadata AIOs on the metadata backend.
    func readWriteWithMetadata(_ req: Request, _ ns: Namespace, write: Bool) -> NVMeStatus? {
        let c = req.cmd
        let op: AIOOperation = write ? .write : .read
        let plan = metadataPlan(req, ns)
        if let bad = checkRange(req, ns, op: op, write: write, dataLength: plan.hostDataBytes) { return bad }
        if let bad = checkPRInfo(plan, slba: c.slba) {
            ns.accounting.invalid(op)
            return bad
        }
        var data: [IOVector], metadata: [IOVector]
        switch mapWithMetadata(req, plan, direction: write ? .hostToController : .controllerToHost) {
        case .failure(let status):
            ns.accounting.invalid(op)
            return status
        case .success(let m): (data, metadata) = m
        }
        if write {
            if plan.pract {
                // The controller writes the PI: into a copy of the host's
                // metadata (or fresh metadata when it is stripped).
                let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 4096)
                req.metadataBounce = bounce
                if plan.stripped { bounce.initializeMemory(as: UInt8.self, repeating: 0) } else { gather(metadata, into: bounce) }
                generateProtection(plan, data: data, metadata: bounce)
                metadata = [IOVector(base: bounce.baseAddress!, length: bounce.count)]
            } else if plan.checks {
                // Checked before anything is written (§8.3.1.5).
                let status = withContiguous(metadata, count: plan.metadataBytes) {
                    checkProtection(plan, data: data, metadata: $0)
                }
                if let (status, index) = status {
                    ns.accounting.invalid(op)
                    return protectionFailure(req, status, lba: c.slba + UInt64(index))
                }
            }
        } else if plan.stripped && plan.checks {
            // The PI is read only to be checked; with PRACT and no PRCHK
            // there is nothing to read it for (no metadata AIO at all).
            let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 4096)
            req.metadataBounce = bounce
            metadata = [IOVector(base: bounce.baseAddress!, length: bounce.count)]
        } else if plan.checks && (data.contains(where: space.isDiscard) || metadata.contains(where: space.isDiscard)) {
            // Bit buckets (§4.4) land in a buffer every command shares: read
            // into buffers of the command's own, check, then hand them over.
            return checkedReadThroughBounce(req, ns, plan, hostData: data, hostMetadata: metadata)
        }
        req.accounting.append((ns, ns.accounting.start(op, bytes: UInt64(plan.dataBytes))))
        if write {
            clearUncorrectable(req, ns, slba: c.slba, nlb: UInt64(plan.nlb))
            writeThroughWhenCacheDisabled(req, ns, fua: c.fua)
        } else if plan.checks {
            // §8.3.1.5: a Read checks the PI it reads from the medium.
            let slba = c.slba
            req.continuation = { [unowned self] req in
                let status = withContiguous(metadata, count: plan.metadataBytes) {
                    checkProtection(plan, data: data, metadata: $0)
                }
                guard let (status, index) = status else { return .success }
                return protectionFailure(req, status, lba: slba + UInt64(index))
            }
        }
        submitSplit(req, ns, op: op, offset: c.slba << UInt64(ns.lbads), iov: data)
        submitSplit(req, ns, op: op, offset: ns.metadataOffset(c.slba), iov: metadata, area: .metadata)
        return nil
    }

    /// A checked Read whose host buffers include bit buckets: data and
    /// metadata go to bounce buffers, are checked there, and are then
    /// scattered to the host's pieces (bit buckets included, harmlessly).
    func checkedReadThroughBounce(_ req: Request, _ ns: Namespace, _ plan: MetadataPlan,
                                  hostData: [IOVector], hostMetadata: [IOVector]) -> NVMeStatus? {
        let slba = req.cmd.slba
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.dataBytes, alignment: 4096)
        req.bounce = data
        let metadata = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 4096)
        req.metadataBounce = metadata
        req.accounting.append((ns, ns.accounting.start(.read, bytes: UInt64(plan.dataBytes))))
        req.continuation = { [unowned self] req in
            guard let data = req.bounce, let metadata = req.metadataBounce else { return NVMeStatus.internalError }
            scatter(UnsafeRawBufferPointer(data), into: hostData)
            scatter(UnsafeRawBufferPointer(metadata), into: hostMetadata)
            let pieces = [IOVector(base: data.baseAddress!, length: data.count)]
            guard let (status, index) = checkProtection(plan, data: pieces, metadata: UnsafeRawBufferPointer(metadata)) else {
                return .success
            }
            return protectionFailure(req, status, lba: slba + UInt64(index))
        }
        submitSplit(req, ns, op: .read, offset: slba << UInt64(ns.lbads), iov: [IOVector(base: data.baseAddress!, length: data.count)])
        submitSplit(req, ns, op: .read, offset: ns.metadataOffset(slba),
                    iov: [IOVector(base: metadata.baseAddress!, length: metadata.count)], area: .metadata)
        return nil
    }

    /// Compare (§6.6) with metadata: the medium's data and metadata are read
    /// into bounce buffers, their PI checked as a Read would, then compared
    /// with the host's data and metadata (the PI tuple itself is not
    /// compared on a PI namespace: PRCHK decides about it).
    func compareWithMetadata(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        let plan = metadataPlan(req, ns)
        if let bad = checkRange(req, ns, op: .read, write: false, dataLength: plan.hostDataBytes) { return bad }
        if let bad = checkPRInfo(plan, slba: c.slba) {
            ns.accounting.invalid(.read)
            return bad
        }
        let hostData: [IOVector], hostMetadata: [IOVector]
        switch mapWithMetadata(req, plan, direction: .hostToController) {
        case .failure(let status):
            ns.accounting.invalid(.read)
            return status
        case .success(let m): (hostData, hostMetadata) = m
        }
        let media = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.dataBytes, alignment: 4096)
        req.bounce = media
        let mediaMetadata = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 4096)
        req.metadataBounce = mediaMetadata
        req.accounting.append((ns, ns.accounting.start(.read, bytes: UInt64(plan.dataBytes))))
        let slba = c.slba
        req.continuation = { [unowned self] req in
            guard let media = req.bounce, let mediaMetadata = req.metadataBounce else { return NVMeStatus.internalError }
            let mediaData = [IOVector(base: media.baseAddress!, length: media.count)]
            if plan.checks, let (status, index) = checkProtection(plan, data: mediaData, metadata: UnsafeRawBufferPointer(mediaMetadata)) {
                return protectionFailure(req, status, lba: slba + UInt64(index))
            }
            let host = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.dataBytes, alignment: 16)
            defer { host.deallocate() }
            gather(hostData, into: host)
            // §6.6: a mismatch is Compare Failure; DNR clear, as QEMU 7.2.
            if memcmp(host.baseAddress!, media.baseAddress!, media.count) != 0 { return NVMeStatus.compareFailure }
            if plan.stripped { return .success }
            let hostMeta = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 16)
            defer { hostMeta.deallocate() }
            gather(hostMetadata, into: hostMeta)
            let ms = Int(plan.format.ms)
            let skip = plan.protected ? plan.format.piOffset..<(plan.format.piOffset + ProtectionInformation.size) : 0..<0
            for lba in 0..<plan.nlb {
                for b in 0..<ms where !skip.contains(b) {
                    if hostMeta[lba * ms + b] != mediaMetadata[lba * ms + b] { return NVMeStatus.compareFailure }
                }
            }
            return .success
        }
        submitSplit(req, ns, op: .read, offset: c.slba << UInt64(ns.lbads), iov: [IOVector(base: media.baseAddress!, length: media.count)])
        submitSplit(req, ns, op: .read, offset: ns.metadataOffset(c.slba),
                    iov: [IOVector(base: mediaMetadata.baseAddress!, length: mediaMetadata.count)], area: .metadata)
        return nil
    }

    /// The metadata AIO of Write Zeroes (§6.17): non-PI metadata is zeroed;
    /// the PI is zero too, or generated with PRACT (the guard of zeroed
    /// data, the command's application tag and reference tags).
    func writeZeroesMetadata(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        let c = req.cmd
        let plan = metadataPlan(req, ns)
        // PRCHK is meaningless without data to check (QEMU: Invalid Protection Information).
        if plan.checks {
            guestError(.invalidPi, [("cid", "\(req.cid)"), ("prinfo", hex(plan.expectation.prinfo.raw))])
            return NVMeStatus.invalidProtectionInformation.withDNR
        }
        let offset = ns.metadataOffset(c.slba)
        guard plan.pract else {
            submitAIO(req, ns, AIO(operation: .writeZeroes, offset: offset, length: UInt64(plan.metadataBytes)), area: .metadata)
            return nil
        }
        let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.metadataBytes, alignment: 4096)
        bounce.initializeMemory(as: UInt8.self, repeating: 0)
        req.metadataBounce = bounce
        // The guard of zeroed data (and zeroed metadata before the PI): the
        // CRC, starting at 0 with no final XOR, of zeros is 0.
        let zeroGuard: UInt16 = 0
        for i in 0..<plan.nlb {
            let at = i * Int(plan.format.ms) + plan.format.piOffset
            ProtectionInformation(guardTag: zeroGuard, applicationTag: plan.expectation.applicationTag,
                                  referenceTag: plan.expectation.referenceTag(plan.format.pi, block: UInt64(i)))
                .store(to: bounce.baseAddress! + at)
        }
        submitSplit(req, ns, op: .write, offset: offset, iov: [IOVector(base: bounce.baseAddress!, length: bounce.count)], area: .metadata)
        return nil
    }

    /// Metadata AIOs marking `ranges` (byte offsets and lengths of data)
    /// deallocated: zeroed metadata, or PI tuples of FFh on a PI namespace
    /// (DLFEAT bit 4 clear). One pattern buffer, repeated.
    func deallocateMetadata(_ req: Request, _ ns: Namespace, ranges: [(UInt64, UInt64)]) {
        let f = ns.format
        let ms = UInt64(f.ms)
        if f.pi == .none {
            for (offset, length) in ranges {
                let lba = offset >> UInt64(f.lbads), nlb = length >> UInt64(f.lbads)
                submitAIO(req, ns, AIO(operation: .writeZeroes, offset: ns.metadataOffset(lba), length: nlb * ms), area: .metadata)
            }
            return
        }
        let largest = ranges.map { ($0.1 >> UInt64(f.lbads)) * ms }.max() ?? 0
        let patternBytes = Int(min(largest, (64 << 10) / ms * ms))
        let pattern = UnsafeMutableRawBufferPointer.allocate(byteCount: patternBytes, alignment: 4096)
        req.metadataBounce = pattern
        f.deallocatedMetadata(into: pattern)
        for (offset, length) in ranges {
            let lba = offset >> UInt64(f.lbads)
            var left = Int((length >> UInt64(f.lbads)) * ms)
            var iov: [IOVector] = []
            while left > 0 {
                let n = min(left, patternBytes)
                iov.append(IOVector(base: pattern.baseAddress!, length: n))
                left -= n
            }
            submitSplit(req, ns, op: .write, offset: ns.metadataOffset(lba), iov: iov, area: .metadata)
        }
    }

    // MARK: Protection information

    /// A failed PI check: the error log names the block (`req.errorLBA`).
    func protectionFailure(_ req: Request, _ status: NVMeStatus, lba: UInt64) -> NVMeStatus {
        req.errorLBA = lba
        guestError(.piCheck, [("cid", "\(req.cid)"), ("lba", "\(lba)"), ("status", hex(status.raw))])
        return status
    }

    /// Writes each block's PI tuple into `metadata` (PRACT on write).
    func generateProtection(_ plan: MetadataPlan, data: [IOVector], metadata: UnsafeMutableRawBufferPointer) {
        let f = plan.format
        let ms = Int(f.ms)
        var cursor = IOVCursor(data)
        for i in 0..<plan.nlb {
            var crc = cursor.crc(f.lbaSize)
            let m = metadata.baseAddress! + i * ms
            if f.piOffset > 0 { crc = CRC16T10DIF.update(crc, UnsafeRawBufferPointer(start: m, count: f.piOffset)) }
            ProtectionInformation(guardTag: crc, applicationTag: plan.expectation.applicationTag,
                                  referenceTag: plan.expectation.referenceTag(f.pi, block: UInt64(i)))
                .store(to: m + f.piOffset)
        }
    }

    /// Checks every block's PI per PRCHK: nil, or the status and the index
    /// of the first block that failed.
    func checkProtection(_ plan: MetadataPlan, data: [IOVector], metadata: UnsafeRawBufferPointer) -> (NVMeStatus, Int)? {
        let f = plan.format
        let ms = Int(f.ms)
        var cursor = IOVCursor(data)
        for i in 0..<plan.nlb {
            let m = metadata.baseAddress! + i * ms
            let pi = ProtectionInformation(at: m + f.piOffset)
            var consumed = false
            let status = plan.expectation.check(pi, type: f.pi, block: UInt64(i)) {
                consumed = true
                var crc = cursor.crc(f.lbaSize)
                if f.piOffset > 0 { crc = CRC16T10DIF.update(crc, UnsafeRawBufferPointer(start: m, count: f.piOffset)) }
                return crc
            }
            if let status { return (status, i) }
            if !consumed { cursor.skip(f.lbaSize) }
        }
        return nil
    }

    /// Runs `body` over the bytes of `iov` as one buffer (copied when they
    /// are not one piece already).
    func withContiguous<R>(_ iov: [IOVector], count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if iov.count == 1, iov[0].length == count { return body(UnsafeRawBufferPointer(start: iov[0].base, count: count)) }
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { copy.deallocate() }
        gather(iov, into: UnsafeMutableRawBufferPointer(rebasing: copy[0..<count]))
        return body(UnsafeRawBufferPointer(rebasing: copy[0..<count]))
    }
}

/// Walks a scatter-gather list in order.
struct IOVCursor {
    let iov: [IOVector]
    var index = 0
    var offset = 0
    init(_ iov: [IOVector]) { self.iov = iov }

    /// Calls `body` with the pieces of the next `count` bytes.
    mutating func take(_ count: Int, _ body: (UnsafeMutableRawPointer, Int) -> Void) {
        var left = count
        while left > 0, index < iov.count {
            let v = iov[index]
            let n = min(left, v.length - offset)
            body(v.base + offset, n)
            offset += n
            left -= n
            if offset == v.length { index += 1; offset = 0 }
        }
    }

    mutating func skip(_ count: Int) { take(count) { _, _ in } }

    /// Appends the next `count` bytes' pieces to `out`, merging adjacent ones.
    mutating func append(_ count: Int, to out: inout [IOVector]) {
        take(count) { p, n in
            if let last = out.last, last.base + last.length == p {
                out[out.count - 1].length += n
            } else {
                out.append(IOVector(base: p, length: n))
            }
        }
    }

    /// The CRC-16 T10-DIF of the next `count` bytes.
    mutating func crc(_ count: Int) -> UInt16 {
        var c: UInt16 = 0
        take(count) { p, n in c = CRC16T10DIF.update(c, UnsafeRawBufferPointer(start: p, count: n)) }
        return c
    }
}
