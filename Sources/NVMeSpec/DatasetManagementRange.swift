/// One Dataset Management range (NVMe 1.4 §6.7, range definition): 16 bytes. A command carries NR+1 of these
/// (CDW10 bits 7:0, 0's based), at most 256.
public struct DatasetManagementRange: Hashable, Sendable, NVMeWireFormat {
    public static let size = 16
    /// Most ranges one command may carry.
    public static let maxRanges = 256

    /// 3:0 — context attributes.
    public var cattr: UInt32 = 0
    /// 7:4 — length in logical blocks (NOT 0's based).
    public var nlb: UInt32 = 0
    /// 15:8 — starting LBA.
    public var slba: UInt64 = 0

    public enum Offset {
        public static let cattr = 0, nlb = 4, slba = 8
    }

    public init(slba: UInt64 = 0, nlb: UInt32 = 0, cattr: UInt32 = 0) {
        self.slba = slba; self.nlb = nlb; self.cattr = cattr
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        cattr = bytes.le32(Offset.cattr)
        nlb = bytes.le32(Offset.nlb)
        slba = bytes.le64(Offset.slba)
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.put32(cattr, at: Offset.cattr)
        out.put32(nlb, at: Offset.nlb)
        out.put64(slba, at: Offset.slba)
    }

    /// Decodes `count` consecutive ranges; nil if `bytes` holds fewer.
    public static func decodeRanges(_ bytes: UnsafeRawBufferPointer, count: Int) -> [DatasetManagementRange]? {
        decodeList(bytes, count: count)
    }

    /// Encodes ranges back to back.
    public static func encodeRanges(_ ranges: [DatasetManagementRange]) -> [UInt8] { encodeList(ranges) }
}
