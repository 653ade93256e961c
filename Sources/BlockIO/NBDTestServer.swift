import Glibc
import Synchronization

/// An `nbdkit` server on a fresh Unix socket, for tests of the NBD backend
/// (like `TestBackend`, test support that ships with BlockIO so that every
/// test target can use it). The server runs in the foreground as a child
/// of this process and dies with it (`--exit-with-parent`).
public final class NBDTestServer: @unchecked Sendable {
    public let socket: String
    public let arguments: [String]
    private var pid: pid_t = 0

    /// Starts `nbdkit ARGUMENTS` (plugin, filters, parameters) on a new
    /// socket in the temporary directory.
    /// - Throws: `NBDBackendError` when nbdkit is missing or does not start.
    public init(_ arguments: [String]) throws {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        socket = "\(dir)/nvmefs-nbd-\(getpid())-\(Self.counter.wrappingAdd(1, ordering: .relaxed).newValue).sock"
        self.arguments = arguments
        try start()
    }

    deinit { kill() }

    /// The URI of the server's default export.
    public var uri: String { "nbd+unix:///?socket=\(socket)" }

    public static var executable: String? {
        ["/usr/sbin/nbdkit", "/usr/bin/nbdkit"].first { access($0, X_OK) == 0 }
    }

    /// (Re)starts the server on the same socket.
    public func start() throws {
        guard let executable = Self.executable else {
            throw NBDBackendError(uri: uri, message: "nbdkit is not installed (scripts/setup.sh installs it)")
        }
        unlink(socket)
        let argv = [executable, "-f", "--exit-with-parent", "-U", socket] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, nil, cargs, environ)
        guard rc == 0 else { throw NBDBackendError(uri: uri, message: "cannot run nbdkit: \(errnoDescription(rc))") }
        pid = child
        let deadline = monotonicNanoseconds() + 20_000_000_000
        // The socket file appears at bind(); the server is up once a
        // connection is accepted.
        while !Self.accepts(socket) {
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child || monotonicNanoseconds() > deadline {
                kill()
                throw NBDBackendError(uri: uri, message: "nbdkit \(arguments.joined(separator: " ")) did not start")
            }
            usleep(10_000)
        }
    }

    /// True when a connection to the Unix socket `path` succeeds.
    static func accepts(_ path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        } == 0
    }

    /// SIGKILL: the server is gone at once, without an NBD goodbye.
    public func kill() {
        guard pid > 0 else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        pid = 0
        unlink(socket)
    }

    private static let counter = Atomic<Int>(0)
}
