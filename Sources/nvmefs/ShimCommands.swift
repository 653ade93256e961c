import ArgumentParser
import FUSEBridge
import Glibc

/// `nvmefs nvme MOUNT [--as DEVICE] -- ARGS...`: Debian's nvme-cli against a
/// mount, through the preload shim (README "nvme-cli").
struct NvmeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvme",
        abstract: "Run nvme-cli (nvme ARGS...) with the mount presented as DEVICE and DEVICEnN.",
        discussion: "Example: nvmefs nvme ~/nvmefs -- id-ctrl /dev/nvme0")

    @OptionGroup var target: ShimTarget

    @Argument(parsing: .postTerminator, help: "nvme-cli's arguments, after --.")
    var arguments: [String] = []

    func run() throws {
        let shim = try ShimLaunch(target)
        guard let nvme = ShimLaunch.findProgram("nvme", extraDirectories: ["/usr/sbin", "/sbin"]) else {
            throw DaemonError("nvme-cli is not installed (apt-get install nvme-cli; scripts/setup.sh installs it)")
        }
        try shim.exec(nvme, ["nvme"] + arguments)
    }
}

/// `nvmefs exec MOUNT [--as DEVICE] -- CMD...`: any program with the shim.
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a program with the mount presented as DEVICE and DEVICEnN (the nvme-cli shim).",
        discussion: "Example: nvmefs exec ~/nvmefs -- python3 script.py")

    @OptionGroup var target: ShimTarget

    @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.")
    var command: [String] = []

    func run() throws {
        guard let program = command.first, !program.isEmpty else {
            throw ConfigurationError("exec: no program given (nvmefs exec MOUNT -- PROGRAM ARGS...)")
        }
        let shim = try ShimLaunch(target)
        let path = program.contains("/") ? program : ShimLaunch.findProgram(program, extraDirectories: [])
        guard let path, access(path, X_OK) == 0 else { throw DaemonError("exec: \(program): no such program") }
        try shim.exec(path, command)
    }
}

/// The mount and the device path it is presented as.
struct ShimTarget: ParsableArguments {
    @Argument(help: "The mountpoint (an nvmefs mount with the built-in host).")
    var mountpoint: String

    @Option(name: .customLong("as"), help: "The controller's device path; namespace N is this path + nN.")
    var device: String = "/dev/nvme0"
}

/// The checked setting of one shim launch: the mount, the device path, the
/// shim library next to the nvmefs executable.
struct ShimLaunch {
    let mount: String
    let device: String
    let library: String

    init(_ target: ShimTarget) throws {
        let mountpoint = target.mountpoint, device = target.device
        guard device.hasPrefix("/"), !device.hasSuffix("/"), !device.contains("//"), device.count > 1 else {
            throw ConfigurationError("--as: '\(device)' is not an absolute device path such as /dev/nvme0")
        }
        let path = UnmountCommand.resolve(mountpoint)
        guard MountRegistry.isMounted(path) else { throw DaemonError("\(mountpoint) is not an nvmefs mount") }
        guard access(path + "/passthru", W_OK) == 0 else {
            throw DaemonError("\(mountpoint) has no passthru file (mounted with --host none?): the shim needs the built-in host")
        }
        guard let library = Self.shimLibrary() else {
            throw DaemonError("libnvmefs-shim.so is not next to the nvmefs executable (build it with swift build)")
        }
        self.mount = path
        self.device = device
        self.library = library
    }

    /// libnvmefs-shim.so in the executable's directory.
    static func shimLibrary() -> String? {
        guard let exe = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(exe) }
        var dir = String(cString: exe)
        if let slash = dir.lastIndex(of: "/") { dir = String(dir[..<slash]) }
        let library = dir + "/libnvmefs-shim.so"
        return access(library, R_OK) == 0 ? library : nil
    }

    /// `name` in PATH, then in `extraDirectories`.
    static func findProgram(_ name: String, extraDirectories: [String]) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + extraDirectories where !dir.isEmpty {
            let candidate = dir + "/" + name
            var st = stat()
            if access(candidate, X_OK) == 0, stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG { return candidate }
        }
        return nil
    }

    /// Replaces this process with `path` (argv `arguments`), the shim preloaded and configured.
    func exec(_ path: String, _ arguments: [String]) throws -> Never {
        let preload = getenv("LD_PRELOAD").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        setenv("LD_PRELOAD", preload.map { library + ":" + $0 } ?? library, 1)
        setenv("NVMEFS_SHIM_MOUNT", mount, 1)
        setenv("NVMEFS_SHIM_DEVICE", device, 1)
        let argv = arguments.map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        throw DaemonError("cannot run \(path): \(reason)")
    }
}
