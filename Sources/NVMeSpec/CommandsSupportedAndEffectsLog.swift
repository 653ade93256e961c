/// A Commands Supported and Effects data structure entry (NVMe 1.4 Figure 201):
/// one dword describing an opcode.
public struct CommandEffects: Hashable, Sendable {
    public var raw: UInt32
    @inlinable public init(raw: UInt32) { self.raw = raw }

    public init(csupp: Bool = true, lbcc: Bool = false, ncc: Bool = false, nic: Bool = false,
                ccc: Bool = false, cse: UInt8 = 0) {
        raw = 0
        self.csupp = csupp; self.lbcc = lbcc; self.ncc = ncc; self.nic = nic; self.ccc = ccc; self.cse = cse
    }

    /// Bit 0 — command supported.
    public var csupp: Bool { get { raw & 1 != 0 } set { raw = settingBits(raw, 0, 0, to: newValue ? 1 : 0) } }
    /// Bit 1 — logical block content change.
    public var lbcc: Bool { get { raw & 2 != 0 } set { raw = settingBits(raw, 1, 1, to: newValue ? 1 : 0) } }
    /// Bit 2 — namespace capability change.
    public var ncc: Bool { get { raw & 4 != 0 } set { raw = settingBits(raw, 2, 2, to: newValue ? 1 : 0) } }
    /// Bit 3 — namespace inventory change.
    public var nic: Bool { get { raw & 8 != 0 } set { raw = settingBits(raw, 3, 3, to: newValue ? 1 : 0) } }
    /// Bit 4 — controller capability change.
    public var ccc: Bool { get { raw & 16 != 0 } set { raw = settingBits(raw, 4, 4, to: newValue ? 1 : 0) } }
    /// Bits 18:16 — command submission and execution (0 none, 1 single per namespace, 2 single per subsystem).
    public var cse: UInt8 { get { UInt8(bits(raw, 18, 16)) } set { raw = settingBits(raw, 18, 16, to: UInt32(newValue)) } }
    /// Bit 19 — UUID selection supported.
    public var uss: Bool { get { bits(raw, 19, 19) != 0 } set { raw = settingBits(raw, 19, 19, to: newValue ? 1 : 0) } }

    /// Supported, no other effects.
    public static let supported = CommandEffects(raw: 1)
    /// Supported and changes logical block content (writes).
    public static let supportedLBCC = CommandEffects(raw: 0b11)
}

/// Commands Supported and Effects log page, log identifier 05h (NVMe 1.4
/// §5.14.1.5, Figure 200): 4096 bytes. ACS0..ACS255 (admin opcodes) at byte 0,
/// IOCS0..IOCS255 (I/O opcodes) at byte 1024, 4 bytes each.
public struct CommandsSupportedAndEffectsLog: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096
    public static let entryCount = 256

    /// Admin command effects, indexed by opcode. Always 256 entries when decoded.
    public var acs: [CommandEffects] = Array(repeating: CommandEffects(raw: 0), count: 256)
    /// I/O command effects, indexed by opcode. Always 256 entries when decoded.
    public var iocs: [CommandEffects] = Array(repeating: CommandEffects(raw: 0), count: 256)

    public enum Offset {
        public static let acs0 = 0, iocs0 = 1024
        @inlinable public static func acs(_ opcode: Int) -> Int { acs0 + 4 * opcode }
        @inlinable public static func iocs(_ opcode: Int) -> Int { iocs0 + 4 * opcode }
    }

    public init() {}

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        acs = (0 ..< Self.entryCount).map { CommandEffects(raw: bytes.le32(Offset.acs($0))) }
        iocs = (0 ..< Self.entryCount).map { CommandEffects(raw: bytes.le32(Offset.iocs($0))) }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        for (i, e) in acs.prefix(Self.entryCount).enumerated() { out.put32(e.raw, at: Offset.acs(i)) }
        for (i, e) in iocs.prefix(Self.entryCount).enumerated() { out.put32(e.raw, at: Offset.iocs(i)) }
    }

    /// Effects of an admin opcode.
    public subscript(admin opcode: AdminOpcode) -> CommandEffects {
        get { Int(opcode.rawValue) < acs.count ? acs[Int(opcode.rawValue)] : CommandEffects(raw: 0) }
        set { if Int(opcode.rawValue) < acs.count { acs[Int(opcode.rawValue)] = newValue } }
    }
    /// Effects of an NVM I/O opcode.
    public subscript(io opcode: NVMOpcode) -> CommandEffects {
        get { Int(opcode.rawValue) < iocs.count ? iocs[Int(opcode.rawValue)] : CommandEffects(raw: 0) }
        set { if Int(opcode.rawValue) < iocs.count { iocs[Int(opcode.rawValue)] = newValue } }
    }
}
