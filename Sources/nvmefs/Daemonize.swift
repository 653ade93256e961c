import FUSEBridge
import Glibc

/// Daemonizing without fork(): the parent re-executes its own binary
/// (/proc/self/exe) with `--ready-fd 3`, in a new session, stdin/stdout/
/// stderr on /dev/null, and a pipe on fd 3. The child reports one line:
/// "ready", or "error STATUS MESSAGE". The parent exits 0 on "ready"; on an
/// error it prints the message and exits with the status.
enum Daemonizer {
    /// The child's argument vector: the parent's, with `--ready-fd 3` right
    /// after the `mount` subcommand (so it is never after a "--").
    static func childArguments(_ arguments: [String]) -> [String] {
        var args = arguments
        let at = (args.firstIndex(of: "mount") ?? 0) + 1
        args.insert(contentsOf: ["--ready-fd", "3"], at: min(at, args.count))
        return args
    }

    static func spawnChild(arguments: [String]) -> Never {
        var fds: [Int32] = [0, 0]
        guard makePipe(&fds) else { CommandLineEntry.fail("cannot create a pipe", status: 1) }
        // Keep the write end off fd 3, where the child wants it.
        let writeEnd = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
        close(fds[1])
        let readEnd = fds[0]

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, posixSpawnSetSID)

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, environ)
        close(writeEnd)
        guard status == 0 else {
            CommandLineEntry.fail("cannot start the daemon: \(String(cString: strerror(status)))", status: 1)
        }

        let report = MountRegistry.readAll(readEnd)
        close(readEnd)
        let line = report.split(separator: "\n").first.map(String.init) ?? ""
        if line == "ready" { exit(0) }
        var childStatus: Int32 = 0
        while waitpid(pid, &childStatus, 0) < 0 && errno == EINTR {}
        if line.hasPrefix("error ") {
            let rest = line.dropFirst(6)
            let parts = rest.split(separator: " ", maxSplits: 1).map(String.init)
            let code = Int32(parts.first ?? "") ?? 1
            CommandLineEntry.fail(parts.count > 1 ? parts[1] : "the daemon failed", status: code == 0 ? 1 : code)
        }
        let termination = childStatus & 0x7f
        let how = termination != 0 ? "was killed by signal \(termination)" : "exited with status \((childStatus >> 8) & 0xff)"
        CommandLineEntry.fail("the daemon \(how) before the mount was ready", status: 1)
    }
}

/// The child's end of the readiness pipe.
struct ReadyReporter {
    let fd: Int32

    /// The mount is in place: tell the parent, and let it go.
    func ready() {
        send("ready")
        close(fd)
    }

    /// Reports a failure (one line) and exits with `status`.
    func fail(_ message: String, status: Int32) -> Never {
        let line = message.split(separator: "\n").first.map(String.init) ?? message
        send("error \(status) \(line)")
        exit(status)
    }

    private func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

/// POSIX_SPAWN_SETSID (glibc's spawn.h; hidden from Swift without _GNU_SOURCE).
let posixSpawnSetSID: Int16 = 0x80

/// pipe(2) with both ends close-on-exec.
func makePipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return true
}
