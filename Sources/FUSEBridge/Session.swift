import CFuse3
import Logging
import Glibc

/// How to mount.
public struct MountOptions: Sendable {
    /// Absolute path of an existing empty directory.
    public var mountpoint: String
    /// Let other users see the files (`-o allow_other`; needs
    /// user_allow_other in /etc/fuse.conf for a non-root user).
    public var allowOther: Bool
    /// The source shown in /proc/mounts.
    public var fsName: String
    /// FUSE worker threads: at most this many (each blocking handler holds one).
    public var maxThreads: UInt32
    /// Idle worker threads kept alive; `UInt32.max` (libfuse's -1) keeps every
    /// worker. With a limit, libfuse creates and destroys threads under load:
    /// 4 KiB random reads with 2 jobs ran at half the C baseline's IOPS with 16.
    public var maxIdleThreads: UInt32

    public init(mountpoint: String, allowOther: Bool = false, fsName: String = "nvmefs",
                maxThreads: UInt32 = UInt32(DeviceConfiguration.defaultFUSEThreads), maxIdleThreads: UInt32 = .max) {
        self.mountpoint = mountpoint; self.allowOther = allowOther; self.fsName = fsName
        self.maxThreads = maxThreads; self.maxIdleThreads = maxIdleThreads
    }
}

/// A failure of the daemon, with a one-line message.
public struct DaemonError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One FUSE session, run as libfuse's ladder:
/// session new → mount → (ready) → signal watcher → loop → (stopping:
/// the device drains and syncs) → close replies → unmount → destroy.
public enum FUSESession {
    /// Mounts `fileSystem` and serves it until unmounted or signalled
    /// (SIGINT, SIGTERM, SIGHUP; see `TerminationSignals`).
    /// - Parameters:
    ///   - ready: called once mounted, before serving; a throw unmounts.
    ///   - stopping: called once the loop has ended, while replies can still
    ///     be sent: drain in-flight work, answer parked requests, sync.
    /// - Throws: `DaemonError` when the session cannot be created or mounted,
    ///   or what `ready` throws.
    public static func run(fileSystem: FileSystem, options: MountOptions, logger: Logger,
                           ready: () throws -> Void, stopping: () -> Void) throws {
        FuseLog.install()
        var mountOptions = ["default_permissions", "fsname=\(escapeOption(options.fsName))", "subtype=nvmefs"]
        if options.allowOther { mountOptions.append("allow_other") }
        var args = fuse_args(argc: 0, argv: nil, allocated: 0)
        defer { fuse_opt_free_args(&args) }
        for arg in ["nvmefs", "-o", mountOptions.joined(separator: ",")] { fuse_opt_add_arg(&args, arg) }

        var ops = makeLowLevelOperations()
        let userdata = Unmanaged.passRetained(fileSystem)
        defer { userdata.release() }
        guard let session = nvmefs_session_new(&args, &ops, userdata.toOpaque()) else {
            throw DaemonError("cannot create the FUSE session" + reason())
        }
        defer { fuse_session_destroy(session) }
        guard fuse_session_mount(session, options.mountpoint) == 0 else {
            throw DaemonError("cannot mount \(options.mountpoint)" + reason())
        }
        var served = false
        defer {
            if served { stopping() }
            fileSystem.gate.close()
            fuse_session_unmount(session)
        }
        try ready()
        served = true
        logger.info("mounted at \(options.mountpoint)")
        TerminationSignals.block()
        let watcher = TerminationWatcher(session: session)
        guard watcher.start() else { throw DaemonError("cannot start the signal watcher") }
        let status = nvmefs_session_loop_mt(session, 0, options.maxIdleThreads, options.maxThreads)
        watcher.stop()
        let signal = watcher.signal.load(ordering: .acquiring)
        if signal != 0 {
            logger.info("stopping on signal \(signal)")
        } else if status < 0 {
            logger.error("FUSE loop ended with error \(-status)")
        } else {
            logger.info("unmounted")
        }
    }

    private static func reason() -> String {
        FuseLog.takeLastError().map { ": \($0)" } ?? ""
    }

    /// Escapes "," and "\" for libfuse's -o parser.
    private static func escapeOption(_ value: String) -> String {
        var out = ""
        for c in value {
            if c == "," || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
