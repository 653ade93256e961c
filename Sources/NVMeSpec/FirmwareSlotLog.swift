/// Firmware Slot Information log page, log identifier 03h (NVMe 1.4
/// §5.14.1.3, Figure 197): 512 bytes.
public struct FirmwareSlotLog: Hashable, Sendable, NVMeWireFormat {
    public static let size = 512
    /// Number of firmware slots described (FRS1..FRS7).
    public static let slotCount = 7
    /// Width of each firmware revision field.
    public static let revisionWidth = 8

    /// 0 — active firmware info: bits 2:0 active slot, bits 6:4 slot activated at the next reset (0 = none).
    public var afi: UInt8 = 0
    /// 63:8 — firmware revision for slots 1..7 (FRS1..FRS7), 8 ASCII bytes each;
    /// index 0 is slot 1. An empty string encodes as all zeros (no valid
    /// revision in that slot); others are space padded. Always 7 entries when
    /// decoded; missing entries encode as zero.
    public var frs: [String] = Array(repeating: "", count: 7)

    public enum Offset {
        public static let afi = 0, frs1 = 8
        /// Offset of the revision of `slot` (1...7).
        @inlinable public static func frs(_ slot: Int) -> Int { frs1 + revisionWidth * (slot - 1) }
    }

    public init() {}

    public init(activeSlot: UInt8, nextSlot: UInt8 = 0, revisions: [String]) {
        afi = (activeSlot & 0x7) | (nextSlot & 0x7) << 4
        frs = revisions
    }

    /// AFI bits 2:0 — slot of the firmware currently active.
    public var activeSlot: UInt8 {
        get { afi & 0x7 }
        set { afi = (afi & ~0x7) | (newValue & 0x7) }
    }
    /// AFI bits 6:4 — slot to be activated at the next controller level reset (0: unspecified).
    public var nextSlot: UInt8 {
        get { (afi >> 4) & 0x7 }
        set { afi = (afi & ~0x70) | (newValue & 0x7) << 4 }
    }

    /// The revision in `slot` (1...7), "" if none or out of range.
    public func revision(slot: Int) -> String {
        (1 ... Self.slotCount).contains(slot) && slot <= frs.count ? frs[slot - 1] : ""
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        afi = bytes.le8(Offset.afi)
        frs = (1 ... Self.slotCount).map { bytes.asciiField(Offset.frs($0), width: Self.revisionWidth) }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put8(afi, at: Offset.afi)
        for (i, revision) in frs.prefix(Self.slotCount).enumerated() where !revision.isEmpty {
            out.putASCII(revision, at: Offset.frs(i + 1), width: Self.revisionWidth)
        }
    }
}
