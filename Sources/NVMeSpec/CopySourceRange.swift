/// One Source Range Entry of Copy, descriptor format 0 (NVMe 2.0 NVM Command
/// Set Specification §3.2.2, Copy command, Source Range Entries Copy
/// Descriptor Format 0h): 32 bytes. A command carries NR+1 of them (CDW12
/// bits 7:0, 0's based) in its data buffer.
public struct CopySourceRange: Hashable, Sendable, NVMeWireFormat {
    public static let size = 32

    /// 15:8 — starting LBA of the source range.
    public var slba: UInt64 = 0
    /// 17:16 — number of logical blocks, 0's based.
    public var nlb: UInt16 = 0
    /// 23:20 — expected initial logical block reference tag (EILBRT).
    public var eilbrt: UInt32 = 0
    /// 25:24 — expected logical block application tag (ELBAT).
    public var elbat: UInt16 = 0
    /// 27:26 — expected logical block application tag mask (ELBATM).
    public var elbatm: UInt16 = 0

    public enum Offset {
        public static let slba = 8, nlb = 16, eilbrt = 20, elbat = 24, elbatm = 26
    }

    /// Logical blocks in the range (NLB + 1).
    public var blocks: UInt64 { UInt64(nlb) + 1 }

    public init(slba: UInt64 = 0, nlb: UInt16 = 0, eilbrt: UInt32 = 0, elbat: UInt16 = 0, elbatm: UInt16 = 0) {
        self.slba = slba; self.nlb = nlb; self.eilbrt = eilbrt; self.elbat = elbat; self.elbatm = elbatm
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        slba = bytes.le64(Offset.slba)
        nlb = bytes.le16(Offset.nlb)
        eilbrt = bytes.le32(Offset.eilbrt)
        elbat = bytes.le16(Offset.elbat)
        elbatm = bytes.le16(Offset.elbatm)
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        for i in 0..<Self.size { out[i] = 0 }
        out.put64(slba, at: Offset.slba)
        out.put16(nlb, at: Offset.nlb)
        out.put32(eilbrt, at: Offset.eilbrt)
        out.put16(elbat, at: Offset.elbat)
        out.put16(elbatm, at: Offset.elbatm)
    }
}
