/// Controller register offsets in BAR0 (NVMe 1.4 §3.1, Figure 78).
public enum RegisterOffset {
    public static let cap: UInt64 = 0x00      // 8 bytes
    public static let vs: UInt64 = 0x08
    public static let intms: UInt64 = 0x0C
    public static let intmc: UInt64 = 0x10
    public static let cc: UInt64 = 0x14
    public static let csts: UInt64 = 0x1C
    public static let nssr: UInt64 = 0x20
    public static let aqa: UInt64 = 0x24
    public static let asq: UInt64 = 0x28      // 8 bytes
    public static let acq: UInt64 = 0x30      // 8 bytes
    public static let cmbloc: UInt64 = 0x38
    public static let cmbsz: UInt64 = 0x3C
    public static let bpinfo: UInt64 = 0x40
    public static let bprsel: UInt64 = 0x44
    public static let bpmbl: UInt64 = 0x48    // 8 bytes
    public static let cmbmsc: UInt64 = 0x50   // 8 bytes
    public static let cmbsts: UInt64 = 0x58
    /// First doorbell (SQ 0 tail); doorbell stride is 4 << CAP.DSTRD.
    public static let doorbellBase: UInt64 = 0x1000

    /// Offset of submission queue `qid`'s tail doorbell (§3.1.24).
    @inlinable public static func sqTailDoorbell(_ qid: UInt16, dstrd: UInt8 = 0) -> UInt64 {
        doorbellBase + UInt64(2 * Int(qid)) * (4 << UInt64(dstrd))
    }
    /// Offset of completion queue `qid`'s head doorbell (§3.1.25).
    @inlinable public static func cqHeadDoorbell(_ qid: UInt16, dstrd: UInt8 = 0) -> UInt64 {
        doorbellBase + UInt64(2 * Int(qid) + 1) * (4 << UInt64(dstrd))
    }
}

/// CAP — Controller Capabilities (§3.1.1).
public struct ControllerCapabilities: Hashable, Sendable {
    public var raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }
    /// Bits 15:0 — maximum queue entries supported, 0's based.
    public var mqes: UInt16 { get { UInt16(bits(raw, 15, 0)) } set { raw = settingBits(raw, 15, 0, to: UInt64(newValue)) } }
    /// Bit 16 — contiguous queues required.
    public var cqr: Bool { get { bits(raw, 16, 16) != 0 } set { raw = settingBits(raw, 16, 16, to: newValue ? 1 : 0) } }
    /// Bits 18:17 — arbitration mechanism supported (bit 0 WRR, bit 1 vendor).
    public var ams: UInt8 { get { UInt8(bits(raw, 18, 17)) } set { raw = settingBits(raw, 18, 17, to: UInt64(newValue)) } }
    /// Bits 31:24 — timeout in 500 ms units.
    public var to: UInt8 { get { UInt8(bits(raw, 31, 24)) } set { raw = settingBits(raw, 31, 24, to: UInt64(newValue)) } }
    /// Bits 35:32 — doorbell stride (2 ^ (2 + DSTRD) bytes).
    public var dstrd: UInt8 { get { UInt8(bits(raw, 35, 32)) } set { raw = settingBits(raw, 35, 32, to: UInt64(newValue)) } }
    /// Bit 36 — NVM subsystem reset supported.
    public var nssrs: Bool { get { bits(raw, 36, 36) != 0 } set { raw = settingBits(raw, 36, 36, to: newValue ? 1 : 0) } }
    /// Bits 44:37 — command sets supported (bit 0 NVM).
    public var css: UInt8 { get { UInt8(bits(raw, 44, 37)) } set { raw = settingBits(raw, 44, 37, to: UInt64(newValue)) } }
    /// Bit 45 — boot partition support.
    public var bps: Bool { get { bits(raw, 45, 45) != 0 } set { raw = settingBits(raw, 45, 45, to: newValue ? 1 : 0) } }
    /// Bits 51:48 — memory page size minimum (2 ^ (12 + MPSMIN)).
    public var mpsmin: UInt8 { get { UInt8(bits(raw, 51, 48)) } set { raw = settingBits(raw, 51, 48, to: UInt64(newValue)) } }
    /// Bits 55:52 — memory page size maximum.
    public var mpsmax: UInt8 { get { UInt8(bits(raw, 55, 52)) } set { raw = settingBits(raw, 55, 52, to: UInt64(newValue)) } }
    /// Bit 56 — persistent memory region supported.
    public var pmrs: Bool { get { bits(raw, 56, 56) != 0 } set { raw = settingBits(raw, 56, 56, to: newValue ? 1 : 0) } }
    /// Bit 57 — controller memory buffer supported.
    public var cmbs: Bool { get { bits(raw, 57, 57) != 0 } set { raw = settingBits(raw, 57, 57, to: newValue ? 1 : 0) } }
}

/// CC — Controller Configuration (§3.1.5).
public struct ControllerConfiguration: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    /// Bit 0 — enable.
    public var en: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
    /// Bits 6:4 — I/O command set selected (0 NVM).
    public var css: UInt8 { get { UInt8(bits(raw, 6, 4)) } set { raw = settingBits(raw, 6, 4, to: UInt32(newValue)) } }
    /// Bits 10:7 — memory page size (2 ^ (12 + MPS)).
    public var mps: UInt8 { get { UInt8(bits(raw, 10, 7)) } set { raw = settingBits(raw, 10, 7, to: UInt32(newValue)) } }
    /// Bits 13:11 — arbitration mechanism selected (0 round robin).
    public var ams: UInt8 { get { UInt8(bits(raw, 13, 11)) } set { raw = settingBits(raw, 13, 11, to: UInt32(newValue)) } }
    /// Bits 15:14 — shutdown notification (0 none, 1 normal, 2 abrupt).
    public var shn: UInt8 { get { UInt8(bits(raw, 15, 14)) } set { raw = settingBits(raw, 15, 14, to: UInt32(newValue)) } }
    /// Bits 19:16 — I/O submission queue entry size (2 ^ n).
    public var iosqes: UInt8 { get { UInt8(bits(raw, 19, 16)) } set { raw = settingBits(raw, 19, 16, to: UInt32(newValue)) } }
    /// Bits 23:20 — I/O completion queue entry size (2 ^ n).
    public var iocqes: UInt8 { get { UInt8(bits(raw, 23, 20)) } set { raw = settingBits(raw, 23, 20, to: UInt32(newValue)) } }
    /// Memory page size in bytes.
    public var pageSize: Int { 1 << (12 + Int(mps)) }
}

/// CSTS — Controller Status (§3.1.6).
public struct ControllerStatus: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    /// Bit 0 — ready.
    public var rdy: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
    /// Bit 1 — controller fatal status.
    public var cfs: Bool { get { raw & 2 != 0 } set { raw = settingBits(raw, 1, 1, to: newValue ? 1 : 0) } }
    /// Bits 3:2 — shutdown status (0 normal, 1 processing, 2 complete).
    public var shst: UInt8 { get { UInt8(bits(raw, 3, 2)) } set { raw = settingBits(raw, 3, 2, to: UInt32(newValue)) } }
    /// Bit 4 — NVM subsystem reset occurred.
    public var nssro: Bool { get { raw & 0x10 != 0 } set { raw = settingBits(raw, 4, 4, to: newValue ? 1 : 0) } }
    /// Bit 5 — processing paused.
    public var pp: Bool { get { raw & 0x20 != 0 } set { raw = settingBits(raw, 5, 5, to: newValue ? 1 : 0) } }
}

/// AQA — Admin Queue Attributes (§3.1.8). Sizes are 0's based.
public struct AdminQueueAttributes: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    /// Bits 11:0 — admin submission queue size.
    public var asqs: UInt16 { get { UInt16(bits(raw, 11, 0)) } set { raw = settingBits(raw, 11, 0, to: UInt32(newValue)) } }
    /// Bits 27:16 — admin completion queue size.
    public var acqs: UInt16 { get { UInt16(bits(raw, 27, 16)) } set { raw = settingBits(raw, 27, 16, to: UInt32(newValue)) } }
}

/// VS — Version (§3.1.2).
public struct Version: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    @inlinable public init(major: UInt16, minor: UInt8, tertiary: UInt8) {
        raw = UInt32(major) << 16 | UInt32(minor) << 8 | UInt32(tertiary)
    }
    public var major: UInt16 { UInt16(raw >> 16) }
    public var minor: UInt8 { UInt8(truncatingIfNeeded: raw >> 8) }
    public var tertiary: UInt8 { UInt8(truncatingIfNeeded: raw) }
    public static let v1_4 = Version(major: 1, minor: 4, tertiary: 0)
}

/// CMBLOC — Controller Memory Buffer Location (§3.1.11).
public struct CMBLocation: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    /// Bits 2:0 — base indicator register.
    public var bir: UInt8 { UInt8(bits(raw, 2, 0)) }
    /// Bits 31:12 — offset in CMBSZ.SZU units.
    public var ofst: UInt32 { bits(raw, 31, 12) }
}

/// CMBSZ — Controller Memory Buffer Size (§3.1.12).
public struct CMBSize: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    public var sqs: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
    public var cqs: Bool { get { raw & 2 != 0 } set { raw = settingBits(raw, 1, 1, to: newValue ? 1 : 0) } }
    public var lists: Bool { get { raw & 4 != 0 } set { raw = settingBits(raw, 2, 2, to: newValue ? 1 : 0) } }
    public var rds: Bool { get { raw & 8 != 0 } set { raw = settingBits(raw, 3, 3, to: newValue ? 1 : 0) } }
    public var wds: Bool { get { raw & 16 != 0 } set { raw = settingBits(raw, 4, 4, to: newValue ? 1 : 0) } }
    /// Bits 11:8 — size units (0 4 KiB, 1 64 KiB, 2 1 MiB, ...).
    public var szu: UInt8 { get { UInt8(bits(raw, 11, 8)) } set { raw = settingBits(raw, 11, 8, to: UInt32(newValue)) } }
    /// Bits 31:12 — size in SZU units.
    public var sz: UInt32 { get { bits(raw, 31, 12) } set { raw = settingBits(raw, 31, 12, to: newValue) } }
    public var bytes: UInt64 { UInt64(sz) << (12 + 4 * UInt64(szu)) }
}

/// CMBMSC — Controller Memory Buffer Memory Space Control (NVMe 1.4 §3.1.16).
public struct CMBMemorySpaceControl: Hashable, Sendable {
    public var raw: UInt64
    @inlinable public init(raw: UInt64) { self.raw = raw }
    /// Bit 0 — Capabilities Registers Enabled: CMBLOC and CMBSZ read their values.
    public var cre: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
    /// Bit 1 — Controller Memory Space Enable: the CMB answers at CBA.
    public var cmse: Bool { get { raw & 2 != 0 } set { raw = settingBits(raw, 1, 1, to: newValue ? 1 : 0) } }
    /// Bits 63:12 — Controller Base Address (the address of the CMB in commands).
    public var cba: UInt64 { get { raw & ~0xFFF } set { raw = (raw & 0xFFF) | (newValue & ~0xFFF) } }
}

/// CMBSTS — Controller Memory Buffer Status (NVMe 1.4 §3.1.17).
public struct CMBStatus: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }
    /// Bit 0 — Controller Base Address Invalid: the last CMSE set had a CBA
    /// the controller could not use.
    public var cbai: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
}
