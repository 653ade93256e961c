/// A completion status as carried in CQE DW3 bits 31:17 (NVMe 1.4 §4.6.1),
/// held without the phase tag: bits 7:0 SC, 10:8 SCT, 12:11 CRD, 13 More, 14 DNR.
/// Open enum-like struct: unknown values round-trip.
public struct NVMeStatus: Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt16
    @inlinable public init(raw: UInt16) { self.raw = raw & 0x7FFF }
    @inlinable public init(type: StatusCodeType, code: UInt8, more: Bool = false, dnr: Bool = false) {
        raw = UInt16(code) | UInt16(type.rawValue & 7) << 8 | (more ? 0x2000 : 0) | (dnr ? 0x4000 : 0)
    }
    @inlinable public var code: UInt8 { UInt8(truncatingIfNeeded: raw) }
    @inlinable public var type: StatusCodeType { StatusCodeType(rawValue: UInt8((raw >> 8) & 7)) }
    @inlinable public var more: Bool { raw & 0x2000 != 0 }
    @inlinable public var dnr: Bool { raw & 0x4000 != 0 }
    @inlinable public var isSuccess: Bool { raw & 0x7FF == 0 }
    /// Status code type and code only (no More/DNR/CRD): identity of the error.
    @inlinable public var kind: NVMeStatus { NVMeStatus(raw: raw & 0x7FF) }
    /// The same status with Do Not Retry set.
    @inlinable public var withDNR: NVMeStatus { NVMeStatus(raw: raw | 0x4000) }
    @inlinable public var withMore: NVMeStatus { NVMeStatus(raw: raw | 0x2000) }

    public var name: String { StatusCodeType.names[raw & 0x7FF] ?? "UNKNOWN" }
    public var description: String {
        let hex = String(raw, radix: 16)
        return "\(name) (0x\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
    }
}

/// A failed command's status is an error: mappers and handlers report it as
/// `Result<_, NVMeStatus>`.
extension NVMeStatus: Error {}

public struct StatusCodeType: Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let generic = StatusCodeType(rawValue: 0)
    public static let commandSpecific = StatusCodeType(rawValue: 1)
    public static let mediaError = StatusCodeType(rawValue: 2)
    public static let pathRelated = StatusCodeType(rawValue: 3)
    public static let vendorSpecific = StatusCodeType(rawValue: 7)

    /// Names as printed by nvme-cli / QEMU trace, keyed by SCT<<8|SC.
    static let names: [UInt16: String] = {
        var n: [UInt16: String] = [:]
        for (s, name) in NVMeStatus.catalogue { n[s.raw & 0x7FF] = name }
        return n
    }()
}

extension NVMeStatus {
    // Generic command status (SCT 0), NVMe 1.4 Figure 128; gaps are reserved.
    public static let success = NVMeStatus(raw: 0x000)
    public static let invalidOpcode = NVMeStatus(raw: 0x001)
    public static let invalidField = NVMeStatus(raw: 0x002)
    public static let commandIDConflict = NVMeStatus(raw: 0x003)
    public static let dataTransferError = NVMeStatus(raw: 0x004)
    public static let powerLossAbort = NVMeStatus(raw: 0x005)
    public static let internalError = NVMeStatus(raw: 0x006)
    public static let abortRequested = NVMeStatus(raw: 0x007)
    public static let sqDeletion = NVMeStatus(raw: 0x008)
    public static let failedFused = NVMeStatus(raw: 0x009)
    public static let missingFused = NVMeStatus(raw: 0x00A)
    public static let invalidNamespace = NVMeStatus(raw: 0x00B)
    public static let commandSequenceError = NVMeStatus(raw: 0x00C)
    public static let invalidSGLSegmentDescriptor = NVMeStatus(raw: 0x00D)
    public static let invalidNumberOfSGLDescriptors = NVMeStatus(raw: 0x00E)
    public static let dataSGLLengthInvalid = NVMeStatus(raw: 0x00F)
    public static let metadataSGLLengthInvalid = NVMeStatus(raw: 0x010)
    public static let sglDescriptorTypeInvalid = NVMeStatus(raw: 0x011)
    public static let invalidUseOfCMB = NVMeStatus(raw: 0x012)
    public static let prpOffsetInvalid = NVMeStatus(raw: 0x013)
    public static let atomicWriteUnitExceeded = NVMeStatus(raw: 0x014)
    public static let operationDenied = NVMeStatus(raw: 0x015)
    public static let sglOffsetInvalid = NVMeStatus(raw: 0x016)
    public static let keepAliveTimerExpired = NVMeStatus(raw: 0x019)
    public static let keepAliveTimeoutInvalid = NVMeStatus(raw: 0x01A)
    public static let sglDataBlockGranularityInvalid = NVMeStatus(raw: 0x01E)
    public static let namespaceWriteProtected = NVMeStatus(raw: 0x020)
    public static let commandInterrupted = NVMeStatus(raw: 0x021)
    // Generic, NVM command set (SCT 0, 0x80..)
    public static let lbaOutOfRange = NVMeStatus(raw: 0x080)
    public static let capacityExceeded = NVMeStatus(raw: 0x081)
    public static let namespaceNotReady = NVMeStatus(raw: 0x082)
    public static let reservationConflict = NVMeStatus(raw: 0x083)
    public static let formatInProgress = NVMeStatus(raw: 0x084)

    // Command specific status (SCT 1), NVMe 1.4 Figure 129 and 130.
    public static let completionQueueInvalid = NVMeStatus(raw: 0x100)
    public static let invalidQueueIdentifier = NVMeStatus(raw: 0x101)
    public static let invalidQueueSize = NVMeStatus(raw: 0x102)
    public static let abortCommandLimitExceeded = NVMeStatus(raw: 0x103)
    public static let asyncEventRequestLimitExceeded = NVMeStatus(raw: 0x105)
    public static let invalidFirmwareSlot = NVMeStatus(raw: 0x106)
    public static let invalidFirmwareImage = NVMeStatus(raw: 0x107)
    public static let invalidInterruptVector = NVMeStatus(raw: 0x108)
    public static let invalidLogPage = NVMeStatus(raw: 0x109)
    public static let invalidFormat = NVMeStatus(raw: 0x10A)
    public static let firmwareActivationRequiresConventionalReset = NVMeStatus(raw: 0x10B)
    public static let invalidQueueDeletion = NVMeStatus(raw: 0x10C)
    public static let featureIdentifierNotSaveable = NVMeStatus(raw: 0x10D)
    public static let featureNotChangeable = NVMeStatus(raw: 0x10E)
    public static let featureNotNamespaceSpecific = NVMeStatus(raw: 0x10F)
    public static let firmwareActivationRequiresNVMReset = NVMeStatus(raw: 0x110)
    public static let firmwareActivationRequiresReset = NVMeStatus(raw: 0x111)
    public static let firmwareActivationRequiresMaxTimeViolation = NVMeStatus(raw: 0x112)
    public static let firmwareActivationProhibited = NVMeStatus(raw: 0x113)
    public static let overlappingRange = NVMeStatus(raw: 0x114)
    public static let namespaceInsufficientCapacity = NVMeStatus(raw: 0x115)
    public static let namespaceIdentifierUnavailable = NVMeStatus(raw: 0x116)
    public static let namespaceAlreadyAttached = NVMeStatus(raw: 0x118)
    public static let namespaceIsPrivate = NVMeStatus(raw: 0x119)
    public static let namespaceNotAttached = NVMeStatus(raw: 0x11A)
    public static let thinProvisioningNotSupported = NVMeStatus(raw: 0x11B)
    public static let controllerListInvalid = NVMeStatus(raw: 0x11C)
    /// Device Self-test (§5.8): a test is already running.
    public static let deviceSelfTestInProgress = NVMeStatus(raw: 0x11D)
    // Command specific, NVM command set (SCT 1, 0x80..)
    public static let conflictingAttributes = NVMeStatus(raw: 0x180)
    public static let invalidProtectionInformation = NVMeStatus(raw: 0x181)
    public static let attemptedWriteToReadOnlyRange = NVMeStatus(raw: 0x182)
    /// NVMe 2.0 NVM Command Set §3.2.2 (Copy): a source range longer than
    /// MSSRL, more ranges than MSRC + 1, or more blocks than MCL.
    public static let commandSizeLimitExceeded = NVMeStatus(raw: 0x183)

    // Media and data integrity errors (SCT 2), NVMe 1.4 Figure 131.
    public static let writeFault = NVMeStatus(raw: 0x280)
    public static let unrecoveredReadError = NVMeStatus(raw: 0x281)
    public static let endToEndGuardCheckError = NVMeStatus(raw: 0x282)
    public static let endToEndApplicationTagCheckError = NVMeStatus(raw: 0x283)
    public static let endToEndReferenceTagCheckError = NVMeStatus(raw: 0x284)
    public static let compareFailure = NVMeStatus(raw: 0x285)
    public static let accessDenied = NVMeStatus(raw: 0x286)
    public static let deallocatedOrUnwrittenLogicalBlock = NVMeStatus(raw: 0x287)

    /// Every named status with its display name (QEMU's NVME_* spellings).
    public static let catalogue: [(NVMeStatus, String)] = [
        (.success, "SUCCESS"), (.invalidOpcode, "INVALID_OPCODE"), (.invalidField, "INVALID_FIELD"),
        (.commandIDConflict, "CID_CONFLICT"), (.dataTransferError, "DATA_TRAS_ERROR"),
        (.powerLossAbort, "POWER_LOSS_ABORT"), (.internalError, "INTERNAL_DEV_ERROR"),
        (.abortRequested, "CMD_ABORT_REQ"), (.sqDeletion, "CMD_ABORT_SQ_DEL"),
        (.failedFused, "CMD_ABORT_FAILED_FUSE"), (.missingFused, "CMD_ABORT_MISSING_FUSE"),
        (.invalidNamespace, "INVALID_NSID"), (.commandSequenceError, "CMD_SEQ_ERROR"),
        (.invalidSGLSegmentDescriptor, "INVALID_SGL_SEG_DESCR"),
        (.invalidNumberOfSGLDescriptors, "INVALID_NUM_SGL_DESCRS"),
        (.dataSGLLengthInvalid, "DATA_SGL_LEN_INVALID"), (.metadataSGLLengthInvalid, "MD_SGL_LEN_INVALID"),
        (.sglDescriptorTypeInvalid, "SGL_DESCR_TYPE_INVALID"), (.invalidUseOfCMB, "INVALID_USE_OF_CMB"),
        (.prpOffsetInvalid, "INVALID_PRP_OFFSET"), (.atomicWriteUnitExceeded, "ATOMIC_WRITE_UNIT_EXCEEDED"),
        (.operationDenied, "OPERATION_DENIED"), (.sglOffsetInvalid, "SGL_OFFSET_INVALID"),
        (.keepAliveTimerExpired, "KEEP_ALIVE_EXPIRED"), (.keepAliveTimeoutInvalid, "KEEP_ALIVE_INVALID"),
        (.sglDataBlockGranularityInvalid, "SGL_DATA_BLOCK_GRANULARITY_INVALID"),
        (.namespaceWriteProtected, "NS_WRITE_PROTECTED"), (.commandInterrupted, "CMD_INTERRUPTED"),
        (.lbaOutOfRange, "LBA_RANGE"), (.capacityExceeded, "CAP_EXCEEDED"),
        (.namespaceNotReady, "NS_NOT_READY"), (.reservationConflict, "NS_RESV_CONFLICT"),
        (.formatInProgress, "FORMAT_IN_PROGRESS"),
        (.completionQueueInvalid, "INVALID_CQID"), (.invalidQueueIdentifier, "INVALID_QID"),
        (.invalidQueueSize, "MAX_QSIZE_EXCEEDED"), (.abortCommandLimitExceeded, "ACL_EXCEEDED"),
        (.asyncEventRequestLimitExceeded, "AER_LIMIT_EXCEEDED"), (.invalidFirmwareSlot, "INVALID_FW_SLOT"),
        (.invalidFirmwareImage, "INVALID_FW_IMAGE"), (.invalidInterruptVector, "INVALID_IRQ_VECTOR"),
        (.invalidLogPage, "INVALID_LOG_ID"), (.invalidFormat, "INVALID_FORMAT"),
        (.firmwareActivationRequiresConventionalReset, "FW_REQ_RESET"),
        (.invalidQueueDeletion, "INVALID_QUEUE_DEL"),
        (.featureIdentifierNotSaveable, "FID_NOT_SAVEABLE"), (.featureNotChangeable, "FEAT_NOT_CHANGEABLE"),
        (.featureNotNamespaceSpecific, "FEAT_NOT_NS_SPEC"),
        (.firmwareActivationRequiresNVMReset, "FW_REQ_SUSYSTEM_RESET"),
        (.firmwareActivationRequiresReset, "FW_REQ_RESET_2"),
        (.firmwareActivationRequiresMaxTimeViolation, "FW_REQ_MAX_TIME_VIOLATION"),
        (.firmwareActivationProhibited, "FW_ACTIVATE_PROHIBITED"), (.overlappingRange, "OVERLAPPING_RANGE"),
        (.namespaceInsufficientCapacity, "NS_INSUFFICIENT_CAPAC"),
        (.namespaceIdentifierUnavailable, "NS_IDNTIFIER_UNAVAIL"),
        (.namespaceAlreadyAttached, "NS_ALREADY_ATTACHED"), (.namespaceIsPrivate, "NS_PRIVATE"),
        (.namespaceNotAttached, "NS_NOT_ATTACHED"), (.thinProvisioningNotSupported, "THIN_PROVISION_NOTSUP"),
        (.controllerListInvalid, "CTRL_LIST_INVALID"),
        (.deviceSelfTestInProgress, "DEVICE_SELF_TEST_IN_PROGRESS"),
        (.conflictingAttributes, "CONFLICTING_ATTRS"),
        (.invalidProtectionInformation, "INVALID_PROT_INFO"),
        (.attemptedWriteToReadOnlyRange, "WRITE_TO_RO"), (.commandSizeLimitExceeded, "CMD_SIZE_LIMIT"),
        (.writeFault, "WRITE_FAULT"), (.unrecoveredReadError, "UNRECOVERED_READ"),
        (.endToEndGuardCheckError, "E2E_GUARD_ERROR"), (.endToEndApplicationTagCheckError, "E2E_APP_ERROR"),
        (.endToEndReferenceTagCheckError, "E2E_REF_ERROR"), (.compareFailure, "CMP_FAILURE"),
        (.accessDenied, "ACCESS_DENIED"), (.deallocatedOrUnwrittenLogicalBlock, "DULB"),
    ]
}
