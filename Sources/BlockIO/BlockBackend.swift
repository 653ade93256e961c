import NVMeSpec

/// One contiguous piece of a scatter-gather list: memory the backend reads
/// into or writes from. The owner guarantees it stays valid until the AIO
/// using it has completed.
public struct IOVector: @unchecked Sendable, Hashable {
    public var base: UnsafeMutableRawPointer
    public var length: Int
    @inlinable public init(base: UnsafeMutableRawPointer, length: Int) {
        self.base = base; self.length = length
    }
}

/// The kind of a backend operation (QEMU's BlockAcctType plus the NVMe extras).
public enum AIOOperation: Int, Sendable, CaseIterable, CustomStringConvertible {
    case read, write, flush, writeZeroes, discard
    public var description: String {
        switch self {
        case .read: "read"; case .write: "write"; case .flush: "flush"
        case .writeZeroes: "write-zeroes"; case .discard: "discard"
        }
    }
}

/// Which part of a namespace an AIO touches: the logical blocks' data (the
/// image) or their metadata (the metadata file beside it).
public enum AIOArea: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case data, metadata
    public var description: String { self == .data ? "data" : "metadata" }
}

/// One backend I/O: what, where, and the buffers (for read and write).
public struct AIO: Sendable {
    public var operation: AIOOperation
    /// Byte offset in the backend.
    public var offset: UInt64
    /// Byte length (0 for flush).
    public var length: UInt64
    /// Scatter-gather buffers; their total length equals `length` for read/write.
    public var iov: [IOVector]
    public init(operation: AIOOperation, offset: UInt64, length: UInt64, iov: [IOVector] = []) {
        self.operation = operation; self.offset = offset; self.length = length; self.iov = iov
    }
}

/// Identifies a submitted AIO within its backend, for cancellation.
public struct AIOTicket: Hashable, Sendable {
    public var raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }
}

/// A block backend: an image file, or a test double.
///
/// Contract:
/// - `submit` starts the operation and returns at once with a ticket.
/// - `completion` is called exactly once per submitted AIO, with 0 on success
///   or a positive errno, on any thread — possibly synchronously inside
///   `submit` (callers must not hold a lock the completion needs).
/// - `cancel` stops an operation that has not started: it returns true and the
///   completion is then called (exactly once) with ECANCELED. An operation
///   already running is drained: `cancel` returns false and its completion
///   arrives normally. The ECANCELED completion is never called from inside
///   `cancel` itself, so a caller may cancel while holding its own lock.
/// - `performImmediately` is the fast path of `submit` for an AIO that can
///   finish in the caller's thread without waiting (a read from the page
///   cache, an image in memory): it performs it and returns its result, or
///   returns nil having done nothing, and the caller then submits it. No
///   completion closure, no ticket: nothing to allocate, nothing to cancel.
///   A backend without such a path keeps the default (always nil).
public protocol BlockBackend: AnyObject, Sendable {
    /// Short name for traces and accounting (the image path).
    var name: String { get }
    /// Size in bytes.
    var size: UInt64 { get }
    var isReadOnly: Bool { get }
    @discardableResult
    func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket
    /// 0 or a positive errno when `aio` was performed now; nil when nothing
    /// was done (submit it).
    func performImmediately(_ aio: AIO) -> Int32?
    func cancel(_ ticket: AIOTicket) -> Bool
    /// Waits for every submitted operation to finish, then syncs data to stable storage.
    func drainAndSync()
    /// Stops worker threads and closes the backend. Idempotent.
    func close()
}

extension BlockBackend {
    /// No fast path: every AIO is submitted.
    public func performImmediately(_ aio: AIO) -> Int32? { nil }
}
