import Glibc

/// A positive errno, as a file operation's failure.
///
/// Handlers throw it (`throw FileError.busy`); the bridge replies to the
/// kernel with it. Open enum-like struct: any errno can be made.
public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value.
    public var code: Int32
    @inlinable public init(_ code: Int32) { self.code = code > 0 ? code : EIO }

    /// EINVAL: malformed input.
    public static let invalid = FileError(EINVAL)
    /// EACCES: not allowed (read-only register, write to a 0444 file).
    public static let accessDenied = FileError(EACCES)
    /// EPERM: operation not permitted on a pseudo file (chmod, unlink).
    public static let notPermitted = FileError(EPERM)
    /// ERANGE: value out of range.
    public static let outOfRange = FileError(ERANGE)
    /// EBUSY: not now.
    public static let busy = FileError(EBUSY)
    /// ENOSPC: past the end of a namespace.
    public static let noSpace = FileError(ENOSPC)
    /// EIO: the device failed.
    public static let io = FileError(EIO)
    /// EROFS: read-only namespace.
    public static let readOnly = FileError(EROFS)
    /// EOPNOTSUPP: the file does not implement this operation.
    public static let notSupported = FileError(EOPNOTSUPP)
    /// EINTR: the request was interrupted.
    public static let interrupted = FileError(EINTR)
    /// EAGAIN: nothing available now.
    public static let wouldBlock = FileError(EAGAIN)
    /// ENOENT: no such file.
    public static let notFound = FileError(ENOENT)
    /// EISDIR: a directory where a file was expected.
    public static let isDirectory = FileError(EISDIR)
    /// ENOTDIR: a file where a directory was expected.
    public static let notDirectory = FileError(ENOTDIR)

    public var description: String { String(cString: strerror(code)) }
}
