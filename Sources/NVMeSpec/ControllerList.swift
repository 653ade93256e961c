/// A controller list (NVMe 1.4 §4.10, Figure 115): a 2-byte count, then up
/// to 2047 controller identifiers of 2 bytes each; 4096 bytes. Returned by
/// Identify CNS 12h and 13h, and the data of Namespace Attachment (§5.19).
public struct ControllerList: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096
    /// Most identifiers one list holds.
    public static let capacity = 2047

    /// The Number of Identifiers field as given (it may exceed `capacity`).
    public var count: UInt16
    /// The identifiers: the first min(count, 2047) entries.
    public var ids: [UInt16]

    /// Byte offset of identifier `index` (the count is entry 0).
    @inlinable public static func offset(ofEntry index: Int) -> Int { 2 + index * 2 }

    /// A list of `ids` (entries past 2047 are dropped; the count says how many are kept).
    public init(_ ids: [UInt16] = []) {
        self.ids = Array(ids.prefix(Self.capacity))
        count = UInt16(self.ids.count)
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        count = bytes.le16(0)
        ids = (0 ..< min(Int(count), Self.capacity)).map { bytes.le16(Self.offset(ofEntry: $0)) }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put16(count, at: 0)
        for (i, id) in ids.prefix(Self.capacity).enumerated() { out.put16(id, at: Self.offset(ofEntry: i)) }
    }
}

/// The host-specified fields of a Namespace Management create (NVMe 1.4
/// §5.20, Figure 241): the Identify Namespace layout (§5.15.2.1), of which
/// only NSZE, NCAP, FLBAS, DPS and NMIC are read; the rest is ignored.
public struct NamespaceManagementCreate: Hashable, Sendable {
    public enum Offset {
        public static let nsze = 0, ncap = 8, flbas = 26, dps = 29, nmic = 30
    }
    /// Bytes of the data structure (an Identify Namespace's size).
    public static let size = 4096

    public var nsze: UInt64
    public var ncap: UInt64
    public var flbas: UInt8
    public var dps: UInt8
    public var nmic: UInt8

    public init(nsze: UInt64, ncap: UInt64, flbas: UInt8 = 0, dps: UInt8 = 0, nmic: UInt8 = 0) {
        self.nsze = nsze; self.ncap = ncap; self.flbas = flbas; self.dps = dps; self.nmic = nmic
    }

    /// Decodes the fields; nil on input shorter than the last field read.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count > Offset.nmic else { return nil }
        nsze = bytes.le64(Offset.nsze)
        ncap = bytes.le64(Offset.ncap)
        flbas = bytes.le8(Offset.flbas)
        dps = bytes.le8(Offset.dps)
        nmic = bytes.le8(Offset.nmic)
    }

    /// The 4096-byte structure a host sends (every other byte zero).
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { b in
            b.put64(nsze, at: Offset.nsze)
            b.put64(ncap, at: Offset.ncap)
            b.put8(flbas, at: Offset.flbas)
            b.put8(dps, at: Offset.dps)
            b.put8(nmic, at: Offset.nmic)
        }
        return out
    }
}
