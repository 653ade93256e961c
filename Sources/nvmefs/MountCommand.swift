import ArgumentParser
import FUSEBridge
import Logging
import Glibc

/// `nvmefs mount MOUNTPOINT [options]` (CONTRACT §2).
struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount an emulated NVMe controller; returns when the mount is ready.")

    @Argument(help: "An existing empty directory.")
    var mountpoint: String

    @Option(name: .customLong("namespace"),
            help: ArgumentHelp("A namespace image (repeatable; NSID = order). A missing image is created sparse; "
                               + "size= is the data capacity. Format: lbads= LBA data size (2^9 or 2^12), ms= "
                               + "metadata bytes per LBA, mset=1 extended LBAs (else a separate buffer), pi= "
                               + "protection type, pil=1 PI in the first 8 metadata bytes. The format is recorded "
                               + "in PATH.nvmefs-md; later mounts without format options use it.",
                               valueName: "PATH[,size=SIZE][,lbads=9|12][,ms=0|8|16|64][,mset=0|1][,pi=0|1|2|3][,pil=0|1][,readonly]"))
    var namespaces: [String] = []

    @Option(help: ArgumentHelp("builtin: the built-in host driver brings the controller up; none: raw files only.",
                               valueName: "builtin|none"))
    var host: String = "builtin"

    @Option(help: ArgumentHelp("Size of user host memory (K/M/G/T suffixes, binary).", valueName: "SIZE"))
    var mem: String = "64M"

    @Option(help: "I/O queue pairs supported (1...65535).")
    var queues: String = "64"

    @Option(name: .customLong("fuse-threads"),
            help: ArgumentHelp("FUSE worker threads (1...256; default: one per online CPU, at least 2). Raise it "
                               + "for images whose reads block on a disk, to keep more I/Os in flight.", valueName: "N"))
    var fuseThreads: String?

    @Option(help: "Maximum queue entries supported, CAP.MQES (1...65535).")
    var mqes: String = "2047"

    @Option(help: "Maximum data transfer size, a power of two of 4 KiB pages (0 = no limit).")
    var mdts: String = "7"

    @Option(help: "Asynchronous Event Request Limit, AERL, 0's based (0...255; default 3: four outstanding).")
    var aerl: String = "3"

    @Option(help: ArgumentHelp("Controller Memory Buffer size (default: no CMB).", valueName: "SIZE"))
    var cmb: String?

    @Option(name: .customLong("ns-dir"),
            help: ArgumentHelp("Where namespaces created with Namespace Management live, with their state "
                               + "(default: FIRST-IMAGE.nvmefs-ns beside the first image, made when first needed). "
                               + "One mount at a time.", valueName: "DIR"))
    var nsDir: String?

    @Option(name: .customLong("max-namespaces"), help: "Number of namespaces, Identify NN: NSIDs 1...N (1...65535).")
    var maxNamespaces: String = "256"

    @Option(help: ArgumentHelp("NVM capacity for namespaces created with Namespace Management; TNVMCAP adds the "
                               + "--namespace images (default 64G; images are sparse).", valueName: "SIZE"))
    var capacity: String = "64G"

    @Option(help: "Serial number (up to 20 characters).")
    var serial: String?

    @Option(help: "Model number (up to 40 characters).")
    var model: String?

    @Option(name: .customLong("firmware-dir"),
            help: ArgumentHelp("Directory of the firmware slots (default: firmware/ beside the default image).",
                               valueName: "DIR"))
    var firmwareDir: String?

    @Flag(help: "The built-in host configures shadow doorbells (Doorbell Buffer Config) and rings MMIO doorbells only when EventIdx asks.")
    var shadowDoorbells = false

    @Flag(help: ArgumentHelp("Give the controller a volatile write cache: writes complete from memory and reach the "
                             + "image on Flush, FUA, eviction, shutdown or unmount; the power file's cut loses them."))
    var vwc = false

    @Option(name: .customLong("vwc-size"),
            help: ArgumentHelp("Bytes of unflushed writes the write cache holds (default 64M; needs --vwc).", valueName: "SIZE"))
    var vwcSize: String?

    @Option(help: ArgumentHelp("Atomicity fields in logical blocks, 0's based: awun, awupf (Identify Controller), "
                               + "nawun, nawupf, nabsn, nabo, nabspf (every namespace).", valueName: "FIELD=N,..."))
    var atomicity: String?

    @Flag(help: "Let the page cache serve namespaces/N/data (default: direct I/O).")
    var cache = false

    @Flag(help: "Let other users access the mount (needs user_allow_other in /etc/fuse.conf).")
    var allowOther = false

    @Flag(name: .customLong("allow-other-write"),
          help: "With --allow-other: other users may also write what the owner may write (registers, doorbells, mem, cmd, faults, data).")
    var allowOtherWrite = false

    @Flag(name: [.short, .long], help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Flag(help: "Log at debug level.")
    var debug = false

    /// Set by the daemonizing parent: the pipe on which to report readiness.
    @Option(name: .customLong("ready-fd"), help: .hidden)
    var readyFD: Int32?

    /// Adds `selftest/`, the FUSE bridge's test files.
    @Flag(name: .customLong("selftest-files"), help: .hidden)
    var selfTestFiles = false

    mutating func run() throws {
        // The serving process blocks the termination signals before any
        // thread exists, so that every later thread inherits the mask. The
        // daemonizing parent stays interruptible.
        if foreground || readyFD != nil { TerminationSignals.block() }
        let level: Logger.Level = debug ? .debug : .info
        if readyFD != nil {
            SyslogLogHandler.open()
            LoggingSystem.bootstrap { SyslogLogHandler(label: $0, logLevel: level) }
        } else {
            LoggingSystem.bootstrap { StderrLogHandler(label: $0, logLevel: level) }
        }

        if let fd = readyFD {
            runDaemonChild(reporter: ReadyReporter(fd: fd))
        }
        let (configuration, realMountpoint) = try makeConfiguration()
        guard foreground else {
            Daemonizer.spawnChild(arguments: Daemonizer.childArguments(CommandLine.arguments))
        }
        try Daemon.run(configuration: configuration, mountpoint: realMountpoint,
                       provider: makeDeviceProvider(selfTest: selfTestFiles),
                       logger: Logger(label: "nvmefs"), ready: {})
    }

    /// The re-executed child: the same validation and run, with its outcome
    /// reported on the pipe instead of stderr.
    private func runDaemonChild(reporter: ReadyReporter) -> Never {
        do {
            let (configuration, realMountpoint) = try makeConfiguration()
            try Daemon.run(configuration: configuration, mountpoint: realMountpoint,
                           provider: makeDeviceProvider(selfTest: selfTestFiles),
                           logger: Logger(label: "nvmefs"), ready: { reporter.ready() })
            Glibc.exit(0)
        } catch let error as ConfigurationError {
            reporter.fail(error.message, status: 2)
        } catch let error as DaemonError {
            reporter.fail(error.message, status: 1)
        } catch {
            reporter.fail("\(error)", status: 1)
        }
    }

    /// Parses and validates every option, and checks the images and the
    /// mountpoint; changes nothing on disk.
    func makeConfiguration() throws(ConfigurationError) -> (DeviceConfiguration, String) {
        var list: [DeviceConfiguration.Namespace] = []
        for spec in namespaces { list.append(try DeviceConfiguration.parseNamespace(spec)) }
        if list.isEmpty {
            list = [DeviceConfiguration.Namespace(path: try DeviceConfiguration.defaultImagePath(), isDefaultImage: true)]
        }
        var c = DeviceConfiguration(namespaces: list)
        guard let hostMode = DeviceConfiguration.HostMode(rawValue: host) else {
            throw ConfigurationError("--host must be builtin or none, not '\(host)'")
        }
        c.host = hostMode
        if shadowDoorbells && hostMode != .builtin {
            throw ConfigurationError("--shadow-doorbells needs the built-in host (--host builtin)")
        }
        c.shadowDoorbells = shadowDoorbells
        c.memSize = try DeviceConfiguration.parseSize(mem)
        c.queues = try Self.integer(queues, option: "--queues")
        c.mqes = try Self.integer(mqes, option: "--mqes")
        c.mdts = try Self.integer(mdts, option: "--mdts")
        c.aerl = try Self.integer(aerl, option: "--aerl")
        if let fuseThreads { c.fuseThreads = try Self.integer(fuseThreads, option: "--fuse-threads") }
        if let cmb {
            c.cmbSize = try DeviceConfiguration.parseSize(cmb)
            guard c.cmbSize > 0 else { throw ConfigurationError("--cmb must not be 0 (omit it for no CMB)") }
        }
        c.nsDir = nsDir
        c.maxNamespaces = try Self.integer(maxNamespaces, option: "--max-namespaces")
        c.capacity = try DeviceConfiguration.parseSize(capacity)
        if let serial { c.serial = serial }
        if let model { c.model = model }
        if let firmwareDir {
            guard !firmwareDir.isEmpty else { throw ConfigurationError("--firmware-dir must not be empty") }
            c.firmwareDirectory = firmwareDir
            c.firmwareDirectoryIsDefault = false
        }
        if vwc {
            c.writeCacheSize = try vwcSize.map { t throws(ConfigurationError) in try DeviceConfiguration.parseSize(t) }
                ?? DeviceConfiguration.defaultWriteCacheSize
            guard c.writeCacheSize > 0 else { throw ConfigurationError("--vwc-size must not be 0") }
        } else if vwcSize != nil {
            throw ConfigurationError("--vwc-size needs --vwc")
        }
        if let atomicity { c.atomicity = try DeviceConfiguration.parseAtomicity(atomicity) }
        c.cache = cache
        c.allowOther = allowOther
        c.allowOtherWrite = allowOtherWrite
        try c.validate()
        try c.resolvePaths()
        try c.validate()        // paths are now absolute: duplicates compare by real path
        try c.checkFiles()
        let real = try Mountpoint.validate(mountpoint)
        return (c, real)
    }

    private static func integer(_ text: String, option: String) throws(ConfigurationError) -> Int {
        guard let value = Int(text) else { throw ConfigurationError("\(option): '\(text)' is not a number") }
        return value
    }
}
