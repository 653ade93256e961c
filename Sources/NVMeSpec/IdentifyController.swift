/// Identify Controller data structure, CNS 01h (NVMe 1.4 §5.15.2.2, Figure 247):
/// 4096 bytes. Field names are the specification's mnemonics; comments give
/// the byte range. Reserved bytes and the vendor specific area (4095:3072)
/// encode as zero.
///
/// SN, MN and FR are ASCII, space padded; they decode with trailing spaces
/// (and NULs) trimmed. SUBNQN is a NUL-terminated UTF-8 string.
public struct IdentifyController: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096
    /// Number of power state descriptors (PSD0..PSD31).
    public static let powerStateCount = 32

    // MARK: Controller capabilities and features (bytes 255:0)

    /// 1:0 — PCI vendor ID.
    public var vid: UInt16 = 0
    /// 3:2 — PCI subsystem vendor ID.
    public var ssvid: UInt16 = 0
    /// 23:4 — serial number (20 ASCII bytes).
    public var sn: String = ""
    /// 63:24 — model number (40 ASCII bytes).
    public var mn: String = ""
    /// 71:64 — firmware revision (8 ASCII bytes).
    public var fr: String = ""
    /// 72 — recommended arbitration burst.
    public var rab: UInt8 = 0
    /// 75:73 — IEEE OUI identifier, 24 bits, little endian (as QEMU stores it).
    public var ieee: UInt32 = 0
    /// 76 — controller multi-path I/O and namespace sharing capabilities.
    public var cmic: UInt8 = 0
    /// 77 — maximum data transfer size, a power of two in CAP.MPSMIN units (0: no limit).
    public var mdts: UInt8 = 0
    /// 79:78 — controller ID.
    public var cntlid: UInt16 = 0
    /// 83:80 — version (same layout as the VS register).
    public var ver: UInt32 = 0
    /// 87:84 — RTD3 resume latency (µs).
    public var rtd3r: UInt32 = 0
    /// 91:88 — RTD3 entry latency (µs).
    public var rtd3e: UInt32 = 0
    /// 95:92 — optional asynchronous events supported (bit 8 namespace attribute, bit 9 firmware activation).
    public var oaes: UInt32 = 0
    /// 99:96 — controller attributes.
    public var ctratt: UInt32 = 0
    /// 101:100 — read recovery levels supported.
    public var rrls: UInt16 = 0
    /// 111 — controller type (1 I/O, 2 discovery, 3 administrative).
    public var cntrltype: UInt8 = 0
    /// 127:112 — FRU globally unique identifier (16 bytes).
    public var fguid: [UInt8] = Array(repeating: 0, count: 16)
    /// 129:128 — command retry delay time 1 (100 ms units).
    public var crdt1: UInt16 = 0
    /// 131:130 — command retry delay time 2.
    public var crdt2: UInt16 = 0
    /// 133:132 — command retry delay time 3.
    public var crdt3: UInt16 = 0
    /// 253 — NVM subsystem report (NVMe-MI).
    public var nvmsr: UInt8 = 0
    /// 254 — VPD write cycle information (NVMe-MI).
    public var vwci: UInt8 = 0
    /// 255 — management endpoint capabilities (NVMe-MI).
    public var mec: UInt8 = 0

    // MARK: Admin command set attributes and optional capabilities (bytes 511:256)

    /// 257:256 — optional admin command support.
    public var oacs: UInt16 = 0
    /// 258 — abort command limit, 0's based.
    public var acl: UInt8 = 0
    /// 259 — asynchronous event request limit, 0's based.
    public var aerl: UInt8 = 0
    /// 260 — firmware updates.
    public var frmw: UInt8 = 0
    /// 261 — log page attributes.
    public var lpa: UInt8 = 0
    /// 262 — error log page entries, 0's based.
    public var elpe: UInt8 = 0
    /// 263 — number of power states support, 0's based.
    public var npss: UInt8 = 0
    /// 264 — admin vendor specific command configuration.
    public var avscc: UInt8 = 0
    /// 265 — autonomous power state transition attributes.
    public var apsta: UInt8 = 0
    /// 267:266 — warning composite temperature threshold (Kelvin).
    public var wctemp: UInt16 = 0
    /// 269:268 — critical composite temperature threshold (Kelvin).
    public var cctemp: UInt16 = 0
    /// 271:270 — maximum time for firmware activation (100 ms units).
    public var mtfa: UInt16 = 0
    /// 275:272 — host memory buffer preferred size (4 KiB units).
    public var hmpre: UInt32 = 0
    /// 279:276 — host memory buffer minimum size (4 KiB units).
    public var hmmin: UInt32 = 0
    /// 295:280 — total NVM capacity in bytes.
    public var tnvmcap: UInt128 = 0
    /// 311:296 — unallocated NVM capacity in bytes.
    public var unvmcap: UInt128 = 0
    /// 315:312 — replay protected memory block support.
    public var rpmbs: UInt32 = 0
    /// 317:316 — extended device self-test time (minutes).
    public var edstt: UInt16 = 0
    /// 318 — device self-test options.
    public var dsto: UInt8 = 0
    /// 319 — firmware update granularity (4 KiB units).
    public var fwug: UInt8 = 0
    /// 321:320 — keep alive support (100 ms granularity).
    public var kas: UInt16 = 0
    /// 323:322 — host controlled thermal management attributes.
    public var hctma: UInt16 = 0
    /// 325:324 — minimum thermal management temperature (Kelvin).
    public var mntmt: UInt16 = 0
    /// 327:326 — maximum thermal management temperature (Kelvin).
    public var mxtmt: UInt16 = 0
    /// 331:328 — sanitize capabilities.
    public var sanicap: UInt32 = 0
    /// 335:332 — host memory buffer minimum descriptor entry size (4 KiB units).
    public var hmminds: UInt32 = 0
    /// 337:336 — host memory maximum descriptors entries.
    public var hmmaxd: UInt16 = 0
    /// 339:338 — NVM set identifier maximum.
    public var nsetidmax: UInt16 = 0
    /// 341:340 — endurance group identifier maximum.
    public var endgidmax: UInt16 = 0
    /// 342 — ANA transition time (seconds).
    public var anatt: UInt8 = 0
    /// 343 — asymmetric namespace access capabilities.
    public var anacap: UInt8 = 0
    /// 347:344 — ANA group identifier maximum.
    public var anagrpmax: UInt32 = 0
    /// 351:348 — number of ANA group identifiers.
    public var nanagrpid: UInt32 = 0
    /// 355:352 — persistent event log size (64 KiB units).
    public var pels: UInt32 = 0

    // MARK: NVM command set attributes (bytes 767:512)

    /// 512 — submission queue entry size (bits 3:0 required, 7:4 maximum, log2).
    public var sqes: UInt8 = 0
    /// 513 — completion queue entry size (bits 3:0 required, 7:4 maximum, log2).
    public var cqes: UInt8 = 0
    /// 515:514 — maximum outstanding commands (fabrics).
    public var maxcmd: UInt16 = 0
    /// 519:516 — number of namespaces (largest valid NSID).
    public var nn: UInt32 = 0
    /// 521:520 — optional NVM command support.
    public var oncs: UInt16 = 0
    /// 523:522 — fused operation support (bit 0 compare and write).
    public var fuses: UInt16 = 0
    /// 524 — format NVM attributes.
    public var fna: UInt8 = 0
    /// 525 — volatile write cache.
    public var vwc: UInt8 = 0
    /// 527:526 — atomic write unit normal, 0's based.
    public var awun: UInt16 = 0
    /// 529:528 — atomic write unit power fail, 0's based.
    public var awupf: UInt16 = 0
    /// 530 — NVM vendor specific command configuration.
    public var nvscc: UInt8 = 0
    /// 531 — namespace write protection capabilities.
    public var nwpc: UInt8 = 0
    /// 533:532 — atomic compare and write unit, 0's based.
    public var acwu: UInt16 = 0
    /// 535:534 — optional copy formats supported (NVMe 2.0 §5.17.2.1; reserved
    /// in NVMe 1.4): bit n set, Copy descriptor format n is supported.
    public var ocfs: UInt16 = 0
    /// 539:536 — SGL support.
    public var sgls: UInt32 = 0
    /// 543:540 — maximum number of allowed namespaces.
    public var mnan: UInt32 = 0
    /// 1023:768 — NVM subsystem NVMe qualified name (NUL-terminated UTF-8).
    public var subnqn: String = ""

    // MARK: Fabrics attributes (bytes 2047:1792)

    /// 1795:1792 — I/O queue command capsule supported size (16-byte units).
    public var ioccsz: UInt32 = 0
    /// 1799:1796 — I/O queue response capsule supported size (16-byte units).
    public var iorcsz: UInt32 = 0
    /// 1801:1800 — in capsule data offset (16-byte units).
    public var icdoff: UInt16 = 0
    /// 1802 — fabrics controller attributes.
    public var fcatt: UInt8 = 0
    /// 1803 — maximum SGL data block descriptors.
    public var msdbd: UInt8 = 0
    /// 1805:1804 — optional fabric commands support.
    public var ofcs: UInt16 = 0

    // MARK: Power state descriptors (bytes 3071:2048)

    /// PSD0..PSD31, 32 bytes each from byte 2048. Always 32 entries when decoded;
    /// missing entries encode as zero, extra entries are ignored.
    public var psd: [PowerStateDescriptor] = Array(repeating: PowerStateDescriptor(), count: 32)

    /// Field byte offsets (NVMe 1.4 Figure 247).
    public enum Offset {
        public static let vid = 0, ssvid = 2, sn = 4, mn = 24, fr = 64, rab = 72, ieee = 73, cmic = 76
        public static let mdts = 77, cntlid = 78, ver = 80, rtd3r = 84, rtd3e = 88, oaes = 92, ctratt = 96
        public static let rrls = 100, cntrltype = 111, fguid = 112, crdt1 = 128, crdt2 = 130, crdt3 = 132
        public static let nvmsr = 253, vwci = 254, mec = 255
        public static let oacs = 256, acl = 258, aerl = 259, frmw = 260, lpa = 261, elpe = 262, npss = 263
        public static let avscc = 264, apsta = 265, wctemp = 266, cctemp = 268, mtfa = 270, hmpre = 272
        public static let hmmin = 276, tnvmcap = 280, unvmcap = 296, rpmbs = 312, edstt = 316, dsto = 318
        public static let fwug = 319, kas = 320, hctma = 322, mntmt = 324, mxtmt = 326, sanicap = 328
        public static let hmminds = 332, hmmaxd = 336, nsetidmax = 338, endgidmax = 340, anatt = 342
        public static let anacap = 343, anagrpmax = 344, nanagrpid = 348, pels = 352
        public static let sqes = 512, cqes = 513, maxcmd = 514, nn = 516, oncs = 520, fuses = 522, fna = 524
        public static let vwc = 525, awun = 526, awupf = 528, nvscc = 530, nwpc = 531, acwu = 532, ocfs = 534, sgls = 536
        public static let mnan = 540, subnqn = 768
        public static let ioccsz = 1792, iorcsz = 1796, icdoff = 1800, fcatt = 1802, msdbd = 1803, ofcs = 1804
        public static let psd0 = 2048, vendorSpecific = 3072
        /// Offset of power state descriptor `index` (0...31).
        @inlinable public static func psd(_ index: Int) -> Int { psd0 + index * PowerStateDescriptor.size }
    }

    /// Widths of the string and identifier fields.
    public enum Width {
        public static let sn = 20, mn = 40, fr = 8, fguid = 16, subnqn = 256
    }

    public init() {}

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        vid = bytes.le16(Offset.vid)
        ssvid = bytes.le16(Offset.ssvid)
        sn = bytes.asciiField(Offset.sn, width: Width.sn)
        mn = bytes.asciiField(Offset.mn, width: Width.mn)
        fr = bytes.asciiField(Offset.fr, width: Width.fr)
        rab = bytes.le8(Offset.rab)
        ieee = bytes.leWide24(Offset.ieee)
        cmic = bytes.le8(Offset.cmic)
        mdts = bytes.le8(Offset.mdts)
        cntlid = bytes.le16(Offset.cntlid)
        ver = bytes.le32(Offset.ver)
        rtd3r = bytes.le32(Offset.rtd3r)
        rtd3e = bytes.le32(Offset.rtd3e)
        oaes = bytes.le32(Offset.oaes)
        ctratt = bytes.le32(Offset.ctratt)
        rrls = bytes.le16(Offset.rrls)
        cntrltype = bytes.le8(Offset.cntrltype)
        fguid = bytes.rawField(Offset.fguid, count: Width.fguid)
        crdt1 = bytes.le16(Offset.crdt1)
        crdt2 = bytes.le16(Offset.crdt2)
        crdt3 = bytes.le16(Offset.crdt3)
        nvmsr = bytes.le8(Offset.nvmsr)
        vwci = bytes.le8(Offset.vwci)
        mec = bytes.le8(Offset.mec)

        oacs = bytes.le16(Offset.oacs)
        acl = bytes.le8(Offset.acl)
        aerl = bytes.le8(Offset.aerl)
        frmw = bytes.le8(Offset.frmw)
        lpa = bytes.le8(Offset.lpa)
        elpe = bytes.le8(Offset.elpe)
        npss = bytes.le8(Offset.npss)
        avscc = bytes.le8(Offset.avscc)
        apsta = bytes.le8(Offset.apsta)
        wctemp = bytes.le16(Offset.wctemp)
        cctemp = bytes.le16(Offset.cctemp)
        mtfa = bytes.le16(Offset.mtfa)
        hmpre = bytes.le32(Offset.hmpre)
        hmmin = bytes.le32(Offset.hmmin)
        tnvmcap = bytes.leWide128(Offset.tnvmcap)
        unvmcap = bytes.leWide128(Offset.unvmcap)
        rpmbs = bytes.le32(Offset.rpmbs)
        edstt = bytes.le16(Offset.edstt)
        dsto = bytes.le8(Offset.dsto)
        fwug = bytes.le8(Offset.fwug)
        kas = bytes.le16(Offset.kas)
        hctma = bytes.le16(Offset.hctma)
        mntmt = bytes.le16(Offset.mntmt)
        mxtmt = bytes.le16(Offset.mxtmt)
        sanicap = bytes.le32(Offset.sanicap)
        hmminds = bytes.le32(Offset.hmminds)
        hmmaxd = bytes.le16(Offset.hmmaxd)
        nsetidmax = bytes.le16(Offset.nsetidmax)
        endgidmax = bytes.le16(Offset.endgidmax)
        anatt = bytes.le8(Offset.anatt)
        anacap = bytes.le8(Offset.anacap)
        anagrpmax = bytes.le32(Offset.anagrpmax)
        nanagrpid = bytes.le32(Offset.nanagrpid)
        pels = bytes.le32(Offset.pels)

        sqes = bytes.le8(Offset.sqes)
        cqes = bytes.le8(Offset.cqes)
        maxcmd = bytes.le16(Offset.maxcmd)
        nn = bytes.le32(Offset.nn)
        oncs = bytes.le16(Offset.oncs)
        fuses = bytes.le16(Offset.fuses)
        fna = bytes.le8(Offset.fna)
        vwc = bytes.le8(Offset.vwc)
        awun = bytes.le16(Offset.awun)
        awupf = bytes.le16(Offset.awupf)
        nvscc = bytes.le8(Offset.nvscc)
        nwpc = bytes.le8(Offset.nwpc)
        acwu = bytes.le16(Offset.acwu)
        ocfs = bytes.le16(Offset.ocfs)
        sgls = bytes.le32(Offset.sgls)
        mnan = bytes.le32(Offset.mnan)
        subnqn = bytes.nulTerminatedField(Offset.subnqn, width: Width.subnqn)

        ioccsz = bytes.le32(Offset.ioccsz)
        iorcsz = bytes.le32(Offset.iorcsz)
        icdoff = bytes.le16(Offset.icdoff)
        fcatt = bytes.le8(Offset.fcatt)
        msdbd = bytes.le8(Offset.msdbd)
        ofcs = bytes.le16(Offset.ofcs)

        psd = (0 ..< Self.powerStateCount).map { i in
            let start = Offset.psd(i)
            // In range: the guard above covers all 4096 bytes.
            return PowerStateDescriptor(bytes: UnsafeRawBufferPointer(rebasing: bytes[start ..< start + PowerStateDescriptor.size]))!
        }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put16(vid, at: Offset.vid)
        out.put16(ssvid, at: Offset.ssvid)
        out.putASCII(sn, at: Offset.sn, width: Width.sn)
        out.putASCII(mn, at: Offset.mn, width: Width.mn)
        out.putASCII(fr, at: Offset.fr, width: Width.fr)
        out.put8(rab, at: Offset.rab)
        out.putWide24(ieee, at: Offset.ieee)
        out.put8(cmic, at: Offset.cmic)
        out.put8(mdts, at: Offset.mdts)
        out.put16(cntlid, at: Offset.cntlid)
        out.put32(ver, at: Offset.ver)
        out.put32(rtd3r, at: Offset.rtd3r)
        out.put32(rtd3e, at: Offset.rtd3e)
        out.put32(oaes, at: Offset.oaes)
        out.put32(ctratt, at: Offset.ctratt)
        out.put16(rrls, at: Offset.rrls)
        out.put8(cntrltype, at: Offset.cntrltype)
        out.putRawField(fguid, at: Offset.fguid, count: Width.fguid)
        out.put16(crdt1, at: Offset.crdt1)
        out.put16(crdt2, at: Offset.crdt2)
        out.put16(crdt3, at: Offset.crdt3)
        out.put8(nvmsr, at: Offset.nvmsr)
        out.put8(vwci, at: Offset.vwci)
        out.put8(mec, at: Offset.mec)

        out.put16(oacs, at: Offset.oacs)
        out.put8(acl, at: Offset.acl)
        out.put8(aerl, at: Offset.aerl)
        out.put8(frmw, at: Offset.frmw)
        out.put8(lpa, at: Offset.lpa)
        out.put8(elpe, at: Offset.elpe)
        out.put8(npss, at: Offset.npss)
        out.put8(avscc, at: Offset.avscc)
        out.put8(apsta, at: Offset.apsta)
        out.put16(wctemp, at: Offset.wctemp)
        out.put16(cctemp, at: Offset.cctemp)
        out.put16(mtfa, at: Offset.mtfa)
        out.put32(hmpre, at: Offset.hmpre)
        out.put32(hmmin, at: Offset.hmmin)
        out.putWide128(tnvmcap, at: Offset.tnvmcap)
        out.putWide128(unvmcap, at: Offset.unvmcap)
        out.put32(rpmbs, at: Offset.rpmbs)
        out.put16(edstt, at: Offset.edstt)
        out.put8(dsto, at: Offset.dsto)
        out.put8(fwug, at: Offset.fwug)
        out.put16(kas, at: Offset.kas)
        out.put16(hctma, at: Offset.hctma)
        out.put16(mntmt, at: Offset.mntmt)
        out.put16(mxtmt, at: Offset.mxtmt)
        out.put32(sanicap, at: Offset.sanicap)
        out.put32(hmminds, at: Offset.hmminds)
        out.put16(hmmaxd, at: Offset.hmmaxd)
        out.put16(nsetidmax, at: Offset.nsetidmax)
        out.put16(endgidmax, at: Offset.endgidmax)
        out.put8(anatt, at: Offset.anatt)
        out.put8(anacap, at: Offset.anacap)
        out.put32(anagrpmax, at: Offset.anagrpmax)
        out.put32(nanagrpid, at: Offset.nanagrpid)
        out.put32(pels, at: Offset.pels)

        out.put8(sqes, at: Offset.sqes)
        out.put8(cqes, at: Offset.cqes)
        out.put16(maxcmd, at: Offset.maxcmd)
        out.put32(nn, at: Offset.nn)
        out.put16(oncs, at: Offset.oncs)
        out.put16(fuses, at: Offset.fuses)
        out.put8(fna, at: Offset.fna)
        out.put8(vwc, at: Offset.vwc)
        out.put16(awun, at: Offset.awun)
        out.put16(awupf, at: Offset.awupf)
        out.put8(nvscc, at: Offset.nvscc)
        out.put8(nwpc, at: Offset.nwpc)
        out.put16(acwu, at: Offset.acwu)
        out.put16(ocfs, at: Offset.ocfs)
        out.put32(sgls, at: Offset.sgls)
        out.put32(mnan, at: Offset.mnan)
        out.putNulTerminated(subnqn, at: Offset.subnqn, width: Width.subnqn)

        out.put32(ioccsz, at: Offset.ioccsz)
        out.put32(iorcsz, at: Offset.iorcsz)
        out.put16(icdoff, at: Offset.icdoff)
        out.put8(fcatt, at: Offset.fcatt)
        out.put8(msdbd, at: Offset.msdbd)
        out.put16(ofcs, at: Offset.ofcs)

        for (i, descriptor) in psd.prefix(Self.powerStateCount).enumerated() {
            let start = Offset.psd(i)
            descriptor.encode(into: UnsafeMutableRawBufferPointer(rebasing: out[start ..< start + PowerStateDescriptor.size]))
        }
    }
}
