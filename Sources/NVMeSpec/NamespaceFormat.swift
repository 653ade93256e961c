/// How a namespace's logical blocks are laid out (NVMe 1.4 §5.15.2.1,
/// §8.2, §8.3): LBA data size, metadata size, where the metadata travels
/// (extended LBA or a separate buffer) and the protection information.
public struct NamespaceFormat: Hashable, Sendable, CustomStringConvertible {
    /// LBA data size as a power of two: 9 (512 B) or 12 (4 KiB).
    public var lbads: UInt8
    /// Metadata bytes per LBA: 0, 8, 16 or 64.
    public var ms: UInt16
    /// FLBAS bit 4 / Format NVM MSET: metadata at the end of each LBA's
    /// data in the data buffer (extended LBA); otherwise in a separate buffer.
    public var extended: Bool
    /// DPS bits 2:0 / Format NVM PI.
    public var pi: ProtectionType
    /// DPS bit 3 / Format NVM PIL: the PI is the first eight bytes of the
    /// metadata; otherwise the last eight.
    public var piFirst: Bool

    public init(lbads: UInt8 = 9, ms: UInt16 = 0, extended: Bool = false, pi: ProtectionType = .none, piFirst: Bool = false) {
        self.lbads = lbads; self.ms = ms; self.extended = extended; self.pi = pi; self.piFirst = piFirst
    }

    /// The LBA formats every namespace advertises (Identify Namespace LBAF0-7),
    /// in QEMU's order. Relative performance: 4 KiB without metadata is best,
    /// more metadata per byte of data is slower.
    public static let lbaFormats: [LBAFormat] = [
        LBAFormat(ms: 0, lbads: 9, rp: 1), LBAFormat(ms: 8, lbads: 9, rp: 2),
        LBAFormat(ms: 16, lbads: 9, rp: 2), LBAFormat(ms: 64, lbads: 9, rp: 3),
        LBAFormat(ms: 0, lbads: 12, rp: 0), LBAFormat(ms: 8, lbads: 12, rp: 1),
        LBAFormat(ms: 16, lbads: 12, rp: 1), LBAFormat(ms: 64, lbads: 12, rp: 2),
    ]
    public static let metadataSizes: [UInt16] = [0, 8, 16, 64]

    /// The format's index in `lbaFormats`, nil if not advertised.
    public var lbafIndex: Int? { Self.lbaFormats.firstIndex { $0.lbads == lbads && $0.ms == ms } }

    /// Identify Namespace FLBAS.
    public var flbas: UInt8 { UInt8(lbafIndex ?? 0) | (extended && ms > 0 ? 0x10 : 0) }
    /// Identify Namespace DPS.
    public var dps: UInt8 { pi.rawValue | (piFirst && pi != .none ? 0x08 : 0) }

    /// LBA data size in bytes.
    public var lbaSize: Int { 1 << Int(lbads) }
    /// Bytes of one LBA in an extended data buffer.
    public var extendedLBASize: Int { lbaSize + Int(ms) }
    /// Offset of the PI tuple within an LBA's metadata.
    public var piOffset: Int { piFirst ? 0 : Int(ms) - ProtectionInformation.size }
    public var hasMetadata: Bool { ms > 0 }

    /// Why the format cannot exist, or nil (the mount options and Format
    /// NVM both check with it; Format NVM answers Invalid Format).
    public var invalidReason: String? {
        if lbads != 9 && lbads != 12 { return "lbads must be 9 or 12, not \(lbads)" }
        if !Self.metadataSizes.contains(ms) { return "ms must be 0, 8, 16 or 64, not \(ms)" }
        if pi != .none && ms < UInt16(ProtectionInformation.size) {
            return "protection information needs at least 8 bytes of metadata (ms=\(ms))"
        }
        return nil
    }

    /// "4096+8 separate, PI type 1 (last 8 bytes)", "512+0".
    public var description: String {
        var s = "\(lbaSize)+\(ms)"
        if ms > 0 { s += extended ? " extended" : " separate" }
        if pi != .none { s += ", PI type \(pi.rawValue) (\(piFirst ? "first" : "last") 8 bytes)" }
        return s
    }

    /// The metadata of a deallocated or never written block: zeros, with
    /// the PI tuple (if any) all FFh (DLFEAT bit 4 clear).
    public func deallocatedMetadata(into p: UnsafeMutableRawBufferPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0)
        guard pi != .none, ms > 0 else { return }
        var at = piOffset
        while at + ProtectionInformation.size <= p.count {
            ProtectionInformation.deallocated.store(to: p.baseAddress! + at)
            at += Int(ms)
        }
    }
}
