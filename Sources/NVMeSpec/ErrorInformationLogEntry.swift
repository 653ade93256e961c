/// One Error Information log entry, log identifier 01h (NVMe 1.4 §5.14.1.1,
/// Figure 194): 64 bytes. The log page is an array of these, newest first.
public struct ErrorInformationLogEntry: Hashable, Sendable, NVMeWireFormat {
    public static let size = 64
    /// Value of `cid`, `sqid` and `parameterErrorLocation` when not applicable.
    public static let notApplicable: UInt16 = 0xFFFF

    /// 7:0 — error count: unique, incrementing identifier of this error (0 = invalid entry).
    public var errorCount: UInt64 = 0
    /// 9:8 — submission queue ID of the command (FFFFh if not specific to a command).
    public var sqid: UInt16 = 0
    /// 11:10 — command ID (FFFFh if not specific to a command).
    public var cid: UInt16 = 0
    /// 13:12 bit 0 — phase tag of the completion posted for the command.
    public var phaseTag: Bool = false
    /// 13:12 bits 15:1 — status field of the completion.
    public var status: NVMeStatus = .success
    /// 15:14 — parameter error location: bits 7:0 byte within the command,
    /// bits 10:8 bit within that byte (FFFFh if not applicable).
    public var parameterErrorLocation: UInt16 = 0
    /// 23:16 — first LBA that experienced the error, if applicable.
    public var lba: UInt64 = 0
    /// 27:24 — namespace of the error, if applicable.
    public var nsid: UInt32 = 0
    /// 28 — vendor specific information available (log page identifier, 0 if none).
    public var vendorSpecificInformationAvailable: UInt8 = 0
    /// 29 — transport type (TRTYPE) of the transport that detected the error.
    public var trtype: UInt8 = 0
    /// 39:32 — command specific information.
    public var commandSpecificInformation: UInt64 = 0
    /// 41:40 — transport type specific information.
    public var transportTypeSpecificInformation: UInt16 = 0

    public enum Offset {
        public static let errorCount = 0, sqid = 8, cid = 10, statusField = 12, parameterErrorLocation = 14
        public static let lba = 16, nsid = 24, vendorSpecificInformationAvailable = 28, trtype = 29
        public static let commandSpecificInformation = 32, transportTypeSpecificInformation = 40
    }

    public init() {}

    public init(errorCount: UInt64, sqid: UInt16, cid: UInt16, status: NVMeStatus, phaseTag: Bool = false,
                parameterErrorLocation: UInt16 = ErrorInformationLogEntry.notApplicable,
                lba: UInt64 = 0, nsid: UInt32 = 0) {
        self.errorCount = errorCount; self.sqid = sqid; self.cid = cid; self.status = status
        self.phaseTag = phaseTag; self.parameterErrorLocation = parameterErrorLocation
        self.lba = lba; self.nsid = nsid
    }

    /// Builds a parameter error location from a byte offset in the command and a bit (0...7).
    @inlinable public static func parameterErrorLocation(byte: UInt8, bit: UInt8) -> UInt16 {
        UInt16(byte) | UInt16(bit & 0x7) << 8
    }
    /// Bits 7:0 of the parameter error location — byte in the command.
    public var parameterErrorByte: UInt8 { UInt8(truncatingIfNeeded: parameterErrorLocation) }
    /// Bits 10:8 of the parameter error location — bit in that byte.
    public var parameterErrorBit: UInt8 { UInt8(truncatingIfNeeded: parameterErrorLocation >> 8) & 0x7 }

    /// The 16-bit status field as stored (status << 1 | phase tag).
    public var statusField: UInt16 { status.raw << 1 | (phaseTag ? 1 : 0) }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        errorCount = bytes.le64(Offset.errorCount)
        sqid = bytes.le16(Offset.sqid)
        cid = bytes.le16(Offset.cid)
        let field = bytes.le16(Offset.statusField)
        phaseTag = field & 1 != 0
        status = NVMeStatus(raw: field >> 1)
        parameterErrorLocation = bytes.le16(Offset.parameterErrorLocation)
        lba = bytes.le64(Offset.lba)
        nsid = bytes.le32(Offset.nsid)
        vendorSpecificInformationAvailable = bytes.le8(Offset.vendorSpecificInformationAvailable)
        trtype = bytes.le8(Offset.trtype)
        commandSpecificInformation = bytes.le64(Offset.commandSpecificInformation)
        transportTypeSpecificInformation = bytes.le16(Offset.transportTypeSpecificInformation)
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put64(errorCount, at: Offset.errorCount)
        out.put16(sqid, at: Offset.sqid)
        out.put16(cid, at: Offset.cid)
        out.put16(statusField, at: Offset.statusField)
        out.put16(parameterErrorLocation, at: Offset.parameterErrorLocation)
        out.put64(lba, at: Offset.lba)
        out.put32(nsid, at: Offset.nsid)
        out.put8(vendorSpecificInformationAvailable, at: Offset.vendorSpecificInformationAvailable)
        out.put8(trtype, at: Offset.trtype)
        out.put64(commandSpecificInformation, at: Offset.commandSpecificInformation)
        out.put16(transportTypeSpecificInformation, at: Offset.transportTypeSpecificInformation)
    }
}
