import HostMemory

/// A queue pair's entries in the Shadow Doorbell and EventIdx buffers the
/// built-in host gave the controller with Doorbell Buffer Config (NVMe 1.4
/// §5.7, §7.13; `BuiltinHostConfiguration.shadowDoorbells`).
struct ShadowDoorbell: Sendable {
    let sqTail: SharedDword
    let sqEventIdx: SharedDword
    let cqHead: SharedDword
    let cqEventIdx: SharedDword

    /// The entries of queue `qid` in the buffers at `shadow` and `eventIdx`
    /// (doorbell numbering, stride 4 << DSTRD bytes).
    init(qid: UInt16, shadow: UnsafeMutableRawPointer, eventIdx: UnsafeMutableRawPointer, dstrd: UInt8) {
        let sq = (Int(qid) * 2) << (2 + Int(dstrd)), cq = (Int(qid) * 2 + 1) << (2 + Int(dstrd))
        sqTail = SharedDword(shadow + sq)
        sqEventIdx = SharedDword(eventIdx + sq)
        cqHead = SharedDword(shadow + cq)
        cqEventIdx = SharedDword(eventIdx + cq)
    }

    /// Stores `new` in the shadow entry, then reads EventIdx: true when the
    /// controller asked to be told by MMIO, that is when the update from
    /// `old` to `new` moves past EventIdx (Linux's `nvme_dbbuf_need_event`,
    /// here with indices that wrap at the queue's `depth`). Both accesses
    /// are sequentially consistent, and the controller writes EventIdx
    /// before reading the shadow entry again, so an update it cannot have
    /// seen always rings.
    @inline(__always)
    static func publish(_ entry: SharedDword, _ eventIdxEntry: SharedDword, old: Int, new: Int, depth: Int) -> Bool {
        entry.store(UInt32(new))
        let eventIdx = Int(eventIdxEntry.load() % UInt32(depth))
        return (new - eventIdx - 1 + 2 * depth) % depth < (new - old + depth) % depth
    }
}

extension QueuePair {
    /// Tells the controller the CQ head moved from `old` to `new` (§3.1.25):
    /// an MMIO write, or with shadow doorbells the shadow entry and an MMIO
    /// write only when EventIdx asks for it. Called without `cqLock`.
    @inline(__always) func ringCQDoorbell(old: Int, new: Int) {
        if let shadow, !ShadowDoorbell.publish(shadow.cqHead, shadow.cqEventIdx, old: old, new: new, depth: depth) {
            return
        }
        controller.mmioWrite(offset: cqDoorbell, value: UInt64(new), size: 4)
    }
}
