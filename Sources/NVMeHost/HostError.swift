import NVMeSpec

import Glibc

/// A failure of the built-in host: the errno a file operation reports, the
/// NVMe status that caused it (if a command completed with an error), and a
/// one-line description.
public struct HostError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Positive errno for the file system reply.
    public var errno: Int32
    /// The completion status that caused the failure, if any.
    public var status: NVMeStatus?
    public var message: String

    public init(errno: Int32, status: NVMeStatus? = nil, _ message: String) {
        self.errno = errno; self.status = status; self.message = message
    }

    /// The error for a command that completed with `status` (not success).
    public init(status: NVMeStatus, _ what: String) {
        self.init(errno: errnoForStatus(status), status: status, "\(what): \(status)")
    }

    public var description: String { message }
}

/// The one mapping from NVMe completion status to the errno reported by the
/// files the built-in host serves (`namespaces/N/data`, `identify`, `log/*`).
///
/// | NVMe status (SCT/SC)                                        | errno   |
/// |-------------------------------------------------------------|---------|
/// | Successful Completion (0/00h)                                | 0       |
/// | LBA Out of Range (0/80h), Capacity Exceeded (0/81h)          | ENOSPC  |
/// | Namespace is Write Protected (0/20h), Attempted Write to Read Only Range (1/82h) | EROFS |
/// | Invalid Namespace or Format (0/0Bh)                          | ENODEV  |
/// | Namespace Not Ready (0/82h), Format In Progress (0/84h)      | EBUSY   |
/// | Invalid Command Opcode (0/01h), Invalid Field (0/02h), PRP Offset Invalid (0/13h), SGL errors (0/0Dh-11h, 0/16h, 0/1Eh), Invalid Use of CMB (0/12h), Command Sequence Error (0/0Ch), Fused errors (0/09h, 0/0Ah), Invalid Format (1/0Ah), Invalid Protection Information (1/81h), any Command Specific status (SCT 1) other than the above | EINVAL |
/// | Compare Failure (2/85h)                                      | EILSEQ  |
/// | Write Fault (2/80h), Unrecovered Read Error (2/81h), end-to-end guard/application/reference tag errors (2/82h-84h), Access Denied (2/86h), Deallocated or Unwritten Logical Block (2/87h) | EIO |
/// | Data Transfer Error (0/04h), Internal Error (0/06h), Power Loss Abort (0/05h) | EIO |
/// | Command Abort Requested (0/07h), Aborted due to SQ Deletion (0/08h), Command Interrupted (0/21h) — after the host's one retry, like Linux | EIO |
/// | anything else (path related, vendor specific, unknown)      | EIO     |
public func errnoForStatus(_ s: NVMeStatus) -> Int32 {
    if s.isSuccess { return 0 }
    switch s.kind {
    case .lbaOutOfRange, .capacityExceeded:
        return ENOSPC
    case .namespaceWriteProtected, .attemptedWriteToReadOnlyRange:
        return EROFS
    case .invalidNamespace:
        return ENODEV
    case .namespaceNotReady, .formatInProgress:
        return EBUSY
    case .invalidOpcode, .invalidField, .prpOffsetInvalid, .invalidSGLSegmentDescriptor,
         .invalidNumberOfSGLDescriptors, .dataSGLLengthInvalid, .metadataSGLLengthInvalid,
         .sglDescriptorTypeInvalid, .sglOffsetInvalid, .sglDataBlockGranularityInvalid, .invalidUseOfCMB,
         .commandSequenceError, .failedFused, .missingFused, .commandIDConflict,
         .invalidFormat, .invalidProtectionInformation:
        return EINVAL
    case .compareFailure:
        return EILSEQ
    case .endToEndGuardCheckError, .endToEndApplicationTagCheckError, .endToEndReferenceTagCheckError:
        return EIO  // §8.3.1.5: the data on the medium does not match its PI
    default:
        break
    }
    switch s.type {
    case .commandSpecific: return EINVAL
    default: return EIO
    }
}
