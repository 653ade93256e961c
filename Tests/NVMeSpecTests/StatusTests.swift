import Testing
import NVMeSpec

@Suite struct StatusTests {
    /// (status, SCT, SC) transcribed from NVMe 1.4 Figures 128-131.
    static let specValues: [(NVMeStatus, UInt8, UInt8)] = [
        (.success, 0, 0x00), (.invalidOpcode, 0, 0x01), (.invalidField, 0, 0x02),
        (.commandIDConflict, 0, 0x03), (.dataTransferError, 0, 0x04), (.powerLossAbort, 0, 0x05),
        (.internalError, 0, 0x06), (.abortRequested, 0, 0x07), (.sqDeletion, 0, 0x08),
        (.failedFused, 0, 0x09), (.missingFused, 0, 0x0A), (.invalidNamespace, 0, 0x0B),
        (.commandSequenceError, 0, 0x0C), (.invalidSGLSegmentDescriptor, 0, 0x0D),
        (.invalidNumberOfSGLDescriptors, 0, 0x0E), (.dataSGLLengthInvalid, 0, 0x0F),
        (.metadataSGLLengthInvalid, 0, 0x10), (.sglDescriptorTypeInvalid, 0, 0x11),
        (.invalidUseOfCMB, 0, 0x12), (.prpOffsetInvalid, 0, 0x13), (.atomicWriteUnitExceeded, 0, 0x14),
        (.operationDenied, 0, 0x15), (.sglOffsetInvalid, 0, 0x16), (.keepAliveTimerExpired, 0, 0x19),
        (.keepAliveTimeoutInvalid, 0, 0x1A), (.sglDataBlockGranularityInvalid, 0, 0x1E),
        (.namespaceWriteProtected, 0, 0x20), (.commandInterrupted, 0, 0x21),
        (.lbaOutOfRange, 0, 0x80), (.capacityExceeded, 0, 0x81), (.namespaceNotReady, 0, 0x82),
        (.reservationConflict, 0, 0x83), (.formatInProgress, 0, 0x84),
        (.completionQueueInvalid, 1, 0x00), (.invalidQueueIdentifier, 1, 0x01), (.invalidQueueSize, 1, 0x02),
        (.abortCommandLimitExceeded, 1, 0x03), (.asyncEventRequestLimitExceeded, 1, 0x05),
        (.invalidFirmwareSlot, 1, 0x06), (.invalidFirmwareImage, 1, 0x07), (.invalidInterruptVector, 1, 0x08),
        (.invalidLogPage, 1, 0x09), (.invalidFormat, 1, 0x0A),
        (.firmwareActivationRequiresConventionalReset, 1, 0x0B), (.invalidQueueDeletion, 1, 0x0C),
        (.featureIdentifierNotSaveable, 1, 0x0D), (.featureNotChangeable, 1, 0x0E),
        (.featureNotNamespaceSpecific, 1, 0x0F), (.firmwareActivationRequiresNVMReset, 1, 0x10),
        (.firmwareActivationRequiresReset, 1, 0x11), (.firmwareActivationRequiresMaxTimeViolation, 1, 0x12),
        (.firmwareActivationProhibited, 1, 0x13), (.overlappingRange, 1, 0x14),
        (.namespaceInsufficientCapacity, 1, 0x15), (.namespaceIdentifierUnavailable, 1, 0x16),
        (.namespaceAlreadyAttached, 1, 0x18), (.namespaceIsPrivate, 1, 0x19), (.namespaceNotAttached, 1, 0x1A),
        (.thinProvisioningNotSupported, 1, 0x1B), (.controllerListInvalid, 1, 0x1C),
        (.deviceSelfTestInProgress, 1, 0x1D),
        (.conflictingAttributes, 1, 0x80), (.invalidProtectionInformation, 1, 0x81),
        (.attemptedWriteToReadOnlyRange, 1, 0x82), (.commandSizeLimitExceeded, 1, 0x83),
        (.writeFault, 2, 0x80), (.unrecoveredReadError, 2, 0x81), (.endToEndGuardCheckError, 2, 0x82),
        (.endToEndApplicationTagCheckError, 2, 0x83), (.endToEndReferenceTagCheckError, 2, 0x84),
        (.compareFailure, 2, 0x85), (.accessDenied, 2, 0x86), (.deallocatedOrUnwrittenLogicalBlock, 2, 0x87),
    ]

    @Test func valuesMatchTheSpecification() {
        for (status, sct, sc) in Self.specValues {
            #expect(status.type.rawValue == sct && status.code == sc, "\(status)")
            #expect(status == NVMeStatus(type: StatusCodeType(rawValue: sct), code: sc))
            #expect(!status.more && !status.dnr)
        }
        #expect(Self.specValues.count == NVMeStatus.catalogue.count)
    }

    @Test func bitPositions() {
        // Status field layout (without phase): SC 7:0, SCT 10:8, CRD 12:11, More 13, DNR 14.
        let s = NVMeStatus(type: StatusCodeType(rawValue: 7), code: 0xFF, more: true, dnr: true)
        #expect(s.raw == 0x67FF)
        #expect(NVMeStatus(type: .generic, code: 0, more: true).raw == 0x2000)
        #expect(NVMeStatus(type: .generic, code: 0, dnr: true).raw == 0x4000)
        #expect(NVMeStatus(type: .pathRelated, code: 0).raw == 0x0300)
        #expect(NVMeStatus(raw: 0x1800).raw == 0x1800) // CRD bits are kept
        #expect(NVMeStatus(raw: 0xFFFF).raw == 0x7FFF) // bit 15 (phase position) dropped
        #expect(NVMeStatus(raw: 0x4281).type == .mediaError)
        #expect(NVMeStatus(raw: 0x4281).code == 0x81)
    }

    @Test func dnrAndMore() {
        let s = NVMeStatus.lbaOutOfRange.withDNR
        #expect(s.dnr && !s.more)
        #expect(s.raw == 0x4080)
        #expect(s.kind == .lbaOutOfRange)
        #expect(s != .lbaOutOfRange)
        let m = NVMeStatus.internalError.withMore.withDNR
        #expect(m.more && m.dnr && m.raw == 0x6006)
        #expect(m.kind == .internalError)
        #expect(m.name == "INTERNAL_DEV_ERROR") // More/DNR do not change the name
        #expect(!m.isSuccess)
        #expect(NVMeStatus.success.withDNR.isSuccess)
        #expect(NVMeStatus(raw: 0x1800).isSuccess == true) // CRD only: still success code
    }

    @Test func names() {
        #expect(NVMeStatus.success.name == "SUCCESS")
        #expect(NVMeStatus.invalidField.name == "INVALID_FIELD")
        #expect(NVMeStatus.invalidNamespace.name == "INVALID_NSID")
        #expect(NVMeStatus.lbaOutOfRange.name == "LBA_RANGE")
        #expect(NVMeStatus.completionQueueInvalid.name == "INVALID_CQID")
        #expect(NVMeStatus.writeFault.name == "WRITE_FAULT")
        #expect(NVMeStatus.unrecoveredReadError.name == "UNRECOVERED_READ")
        #expect(NVMeStatus.compareFailure.name == "CMP_FAILURE")
        #expect(NVMeStatus.atomicWriteUnitExceeded.name == "ATOMIC_WRITE_UNIT_EXCEEDED")
        #expect(NVMeStatus(raw: 0x0FF).name == "UNKNOWN")
        #expect(NVMeStatus.invalidField.withDNR.description == "INVALID_FIELD (0x4002)")
        #expect(NVMeStatus.success.description == "SUCCESS (0x0000)")
        let names = NVMeStatus.catalogue.map(\.1)
        #expect(Set(names).count == names.count, "status names are unique")
        let values = NVMeStatus.catalogue.map(\.0)
        #expect(Set(values).count == values.count, "status values are unique")
    }
}
