import ArgumentParser
import FUSEBridge
import Glibc

/// `nvmefs unmount MOUNTPOINT`: unmounts, then waits until the daemon has
/// exited (its pid file lock is released: in-flight commands finished,
/// images synced).
struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount",
        abstract: "Unmount cleanly: returns when the daemon has synced the images and exited.")

    @Argument(help: "The mountpoint.")
    var mountpoint: String

    @Option(help: "Seconds to wait for the daemon to exit.")
    var timeout: Double = 300

    func run() throws {
        let path = Self.resolve(mountpoint)
        let mounted = MountRegistry.isMounted(path)
        let pid = MountRegistry.daemonPID(mountpoint: path)
        guard mounted || pid != nil else { throw DaemonError("\(mountpoint) is not an nvmefs mount") }
        if mounted { try Self.unmount(path) }
        guard MountRegistry.waitForDaemonExit(mountpoint: path, pid: pid, timeoutSeconds: timeout) else {
            throw DaemonError("the daemon\(pid.map { " (pid \($0))" } ?? "") of \(path) did not exit within \(timeout) s")
        }
    }

    /// The real path, or for a dead mount (stat fails: ENOTCONN) the
    /// absolute path with its parent resolved.
    static func resolve(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        var absolute = path
        if !path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
            absolute = String(cString: cwd) + "/" + path
            free(cwd)
        }
        while absolute.count > 1 && absolute.hasSuffix("/") { absolute.removeLast() }
        guard let slash = absolute.lastIndex(of: "/") else { return absolute }
        let parent = slash == absolute.startIndex ? "/" : String(absolute[..<slash])
        let name = absolute[absolute.index(after: slash)...]
        guard let real = realpath(parent, nil) else { return absolute }
        defer { free(real) }
        let p = String(cString: real)
        return (p == "/" ? "" : p) + "/" + name
    }

    /// umount2 when allowed (root), else fusermount3 -u.
    static func unmount(_ path: String) throws {
        if umount2(path, 0) == 0 { return }
        let code = errno
        if code == EBUSY { throw DaemonError("cannot unmount \(path): it is busy") }
        guard code == EPERM else { throw DaemonError("cannot unmount \(path): \(String(cString: strerror(code)))") }
        let (status, output) = runCapturingStderr(["fusermount3", "-u", "--", path])
        guard status == 0 else {
            let line = output.split(separator: "\n").first.map(String.init) ?? "fusermount3 failed (status \(status))"
            throw DaemonError("cannot unmount \(path): \(line)")
        }
    }

    /// Runs a program from PATH; returns its exit status and stderr.
    static func runCapturingStderr(_ arguments: [String]) -> (Int32, String) {
        var fds: [Int32] = [0, 0]
        guard makePipe(&fds) else { return (-1, "cannot create a pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { return (-1, "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            data += chunk[0..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), String(decoding: data, as: UTF8.self))
    }
}

/// `nvmefs pid MOUNTPOINT` (hidden): the pid of the daemon serving a mount,
/// for scripts and the FS tests.
struct PidCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pid", abstract: "Print the pid of the daemon serving a mount.", shouldDisplay: false)

    @Argument var mountpoint: String

    func run() throws {
        let path = UnmountCommand.resolve(mountpoint)
        guard let pid = MountRegistry.daemonPID(mountpoint: path) else {
            throw DaemonError("no nvmefs daemon serves \(mountpoint)")
        }
        CommandLineEntry.writeLine("\(pid)", to: 1)
    }
}
