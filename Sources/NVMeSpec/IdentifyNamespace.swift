/// LBA Format data structure (within Identify Namespace, NVMe 1.4 Figure 249
/// bytes 191:128): 4 bytes, one dword.
public struct LBAFormat: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4

    /// Bits 15:0 — metadata size in bytes per LBA.
    public var ms: UInt16 = 0
    /// Bits 23:16 — LBA data size as a power of two (9 = 512 B, 12 = 4 KiB; 0 = format unused).
    public var lbads: UInt8 = 0
    /// Bits 25:24 — relative performance (0 best .. 3 degraded).
    public var rp: UInt8 = 0

    public enum Offset {
        public static let ms = 0, lbads = 2, rp = 3
    }

    public init(ms: UInt16 = 0, lbads: UInt8 = 0, rp: UInt8 = 0) {
        self.ms = ms; self.lbads = lbads; self.rp = rp
    }

    /// The dword as it appears in Identify Namespace data.
    public init(raw: UInt32) {
        ms = UInt16(truncatingIfNeeded: raw)
        lbads = UInt8(truncatingIfNeeded: raw >> 16)
        rp = UInt8(truncatingIfNeeded: raw >> 24) & 0x3
    }
    public var raw: UInt32 { UInt32(ms) | UInt32(lbads) << 16 | UInt32(rp & 0x3) << 24 }

    /// LBA data size in bytes (0 when `lbads` is 0 or too large to be meaningful).
    public var dataSize: Int { lbads == 0 || lbads >= 32 ? 0 : 1 << Int(lbads) }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        self.init(raw: bytes.le32(0))
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.put32(raw, at: 0)
    }
}

/// Identify Namespace data structure for the NVM command set, CNS 00h / 11h
/// (NVMe 1.4 §5.15.2.1, Figure 249): 4096 bytes. Reserved and vendor specific
/// bytes encode as zero.
public struct IdentifyNamespace: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096
    /// Number of LBA format entries (LBAF0..LBAF15).
    public static let lbaFormatCount = 16

    /// 7:0 — namespace size in LBAs.
    public var nsze: UInt64 = 0
    /// 15:8 — namespace capacity in LBAs.
    public var ncap: UInt64 = 0
    /// 23:16 — namespace utilization in LBAs.
    public var nuse: UInt64 = 0
    /// 24 — namespace features (bit 0 thin provisioning, bit 2 DULBE, ...).
    public var nsfeat: UInt8 = 0
    /// 25 — number of LBA formats, 0's based.
    public var nlbaf: UInt8 = 0
    /// 26 — formatted LBA size (bits 3:0 format index, bit 4 extended LBA metadata).
    public var flbas: UInt8 = 0
    /// 27 — metadata capabilities (bit 0 extended LBA, bit 1 separate buffer).
    public var mc: UInt8 = 0
    /// 28 — end-to-end data protection capabilities.
    public var dpc: UInt8 = 0
    /// 29 — end-to-end data protection type settings (bits 2:0 type, bit 3 first eight bytes).
    public var dps: UInt8 = 0
    /// 30 — namespace multi-path I/O and namespace sharing capabilities.
    public var nmic: UInt8 = 0
    /// 31 — reservation capabilities.
    public var rescap: UInt8 = 0
    /// 32 — format progress indicator.
    public var fpi: UInt8 = 0
    /// 33 — deallocate logical block features.
    public var dlfeat: UInt8 = 0
    /// 35:34 — namespace atomic write unit normal, 0's based.
    public var nawun: UInt16 = 0
    /// 37:36 — namespace atomic write unit power fail, 0's based.
    public var nawupf: UInt16 = 0
    /// 39:38 — namespace atomic compare and write unit, 0's based.
    public var nacwu: UInt16 = 0
    /// 41:40 — namespace atomic boundary size normal, 0's based.
    public var nabsn: UInt16 = 0
    /// 43:42 — namespace atomic boundary offset.
    public var nabo: UInt16 = 0
    /// 45:44 — namespace atomic boundary size power fail, 0's based.
    public var nabspf: UInt16 = 0
    /// 47:46 — namespace optimal I/O boundary in LBAs.
    public var noiob: UInt16 = 0
    /// 63:48 — NVM capacity in bytes.
    public var nvmcap: UInt128 = 0
    /// 65:64 — namespace preferred write granularity, 0's based.
    public var npwg: UInt16 = 0
    /// 67:66 — namespace preferred write alignment, 0's based.
    public var npwa: UInt16 = 0
    /// 69:68 — namespace preferred deallocate granularity, 0's based.
    public var npdg: UInt16 = 0
    /// 71:70 — namespace preferred deallocate alignment, 0's based.
    public var npda: UInt16 = 0
    /// 73:72 — namespace optimal write size, 0's based.
    public var nows: UInt16 = 0
    /// 75:74 — maximum single source range length of Copy, in logical
    /// blocks (NVMe 2.0 NVM Command Set §4.1.5.1; reserved in NVMe 1.4).
    public var mssrl: UInt16 = 0
    /// 79:76 — maximum copy length, in logical blocks (NVMe 2.0).
    public var mcl: UInt32 = 0
    /// 80 — maximum source range count of Copy, 0's based (NVMe 2.0).
    public var msrc: UInt8 = 0
    /// 95:92 — ANA group identifier.
    public var anagrpid: UInt32 = 0
    /// 99 — namespace attributes (bit 0 write protected).
    public var nsattr: UInt8 = 0
    /// 101:100 — NVM set identifier.
    public var nvmsetid: UInt16 = 0
    /// 103:102 — endurance group identifier.
    public var endgid: UInt16 = 0
    /// 119:104 — namespace globally unique identifier (16 bytes, in wire order).
    public var nguid: [UInt8] = Array(repeating: 0, count: 16)
    /// 127:120 — IEEE extended unique identifier (8 bytes, in wire order).
    public var eui64: [UInt8] = Array(repeating: 0, count: 8)
    /// 191:128 — LBA formats 0..15, 4 bytes each. Always 16 entries when decoded;
    /// missing entries encode as zero, extra entries are ignored.
    public var lbaf: [LBAFormat] = Array(repeating: LBAFormat(), count: 16)

    /// Field byte offsets (NVMe 1.4 Figure 249).
    public enum Offset {
        public static let nsze = 0, ncap = 8, nuse = 16, nsfeat = 24, nlbaf = 25, flbas = 26, mc = 27, dpc = 28
        public static let dps = 29, nmic = 30, rescap = 31, fpi = 32, dlfeat = 33, nawun = 34, nawupf = 36
        public static let nacwu = 38, nabsn = 40, nabo = 42, nabspf = 44, noiob = 46, nvmcap = 48, npwg = 64
        public static let npwa = 66, npdg = 68, npda = 70, nows = 72, mssrl = 74, mcl = 76, msrc = 80
        public static let anagrpid = 92, nsattr = 99
        public static let nvmsetid = 100, endgid = 102, nguid = 104, eui64 = 120, lbaf0 = 128
        public static let vendorSpecific = 384
        /// Offset of LBA format `index` (0...15).
        @inlinable public static func lbaf(_ index: Int) -> Int { lbaf0 + index * LBAFormat.size }
    }

    public init() {}

    // MARK: Derived values

    /// FLBAS bits 3:0 — index of the LBA format in use.
    public var formattedLBAFormatIndex: Int { Int(flbas & 0xF) }
    /// FLBAS bit 4 — metadata is transferred at the end of the data LBA (extended LBA).
    public var extendedMetadata: Bool { flbas & 0x10 != 0 }
    /// The LBA format in use (LBAF[FLBAS bits 3:0]); a zero format if the index is out of range.
    public var formattedLBAFormat: LBAFormat {
        formattedLBAFormatIndex < lbaf.count ? lbaf[formattedLBAFormatIndex] : LBAFormat()
    }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        nsze = bytes.le64(Offset.nsze)
        ncap = bytes.le64(Offset.ncap)
        nuse = bytes.le64(Offset.nuse)
        nsfeat = bytes.le8(Offset.nsfeat)
        nlbaf = bytes.le8(Offset.nlbaf)
        flbas = bytes.le8(Offset.flbas)
        mc = bytes.le8(Offset.mc)
        dpc = bytes.le8(Offset.dpc)
        dps = bytes.le8(Offset.dps)
        nmic = bytes.le8(Offset.nmic)
        rescap = bytes.le8(Offset.rescap)
        fpi = bytes.le8(Offset.fpi)
        dlfeat = bytes.le8(Offset.dlfeat)
        nawun = bytes.le16(Offset.nawun)
        nawupf = bytes.le16(Offset.nawupf)
        nacwu = bytes.le16(Offset.nacwu)
        nabsn = bytes.le16(Offset.nabsn)
        nabo = bytes.le16(Offset.nabo)
        nabspf = bytes.le16(Offset.nabspf)
        noiob = bytes.le16(Offset.noiob)
        nvmcap = bytes.leWide128(Offset.nvmcap)
        npwg = bytes.le16(Offset.npwg)
        npwa = bytes.le16(Offset.npwa)
        npdg = bytes.le16(Offset.npdg)
        npda = bytes.le16(Offset.npda)
        nows = bytes.le16(Offset.nows)
        mssrl = bytes.le16(Offset.mssrl)
        mcl = bytes.le32(Offset.mcl)
        msrc = bytes.le8(Offset.msrc)
        anagrpid = bytes.le32(Offset.anagrpid)
        nsattr = bytes.le8(Offset.nsattr)
        nvmsetid = bytes.le16(Offset.nvmsetid)
        endgid = bytes.le16(Offset.endgid)
        nguid = bytes.rawField(Offset.nguid, count: 16)
        eui64 = bytes.rawField(Offset.eui64, count: 8)
        lbaf = (0 ..< Self.lbaFormatCount).map { LBAFormat(raw: bytes.le32(Offset.lbaf($0))) }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put64(nsze, at: Offset.nsze)
        out.put64(ncap, at: Offset.ncap)
        out.put64(nuse, at: Offset.nuse)
        out.put8(nsfeat, at: Offset.nsfeat)
        out.put8(nlbaf, at: Offset.nlbaf)
        out.put8(flbas, at: Offset.flbas)
        out.put8(mc, at: Offset.mc)
        out.put8(dpc, at: Offset.dpc)
        out.put8(dps, at: Offset.dps)
        out.put8(nmic, at: Offset.nmic)
        out.put8(rescap, at: Offset.rescap)
        out.put8(fpi, at: Offset.fpi)
        out.put8(dlfeat, at: Offset.dlfeat)
        out.put16(nawun, at: Offset.nawun)
        out.put16(nawupf, at: Offset.nawupf)
        out.put16(nacwu, at: Offset.nacwu)
        out.put16(nabsn, at: Offset.nabsn)
        out.put16(nabo, at: Offset.nabo)
        out.put16(nabspf, at: Offset.nabspf)
        out.put16(noiob, at: Offset.noiob)
        out.putWide128(nvmcap, at: Offset.nvmcap)
        out.put16(npwg, at: Offset.npwg)
        out.put16(npwa, at: Offset.npwa)
        out.put16(npdg, at: Offset.npdg)
        out.put16(npda, at: Offset.npda)
        out.put16(nows, at: Offset.nows)
        out.put16(mssrl, at: Offset.mssrl)
        out.put32(mcl, at: Offset.mcl)
        out.put8(msrc, at: Offset.msrc)
        out.put32(anagrpid, at: Offset.anagrpid)
        out.put8(nsattr, at: Offset.nsattr)
        out.put16(nvmsetid, at: Offset.nvmsetid)
        out.put16(endgid, at: Offset.endgid)
        out.putRawField(nguid, at: Offset.nguid, count: 16)
        out.putRawField(eui64, at: Offset.eui64, count: 8)
        for (i, format) in lbaf.prefix(Self.lbaFormatCount).enumerated() {
            out.put32(format.raw, at: Offset.lbaf(i))
        }
    }
}
