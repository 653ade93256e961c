import Glibc
import NVMeController
import NVMeSpec

/// Everything the device is built from, as given on the command line
/// (CONTRACT §2), validated. Plain values: the CLI fills it, `validate()` and
/// `checkFiles()` reject what cannot work, `prepare()` creates what is missing.
public struct DeviceConfiguration: Sendable, Equatable {
    /// One namespace: an image file or an NBD export (NSID = position + 1).
    public struct Namespace: Sendable, Equatable {
        /// Absolute path of the image, or the NBD export's URI.
        public var path: String
        /// Image size in bytes: the size to create a missing image with
        /// (`size=`, default 1 GiB); after `prepare()`, the image's size.
        public var size: UInt64
        /// True when `size=` was given (an existing image must then have it).
        public var sizeGiven: Bool
        /// LBA data size as a power of two: 9 (512 bytes) or 12 (4096 bytes).
        public var lbads: UInt8
        /// Metadata bytes per LBA (0 = none): 0, 8, 16 or 64.
        public var ms: UInt16
        /// `mset=1`: extended LBAs (metadata at the end of each LBA's data);
        /// otherwise a separate metadata buffer (FLBAS bit 4, NVMe 1.4 §5.15.2.1).
        public var extended: Bool
        /// `pi=`: end-to-end protection information type (DPS bits 2:0).
        public var pi: ProtectionType
        /// `pil=1`: the PI is the first 8 bytes of the metadata (DPS bit 3).
        public var piFirst: Bool
        /// True when any format option (lbads=, ms=, mset=, pi=, pil=) was
        /// given: the image's recorded format must then be this one.
        public var formatGiven: Bool
        /// Writes fail (the image is opened read-only).
        public var readOnly: Bool
        /// The image is the default one: its directory is created if missing.
        public var isDefaultImage: Bool

        public init(path: String, size: UInt64 = DeviceConfiguration.defaultImageSize, sizeGiven: Bool = false,
                    lbads: UInt8 = 9, ms: UInt16 = 0, extended: Bool = false, pi: ProtectionType = .none,
                    piFirst: Bool = false, formatGiven: Bool = false, readOnly: Bool = false,
                    isDefaultImage: Bool = false) {
            self.path = path; self.size = size; self.sizeGiven = sizeGiven; self.lbads = lbads
            self.ms = ms; self.extended = extended; self.pi = pi; self.piFirst = piFirst
            self.formatGiven = formatGiven; self.readOnly = readOnly; self.isDefaultImage = isDefaultImage
        }

        /// LBA data size in bytes.
        public var lbaSize: UInt64 { 1 << UInt64(lbads) }
        /// The namespace is an NBD export (`path` is a libnbd URI:
        /// nbd://, nbds://, nbd+unix://, nbd+vsock://, ...; docs/NBD.md),
        /// not an image file.
        public var isNBD: Bool { Self.isNBDURI(path) }

        /// True for a libnbd URI: scheme nbd or nbds, optionally +unix or +vsock.
        public static func isNBDURI(_ text: String) -> Bool {
            guard let colon = text.range(of: "://") else { return false }
            return ["nbd", "nbds", "nbd+unix", "nbds+unix", "nbd+vsock", "nbds+vsock"]
                .contains(text[..<colon.lowerBound].lowercased())
        }
        /// The format the options ask for (the default one when none was given).
        public var format: NamespaceFormat {
            NamespaceFormat(lbads: lbads, ms: ms, extended: extended, pi: pi, piFirst: piFirst)
        }
    }

    /// Whether the daemon's built-in host driver runs.
    public enum HostMode: String, Sendable, CaseIterable {
        /// The built-in host enables the controller and serves the convenience files.
        case builtin
        /// The controller stays in its reset state; only raw files are served.
        case none
    }

    public static let defaultImageSize: UInt64 = 1 << 30

    /// Namespaces in NSID order (at least one).
    public var namespaces: [Namespace]
    public var host: HostMode = .builtin
    /// The built-in host uses shadow doorbells (NVMe 1.4 §7.13; `BuiltinHostConfiguration.shadowDoorbells`).
    public var shadowDoorbells = false
    /// User host memory (`mem`) in bytes, a multiple of 4 KiB (0 = none).
    public var memSize: UInt64 = 64 << 20
    /// I/O queue pairs supported (1...65535).
    public var queues: Int = 64
    /// Maximum queue entries supported, CAP.MQES (0's based, 1...65535).
    public var mqes: Int = 2047
    /// Maximum data transfer size as a power of two of the minimum page size (0 = no limit).
    public var mdts: Int = 7
    /// Asynchronous Event Request Limit, AERL (0's based, 0...255).
    public var aerl: Int = 3
    /// Controller Memory Buffer size in bytes (0 = no CMB).
    public var cmbSize: UInt64 = 0
    /// Serial number (Identify Controller SN: up to 20 printable ASCII characters).
    public var serial: String = "NVMEFS0001"
    /// Model number (Identify Controller MN: up to 40 printable ASCII characters).
    public var model: String = "nvmefs NVMe Ctrl"
    /// The namespace directory (`--ns-dir`, docs/NAMESPACES.md): images of
    /// namespaces created by Namespace Management and the state file. nil:
    /// `IMAGE.nvmefs-ns` beside the first image (`namespaceDirectory`),
    /// made when the first namespace is created.
    public var nsDir: String?
    /// Identify Controller NN (`--max-namespaces`): NSIDs 1...N (QEMU: 256).
    public var maxNamespaces: Int = 256
    /// NVM capacity in bytes for creating namespaces (`--capacity`); TNVMCAP
    /// adds the `--namespace` images to it.
    public var capacity: UInt64 = 64 << 30
    /// Where the firmware slots and their state are kept (`--firmware-dir`,
    /// docs/FIRMWARE.md). nil until `resolvePaths` fills in the default
    /// (`defaultFirmwareDirectory`, created when missing) or makes the given
    /// one absolute; nil at mount: the slots are kept in memory only.
    public var firmwareDirectory: String?
    /// `firmwareDirectory` was not given.
    public var firmwareDirectoryIsDefault = true
    /// The controller's volatile write cache (`--vwc`, `--vwc-size`;
    /// docs/WRITE-CACHE.md): the bytes of acknowledged writes it may hold;
    /// 0 = none (every write reaches the image before it completes).
    public var writeCacheSize: UInt64 = 0
    public static let defaultWriteCacheSize: UInt64 = 64 << 20
    /// Atomicity values (`--atomicity`), in logical blocks, 0's based, by
    /// field name: awun awupf nawun nawupf nabsn nabo nabspf.
    public var atomicity: [String: Int] = [:]
    public static let atomicityFields = ["awun", "awupf", "nawun", "nawupf", "nabsn", "nabo", "nabspf"]
    /// Let the page cache serve `namespaces/N/data` (default: direct I/O).
    public var cache: Bool = false
    /// Mount with allow_other: other users may read what the owner may
    /// read (docs/PERMISSIONS.md).
    public var allowOther: Bool = false
    /// `--allow-other-write` (needs `allowOther`): other users may also write
    /// every file the owner may write (registers, doorbells, `mem`, `cmd`,
    /// `faults`, namespace data …; docs/PERMISSIONS.md).
    public var allowOtherWrite: Bool = false
    /// The permission bits of the images this mount creates (before the
    /// umask): readable by others only when others may read the data
    /// through the mount; never writable by others (they write through the
    /// mount, when allowed). docs/PERMISSIONS.md.
    public var imageMode: mode_t { allowOther ? 0o644 : 0o600 }
    /// FUSE worker threads (`--fuse-threads`); nil: `defaultFUSEThreads`.
    public var fuseThreads: Int?

    /// One worker per online CPU (at least 2). Measured on 2 CPUs with a
    /// tmpfs image: 4 KiB random reads with libaio at depth 16 ran at 111k
    /// IOPS with 2 workers, 95k with 4 and 26k with 10 (more runnable
    /// workers than CPUs preempt one another inside the controller's
    /// critical sections). Reads that block (an image on a disk, beyond the
    /// page cache) keep at most this many I/Os in flight: raise it there.
    public static var defaultFUSEThreads: Int {
        max(2, min(64, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    public init(namespaces: [Namespace]) {
        self.namespaces = namespaces
    }
}

/// A configuration or command-line problem: a one-line message, exit status 2.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension DeviceConfiguration {
    /// The controller's parameters this configuration asks for.
    public var controllerParameters: ControllerParameters {
        var p = ControllerParameters()
        p.maxIOQueuePairs = queues
        p.mqes = UInt16(clamping: mqes)
        p.mdts = UInt8(clamping: mdts)
        p.aerl = UInt8(clamping: aerl)
        p.serial = serial
        p.model = model
        p.cmbSize = Int(cmbSize)
        p.maxNamespaces = maxNamespaces
        p.namespaceCapacity = capacity
        p.writeCacheSize = Int(writeCacheSize)
        let a = { UInt16(clamping: atomicity[$0] ?? 0) }
        p.awun = a("awun"); p.awupf = a("awupf")
        p.nawun = a("nawun"); p.nawupf = a("nawupf")
        p.nabsn = a("nabsn"); p.nabo = a("nabo"); p.nabspf = a("nabspf")
        return p
    }
}
