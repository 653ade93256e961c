import CFuse3
import Logging
import BlockIO
import Synchronization
import Glibc

/// The mounted tree as the kernel sees it: inode numbers, lookup counts,
/// attributes, and the requests that wait for an interrupt.
///
/// Reached from the C callbacks through the session's userdata.
public final class FileSystem: Sendable {
    /// The root directory node (inode 1).
    public let root: Node
    let logger: Logger
    let ownerUID: uid_t
    let ownerGID: gid_t
    /// `--allow-other-write`: the files the owner may write are writable by
    /// group and others too (docs/PERMISSIONS.md).
    let othersMayWrite: Bool
    let createdAt: timespec
    let gate = ReplyGate()
    /// Reply buffers for zero-copy reads, reused across requests.
    let replyBuffers = ReplyBufferPool()

    private struct InodeEntry { var node: Node; var lookups: UInt64 }
    private let inodes: Locked<[UInt64: InodeEntry]>
    private let nextInode = Atomic<UInt64>(2)
    private let interruptibles = Locked<[UInt64: ReadRequest]>([:])
    private let nextKey = Atomic<UInt64>(1)

    /// - Parameters:
    ///   - root: a directory node; its name is not used.
    ///   - logger: where the bridge logs.
    ///   - othersMayWrite: `--allow-other-write` (see `fileMode`).
    public init(root: Node, logger: Logger, othersMayWrite: Bool = false) {
        precondition(root.directory != nil, "the root must be a directory")
        self.root = root
        self.logger = logger
        self.othersMayWrite = othersMayWrite
        ownerUID = getuid()
        ownerGID = getgid()
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        createdAt = now
        root.inode.store(UInt64(FUSE_ROOT_ID), ordering: .relaxed)
        inodes = Locked([UInt64(FUSE_ROOT_ID): InodeEntry(node: root, lookups: 1)])
    }

    // MARK: inodes

    /// The node's inode number, assigned on first sight.
    func inodeNumber(of node: Node) -> UInt64 {
        let current = node.inode.load(ordering: .acquiring)
        if current != 0 { return current }
        let fresh = nextInode.wrappingAdd(1, ordering: .relaxed).oldValue
        let (exchanged, original) = node.inode.compareExchange(expected: 0, desired: fresh,
                                                               successOrdering: .acquiringAndReleasing,
                                                               failureOrdering: .acquiring)
        return exchanged ? fresh : original
    }

    /// Counts one kernel lookup of `node` and returns its inode number.
    func remember(_ node: Node) -> UInt64 {
        let ino = inodeNumber(of: node)
        inodes.withLock { table in
            if var entry = table[ino] {
                entry.lookups += 1
                entry.node = node
                table[ino] = entry
            } else {
                table[ino] = InodeEntry(node: node, lookups: 1)
            }
        }
        return ino
    }

    /// The node the kernel knows by `ino`.
    func node(_ ino: fuse_ino_t) -> Node? {
        inodes.withLock { $0[UInt64(ino)]?.node }
    }

    /// The kernel dropped `count` lookups of `ino`.
    func forget(_ ino: fuse_ino_t, count: UInt64) {
        let ino = UInt64(ino)
        guard ino != UInt64(FUSE_ROOT_ID) else { return }
        inodes.withLock { table in
            guard var entry = table[ino] else { return }
            if entry.lookups <= count {
                table[ino] = nil
            } else {
                entry.lookups -= count
                table[ino] = entry
            }
        }
    }

    // MARK: attributes

    /// stat(2) data of a node.
    func attributes(of node: Node, ino: UInt64) -> stat {
        var st = stat()
        st.st_ino = __ino_t(ino)
        st.st_uid = ownerUID
        st.st_gid = ownerGID
        st.st_atim = createdAt
        st.st_mtim = createdAt
        st.st_ctim = createdAt
        st.st_blksize = 4096
        switch node.content {
        case .directory(let directory):
            st.st_mode = S_IFDIR | mode_t(directory.mode & 0o7777)
            st.st_nlink = 2
        case .file(let handler):
            let size = handler.size()
            st.st_mode = S_IFREG | Self.fileMode(handler.mode, othersMayWrite: othersMayWrite)
            st.st_nlink = 1
            st.st_size = off_t(clamping: size)
            st.st_blocks = blkcnt_t(clamping: (size + 511) / 512)
        }
        return st
    }

    /// The permission bits a file shows: its handler's, which give only the
    /// owner write access; with `othersMayWrite`, a file the owner may
    /// write is writable by group and others too. With default_permissions
    /// the kernel enforces them for every user but root (docs/PERMISSIONS.md).
    static func fileMode(_ mode: UInt16, othersMayWrite: Bool) -> mode_t {
        var bits = mode_t(mode & 0o7777)
        if othersMayWrite && bits & 0o200 != 0 { bits |= 0o022 }
        return bits
    }

    /// The entry reply for a node (zero timeouts: content and sizes change).
    func entry(for node: Node, ino: UInt64) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = fuse_ino_t(ino)
        e.generation = 1
        e.attr = attributes(of: node, ino: ino)
        e.attr_timeout = 0
        e.entry_timeout = 0
        return e
    }

    // MARK: interruptible reads

    func nextInterruptKey() -> UInt64 { nextKey.wrappingAdd(1, ordering: .relaxed).oldValue }

    func registerInterruptible(_ request: ReadRequest, key: UInt64) {
        interruptibles.withLock { $0[key] = request }
    }

    func unregisterInterruptible(key: UInt64) {
        _ = interruptibles.withLock { $0.removeValue(forKey: key) }
    }

    func interruptible(key: UInt64) -> ReadRequest? {
        interruptibles.withLock { $0[key] }
    }
}

/// Lets replies through while the session's channel is open; once closed,
/// late replies (from device threads after shutdown) are dropped instead of
/// being written to a closed, possibly reused, file descriptor.
final class ReplyGate: Sendable {
    // Lock-free: every reply passes here, on every worker thread. A sender
    // announces itself (`active` += 1) before looking at `closed`, and
    // `close` sets `closed` before waiting for `active` to drain, so (with
    // sequentially consistent atomics) no reply starts after `close` returns.
    private let closed = Atomic<Bool>(false)
    private let active = Atomic<Int>(0)

    /// Runs `send` unless the gate is closed; returns its result, or nil.
    func pass(_ send: () -> Int32) -> Int32? {
        active.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { active.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        guard !closed.load(ordering: .sequentiallyConsistent) else { return nil }
        return send()
    }

    /// Closes the gate and waits for the replies being sent.
    func close() {
        closed.store(true, ordering: .sequentiallyConsistent)
        while active.load(ordering: .sequentiallyConsistent) > 0 { usleep(1000) }
    }
}
