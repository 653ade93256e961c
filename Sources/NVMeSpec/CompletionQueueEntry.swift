/// A 16-byte completion queue entry (NVMe 1.4 §4.6, Figure 124).
public struct CompletionQueueEntry: Hashable, Sendable {
    public static let size = 16

    /// DW0, DW1 — command specific.
    public var dw0: UInt32 = 0
    public var dw1: UInt32 = 0
    /// DW2 bits 15:0 — submission queue head pointer.
    public var sqhd: UInt16 = 0
    /// DW2 bits 31:16 — submission queue identifier.
    public var sqid: UInt16 = 0
    /// DW3 bits 15:0 — command identifier.
    public var cid: UInt16 = 0
    /// DW3 bit 16 — phase tag.
    public var phase: Bool = false
    /// DW3 bits 31:17 — status field.
    public var status: NVMeStatus = .success

    public enum Offset {
        public static let dw0 = 0, dw1 = 4, sqhd = 8, sqid = 10, cid = 12, statusAndPhase = 14
    }

    public init(dw0: UInt32 = 0, dw1: UInt32 = 0, sqhd: UInt16 = 0, sqid: UInt16 = 0, cid: UInt16 = 0,
                phase: Bool = false, status: NVMeStatus = .success) {
        self.dw0 = dw0; self.dw1 = dw1; self.sqhd = sqhd; self.sqid = sqid; self.cid = cid
        self.phase = phase; self.status = status
    }

    public init?(bytes buffer: UnsafeRawBufferPointer) {
        // Decoded on every reap: one bounds check for the whole entry.
        guard let bytes = CheckedFields(buffer, size: Self.size) else { return nil }
        dw0 = bytes.le32(Offset.dw0)
        dw1 = bytes.le32(Offset.dw1)
        sqhd = bytes.le16(Offset.sqhd)
        sqid = bytes.le16(Offset.sqid)
        cid = bytes.le16(Offset.cid)
        let sp = bytes.le16(Offset.statusAndPhase)
        phase = sp & 1 != 0
        status = NVMeStatus(raw: sp >> 1)
    }

    public init?(bytes: [UInt8]) {
        guard let v = bytes.withUnsafeBytes({ CompletionQueueEntry(bytes: $0) }) else { return nil }
        self = v
    }

    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        let out = CheckedMutableFields(buffer, size: Self.size)
        out.put32(dw0, at: Offset.dw0)
        out.put32(dw1, at: Offset.dw1)
        out.put16(sqhd, at: Offset.sqhd)
        out.put16(sqid, at: Offset.sqid)
        out.put16(cid, at: Offset.cid)
        out.put16(status.raw << 1 | (phase ? 1 : 0), at: Offset.statusAndPhase)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }
}
