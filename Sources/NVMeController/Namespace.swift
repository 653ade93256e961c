import BlockIO
import NVMeSpec

/// One namespace: an image behind a block backend, and, when its format has
/// metadata, a second backend holding the metadata (docs/METADATA.md). Only
/// the namespace knows its backends (the controller never opens images).
///
/// `format`, `nsze`, `metadataBackend` and `formatProgress` change only by
/// Format NVM and are guarded by the controller's lock; outside the
/// controller, read them through `NVMeController.namespaceGeometry(_:)`.
public final class Namespace: @unchecked Sendable {
    public let nsid: UInt32
    /// The data backend as the engine sees it: the image behind the fault injector.
    public let backend: any BlockBackend
    /// Fault-injection rules for this namespace (CONTRACT §3 `faults`); they
    /// apply to its data and metadata AIOs.
    public let faults = FaultInjector()
    public let isReadOnly: Bool
    /// Per-operation accounting (QEMU BlockAcctStats).
    public let accounting = BlockAccounting()
    /// 16-byte NGUID and EUI-64 derived from the NSID (stable across runs).
    public let nguid: [UInt8]
    public let eui64: [UInt8]
    /// Bytes of the data image.
    public let dataCapacity: UInt64
    /// Re-creates the metadata on Format NVM; nil: only formats without
    /// metadata can be selected.
    public let metadataStore: (any MetadataStore)?
    /// Where the Write Uncorrectable marks are kept (`IMAGE.nvmefs-uc`);
    /// nil: in memory only.
    public let uncorrectableFile: UncorrectableFile?
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities (Identify
    /// Namespace NMIC): bit 0 set for a namespace that may be attached to
    /// more than one controller (NVMe 1.4 §5.15.2.1). 0 for `--namespace`
    /// namespaces; as given by the host for created ones.
    public let nmic: UInt8
    /// True for a namespace created by Namespace Management (its storage is
    /// the controller's, so Delete removes it); false for an image the user
    /// gave (docs/NAMESPACES.md).
    public let isCreated: Bool
    /// The image file, for the files that describe the namespace (nil: none).
    public let imagePath: String?

    // MARK: guarded by the controller lock
    /// The formatted LBA format, metadata placement and protection.
    public internal(set) var format: NamespaceFormat
    /// Namespace size in logical blocks.
    public internal(set) var nsze: UInt64
    /// The metadata backend behind the fault injector (nil without metadata).
    public internal(set) var metadataBackend: (any BlockBackend)?
    /// Offset of LBA 0's metadata in `metadataBackend`.
    public internal(set) var metadataBase: UInt64
    /// Percent of a Format NVM done while one runs on this namespace
    /// (docs/FORMAT.md); nil otherwise. I/O to the namespace meanwhile
    /// gets Format In Progress.
    public internal(set) var formatProgress: Int?
    /// LBAs marked by Write Uncorrectable (§6.16): Reads of them fail
    /// until they are written. Cleared by Format NVM.
    public internal(set) var uncorrectableMarks: LBARangeSet
    /// The controller's volatile write cache for this namespace (nil
    /// without `--vwc`; docs/WRITE-CACHE.md).
    public internal(set) var writeCache: WriteCache?

    /// A namespace without metadata (LBA data size 2^lbads).
    public convenience init(nsid: UInt32, backend: any BlockBackend, lbads: UInt8, readOnly: Bool = false) {
        self.init(nsid: nsid, backend: backend, format: NamespaceFormat(lbads: lbads), readOnly: readOnly)
    }

    /// A namespace of `format`; `metadata` holds LBA n's metadata at
    /// `metadataBase + n * ms` and is required when the format has metadata.
    public init(nsid: UInt32, backend: any BlockBackend, format: NamespaceFormat, metadata: (any BlockBackend)? = nil,
                metadataBase: UInt64 = 0, metadataStore: (any MetadataStore)? = nil, readOnly: Bool = false,
                uncorrectableFile: UncorrectableFile? = nil, uncorrectableMarks: LBARangeSet = LBARangeSet(),
                nmic: UInt8 = 0, isCreated: Bool = false, imagePath: String? = nil) {
        precondition(format.invalidReason == nil, "invalid namespace format \(format)")
        precondition(!format.hasMetadata || metadata != nil, "a format with metadata needs a metadata backend")
        self.nsid = nsid
        self.backend = FaultInjectingBackend(inner: backend, injector: faults)
        self.isReadOnly = readOnly || backend.isReadOnly
        self.dataCapacity = backend.size
        self.metadataStore = metadataStore
        self.format = format
        self.nsze = backend.size >> UInt64(format.lbads)
        self.metadataBase = metadataBase
        self.uncorrectableFile = uncorrectableFile
        self.nmic = nmic
        self.isCreated = isCreated
        self.imagePath = imagePath
        var marks = uncorrectableMarks
        marks.remove(start: backend.size >> UInt64(format.lbads), end: .max)
        self.uncorrectableMarks = marks
        var g = [UInt8](repeating: 0, count: 16)
        g[0] = 0x6E; g[1] = 0x76; g[2] = 0x6D; g[3] = 0x65  // "nvme"
        for i in 0..<4 { g[12 + i] = UInt8(truncatingIfNeeded: nsid >> (24 - 8 * UInt32(i))) }
        nguid = g
        eui64 = [0x6E, 0x76, 0x6D, 0x65] + g[12..<16]
        if let metadata, format.hasMetadata {
            metadataBackend = wrapMetadata(metadata, format: format, base: metadataBase)
        }
    }

    /// The metadata backend behind this namespace's fault injector.
    func wrapMetadata(_ inner: any BlockBackend, format: NamespaceFormat, base: UInt64) -> any BlockBackend {
        FaultInjectingBackend(inner: inner, injector: faults,
                              metadata: MetadataGeometry(base: base, ms: UInt64(format.ms), lbads: format.lbads))
    }

    public var lbads: UInt8 { format.lbads }
    public var blockSize: Int { format.lbaSize }
    public var ms: Int { Int(format.ms) }

    /// Byte offset of LBA `lba`'s metadata in the metadata backend.
    @inlinable func metadataOffset(_ lba: UInt64) -> UInt64 { metadataBase + lba * UInt64(format.ms) }

    /// Bytes of NVM the namespace takes from the controller's capacity
    /// (TNVMCAP, UNVMCAP): its data image; metadata is not counted.
    public var allocatedBytes: UInt64 { dataCapacity }

    /// Every backend of the namespace (data, then metadata).
    public var backends: [any BlockBackend] {
        if let m = metadataBackend { return [backend, m] }
        return [backend]
    }

    /// The first LBA of [slba, slba+nlb) Write Uncorrectable marked, nil
    /// when none is (one branch when nothing is marked). Under the
    /// controller lock; the range is in bounds.
    @inlinable func firstUncorrectable(slba: UInt64, nlb: UInt64) -> UInt64? {
        if uncorrectableMarks.isEmpty { return nil }
        return uncorrectableMarks.firstMember(start: slba, end: slba + nlb)
    }

    /// True if [slba, slba+nlb) lies inside the namespace (no overflow).
    @inlinable func inBounds(slba: UInt64, nlb: UInt64) -> Bool {
        let (end, overflow) = slba.addingReportingOverflow(nlb)
        return !overflow && end <= nsze
    }
}

/// A consistent picture of a namespace's layout, for readers outside the controller.
public struct NamespaceGeometry: Sendable, Hashable {
    public var nsid: UInt32
    public var format: NamespaceFormat
    public var nsze: UInt64
    public var isReadOnly: Bool
    /// Format NVM progress in percent while one runs on this namespace.
    public var formatProgress: Int?
    public var lbads: UInt8 { format.lbads }
    public var blockSize: Int { format.lbaSize }
    /// Data bytes (NSZE × LBA data size): the size of `namespaces/N/data`.
    public var capacity: UInt64 { nsze << UInt64(format.lbads) }
}
