import NVMeSpec

import Glibc

/// What is recorded about a namespace created by Namespace Management so
/// that it survives an unmount (docs/NAMESPACES.md): its NSID, whether it is
/// attached, and NMIC. Its format is recorded with its image (`IMAGE.nvmefs-md`).
public struct NamespaceRecord: Sendable, Hashable {
    public var nsid: UInt32
    public var attached: Bool
    public var nmic: UInt8
    public init(nsid: UInt32, attached: Bool, nmic: UInt8) { self.nsid = nsid; self.attached = attached; self.nmic = nmic }
}

/// The namespace directory (`--ns-dir`, docs/NAMESPACES.md): the images of
/// the namespaces created by Namespace Management, `nsN.img` with their
/// sidecar files, and the state file `namespaces.state` recording which
/// exist and which are attached. One mount at a time uses a directory: it
/// holds an exclusive lock on `namespaces.lock` from when it opens the
/// directory (at once, or when it first needs it) until it goes.
public final class NamespaceDirectory: Sendable {
    public let path: String
    public static let stateFileName = "namespaces.state"
    public static let lockFileName = "namespaces.lock"
    static let magic = "nvmefs namespaces 1"
    /// The lock file, once held.
    private let lockFD = Locked<Int32?>(nil)
    /// The permission bits new images get (before the umask; docs/PERMISSIONS.md).
    public let imageMode: mode_t

    /// A namespace directory at `path`. It is opened now (created if
    /// missing, with its parents, and locked) when `create` is true or it
    /// exists; otherwise when the first namespace is created in it.
    /// `imageMode` is the permission bits of the images it creates.
    /// - Throws: `NamespaceStorageError` (one line) when the directory
    ///   cannot be made or another mount holds it.
    public init(path: String, create: Bool = true, imageMode: mode_t = 0o600) throws {
        self.path = path
        self.imageMode = imageMode
        var st = stat()
        if create || stat(path, &st) == 0 { try acquire() }
    }

    deinit {
        if let fd = lockFD.withLock({ $0 }) { _ = Glibc.close(fd) }
    }

    /// Creates the directory if missing and takes its lock (once).
    func acquire() throws {
        try lockFD.withLock { (held: inout Int32?) throws -> Void in
            guard held == nil else { return }
            try Self.makeDirectories(path)
            let lockPath = path + "/" + Self.lockFileName
            var fd: Int32
            repeat { fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, imageMode) } while fd < 0 && errno == EINTR
            guard fd >= 0 else { throw NamespaceStorageError("namespace directory \(path): \(errnoDescription(errno))") }
            var rc: Int32
            repeat { rc = flock(fd, LOCK_EX | LOCK_NB) } while rc < 0 && errno == EINTR
            guard rc == 0 else {
                let code = errno
                _ = Glibc.close(fd)
                throw NamespaceStorageError(code == EWOULDBLOCK
                    ? "namespace directory \(path) is in use by another nvmefs mount (give another --ns-dir)"
                    : "namespace directory \(path): cannot lock \(lockPath): \(errnoDescription(code))")
            }
            held = fd
        }
    }

    /// The image of namespace `nsid`.
    public func imagePath(_ nsid: UInt32) -> String { "\(path)/ns\(nsid).img" }
    public var statePath: String { path + "/" + Self.stateFileName }

    // MARK: state file

    /// The state file's text for `records`.
    public static func stateText(_ records: [NamespaceRecord]) -> String {
        magic + "\n" + records.map { "nsid=\($0.nsid) attached=\($0.attached ? 1 : 0) nmic=\($0.nmic)\n" }.joined()
    }

    /// Parses a state file's text.
    /// - Throws: `NamespaceStorageError` naming the first bad line.
    public static func parseState(_ text: String) throws -> [NamespaceRecord] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.first == Substring(magic) else { throw NamespaceStorageError("not a namespace state file (no '\(magic)' line)") }
        var records: [NamespaceRecord] = []
        for (i, line) in lines.enumerated().dropFirst() {
            var values: [Substring: UInt32] = [:]
            for word in line.split(separator: " ") {
                let kv = word.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let v = UInt32(kv[1]), values.updateValue(v, forKey: kv[0]) == nil else {
                    throw NamespaceStorageError("line \(i + 1): '\(word)' is not key=number, once")
                }
            }
            guard values.count == 3, let nsid = values["nsid"], nsid > 0, nsid < 0xFFFF_FFFF,
                  let attached = values["attached"], attached <= 1, let nmic = values["nmic"], nmic <= 1 else {
                throw NamespaceStorageError("line \(i + 1): expected 'nsid=N attached=0|1 nmic=0|1', not '\(line)'")
            }
            guard !records.contains(where: { $0.nsid == nsid }) else {
                throw NamespaceStorageError("line \(i + 1): namespace \(nsid) is listed twice")
            }
            records.append(NamespaceRecord(nsid: nsid, attached: attached == 1, nmic: UInt8(nmic)))
        }
        return records
    }

    /// The records of the state file; none when it does not exist.
    /// - Throws: `NamespaceStorageError` for a file that cannot be read or parsed.
    public func readState() throws -> [NamespaceRecord] {
        let text: String
        do {
            guard let t = try Self.readText(statePath) else { return [] }
            text = t
        } catch {
            throw NamespaceStorageError("namespace state \(statePath): \(error)")
        }
        do { return try Self.parseState(text) } catch {
            throw NamespaceStorageError("namespace state \(statePath): \(error)")
        }
    }

    /// Replaces the state file durably (`SystemCalls.replaceFile`).
    /// - Throws: `ImageBackendError` with the path and errno.
    public func writeState(_ records: [NamespaceRecord]) throws {
        try acquire()
        let code = SystemCalls.replaceFile(statePath, with: Array(Self.stateText(records).utf8), mode: imageMode)
        guard code == 0 else { throw ImageBackendError(path: statePath, operation: "replace", errno: code) }
    }

    // MARK: storage

    /// Makes the storage of a new namespace: a sparse image of `nsze`
    /// blocks and a metadata file recording `format` (any files left from
    /// an earlier namespace of that NSID are replaced), then opens them.
    /// - Throws: `ImageBackendError` or `NamespaceStorageError`; nothing is left behind.
    public func createStorage(nsid: UInt32, format: NamespaceFormat, nsze: UInt64,
                              mode: ImageBackend.ExecutionMode = .default) throws -> NamespaceStorage {
        let image = imagePath(nsid)
        try acquire()
        try removeStorage(nsid: nsid)
        do {
            let (bytes, overflow) = nsze.multipliedReportingOverflow(by: UInt64(format.lbaSize))
            guard !overflow, bytes <= UInt64(Int64.max) else { throw ImageBackendError(path: image, operation: "create", errno: EFBIG) }
            var fd: Int32
            repeat { fd = open(image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, imageMode) } while fd < 0 && errno == EINTR
            guard fd >= 0 else { throw ImageBackendError(path: image, operation: "create", errno: errno) }
            var rc: Int32
            repeat { rc = ftruncate(fd, off_t(bytes)) } while rc < 0 && errno == EINTR
            let code = errno
            _ = Glibc.close(fd)
            guard rc == 0 else { throw ImageBackendError(path: image, operation: "truncate", errno: code) }
            try MetadataFile.create(path: MetadataFile.path(forImage: image), format: format, nsze: nsze)
            return try NamespaceStorage.open(imagePath: image, requested: format, explicit: true, readOnly: false, mode: mode)
        } catch {
            try? removeStorage(nsid: nsid)
            throw error
        }
    }

    /// Removes namespace `nsid`'s image and its sidecar files (missing ones are fine).
    /// - Throws: `ImageBackendError` for a file that exists and cannot be removed.
    public func removeStorage(nsid: UInt32) throws {
        let image = imagePath(nsid)
        for file in [image, MetadataFile.path(forImage: image), UncorrectableFile.path(forImage: image)] {
            guard unlink(file) == 0 || errno == ENOENT else {
                throw ImageBackendError(path: file, operation: "remove", errno: errno)
            }
        }
    }

    // MARK: helpers

    static func readText(_ path: String) throws -> String? {
        guard let data = try SystemCalls.readWholeFile(path, limit: 1 << 20) else { return nil }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ImageBackendError(path: path, operation: "read", errno: EILSEQ)
        }
        return text
    }

    static func makeDirectories(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw NamespaceStorageError("namespace directory \(path) is not a directory") }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw NamespaceStorageError("cannot create namespace directory \(path): \(errnoDescription(errno))")
        }
    }
}
