/// Admin command opcodes (NVMe 1.4 Figure 139). Open enum-like struct.
public struct AdminOpcode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    public static let deleteIOSQ = AdminOpcode(0x00)
    public static let createIOSQ = AdminOpcode(0x01)
    public static let getLogPage = AdminOpcode(0x02)
    public static let deleteIOCQ = AdminOpcode(0x04)
    public static let createIOCQ = AdminOpcode(0x05)
    public static let identify = AdminOpcode(0x06)
    public static let abort = AdminOpcode(0x08)
    public static let setFeatures = AdminOpcode(0x09)
    public static let getFeatures = AdminOpcode(0x0A)
    public static let asyncEventRequest = AdminOpcode(0x0C)
    public static let namespaceManagement = AdminOpcode(0x0D)
    public static let firmwareCommit = AdminOpcode(0x10)
    public static let firmwareImageDownload = AdminOpcode(0x11)
    public static let deviceSelfTest = AdminOpcode(0x14)
    public static let namespaceAttachment = AdminOpcode(0x15)
    public static let keepAlive = AdminOpcode(0x18)
    public static let directiveSend = AdminOpcode(0x19)
    public static let directiveReceive = AdminOpcode(0x1A)
    public static let virtualizationManagement = AdminOpcode(0x1C)
    public static let doorbellBufferConfig = AdminOpcode(0x7C)
    public static let formatNVM = AdminOpcode(0x80)
    public static let securitySend = AdminOpcode(0x81)
    public static let securityReceive = AdminOpcode(0x82)
    public static let sanitize = AdminOpcode(0x84)
    public static let getLBAStatus = AdminOpcode(0x86)

    static let names: [UInt8: String] = [
        0x00: "NVME_ADM_CMD_DELETE_SQ", 0x01: "NVME_ADM_CMD_CREATE_SQ", 0x02: "NVME_ADM_CMD_GET_LOG_PAGE",
        0x04: "NVME_ADM_CMD_DELETE_CQ", 0x05: "NVME_ADM_CMD_CREATE_CQ", 0x06: "NVME_ADM_CMD_IDENTIFY",
        0x08: "NVME_ADM_CMD_ABORT", 0x09: "NVME_ADM_CMD_SET_FEATURES", 0x0A: "NVME_ADM_CMD_GET_FEATURES",
        0x0C: "NVME_ADM_CMD_ASYNC_EV_REQ", 0x0D: "NVME_ADM_CMD_NS_MANAGEMENT",
        0x10: "NVME_ADM_CMD_ACTIVATE_FW", 0x11: "NVME_ADM_CMD_DOWNLOAD_FW", 0x14: "NVME_ADM_CMD_DEV_SELF_TEST",
        0x15: "NVME_ADM_CMD_NS_ATTACHMENT", 0x18: "NVME_ADM_CMD_KEEP_ALIVE",
        0x19: "NVME_ADM_CMD_DIRECTIVE_SEND", 0x1A: "NVME_ADM_CMD_DIRECTIVE_RECV",
        0x1C: "NVME_ADM_CMD_VIRT_MNGMT", 0x7C: "NVME_ADM_CMD_DBBUF_CONFIG", 0x80: "NVME_ADM_CMD_FORMAT_NVM",
        0x81: "NVME_ADM_CMD_SECURITY_SEND", 0x82: "NVME_ADM_CMD_SECURITY_RECV", 0x84: "NVME_ADM_CMD_SANITIZE",
        0x86: "NVME_ADM_CMD_GET_LBA_STATUS",
    ]
    public var name: String { Self.names[rawValue] ?? "NVME_ADM_CMD_UNKNOWN" }
    public var description: String { name }
}

/// NVM command set I/O opcodes (NVMe 1.4 Figure 346, plus Copy from TP4065).
public struct NVMOpcode: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    public static let flush = NVMOpcode(0x00)
    public static let write = NVMOpcode(0x01)
    public static let read = NVMOpcode(0x02)
    public static let writeUncorrectable = NVMOpcode(0x04)
    public static let compare = NVMOpcode(0x05)
    public static let writeZeroes = NVMOpcode(0x08)
    public static let datasetManagement = NVMOpcode(0x09)
    public static let verify = NVMOpcode(0x0C)
    public static let reservationRegister = NVMOpcode(0x0D)
    public static let reservationReport = NVMOpcode(0x0E)
    public static let reservationAcquire = NVMOpcode(0x11)
    public static let reservationRelease = NVMOpcode(0x15)
    public static let copy = NVMOpcode(0x19)

    static let names: [UInt8: String] = [
        0x00: "NVME_NVM_CMD_FLUSH", 0x01: "NVME_NVM_CMD_WRITE", 0x02: "NVME_NVM_CMD_READ",
        0x04: "NVME_NVM_CMD_WRITE_UNCOR", 0x05: "NVME_NVM_CMD_COMPARE", 0x08: "NVME_NVM_CMD_WRITE_ZEROES",
        0x09: "NVME_NVM_CMD_DSM", 0x0C: "NVME_NVM_CMD_VERIFY", 0x0D: "NVME_NVM_CMD_RESV_REGISTER",
        0x0E: "NVME_NVM_CMD_RESV_REPORT", 0x11: "NVME_NVM_CMD_RESV_ACQUIRE", 0x15: "NVME_NVM_CMD_RESV_RELEASE",
        0x19: "NVME_NVM_CMD_COPY",
    ]
    public var name: String { Self.names[rawValue] ?? "NVME_NVM_CMD_UNKNOWN" }
    public var description: String { name }
}

/// The data transfer direction an opcode's bits 1:0 declare (NVMe 1.4 §4.2,
/// Figure 105 and Figures 139/346: 00b none, 01b host to controller, 10b
/// controller to host, 11b bidirectional). Every command of the admin and
/// NVM command sets follows it.
public enum DataTransfer: UInt8, Sendable, CaseIterable {
    case none = 0
    case hostToController = 1
    case controllerToHost = 2
    case bidirectional = 3

    /// The direction opcode `opcode` declares.
    @inlinable public init(opcode: UInt8) { self = DataTransfer(rawValue: opcode & 0x3)! }

    /// Data goes from the host to the controller (01b, 11b).
    @inlinable public var toController: Bool { rawValue & 1 != 0 }
    /// Data comes back from the controller (10b, 11b).
    @inlinable public var fromController: Bool { rawValue & 2 != 0 }
}
