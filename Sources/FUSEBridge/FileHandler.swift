import Glibc

/// The behaviour of one file of the tree.
///
/// Every requirement has a default (see the extension below), so a handler
/// implements only what its file does. All methods may be called from several
/// FUSE worker threads at once. Errors are `FileError` (positive errno).
///
/// Reading is asynchronous-capable: `read(_:)` gets a `ReadRequest` and must
/// answer it exactly once, now or later, from any thread (see `ReadRequest`).
/// Everything else answers synchronously by returning or throwing; a handler
/// that has to wait (for a command completion) blocks the FUSE worker thread
/// it is called on, never Swift's cooperative pool.
public protocol FileHandler: Sendable {
    /// Permission bits (0o444 read-only, 0o644 read-write, 0o200 write-only...).
    /// Opening for an access the bits do not grant fails with EACCES, even for root.
    var mode: UInt16 { get }
    /// Bypass the kernel page cache: every read and write reaches the handler
    /// (default true; needed for files whose content changes and for stream
    /// files of size 0 whose reads block).
    var directIO: Bool { get }
    /// With `directIO == false`: keep the page cache across opens (default false).
    var keepCache: Bool { get }
    /// A stream: file offsets are meaningless (like a pipe; default false).
    var nonSeekable: Bool { get }
    /// With `directIO`: the kernel may send several writes of the file at
    /// once (FOPEN_PARALLEL_DIRECT_WRITES, Linux 6.2 and later) instead of
    /// one at a time under the inode lock, as a block device takes them.
    /// For handlers whose `write` is safe from several threads on
    /// overlapping ranges (default false).
    var parallelDirectWrites: Bool { get }
    /// `open(O_TRUNC)` does not truncate (as on a block device or a sysfs
    /// attribute; default true). When false, O_TRUNC calls `truncate(to: 0, ...)`.
    var ignoresTruncateOnOpen: Bool { get }
    /// The size reported by stat (default 0). Called on every getattr.
    func size() -> UInt64
    /// Opens the file; may return per-handle state (a transaction, a snapshot),
    /// available as `OpenFile.state`. `flags` are the open(2) flags.
    func open(flags: Int32) throws(FileError) -> (any Sendable)?
    /// Reads `request.size` bytes at `request.offset`: answer with
    /// `request.reply(...)` or `request.fail(...)`, now or later.
    /// Default: fails with EACCES.
    func read(_ request: ReadRequest)
    /// Answers a read of `size` bytes (1 ... `ReadBuffer.largestKept`) at
    /// `offset` at once, on the calling FUSE worker, into that worker's
    /// `buffer`: returns the bytes to send (in the buffer), or nil when the
    /// handler answers through `read(_:)` instead. No `ReadRequest` is made
    /// for a read answered here. Default: nil.
    func readNow(at offset: UInt64, size: Int, buffer: ReadBuffer) throws(FileError) -> UnsafeRawBufferPointer?
    /// Writes `data` at `offset`; returns the number of bytes taken.
    /// `data` is FUSE's own buffer, valid only until this method returns.
    /// Default: throws EACCES.
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int
    /// A write whose data must be on stable storage when it returns (the
    /// kernel marks it O_DSYNC: an O_DSYNC or O_SYNC file, RWF_DSYNC).
    /// Default: `write`, then `fsync`.
    func writeDurably(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int
    /// close(2) of one descriptor of the handle (may be called several times).
    func flush(file: OpenFile) throws(FileError)
    /// fsync(2)/fdatasync(2). Default: nothing to do.
    func fsync(file: OpenFile, dataOnly: Bool) throws(FileError)
    /// fallocate(2) with its `mode` (FALLOC_FL_* bits). Default: EOPNOTSUPP.
    func fallocate(mode: Int32, offset: UInt64, length: UInt64, file: OpenFile) throws(FileError)
    /// truncate(2)/ftruncate(2); `file` is nil for a path truncate.
    /// Default: succeeds when `size` equals `size()`, else EINVAL.
    func truncate(to size: UInt64, file: OpenFile?) throws(FileError)
    /// The last close of the handle; no other call for `file` follows.
    func release(file: OpenFile)
}

extension FileHandler {
    public var directIO: Bool { true }
    public var keepCache: Bool { false }
    public var nonSeekable: Bool { false }
    public var parallelDirectWrites: Bool { false }
    public var ignoresTruncateOnOpen: Bool { true }
    public func size() -> UInt64 { 0 }
    public func open(flags: Int32) throws(FileError) -> (any Sendable)? { nil }
    public func read(_ request: ReadRequest) { request.fail(.accessDenied) }
    public func readNow(at offset: UInt64, size: Int, buffer: ReadBuffer) throws(FileError) -> UnsafeRawBufferPointer? {
        nil
    }
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        throw .accessDenied
    }
    public func writeDurably(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        let count = try write(data, at: offset, file: file)
        try fsync(file: file, dataOnly: true)
        return count
    }
    public func flush(file: OpenFile) throws(FileError) {}
    public func fsync(file: OpenFile, dataOnly: Bool) throws(FileError) {}
    public func fallocate(mode: Int32, offset: UInt64, length: UInt64, file: OpenFile) throws(FileError) {
        throw .notSupported
    }
    public func truncate(to size: UInt64, file: OpenFile?) throws(FileError) {
        if size != self.size() { throw .invalid }
    }
    public func release(file: OpenFile) {}
}

/// One open file handle (one open(2), shared by dup'ed descriptors).
public final class OpenFile: Sendable {
    /// The node that was opened.
    public let node: Node
    /// The handler of that node.
    public let handler: any FileHandler
    /// open(2) flags.
    public let flags: Int32
    /// What `FileHandler.open` returned.
    public let state: (any Sendable)?

    init(node: Node, handler: any FileHandler, flags: Int32, state: (any Sendable)?) {
        self.node = node; self.handler = handler; self.flags = flags; self.state = state
    }

    /// The handle state as a given type.
    public func state<T>(as type: T.Type) -> T? { state as? T }
    /// Opened for reading (O_RDONLY or O_RDWR).
    public var isReadable: Bool { flags & O_ACCMODE != O_WRONLY }
    /// Opened for writing (O_WRONLY or O_RDWR).
    public var isWritable: Bool { flags & O_ACCMODE != O_RDONLY }
}

/// fallocate(2) mode bits (linux/falloc.h), as passed to `FileHandler.fallocate`.
public enum FallocateMode {
    public static let keepSize: Int32 = 0x01
    public static let punchHole: Int32 = 0x02
    public static let collapseRange: Int32 = 0x08
    public static let zeroRange: Int32 = 0x10
    public static let insertRange: Int32 = 0x20
}
