import HostMemory
import NVMeSpec

/// The host memory pages Doorbell Buffer Config named (NVMe 1.4 §5.7): the
/// Shadow Doorbell buffer, where the host writes SQ tails and CQ heads, and
/// the EventIdx buffer, where the controller tells the host when it wants an
/// MMIO doorbell write (§7.13). Entry `i` of each lies at the offset of
/// doorbell `i` in the register space: `2 * qid` for an SQ tail, `2 * qid + 1`
/// for a CQ head, times the doorbell stride.
struct DoorbellBuffers {
    let shadow: UInt64
    let eventIdx: UInt64
}

/// Where the two pages lie in this process, looked up once and kept until a
/// region leaves the host address space (the controller's removal barrier
/// and its CMB removal clear it, under the controller lock), so that the
/// doorbell path does not look the pages up for every access.
final class DoorbellPageCache: @unchecked Sendable {
    var pages: (shadow: UnsafeMutableRawPointer, eventIdx: UnsafeMutableRawPointer)?
}

extension NVMeController {
    // MARK: - Doorbell Buffer Config (NVMe 1.4 §5.7, shadow doorbells §7.13)

    /// Doorbell Buffer Config: PRP1 is the Shadow Doorbell buffer, PRP2 the
    /// EventIdx buffer, each one memory page, page aligned (else Invalid
    /// Field, DNR, as QEMU). nvmefs also refuses a page outside host memory
    /// (CONFORMANCE D-dbbuf-unbacked). As QEMU, the buffers serve every
    /// queue, the admin queues too, those that exist (the Shadow Doorbell
    /// entries get their current tail and head) and those created later,
    /// until a controller reset.
    func doorbellBufferConfig(_ req: Request) -> NVMeStatus {
        let shadow = req.cmd.prp1, eventIdx = req.cmd.prp2
        traceEvent(.dbbufConfig, [("dbs_addr", hex(shadow)), ("eis_addr", hex(eventIdx))])
        let mask = UInt64(pageSize - 1)
        guard shadow & mask == 0, eventIdx & mask == 0 else {
            guestError(.dbbufMisaligned, [("dbs_addr", hex(shadow)), ("eis_addr", hex(eventIdx))])
            return NVMeStatus.invalidField.withDNR
        }
        guard space.pointer(shadow, length: pageSize) != nil, space.pointer(eventIdx, length: pageSize) != nil else {
            guestError(.dbbufUnbacked, [("dbs_addr", hex(shadow)), ("eis_addr", hex(eventIdx))])
            return NVMeStatus.invalidField.withDNR
        }
        let buffers = DoorbellBuffers(shadow: shadow, eventIdx: eventIdx)
        doorbellBuffers = buffers
        doorbellPageCache.pages = nil
        for case let sq? in sqs { doorbellEntry(buffers, eventIdx: false, index: 2 * Int(sq.sqid))?.store(UInt32(sq.tail)) }
        for case let cq? in cqs { doorbellEntry(buffers, eventIdx: false, index: 2 * Int(cq.cqid) + 1)?.store(UInt32(cq.head)) }
        return .success
    }

    /// Entry `index` (doorbell numbering) of the Shadow Doorbell page, or
    /// of the EventIdx page (`eventIdx`), or nil (a guest error) when host
    /// memory no longer backs it.
    @inline(__always)
    func doorbellEntry(_ buffers: DoorbellBuffers, eventIdx: Bool, index: Int) -> SharedDword? {
        let offset = index &<< (2 &+ Int(cap.dstrd))
        if offset &+ 4 <= pageSize {
            if doorbellPageCache.pages == nil {
                if let shadow = space.pointer(buffers.shadow, length: pageSize),
                   let events = space.pointer(buffers.eventIdx, length: pageSize) {
                    doorbellPageCache.pages = (shadow, events)
                }
            }
            if let pages = doorbellPageCache.pages {
                return SharedDword((eventIdx ? pages.eventIdx : pages.shadow) + offset)
            }
        }
        // Past the page (queue ids the page has no room for), or unbacked.
        let address = (eventIdx ? buffers.eventIdx : buffers.shadow) &+ UInt64(offset)
        guard let p = space.pointer(address, length: 4) else {
            guestError(.addrRead, [("addr", hex(address))])
            return nil
        }
        return SharedDword(p)
    }

    /// An MMIO doorbell write of an admin queue goes to its Shadow Doorbell
    /// entry too, as QEMU does: hosts (Linux among them) keep ringing the
    /// admin queues by MMIO only, and the controller reads the shadow entry.
    func mirrorAdminDoorbell(index: Int, _ value: UInt32) {
        if let buffers = doorbellBuffers { doorbellEntry(buffers, eventIdx: false, index: index)?.store(value) }
    }

    /// Takes the SQ tail from the Shadow Doorbell buffer: at a doorbell write
    /// of the SQ (QEMU reads it when it starts processing the queue the
    /// doorbell named) and after each command fetched. A value past the
    /// queue is a guest error and leaves the tail as it was.
    func loadShadowTail(_ sq: SubmissionQueue, _ buffers: DoorbellBuffers) {
        guard let value = doorbellEntry(buffers, eventIdx: false, index: 2 * Int(sq.sqid))?.load() else { return }
        if tracing { traceEvent(.updateSqTail, [("sqid", "\(sq.sqid)"), ("new_tail", "\(value)")]) }
        guard Int(value) < sq.size else {
            guestError(.shadowInvalidSqtail, [("qid", "\(sq.sqid)"), ("value", "\(value)")])
            return
        }
        sq.tail = Int(value)
    }

    /// After each command fetched: EventIdx = the tail the controller has
    /// seen, then the shadow tail is read again, so an entry the host added
    /// meanwhile without an MMIO write is not missed (QEMU's order).
    func sqEventIdxAndReload(_ sq: SubmissionQueue, _ buffers: DoorbellBuffers) {
        if tracing { traceEvent(.updateSqEventidx, [("sqid", "\(sq.sqid)"), ("new_eventidx", "\(sq.tail)")]) }
        doorbellEntry(buffers, eventIdx: true, index: 2 * Int(sq.sqid))?.store(UInt32(sq.tail))
        loadShadowTail(sq, buffers)
    }

    /// Before each CQE is posted: EventIdx = the head the controller has
    /// seen, then the head is read from the Shadow Doorbell buffer (room in
    /// the queue). A value past the queue is a guest error and is ignored.
    func cqEventIdxAndReload(_ cq: CompletionQueue, _ buffers: DoorbellBuffers) {
        let index = 2 * Int(cq.cqid) + 1
        if tracing { traceEvent(.updateCqEventidx, [("cqid", "\(cq.cqid)"), ("new_eventidx", "\(cq.head)")]) }
        doorbellEntry(buffers, eventIdx: true, index: index)?.store(UInt32(cq.head))
        guard let value = doorbellEntry(buffers, eventIdx: false, index: index)?.load() else { return }
        if tracing { traceEvent(.updateCqHead, [("cqid", "\(cq.cqid)"), ("new_head", "\(value)")]) }
        guard Int(value) < cq.size else {
            guestError(.shadowInvalidCqhead, [("qid", "\(cq.cqid)"), ("value", "\(value)")])
            return
        }
        cq.head = Int(value)
    }

    /// The buffers configured by Doorbell Buffer Config, nil when none (tests, `queues/`).
    public var doorbellBufferAddresses: (shadow: UInt64, eventIdx: UInt64)? {
        lock.withLock { doorbellBuffers.map { ($0.shadow, $0.eventIdx) } }
    }
}
