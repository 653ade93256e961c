import BlockIO
import NVMeSpec

/// One namespace: an image behind a block backend. Only the namespace knows
/// its backend (the controller never opens images).
public final class Namespace: @unchecked Sendable {
    public let nsid: UInt32
    /// The backend as the engine sees it: the image behind the fault injector.
    public let backend: any BlockBackend
    /// Fault-injection rules for this namespace (CONTRACT §3 `faults`).
    public let faults = FaultInjector()
    /// LBA data size as a power of two (9 = 512 B, 12 = 4 KiB).
    public let lbads: UInt8
    public let isReadOnly: Bool
    /// Per-operation accounting (QEMU BlockAcctStats).
    public let accounting = BlockAccounting()
    /// Namespace size in logical blocks.
    public let nsze: UInt64
    /// 16-byte NGUID and EUI-64 derived from the NSID (stable across runs).
    public let nguid: [UInt8]
    public let eui64: [UInt8]

    public init(nsid: UInt32, backend: any BlockBackend, lbads: UInt8, readOnly: Bool = false) {
        precondition(lbads == 9 || lbads == 12, "lbads must be 9 or 12")
        self.nsid = nsid
        self.backend = FaultInjectingBackend(inner: backend, injector: faults)
        self.lbads = lbads
        self.isReadOnly = readOnly || backend.isReadOnly
        self.nsze = backend.size >> UInt64(lbads)
        var g = [UInt8](repeating: 0, count: 16)
        g[0] = 0x6E; g[1] = 0x76; g[2] = 0x6D; g[3] = 0x65  // "nvme"
        for i in 0..<4 { g[12 + i] = UInt8(truncatingIfNeeded: nsid >> (24 - 8 * UInt32(i))) }
        nguid = g
        eui64 = [0x6E, 0x76, 0x6D, 0x65] + g[12..<16]
    }

    public var blockSize: Int { 1 << Int(lbads) }

    /// True if [slba, slba+nlb) lies inside the namespace (no overflow).
    @inlinable func inBounds(slba: UInt64, nlb: UInt64) -> Bool {
        let (end, overflow) = slba.addingReportingOverflow(nlb)
        return !overflow && end <= nsze
    }
}
