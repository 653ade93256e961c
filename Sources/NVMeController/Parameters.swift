import NVMeSpec

/// Build-time parameters of one emulated controller (CONTRACT §2 options).
public struct ControllerParameters: Sendable {
    /// I/O queue pairs supported (`--queues`); queue ids 1...maxIOQueuePairs.
    public var maxIOQueuePairs: Int = 64
    /// CAP.MQES, 0's based (`--mqes`).
    public var mqes: UInt16 = 2047
    /// Identify MDTS: 2^mdts × 4 KiB (`--mdts`); 0 = no limit.
    public var mdts: UInt8 = 7
    public var serial: String = "NVMEFS0001"
    public var model: String = "nvmefs NVMe Ctrl"
    public var firmwareRevision: String = "1.0"
    /// Identify MTFA: the longest firmware activation without a reset, in
    /// 100 ms units (an image asking for more gets Firmware Activation
    /// Requires Maximum Time Violation; docs/FIRMWARE.md).
    public var firmwareMTFA: UInt16 = 10
    /// Asynchronous Event Request Limit, 0's based (QEMU default 3).
    public var aerl: UInt8 = 3
    /// Events kept while no AER is outstanding (QEMU aer_max_queued default 64).
    public var aerMaxQueued: Int = 64
    /// Number of Namespaces (Identify NN): NSIDs 1...NN are valid, those
    /// without an attached namespace are inactive (QEMU: 256).
    public var maxNamespaces: Int = 256
    /// Bytes of NVM for namespaces created by Namespace Management
    /// (`--capacity`, docs/NAMESPACES.md): TNVMCAP is this plus the
    /// namespaces the controller starts with that were not created.
    public var namespaceCapacity: UInt64 = 64 << 30
    /// Abort Command Limit, 0's based (QEMU: 3).
    public var acl: UInt8 = 3
    /// Error log page entries, 0's based (ELPE).
    public var elpe: UInt8 = 63
    /// Largest single backend operation in bytes; bigger commands issue several AIOs.
    public var maxBackendTransfer: Int = 512 * 1024
    /// Bytes one Write Zeroes AIO of a Format NVM covers (docs/FORMAT.md);
    /// a format keeps `formatWindow` of them in flight.
    public var formatChunk: Int = 8 << 20
    /// How long a short and an extended Device Self-test run (NVMe 1.4 §5.8,
    /// docs/SELFTEST.md), in milliseconds; Identify Controller EDSTT is the
    /// extended time in minutes, rounded up. Tests shorten them.
    public var selfTestShortMilliseconds: Int = 2000
    public var selfTestExtendedMilliseconds: Int = 10_000
    /// Bytes one read of a self-test's media check covers.
    public var selfTestChunk: Int = 1 << 20
    /// Controller Memory Buffer size in bytes (`--cmb`); 0 = none. A multiple of 4 KiB.
    public var cmbSize: Int = 0
    /// Copy limits of every namespace (Identify Namespace MSSRL, MCL, MSRC;
    /// NVMe 2.0 NVM Command Set §4.1.5.1), QEMU's `nvme-ns` defaults:
    /// blocks per source range, blocks per command, source ranges (0's based).
    public var copyMSSRL: UInt16 = 128
    public var copyMCL: UInt32 = 128
    public var copyMSRC: UInt8 = 127
    /// The controller's volatile write cache (`--vwc`, `--vwc-size`;
    /// docs/WRITE-CACHE.md): the bytes of acknowledged writes all
    /// namespaces may hold in memory together; 0 = no cache of its own
    /// (writes reach the image before they complete).
    public var writeCacheSize: Int = 0
    /// Atomicity (Identify Controller AWUN/AWUPF, Identify Namespace
    /// NAWUN/NAWUPF/NABSN/NABO/NABSPF; NVMe 1.4 §6.4), in logical blocks,
    /// 0's based as the fields are (boundaries: 0 = none). The namespace
    /// fields apply to every namespace (NSFEAT bit 1 set when any is not 0).
    public var awun: UInt16 = 0
    public var awupf: UInt16 = 0
    public var nawun: UInt16 = 0
    public var nawupf: UInt16 = 0
    public var nabsn: UInt16 = 0
    public var nabo: UInt16 = 0
    public var nabspf: UInt16 = 0
    /// True when the namespace atomicity fields are in use (NSFEAT NSABP).
    public var namespaceAtomicity: Bool { nawun != 0 || nawupf != 0 || nabsn != 0 || nabo != 0 || nabspf != 0 }

    /// Why these atomicity values are inconsistent (NVMe 1.4 §5.15.2.1,
    /// §5.15.2.2: AWUPF ≤ AWUN, NAWUPF ≤ NAWUN, NABSPF ≤ NABSN, NABO ≤ NABSPF
    /// and NABSN), or nil.
    public var atomicityProblem: String? {
        if awupf > awun { return "awupf (\(awupf)) is larger than awun (\(awun))" }
        if nawupf > nawun { return "nawupf (\(nawupf)) is larger than nawun (\(nawun))" }
        if nabspf > nabsn && nabsn != 0 { return "nabspf (\(nabspf)) is larger than nabsn (\(nabsn))" }
        if nabo != 0 && (nabo > nabsn || nabo > nabspf) { return "nabo (\(nabo)) is larger than nabsn or nabspf" }
        return nil
    }

    /// MSI-X vectors (QEMU: max_ioqpairs + 1).
    public var interruptVectors: Int { maxIOQueuePairs + 1 }

    public init() {}

    /// MDTS in bytes (minimum page size 4 KiB), or nil when unlimited.
    public var maxDataTransfer: Int? { mdts == 0 ? nil : (1 << Int(mdts)) * 4096 }
}
