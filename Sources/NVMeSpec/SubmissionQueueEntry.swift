/// A 64-byte submission queue entry (NVMe 1.4 §4.2, Figure 104), decoded
/// dword by dword. Fields use the specification's mnemonics.
public struct SubmissionQueueEntry: Hashable, Sendable {
    public static let size = 64

    /// CDW0 bits 7:0 — opcode.
    public var opcode: UInt8 = 0
    /// CDW0 bits 9:8 — fused operation (0 normal, 1 first, 2 second).
    public var fuse: UInt8 = 0
    /// CDW0 bits 15:14 — PRP or SGL for data transfer (0 PRP, 1 SGL/MPTR
    /// address, 2 SGL/MPTR segment).
    public var psdt: UInt8 = 0
    /// CDW0 bits 31:16 — command identifier.
    public var cid: UInt16 = 0
    /// CDW1 — namespace identifier.
    public var nsid: UInt32 = 0
    /// CDW2, CDW3 — command specific (reserved for most commands).
    public var cdw2: UInt32 = 0
    public var cdw3: UInt32 = 0
    /// CDW4-5 — metadata pointer.
    public var mptr: UInt64 = 0
    /// CDW6-7 and CDW8-9 — data pointer: PRP entry 1 and 2, or the first 16
    /// bytes as an SGL descriptor (see `sgl1`).
    public var prp1: UInt64 = 0
    public var prp2: UInt64 = 0
    /// CDW10-15 — command specific.
    public var cdw10: UInt32 = 0
    public var cdw11: UInt32 = 0
    public var cdw12: UInt32 = 0
    public var cdw13: UInt32 = 0
    public var cdw14: UInt32 = 0
    public var cdw15: UInt32 = 0

    public init() {}

    public init(opcode: UInt8, cid: UInt16 = 0, nsid: UInt32 = 0, prp1: UInt64 = 0, prp2: UInt64 = 0,
                cdw10: UInt32 = 0, cdw11: UInt32 = 0, cdw12: UInt32 = 0, cdw13: UInt32 = 0,
                cdw14: UInt32 = 0, cdw15: UInt32 = 0) {
        self.opcode = opcode; self.cid = cid; self.nsid = nsid; self.prp1 = prp1; self.prp2 = prp2
        self.cdw10 = cdw10; self.cdw11 = cdw11; self.cdw12 = cdw12; self.cdw13 = cdw13
        self.cdw14 = cdw14; self.cdw15 = cdw15
    }

    /// Field byte offsets (NVMe 1.4 Figure 104/105).
    public enum Offset {
        public static let opcode = 0, flags = 1, cid = 2, nsid = 4, cdw2 = 8, cdw3 = 12, mptr = 16
        public static let prp1 = 24, prp2 = 32, cdw10 = 40, cdw11 = 44, cdw12 = 48, cdw13 = 52
        public static let cdw14 = 56, cdw15 = 60
    }

    /// Decodes 64 bytes; nil on short input.
    public init?(bytes buffer: UnsafeRawBufferPointer) {
        // Decoded on every fetch: one bounds check for the whole entry.
        guard let bytes = CheckedFields(buffer, size: Self.size) else { return nil }
        opcode = bytes.le8(Offset.opcode)
        let flags = bytes.le8(Offset.flags)
        fuse = flags & 0x3
        psdt = (flags >> 6) & 0x3
        cid = bytes.le16(Offset.cid)
        nsid = bytes.le32(Offset.nsid)
        cdw2 = bytes.le32(Offset.cdw2)
        cdw3 = bytes.le32(Offset.cdw3)
        mptr = bytes.le64(Offset.mptr)
        prp1 = bytes.le64(Offset.prp1)
        prp2 = bytes.le64(Offset.prp2)
        cdw10 = bytes.le32(Offset.cdw10)
        cdw11 = bytes.le32(Offset.cdw11)
        cdw12 = bytes.le32(Offset.cdw12)
        cdw13 = bytes.le32(Offset.cdw13)
        cdw14 = bytes.le32(Offset.cdw14)
        cdw15 = bytes.le32(Offset.cdw15)
    }

    public init?(bytes: [UInt8]) {
        guard let v = bytes.withUnsafeBytes({ SubmissionQueueEntry(bytes: $0) }) else { return nil }
        self = v
    }

    /// Encodes into the first 64 bytes of `out` (reserved bits zero).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        let out = CheckedMutableFields(buffer, size: Self.size)
        out.put8(opcode, at: Offset.opcode)
        out.put8((fuse & 0x3) | (psdt & 0x3) << 6, at: Offset.flags)
        out.put16(cid, at: Offset.cid)
        out.put32(nsid, at: Offset.nsid)
        out.put32(cdw2, at: Offset.cdw2)
        out.put32(cdw3, at: Offset.cdw3)
        out.put64(mptr, at: Offset.mptr)
        out.put64(prp1, at: Offset.prp1)
        out.put64(prp2, at: Offset.prp2)
        out.put32(cdw10, at: Offset.cdw10)
        out.put32(cdw11, at: Offset.cdw11)
        out.put32(cdw12, at: Offset.cdw12)
        out.put32(cdw13, at: Offset.cdw13)
        out.put32(cdw14, at: Offset.cdw14)
        out.put32(cdw15, at: Offset.cdw15)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }

    // NVM command helpers (NVMe 1.4 §6): starting LBA and 0's based block count.
    /// CDW10-11 — starting LBA.
    public var slba: UInt64 {
        get { UInt64(cdw10) | UInt64(cdw11) << 32 }
        set { cdw10 = UInt32(truncatingIfNeeded: newValue); cdw11 = UInt32(truncatingIfNeeded: newValue >> 32) }
    }
    /// CDW12 bits 15:0 — number of logical blocks, 0's based.
    /// Force Unit Access: CDW12 bit 30 of Read, Write, Write Zeroes, Compare,
    /// Verify and Copy.
    public var fua: Bool { cdw12 & 1 << 30 != 0 }

    public var nlb: UInt16 {
        get { UInt16(truncatingIfNeeded: cdw12) }
        set { cdw12 = (cdw12 & 0xFFFF_0000) | UInt32(newValue) }
    }
}
