import CCPU
import Glibc

/// Picks the shard of a sharded lock for the calling thread: the CPU it runs
/// on, so that threads on different CPUs take locks on different cache
/// lines. Only a hint (a thread may move between taking and releasing), so
/// a user of a shard remembers which one it took, and state kept per shard
/// must be correct summed over the shards whichever shard each change went to.
public enum CPUShards {
    /// Shards per sharded lock: the CPUs configured, at most 16.
    public static let count = max(1, min(16, sysconf(Int32(_SC_NPROCESSORS_CONF))))

    /// The calling thread's shard among `shards`.
    @inline(__always)
    public static func current(_ shards: Int) -> Int {
        let cpu = Int(nvmefs_current_cpu())
        return cpu < 0 ? 0 : cpu % shards
    }
}
