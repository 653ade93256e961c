import BlockIO
/// Serializes read-modify-write of partial blocks against every other write
/// of the same blocks (CONTRACT §3 `data`: unaligned edges are read-modify-written
/// safely).
///
/// A write registers the LBA range it touches: shared when it writes whole
/// blocks only (plain NVMe writes, which may run concurrently with each other
/// as on any block device), exclusive when it read-modify-writes an edge
/// block. An exclusive range excludes every overlapping range, so a
/// read-modify-write never reads a block that another write is changing and
/// then writes back stale bytes. Each operation holds at most one range at a
/// time, so there is no lock ordering to get wrong.
final class RangeLock: @unchecked Sendable {
    private struct Entry {
        var id: UInt64
        var nsid: UInt32
        var first: UInt64
        var last: UInt64
        var exclusive: Bool
    }

    private let mutex = ConditionLock()
    private let changed = Condition()
    private var entries: [Entry] = []
    private var nextID: UInt64 = 1

    /// Blocks until `[first, last]` of `nsid` can be held in the given mode.
    /// - Returns: a token for `unlock`.
    func lock(nsid: UInt32, first: UInt64, last: UInt64, exclusive: Bool) -> UInt64 {
        mutex.lock()
        defer { mutex.unlock() }
        while entries.contains(where: {
            $0.nsid == nsid && $0.first <= last && first <= $0.last && ($0.exclusive || exclusive)
        }) {
            changed.wait(mutex)
        }
        let id = nextID
        nextID += 1
        entries.append(Entry(id: id, nsid: nsid, first: first, last: last, exclusive: exclusive))
        return id
    }

    func unlock(_ id: UInt64) {
        mutex.withLock {
            if let i = entries.firstIndex(where: { $0.id == id }) { entries.remove(at: i) }
            changed.broadcast()
        }
    }

    /// Ranges currently held (tests).
    var heldCount: Int { mutex.withLock { entries.count } }
}
