/// One Self-test Result Data Structure (NVMe 1.4 §5.14.1.6, Figure 204):
/// 28 bytes.
public struct DeviceSelfTestResult: Hashable, Sendable, NVMeWireFormat {
    public static let size = 28

    /// Bits 7:4 of byte 0: the operation the result is for (Figure 204,
    /// as CDW10 STC of Device Self-test, §5.8).
    public enum Operation: UInt8, Sendable { case short = 1, extended = 2, vendor = 0xE }

    /// Bits 3:0 of byte 0 (Figure 204).
    public enum Result: UInt8, Sendable {
        case completed = 0
        case abortedByCommand = 1
        case abortedByReset = 2
        case abortedByNamespaceRemoval = 3
        case abortedByFormat = 4
        case fatalError = 5
        case failedUnknownSegment = 6
        case failedSegment = 7
        case abortedUnknown = 8
        case abortedBySanitize = 9
        /// The entry holds no result.
        case unused = 0xF
    }

    /// Byte 0 — Device Self-test Status: operation in 7:4, result in 3:0.
    public var status: UInt8 = 0x0F
    /// Byte 1 — the segment that failed (1-based), when the result is 7.
    public var segment: UInt8 = 0
    /// Byte 2 — Valid Diagnostic Information: NSID (bit 0), FLBA (bit 1),
    /// SCT (bit 2), SC (bit 3) hold valid values.
    public var validDiagnostics: UInt8 = 0
    /// Bytes 11:4 — Power On Hours when the operation completed or was aborted.
    public var powerOnHours: UInt64 = 0
    /// Bytes 15:12 — the namespace the failure was on.
    public var nsid: UInt32 = 0
    /// Bytes 23:16 — the first failing LBA.
    public var failingLBA: UInt64 = 0
    /// Byte 24 bits 2:0 — Status Code Type of the failure.
    public var statusCodeType: UInt8 = 0
    /// Byte 25 — Status Code of the failure.
    public var statusCode: UInt8 = 0
    /// Bytes 27:26 — vendor specific.
    public var vendorSpecific: UInt16 = 0

    public enum Offset {
        public static let status = 0, segment = 1, validDiagnostics = 2, powerOnHours = 4, nsid = 12
        public static let failingLBA = 16, statusCodeType = 24, statusCode = 25, vendorSpecific = 26
    }

    /// Valid Diagnostic Information bits.
    public static let nsidValid: UInt8 = 1, flbaValid: UInt8 = 2, sctValid: UInt8 = 4, scValid: UInt8 = 8

    /// An unused entry (result Fh).
    public init() {}

    public init(operation: Operation, result: Result, powerOnHours: UInt64 = 0) {
        status = operation.rawValue << 4 | result.rawValue
        self.powerOnHours = powerOnHours
    }

    /// Bits 7:4 of the status (nil for a value outside Figure 204).
    public var operation: Operation? { Operation(rawValue: status >> 4) }
    /// Bits 3:0 of the status (nil for a reserved value).
    public var result: Result? { Result(rawValue: status & 0xF) }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        status = bytes.le8(Offset.status)
        segment = bytes.le8(Offset.segment)
        validDiagnostics = bytes.le8(Offset.validDiagnostics)
        powerOnHours = bytes.le64(Offset.powerOnHours)
        nsid = bytes.le32(Offset.nsid)
        failingLBA = bytes.le64(Offset.failingLBA)
        statusCodeType = bytes.le8(Offset.statusCodeType) & 0x7
        statusCode = bytes.le8(Offset.statusCode)
        vendorSpecific = bytes.le16(Offset.vendorSpecific)
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put8(status, at: Offset.status)
        out.put8(segment, at: Offset.segment)
        out.put8(validDiagnostics, at: Offset.validDiagnostics)
        out.put64(powerOnHours, at: Offset.powerOnHours)
        out.put32(nsid, at: Offset.nsid)
        out.put64(failingLBA, at: Offset.failingLBA)
        out.put8(statusCodeType & 0x7, at: Offset.statusCodeType)
        out.put8(statusCode, at: Offset.statusCode)
        out.put16(vendorSpecific, at: Offset.vendorSpecific)
    }
}

/// Device Self-test log page, log identifier 06h (NVMe 1.4 §5.14.1.6,
/// Figure 203): 564 bytes.
public struct DeviceSelfTestLog: Hashable, Sendable, NVMeWireFormat {
    public static let size = 564
    public static let resultCount = 20

    /// Byte 0 bits 3:0 — the operation in progress: 0 none, 1 short, 2 extended.
    public var currentOperation: UInt8 = 0
    /// Byte 1 bits 6:0 — percent of the operation in progress done.
    public var currentCompletion: UInt8 = 0
    /// Bytes 31:4 onwards — the last 20 results, newest first. Always 20
    /// entries when decoded; missing entries encode as unused (result Fh).
    public var results: [DeviceSelfTestResult] = []

    public enum Offset {
        public static let currentOperation = 0, currentCompletion = 1, result0 = 4
        @inlinable public static func result(_ i: Int) -> Int { result0 + DeviceSelfTestResult.size * i }
    }

    public init() {}

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        currentOperation = bytes.le8(Offset.currentOperation) & 0xF
        currentCompletion = bytes.le8(Offset.currentCompletion) & 0x7F
        results = (0 ..< Self.resultCount).map { i in
            DeviceSelfTestResult(bytes: UnsafeRawBufferPointer(rebasing: bytes[Offset.result(i) ..< Offset.result(i + 1)]))!
        }
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        out.put8(currentOperation & 0xF, at: Offset.currentOperation)
        out.put8(currentCompletion & 0x7F, at: Offset.currentCompletion)
        for i in 0 ..< Self.resultCount {
            let entry = i < results.count ? results[i] : DeviceSelfTestResult()
            entry.encode(into: UnsafeMutableRawBufferPointer(rebasing: out[Offset.result(i) ..< Offset.result(i + 1)]))
        }
    }
}
