import Glibc

/// `duration` in nanoseconds: negative ones are 0, too long ones `UInt64.max`.
public func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    let (total, overflow2) = whole.addingReportingOverflow(UInt64(max(0, attoseconds) / 1_000_000_000))
    return overflow || overflow2 ? .max : total
}

/// The current value of CLOCK_MONOTONIC in nanoseconds.
@inlinable public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// A positive errno as text, e.g. "No such file or directory".
func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// Thin, EINTR-retrying wrappers over the syscalls the image backend uses.
/// Each returns 0 or a positive errno.
enum SystemCalls {
    /// The mode for a file kept beside `image` (its metadata, its Write
    /// Uncorrectable marks): the image's read and write bits, so a sidecar
    /// is never more open than its image; 0600 when the image cannot be
    /// examined (docs/PERMISSIONS.md).
    /// `path` is the sidecar, named `IMAGE` + `suffix`; anything else gets 0600.
    static func sidecarMode(_ path: String, suffix: String) -> mode_t {
        var st = stat()
        guard path.hasSuffix(suffix), stat(String(path.dropLast(suffix.count)), &st) == 0 else { return 0o600 }
        return st.st_mode & 0o666
    }

    /// Linux `fallocate` mode bits (linux/falloc.h).
    static let fallocKeepSize: Int32 = 0x01
    static let fallocPunchHole: Int32 = 0x02
    static let fallocZeroRange: Int32 = 0x10

    private typealias FallocateFunction = @convention(c) (Int32, Int32, Int64, Int64) -> Int32

    /// glibc's `fallocate` is declared only under _GNU_SOURCE, which the Glibc
    /// module does not define; look the symbol up once instead.
    private static let fallocateFunction: FallocateFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(symbol, to: FallocateFunction.self)
    }()

    static func fallocate(_ fd: Int32, mode: Int32, offset: UInt64, length: UInt64) -> Int32 {
        guard let function = fallocateFunction else { return EOPNOTSUPP }
        guard offset <= UInt64(Int64.max), length <= UInt64(Int64.max) - offset else { return EINVAL }
        while true {
            if function(fd, mode, Int64(offset), Int64(length)) == 0 { return 0 }
            let e = errno
            if e != EINTR { return e }
        }
    }

    /// Opens an existing file read-only (EINTR retried); nil when there is none.
    /// - Throws: `ImageBackendError` for any other failure.
    static func openExisting(_ path: String) throws(ImageBackendError) -> Int32? {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw ImageBackendError(path: path, operation: "open", errno: errno)
        }
        return fd
    }

    /// The whole content of a file; nil when there is none.
    /// - Throws: `ImageBackendError` (EFBIG past `limit` bytes).
    static func readWholeFile(_ path: String, limit: Int = .max) throws(ImageBackendError) -> [UInt8]? {
        guard let fd = try openExisting(path) else { return nil }
        defer { _ = close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ImageBackendError(path: path, operation: "read", errno: errno) }
            if n == 0 { return data }
            data += chunk[0..<n]
            guard data.count <= limit else { throw ImageBackendError(path: path, operation: "read", errno: EFBIG) }
        }
    }

    static func fdatasync(_ fd: Int32) -> Int32 {
        while true {
            let rc = Glibc.fdatasync(fd)
            if rc == 0 { return 0 }
            let e = errno
            if e != EINTR { return e }
        }
    }

    /// Replaces the file at `path` with `bytes` durably: written to
    /// `PATH.tmp`, fsync'd, renamed over `path`, the directory fsync'd.
    /// Returns 0 or a positive errno (the temporary file is removed).
    /// The new file gets `mode` (docs/PERMISSIONS.md: owner-only unless a
    /// companion image says otherwise).
    static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) -> Int32 {
        let tmp = path + ".tmp"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return errno }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                Glibc.close(fd); unlink(tmp)
                return e
            }
            done += n
        }
        if fsync(fd) != 0 {
            let e = errno
            Glibc.close(fd); unlink(tmp)
            return e
        }
        Glibc.close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            return e
        }
        return syncDirectory(of: path)
    }

    /// fsyncs the directory holding `path` (a rename or unlink in it lasts).
    static func syncDirectory(of path: String) -> Int32 {
        var dir = path
        if let slash = dir.lastIndex(of: "/") { dir = String(dir[..<slash]); if dir.isEmpty { dir = "/" } } else { dir = "." }
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { Glibc.close(fd) }
        return fsync(fd) == 0 ? 0 : errno
    }

    /// Reads exactly the bytes of `iov` from `offset`: retries short reads and
    /// EINTR, submits at most `maxVectors` iovecs per call, and fills whatever
    /// lies past the end of the file with zeros.
    static func readFully(_ fd: Int32, _ iov: [IOVector], offset: UInt64) -> Int32 {
        transferFully(fd, iov, offset: offset, isWrite: false)
    }

    /// Writes exactly the bytes of `iov` at `offset` (short writes and EINTR retried).
    static func writeFully(_ fd: Int32, _ iov: [IOVector], offset: UInt64) -> Int32 {
        transferFully(fd, iov, offset: offset, isWrite: true)
    }

    /// True if `fd` is a file on tmpfs or ramfs: memory that no read waits
    /// for a device to fill. The file system type is the one
    /// /proc/self/mountinfo gives the file's device (major:minor).
    static func isMemoryFileSystem(_ fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        let dev = UInt64(st.st_dev)
        let major = (dev >> 8) & 0xFFF | (dev >> 32) & ~UInt64(0xFFF)
        let minor = dev & 0xFF | (dev >> 12) & ~UInt64(0xFF)
        guard let f = fopen("/proc/self/mountinfo", "r") else { return false }
        defer { fclose(f) }
        let id = "\(major):\(minor)"
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, f) > 0, let l = line {
            // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER"
            let fields = String(cString: l).split(separator: " ")
            guard fields.count > 2, fields[2] == id, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let type = fields[dash + 1]
            return type == "tmpfs" || type == "ramfs"
        }
        return false
    }

    /// The most iovecs one preadv/pwritev call accepts (IOV_MAX, 1024 on Linux).
    static let maxVectors: Int = {
        let n = sysconf(Int32(_SC_IOV_MAX))
        return n > 0 ? n : 1024
    }()

    private static func transferFully(_ fd: Int32, _ iov: [IOVector], offset: UInt64, isWrite: Bool) -> Int32 {
        guard offset <= UInt64(Int64.max) else { return EINVAL }
        // Fast path: one buffer, plain pread/pwrite.
        if iov.count == 1 {
            return transferOne(fd, iov[0].base, iov[0].length, offset: offset, isWrite: isWrite)
        }
        if iov.isEmpty { return 0 }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: iov.count) { vectors in
            var count = 0
            for v in iov where v.length > 0 {
                vectors[count] = iovec(iov_base: v.base, iov_len: v.length)
                count += 1
            }
            var first = 0
            var position = offset
            while first < count {
                let batch = min(count - first, maxVectors)
                let base = vectors.baseAddress! + first
                let n: Int = isWrite
                    ? pwritev(fd, base, Int32(batch), off_t(position))
                    : preadv(fd, base, Int32(batch), off_t(position))
                if n < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    return e
                }
                if n == 0 {
                    if isWrite { return EIO }   // no progress on a write: give up
                    // End of file: the rest reads as zeros.
                    for i in first..<count { memset(vectors[i].iov_base, 0, vectors[i].iov_len) }
                    return 0
                }
                position += UInt64(n)
                // Skip the fully transferred vectors, trim the partial one.
                var remaining = n
                while remaining > 0 && first < count {
                    let len = vectors[first].iov_len
                    if remaining >= len {
                        remaining -= len
                        first += 1
                    } else {
                        vectors[first].iov_base = vectors[first].iov_base.map { $0 + remaining }
                        vectors[first].iov_len = len - remaining
                        remaining = 0
                    }
                }
            }
            return 0
        }
    }

    private static func transferOne(_ fd: Int32, _ base: UnsafeMutableRawPointer, _ length: Int,
                                    offset: UInt64, isWrite: Bool) -> Int32 {
        var done = 0
        while done < length {
            let n: Int = isWrite
                ? pwrite(fd, base + done, length - done, off_t(offset + UInt64(done)))
                : pread(fd, base + done, length - done, off_t(offset + UInt64(done)))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                return e
            }
            if n == 0 {
                if isWrite { return EIO }
                memset(base + done, 0, length - done)
                return 0
            }
            done += n
        }
        return 0
    }

    private typealias VectorIOFunction = @convention(c) (Int32, UnsafePointer<iovec>?, Int32, Int64, Int32) -> Int
    private static let preadv2Function: VectorIOFunction? = lookUp("preadv2")
    private static let pwritev2Function: VectorIOFunction? = lookUp("pwritev2")
    /// RWF_NOWAIT (linux/fs.h): fail with EAGAIN instead of blocking, e.g.
    /// when the data is not in the page cache.
    private static let rwfNoWait: Int32 = 0x08

    private static func lookUp(_ symbol: String) -> VectorIOFunction? {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), symbol) else { return nil }
        return unsafeBitCast(address, to: VectorIOFunction.self)
    }

    private static let vectorLayoutMatches =
        MemoryLayout<IOVector>.size == MemoryLayout<iovec>.size
        && MemoryLayout<IOVector>.stride == MemoryLayout<iovec>.stride
        && MemoryLayout<IOVector>.offset(of: \IOVector.base) == MemoryLayout<iovec>.offset(of: \iovec.iov_base)
        && MemoryLayout<IOVector>.offset(of: \IOVector.length) == MemoryLayout<iovec>.offset(of: \iovec.iov_len)

    /// Outcome of a non-blocking attempt.
    enum NoWaitResult {
        /// The whole transfer is done.
        case done
        /// Nothing to conclude (would block, partial, unsupported, error):
        /// run the transfer normally.
        case retry
        /// The kernel refuses RWF_NOWAIT for this kind of transfer on this file.
        case unsupported
    }

    /// One preadv2/pwritev2 call with RWF_NOWAIT. Only a complete transfer
    /// counts; repeating a partial one in full later is harmless (a read
    /// rereads, a write rewrites the same bytes).
    static func transferNoWait(_ fd: Int32, _ iov: [IOVector], offset: UInt64, length: UInt64,
                               isWrite: Bool) -> NoWaitResult {
        guard let function = isWrite ? pwritev2Function : preadv2Function else { return .unsupported }
        guard vectorLayoutMatches else { return .unsupported }
        guard iov.count > 0, iov.count <= maxVectors, length > 0, offset <= UInt64(Int64.max) else { return .retry }
        let n: Int = iov.withUnsafeBufferPointer { buffer in
            // IOVector is laid out as struct iovec: a pointer, then a length.
            buffer.withMemoryRebound(to: iovec.self) { vectors in
                function(fd, vectors.baseAddress, Int32(vectors.count), Int64(offset), rwfNoWait)
            }
        }
        if n >= 0 { return UInt64(n) == length ? .done : .retry }
        let e = errno
        return e == EOPNOTSUPP || e == ENOSYS || e == EINVAL ? .unsupported : .retry
    }

    /// Writes `length` zero bytes at `offset` with ordinary writes (the
    /// fallback when the file system cannot zero a range).
    static func writeZeros(_ fd: Int32, offset: UInt64, length: UInt64) -> Int32 {
        let chunk = 1 << 20
        guard let zeros = calloc(1, chunk) else { return ENOMEM }
        defer { free(zeros) }
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(chunk), length - done))
            let rc = transferOne(fd, zeros, n, offset: offset + done, isWrite: true)
            if rc != 0 { return rc }
            done += UInt64(n)
        }
        return 0
    }
}
