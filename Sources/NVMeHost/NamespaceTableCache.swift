import BlockIO
import Synchronization

/// A thread's copy of a host's namespace table, for the data path's lookup
/// of every command: while the copy's generation is the table's, reading it
/// takes no lock and touches no memory another thread writes (the table's
/// lock, shared by every FUSE worker, was a contended cache line per
/// command). Generations come from one process-wide counter, so a copy is
/// never mistaken for the current table of another host.
final class NamespaceTableCache: @unchecked Sendable {
    /// The generation the copy was taken at (0: none; generations start at 1).
    private(set) var generation: UInt64 = 0
    /// Indexed by NSID.
    private var entries: [NamespaceInfo?] = []

    private static let source = Atomic<UInt64>(0)
    private static let perThread = ThreadLocalObject { NamespaceTableCache() }

    /// A generation never handed out before.
    static func newGeneration() -> UInt64 { source.wrappingAdd(1, ordering: .relaxed).newValue }

    /// The calling thread's copy.
    static func forThread() -> NamespaceTableCache { perThread.value }

    /// Replaces the copy (call under the host's state lock).
    func fill(_ table: [UInt32: NamespaceInfo], generation: UInt64) {
        let size = Int(table.keys.max() ?? 0) + 1
        entries.removeAll(keepingCapacity: true)
        entries.append(contentsOf: repeatElement(nil, count: size))
        for (nsid, info) in table { entries[Int(nsid)] = info }
        self.generation = generation
    }

    subscript(nsid: UInt32) -> NamespaceInfo? {
        Int(nsid) < entries.count ? entries[Int(nsid)] : nil
    }
}
