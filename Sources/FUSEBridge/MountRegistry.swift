import Glibc

/// Where a running daemon is found: one pid file per mount.
///
/// The file is `DIR/<escaped real path of the mountpoint>.pid`, where DIR is
/// `$XDG_RUNTIME_DIR/nvmefs`, else `/run/nvmefs` for root, else
/// `/tmp/nvmefs-UID`; the escaping percent-encodes every byte outside
/// `[A-Za-z0-9._-]`. Content: the pid, a newline, the mountpoint, a newline.
/// The daemon holds an exclusive flock(2) on it for its whole life (the lock
/// goes with the process), and unlinks it just before exiting. So "the lock
/// is held" means "the daemon is alive", and waiting for the lock is waiting
/// for the daemon to have exited, images synced.
public enum MountRegistry {
    /// The directory of the pid files.
    public static func directory() -> String {
        if let runtime = DeviceConfiguration.environment("XDG_RUNTIME_DIR"), runtime.hasPrefix("/") {
            return runtime + "/nvmefs"
        }
        return getuid() == 0 ? "/run/nvmefs" : "/tmp/nvmefs-\(getuid())"
    }

    /// The pid file of a mountpoint (given by its real path).
    public static func pidFilePath(mountpoint: String) -> String {
        var name = ""
        for byte in mountpoint.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                name.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                name += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        if name.utf8.count > 240 { name = "long-" + String(fnv1a(mountpoint), radix: 16) }
        return directory() + "/" + name + ".pid"
    }

    /// The daemon's hold on its pid file.
    public final class Registration: Sendable {
        let fd: Int32
        let path: String
        init(fd: Int32, path: String) { self.fd = fd; self.path = path }

        /// Unlinks the pid file if it is still ours. The lock itself is
        /// released when the process exits.
        public func remove() {
            var mine = stat(), current = stat()
            if fstat(fd, &mine) == 0, stat(path, &current) == 0,
               mine.st_dev == current.st_dev, mine.st_ino == current.st_ino {
                unlink(path)
            }
        }
    }

    /// Creates and locks the pid file of `mountpoint` for this process.
    /// - Throws: `DaemonError` when another daemon holds it, or on I/O errors.
    public static func register(mountpoint: String) throws(DaemonError) -> Registration {
        let dir = directory()
        if mkdir(dir, getuid() == 0 ? 0o755 : 0o700) != 0 && errno != EEXIST {
            throw DaemonError("cannot create \(dir): \(DeviceConfiguration.errorText())")
        }
        let path = pidFilePath(mountpoint: mountpoint)
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw DaemonError("cannot create \(path): \(DeviceConfiguration.errorText())") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let other = readPID(fd: fd)
                close(fd)
                throw DaemonError("another nvmefs daemon\(other.map { " (pid \($0))" } ?? "") serves \(mountpoint)")
            }
            // A daemon that was exiting may have unlinked the file between our
            // open and our lock: then lock the new file instead.
            var locked = stat(), current = stat()
            guard fstat(fd, &locked) == 0, stat(path, &current) == 0,
                  locked.st_dev == current.st_dev, locked.st_ino == current.st_ino else {
                close(fd); continue
            }
            let content = Array("\(getpid())\n\(mountpoint)\n".utf8)
            guard ftruncate(fd, 0) == 0,
                  content.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == content.count else {
                let text = DeviceConfiguration.errorText()
                close(fd)
                throw DaemonError("cannot write \(path): \(text)")
            }
            return Registration(fd: fd, path: path)
        }
    }

    /// The pid of the live daemon serving `mountpoint` (real path), if any.
    public static func daemonPID(mountpoint: String) -> pid_t? {
        let fd = open(pidFilePath(mountpoint: mountpoint), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { return nil }   // nobody holds it: stale
        return readPID(fd: fd)
    }

    /// Waits until no daemon serves `mountpoint` (its lock is free) and,
    /// when `pid` is given, until that process has finished exiting; false
    /// on timeout.
    public static func waitForDaemonExit(mountpoint: String, pid: pid_t?, timeoutSeconds: Double) -> Bool {
        var waited = 0.0
        func tick() -> Bool {
            if waited >= timeoutSeconds { return false }
            usleep(20_000)
            waited += 0.02
            return true
        }
        let fd = open(pidFilePath(mountpoint: mountpoint), O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            while flock(fd, LOCK_SH | LOCK_NB) != 0 { guard tick() else { return false } }
        }
        // The lock goes away while the process is still being torn down.
        while let pid, isRunning(pid) { guard tick() else { return false } }
        return true
    }

    /// True while `pid` exists and is not a zombie.
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != nil && state != "Z" && state != "X"
    }

    /// True when an nvmefs mount (type fuse.nvmefs) is exactly at `path` (a real path).
    public static func isMounted(_ path: String) -> Bool { mounts().contains(path) }

    /// The mount points of every nvmefs mount (type fuse.nvmefs), in mount order.
    public static func mounts() -> [String] {
        guard let text = readFile("/proc/self/mountinfo") else { return [] }
        var out: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            if fields[dash + 1] == "fuse.nvmefs" { out.append(unescapeMountField(fields[4])) }
        }
        return out
    }

    // MARK: helpers

    private static func readPID(fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        return text.split(separator: "\n").first.flatMap { pid_t($0) }
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    /// Reads `fd` to end of file (retrying EINTR) as UTF-8 text.
    public static func readAll(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            data += chunk[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescapeMountField(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        let raw = Array(field.utf8)
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "\\"), i + 4 <= raw.count,
               let v = UInt8(String(decoding: raw[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                bytes.append(v); i += 4
            } else {
                bytes.append(raw[i]); i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
