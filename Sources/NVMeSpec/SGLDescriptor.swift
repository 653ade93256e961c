/// A 16-byte Scatter Gather List descriptor (NVMe 1.4 §4.4, Figures 112-119).
///
/// Generic layout: bytes 7:0 address, bytes 11:8 length, bytes 14:12
/// reserved (descriptor specific), byte 15 the SGL identifier (bits 7:4
/// descriptor type, bits 3:0 descriptor sub type). The Keyed Data Block
/// descriptor lays bytes 8..14 out differently; it is only recognised by type.
public struct SGLDescriptor: Hashable, Sendable {
    public static let size = 16

    /// Bytes 7:0 — address (data block, segment) or reserved (bit bucket).
    public var address: UInt64
    /// Bytes 11:8 — length in bytes.
    public var length: UInt32
    /// Bytes 14:12 — reserved for the descriptors nvmefs supports; kept so a
    /// decode/encode round trip is exact.
    public var reserved: UInt32
    /// Byte 15 bits 7:4.
    public var type: SGLDescriptorType
    /// Byte 15 bits 3:0.
    public var subtype: SGLDescriptorSubtype

    /// Field byte offsets (NVMe 1.4 Figure 112).
    public enum Offset {
        public static let address = 0, length = 8, reserved = 12, identifier = 15
    }

    public init(address: UInt64 = 0, length: UInt32 = 0, type: SGLDescriptorType = .dataBlock,
                subtype: SGLDescriptorSubtype = .address, reserved: UInt32 = 0) {
        self.address = address; self.length = length; self.type = type; self.subtype = subtype
        self.reserved = reserved & 0xFF_FFFF
    }

    /// The SGL identifier byte: type in bits 7:4, sub type in bits 3:0.
    public var identifier: UInt8 {
        get { (type.rawValue & 0xF) << 4 | (subtype.rawValue & 0xF) }
        set {
            type = SGLDescriptorType(rawValue: newValue >> 4)
            subtype = SGLDescriptorSubtype(rawValue: newValue & 0xF)
        }
    }

    /// Decodes the descriptor from the two little-endian quadwords that hold
    /// it: `low` = bytes 7:0, `high` = bytes 15:8. This is how SGL1 sits in a
    /// submission queue entry (the PRP1 and PRP2 fields, CDW6-9).
    public init(low: UInt64, high: UInt64) {
        address = low
        length = UInt32(truncatingIfNeeded: high)
        reserved = UInt32(truncatingIfNeeded: high >> 32) & 0xFF_FFFF
        let id = UInt8(truncatingIfNeeded: high >> 56)
        type = SGLDescriptorType(rawValue: id >> 4)
        subtype = SGLDescriptorSubtype(rawValue: id & 0xF)
    }

    /// Bytes 7:0 as a little-endian quadword.
    public var low: UInt64 { address }
    /// Bytes 15:8 as a little-endian quadword.
    public var high: UInt64 {
        UInt64(length) | UInt64(reserved & 0xFF_FFFF) << 32 | UInt64(identifier) << 56
    }

    /// Decodes 16 bytes; nil on short input.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        self.init(low: bytes.le64(Offset.address), high: bytes.le64(Offset.length))
    }

    public init?(bytes: [UInt8]) {
        guard let v = bytes.withUnsafeBytes({ SGLDescriptor(bytes: $0) }) else { return nil }
        self = v
    }

    /// Encodes into the first 16 bytes of `out`.
    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.put64(low, at: Offset.address)
        out.put64(high, at: Offset.length)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }
}

/// SGL descriptor type, identifier bits 7:4 (NVMe 1.4 Figure 115).
/// Open enum-like struct: unknown values round-trip.
public struct SGLDescriptorType: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue & 0xF }
    public static let dataBlock = SGLDescriptorType(rawValue: 0x0)
    public static let bitBucket = SGLDescriptorType(rawValue: 0x1)
    public static let segment = SGLDescriptorType(rawValue: 0x2)
    public static let lastSegment = SGLDescriptorType(rawValue: 0x3)
    public static let keyedDataBlock = SGLDescriptorType(rawValue: 0x4)
    public static let transportDataBlock = SGLDescriptorType(rawValue: 0x5)
    // 6h-Eh reserved.
    public static let vendorSpecific = SGLDescriptorType(rawValue: 0xF)

    public var description: String {
        switch self {
        case .dataBlock: "data block"
        case .bitBucket: "bit bucket"
        case .segment: "segment"
        case .lastSegment: "last segment"
        case .keyedDataBlock: "keyed data block"
        case .transportDataBlock: "transport data block"
        case .vendorSpecific: "vendor specific"
        default: "reserved(\(rawValue))"
        }
    }
}

/// SGL descriptor sub type, identifier bits 3:0 (NVMe 1.4 Figure 116).
public struct SGLDescriptorSubtype: Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue & 0xF }
    /// The Address field is a memory address (the only sub type used over PCIe).
    public static let address = SGLDescriptorSubtype(rawValue: 0x0)
    /// The Address field is an offset (NVMe over Fabrics).
    public static let offset = SGLDescriptorSubtype(rawValue: 0x1)
}

extension SubmissionQueueEntry {
    /// CDW6-9 read as SGL descriptor 1 (when PSDT selects SGLs).
    public var sgl1: SGLDescriptor {
        get { SGLDescriptor(low: prp1, high: prp2) }
        set { prp1 = newValue.low; prp2 = newValue.high }
    }
}
