/// Namespace identifier type, NIDT (NVMe 1.4 Figure 251). Open enum-like struct.
public struct NamespaceIdentifierType: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// IEEE extended unique identifier, 8 bytes.
    public static let eui64 = NamespaceIdentifierType(0x01)
    /// Namespace globally unique identifier, 16 bytes.
    public static let nguid = NamespaceIdentifierType(0x02)
    /// Namespace UUID, 16 bytes.
    public static let uuid = NamespaceIdentifierType(0x03)
    /// Command set identifier, 1 byte (TP4056; NVMe 2.0 numbering).
    public static let csi = NamespaceIdentifierType(0x04)

    /// The NIDL the specification requires for this type, nil if unknown.
    public var expectedLength: Int? {
        switch rawValue {
        case 0x01: 8
        case 0x02, 0x03: 16
        case 0x04: 1
        default: nil
        }
    }

    public var name: String {
        switch rawValue {
        case 0x01: "EUI64"
        case 0x02: "NGUID"
        case 0x03: "UUID"
        case 0x04: "CSI"
        default: "UNKNOWN"
        }
    }
    public var description: String { name }
}

/// One namespace identification descriptor (NVMe 1.4 §5.15.2.3, Figure 250):
/// byte 0 NIDT, byte 1 NIDL, bytes 3:2 reserved, bytes (NIDL+3):4 NID.
/// Variable size: `4 + nid.count` bytes.
public struct NamespaceIdentificationDescriptor: Hashable, Sendable {
    /// Size of the header before NID.
    public static let headerSize = 4

    public enum Offset {
        public static let nidt = 0, nidl = 1, nid = 4
    }

    /// Namespace identifier type.
    public var nidt: NamespaceIdentifierType
    /// Namespace identifier (NIDL = its length, at most 255 bytes).
    public var nid: [UInt8]

    public init(nidt: NamespaceIdentifierType, nid: [UInt8]) {
        self.nidt = nidt; self.nid = nid
    }

    public static func eui64(_ value: [UInt8]) -> Self { Self(nidt: .eui64, nid: value) }
    public static func nguid(_ value: [UInt8]) -> Self { Self(nidt: .nguid, nid: value) }
    public static func uuid(_ value: [UInt8]) -> Self { Self(nidt: .uuid, nid: value) }
    public static func csi(_ value: UInt8) -> Self { Self(nidt: .csi, nid: [value]) }

    /// NIDL as encoded.
    public var nidl: UInt8 { UInt8(truncatingIfNeeded: min(nid.count, 255)) }
    /// Encoded size in bytes.
    public var size: Int { Self.headerSize + Int(nidl) }
    /// True when NIDL matches the length the specification gives for NIDT.
    public var hasValidLength: Bool { nidt.expectedLength == nid.count }

    /// Decodes one descriptor at the start of `bytes`. Nil on short input
    /// (header or NID incomplete) and for a terminating zero NIDL.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.headerSize else { return nil }
        let length = Int(bytes.le8(Offset.nidl))
        guard length > 0, bytes.count >= Self.headerSize + length else { return nil }
        nidt = NamespaceIdentifierType(bytes.le8(Offset.nidt))
        nid = bytes.rawField(Offset.nid, count: length)
    }

    public init?(bytes: [UInt8]) {
        guard let v = bytes.withUnsafeBytes({ Self(bytes: $0) }) else { return nil }
        self = v
    }

    /// Encodes into the first `size` bytes of `out`.
    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= size)
        out.put8(nidt.rawValue, at: Offset.nidt)
        out.put8(nidl, at: Offset.nidl)
        out.put16(0, at: 2)
        out.putRawField(nid, at: Offset.nid, count: Int(nidl))
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }
}

/// The Namespace Identification Descriptor list returned by Identify CNS 03h
/// (NVMe 1.4 §5.15.2.3): 4096 bytes of descriptors back to back, ended by a
/// descriptor with NIDL zero (or by the end of the data).
public struct NamespaceIdentificationDescriptorList: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096

    public var descriptors: [NamespaceIdentificationDescriptor]

    public init(_ descriptors: [NamespaceIdentificationDescriptor] = []) { self.descriptors = descriptors }

    /// Decodes a list; nil when shorter than 4096 bytes or when a descriptor
    /// with a non-zero NIDL runs past the end of the 4096 bytes (malformed).
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        let page = UnsafeRawBufferPointer(rebasing: bytes[0 ..< Self.size])
        var found: [NamespaceIdentificationDescriptor] = []
        var offset = 0
        while offset + NamespaceIdentificationDescriptor.headerSize <= Self.size {
            let rest = UnsafeRawBufferPointer(rebasing: page[offset...])
            if rest.le8(NamespaceIdentificationDescriptor.Offset.nidl) == 0 { break }
            guard let d = NamespaceIdentificationDescriptor(bytes: rest) else { return nil }
            found.append(d)
            offset += d.size
        }
        descriptors = found
    }

    /// Encodes the descriptors in order, zero filled; descriptors that would not
    /// fit entirely in 4096 bytes are left out (the zero fill terminates the list).
    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        var offset = 0
        for d in descriptors {
            guard offset + d.size <= Self.size else { break }
            d.encode(into: UnsafeMutableRawBufferPointer(rebasing: out[offset ..< offset + d.size]))
            offset += d.size
        }
    }
}
