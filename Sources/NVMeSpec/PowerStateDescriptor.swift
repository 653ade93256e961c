/// A 32-byte power state descriptor inside Identify Controller data
/// (NVMe 1.4 Figure 248). Bit positions below are within the descriptor.
public struct PowerStateDescriptor: Hashable, Sendable, NVMeWireFormat {
    public static let size = 32

    /// Bits 15:0 (bytes 1:0) — maximum power, in 0.01 W or 0.0001 W units (see `mxps`).
    public var mp: UInt16 = 0
    /// Bit 24 (byte 3 bit 0) — max power scale (0: 0.01 W, 1: 0.0001 W).
    public var mxps: Bool = false
    /// Bit 25 (byte 3 bit 1) — non-operational state.
    public var nops: Bool = false
    /// Bits 63:32 (bytes 7:4) — entry latency in microseconds.
    public var enlat: UInt32 = 0
    /// Bits 95:64 (bytes 11:8) — exit latency in microseconds.
    public var exlat: UInt32 = 0
    /// Bits 100:96 (byte 12 bits 4:0) — relative read throughput.
    public var rrt: UInt8 = 0
    /// Bits 108:104 (byte 13 bits 4:0) — relative read latency.
    public var rrl: UInt8 = 0
    /// Bits 116:112 (byte 14 bits 4:0) — relative write throughput.
    public var rwt: UInt8 = 0
    /// Bits 124:120 (byte 15 bits 4:0) — relative write latency.
    public var rwl: UInt8 = 0
    /// Bits 143:128 (bytes 17:16) — idle power.
    public var idlp: UInt16 = 0
    /// Bits 151:150 (byte 18 bits 7:6) — idle power scale.
    public var ips: UInt8 = 0
    /// Bits 175:160 (bytes 21:20) — active power.
    public var actp: UInt16 = 0
    /// Bits 178:176 (byte 22 bits 2:0) — active power workload.
    public var apw: UInt8 = 0
    /// Bits 183:182 (byte 22 bits 7:6) — active power scale.
    public var aps: UInt8 = 0

    /// Byte offsets within the descriptor.
    public enum Offset {
        public static let mp = 0, flags = 3, enlat = 4, exlat = 8, rrt = 12, rrl = 13, rwt = 14, rwl = 15
        public static let idlp = 16, ips = 18, actp = 20, apwAps = 22
    }

    public init() {}

    public init(mp: UInt16, mxps: Bool = false, nops: Bool = false, enlat: UInt32 = 0, exlat: UInt32 = 0,
                rrt: UInt8 = 0, rrl: UInt8 = 0, rwt: UInt8 = 0, rwl: UInt8 = 0) {
        self.mp = mp; self.mxps = mxps; self.nops = nops; self.enlat = enlat; self.exlat = exlat
        self.rrt = rrt; self.rrl = rrl; self.rwt = rwt; self.rwl = rwl
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        mp = bytes.le16(Offset.mp)
        let flags = bytes.le8(Offset.flags)
        mxps = flags & 1 != 0
        nops = flags & 2 != 0
        enlat = bytes.le32(Offset.enlat)
        exlat = bytes.le32(Offset.exlat)
        rrt = bytes.le8(Offset.rrt) & 0x1F
        rrl = bytes.le8(Offset.rrl) & 0x1F
        rwt = bytes.le8(Offset.rwt) & 0x1F
        rwl = bytes.le8(Offset.rwl) & 0x1F
        idlp = bytes.le16(Offset.idlp)
        ips = bytes.le8(Offset.ips) >> 6
        actp = bytes.le16(Offset.actp)
        let apwAps = bytes.le8(Offset.apwAps)
        apw = apwAps & 0x7
        aps = apwAps >> 6
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put16(mp, at: Offset.mp)
        out.put8((mxps ? 1 : 0) | (nops ? 2 : 0), at: Offset.flags)
        out.put32(enlat, at: Offset.enlat)
        out.put32(exlat, at: Offset.exlat)
        out.put8(rrt & 0x1F, at: Offset.rrt)
        out.put8(rrl & 0x1F, at: Offset.rrl)
        out.put8(rwt & 0x1F, at: Offset.rwt)
        out.put8(rwl & 0x1F, at: Offset.rwl)
        out.put16(idlp, at: Offset.idlp)
        out.put8((ips & 0x3) << 6, at: Offset.ips)
        out.put16(actp, at: Offset.actp)
        out.put8((apw & 0x7) | (aps & 0x3) << 6, at: Offset.apwAps)
    }
}
