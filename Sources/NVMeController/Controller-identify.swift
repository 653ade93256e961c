import BlockIO
import NVMeSpec

extension NVMeController {
    /// Identify (§5.15): CNS 0 namespace, 1 controller, 2 active namespace
    /// list, 3 namespace identification descriptors, 10h-13h allocated
    /// namespaces and controller lists (Controller-namespaces.swift);
    /// statuses as QEMU.
    func identify(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let cns = UInt8(c.cdw10 & 0xFF)
        traceEvent(.identify, [("cid", "\(c.cid)"), ("cns", hex(cns)), ("nsid", hex(c.nsid))])
        switch IdentifyCNS(cns) {
        case .namespace:
            // §5.15.2.1: an invalid NSID (0, above NN, or FFFFFFFFh without
            // namespace management) is Invalid Namespace or Format; an
            // inactive one returns a zero-filled structure. With Namespace
            // Management, FFFFFFFFh returns what every namespace has in
            // common (the formats a create may choose).
            if c.nsid == Self.broadcastNSID && supportsNamespaceManagement {
                return transferToHost(req, commonNamespaceData().bytes)
            }
            guard isValidNSID(c.nsid) else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            let data = namespace(c.nsid).map { identifyNamespaceData($0).bytes } ?? [UInt8](repeating: 0, count: 4096)
            return transferToHost(req, data)
        case .controller:
            return transferToHost(req, identifyControllerData().bytes)
        case .activeNamespaceList:
            guard c.nsid < 0xFFFF_FFFE else {
                guestError(.invalidNs, [("nsid", hex(c.nsid))])
                return NVMeStatus.invalidNamespace.withDNR
            }
            let list = NamespaceList(namespaces.map(\.nsid).filter { $0 > c.nsid }.prefix(1024).map { $0 })
            return transferToHost(req, list.bytes)
        case .namespaceIdentificationDescriptorList:
            if let bad = inactiveNamespaceStatus(c.nsid) { return bad }
            let ns = namespace(c.nsid)!
            // In QEMU's order: NGUID, EUI-64, command set identifier.
            let list = NamespaceIdentificationDescriptorList([.nguid(ns.nguid), .eui64(ns.eui64), .csi(0)])
            return transferToHost(req, list.bytes)
        default:
            if let status = identifyAllocated(req, IdentifyCNS(cns)) { return status }
            guestError(.invalidIdentifyCns, [("cns", hex(cns))])
            return NVMeStatus.invalidField.withDNR
        }
    }

    /// Identify Controller data (Figure 247), values as QEMU's where it has them.
    public func identifyControllerData() -> IdentifyController {
        var id = IdentifyController()
        id.vid = 0x1B36
        id.ssvid = 0x1AF4
        id.sn = parameters.serial
        id.mn = parameters.model
        id.fr = firmwareRevision
        id.rab = 6
        id.ieee = 0x525400
        id.mdts = parameters.mdts
        id.cntlid = 0
        id.ver = Version.v1_4.raw
        id.oaes = 1 << 8                 // namespace attribute notices
        id.cntrltype = 1                 // I/O controller
        // Format NVM (FNA 0, per namespace, as QEMU), Firmware Commit and Image Download, Device Self-test,
        // Doorbell Buffer Config.
        id.oacs = 1 << 1 | 1 << 2 | 1 << 4 | 1 << 8
        if supportsNamespaceManagement {
            // Namespace Management and Attachment; the NVM capacity they manage.
            id.oacs |= 1 << 3
            id.tnvmcap = UInt128(totalCapacity)
            id.unvmcap = UInt128(unallocatedCapacity)
        }
        // Extended Device Self-test Time in minutes, rounded up (§5.8).
        id.edstt = UInt16(clamping: (parameters.selfTestExtendedMilliseconds + 59_999) / 60_000)
        id.acl = parameters.acl
        id.aerl = parameters.aerl
        id.frmw = 1 << 4 | UInt8(FirmwareSlots.count) << 1 | 1  // activation without reset, 7 slots, slot 1 read-only
        id.mtfa = parameters.firmwareMTFA
        id.fwug = UInt8(Self.firmwareGranule / 4096)
        id.lpa = 0x07                    // per-namespace SMART, commands supported and effects, extended data
        id.elpe = parameters.elpe
        id.npss = 0
        id.kas = UInt16(Self.keepAliveGranularityMs / 100)
        id.wctemp = 0x157
        id.cctemp = 0x175
        id.sqes = 0x66
        id.cqes = 0x44
        id.maxcmd = 0
        id.nn = UInt32(nn)
        // Compare, Write Uncorrectable, Dataset Management, Write Zeroes, Save/Select, Timestamp, Verify, Copy.
        id.oncs = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80 | 0x100
        id.ocfs = 0x1                    // Copy: source range descriptor format 0 (NVMe 2.0)
        id.fuses = 1  // Compare and Write (§4.12, §6.2.1)
        id.vwc = 0x07                    // present; Flush with NSID FFFFFFFFh supported
        // §5.15.2.2, §6.4: atomic write units (`--atomicity`), 0's based blocks.
        id.awun = parameters.awun
        id.awupf = parameters.awupf
        id.sgls = 0x1 | 1 << 16 | 1 << 19  // SGLs without alignment, bit bucket, MPTR to one SGL descriptor
        id.subnqn = "nqn.2026-11.io.nvmefs:\(parameters.serial)"
        var ps = id.psd[0]
        ps.mp = 0x9C4
        ps.enlat = 0x10
        ps.exlat = 0x04
        id.psd[0] = ps
        return id
    }

    /// The Identify Namespace fields every namespace shares: the LBA
    /// formats, metadata and protection capabilities, deallocation and the
    /// Copy limits (Identify CNS 00h of NSID FFFFFFFFh; docs/NAMESPACES.md).
    func commonNamespaceData() -> IdentifyNamespace {
        var id = IdentifyNamespace()
        id.nlbaf = UInt8(NamespaceFormat.lbaFormats.count - 1)
        for (i, f) in NamespaceFormat.lbaFormats.enumerated() { id.lbaf[i] = f }
        // MC: extended LBAs and a separate buffer. DPC: types 1-3, PI in the
        // first or the last eight bytes of metadata.
        id.mc = 0x03
        id.dpc = 0x1F
        id.dlfeat = 0x09                 // deallocated blocks read as zeroes; Write Zeroes may deallocate
        id.mssrl = parameters.copyMSSRL
        id.mcl = parameters.copyMCL
        id.msrc = parameters.copyMSRC
        return id
    }

    /// Identify Namespace data (Figure 249). LBA formats as QEMU's list;
    /// metadata and protection as `docs/METADATA.md` describes.
    /// Call under the lock (format and size change with Format NVM).
    func identifyNamespaceData(_ ns: Namespace) -> IdentifyNamespace {
        var id = commonNamespaceData()
        id.nsze = ns.nsze
        id.ncap = ns.nsze
        id.nuse = ns.nsze
        id.flbas = ns.format.flbas
        id.dps = ns.format.dps
        // §5.15.2.1 FPI: bit 7, progress is reported; bits 6:0, percent remaining.
        id.fpi = 0x80 | UInt8(ns.formatProgress.map { 100 - $0 } ?? 0)
        id.nvmcap = UInt128(ns.nsze) << UInt128(ns.lbads)
        id.nguid = ns.nguid
        id.eui64 = ns.eui64
        id.nsattr = ns.isReadOnly ? 1 : 0
        id.nmic = ns.nmic
        // §5.15.2.1: NSFEAT bit 1 (NSABP) says NAWUN, NAWUPF, NACWU, NABSN,
        // NABO and NABSPF are this namespace's atomicity (`--atomicity`).
        if parameters.namespaceAtomicity {
            id.nsfeat |= 0x02
            id.nawun = parameters.nawun
            id.nawupf = parameters.nawupf
            id.nabsn = parameters.nabsn
            id.nabo = parameters.nabo
            id.nabspf = parameters.nabspf
        }
        return id
    }
}
