import NVMeSpec

import Glibc

/// The fixed header of one request written to the `passthru` file
/// (docs/PASSTHRU.md), little endian, 80 bytes:
///
/// | Offset | Size | Field                                                        |
/// |--------|------|--------------------------------------------------------------|
/// | 0      | 64   | the submission queue entry (NVMe 1.4 §4.2, Figure 104)      |
/// | 64     | 4    | data length in bytes                                         |
/// | 68     | 4    | metadata length in bytes (a separate buffer: MPTR)           |
/// | 72     | 4    | timeout in milliseconds (0: the host's command timeout)      |
/// | 76     | 1    | queue: 0 admin, 1 I/O                                        |
/// | 77     | 1    | direction: 0 none, 1 to the controller, 2 from it, 3 both    |
/// | 78     | 2    | reserved, 0                                                  |
///
/// The request continues with the data-out bytes, then the metadata-out
/// bytes (both only when the direction sends data to the controller). The
/// answer (`PassthroughResponse`) is the 16-byte CQE followed by the
/// data-in and metadata-in bytes (only when the direction brings data back).
///
/// The host owns CID, PSDT, PRP1/PRP2 and (with metadata) MPTR: it points
/// them at buffers of its own. Without data, PRP1 and PRP2 go as given (Create
/// I/O SQ/CQ name queue memory in `mem`); without metadata, MPTR does.
public struct PassthroughHeader: Hashable, Sendable {
    public static let size = 80

    public enum Offset {
        public static let sqe = 0, dataLength = 64, metadataLength = 68, timeout = 72, queue = 76
        public static let direction = 77, reserved = 78
    }

    public enum Queue: UInt8, Sendable {
        case admin = 0
        case io = 1
    }

    public var sqe: SubmissionQueueEntry
    public var dataLength: UInt32
    public var metadataLength: UInt32
    /// 0: the host's command timeout.
    public var timeoutMilliseconds: UInt32
    public var queue: Queue
    public var direction: DataTransfer

    public init(sqe: SubmissionQueueEntry, queue: Queue, direction: DataTransfer = .none, dataLength: UInt32 = 0,
                metadataLength: UInt32 = 0, timeoutMilliseconds: UInt32 = 0) {
        self.sqe = sqe; self.queue = queue; self.direction = direction; self.dataLength = dataLength
        self.metadataLength = metadataLength; self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// Decodes a header: nil on short input.
    /// - Throws: `HostError` (EINVAL) for an unknown queue or direction or
    ///   reserved bytes that are not 0.
    public init?(bytes: UnsafeRawBufferPointer) throws(HostError) {
        guard bytes.count >= Self.size, let sqe = SubmissionQueueEntry(bytes: bytes) else { return nil }
        guard let queue = Queue(rawValue: bytes.le8(Offset.queue)) else {
            throw HostError(errno: EINVAL, "passthru: queue \(bytes.le8(Offset.queue)) is neither 0 (admin) nor 1 (I/O)")
        }
        guard let direction = DataTransfer(rawValue: bytes.le8(Offset.direction)) else {
            throw HostError(errno: EINVAL, "passthru: direction \(bytes.le8(Offset.direction)) is not 0-3")
        }
        guard bytes.le16(Offset.reserved) == 0 else {
            throw HostError(errno: EINVAL, "passthru: reserved header bytes 78-79 are not 0")
        }
        self.init(sqe: sqe, queue: queue, direction: direction, dataLength: bytes.le32(Offset.dataLength),
                  metadataLength: bytes.le32(Offset.metadataLength), timeoutMilliseconds: bytes.le32(Offset.timeout))
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        sqe.encode(into: out)
        out.put32(dataLength, at: Offset.dataLength)
        out.put32(metadataLength, at: Offset.metadataLength)
        out.put32(timeoutMilliseconds, at: Offset.timeout)
        out.put8(queue.rawValue, at: Offset.queue)
        out.put8(direction.rawValue, at: Offset.direction)
        out.put16(0, at: Offset.reserved)
    }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }

    /// Bytes of data and metadata that follow the header in the request.
    public var outLength: Int { direction.toController ? Int(dataLength) + Int(metadataLength) : 0 }
    /// Bytes of data and metadata that follow the CQE in the response.
    public var inLength: Int { direction.fromController ? Int(dataLength) + Int(metadataLength) : 0 }

    /// Whether the host may run the request (NVMe 1.4 §4.2: the opcode's
    /// bits 1:0 name the direction of its data).
    /// - Parameter maxTransfer: the largest data transfer of one command (MDTS).
    /// - Throws: `HostError` — EINVAL when a direction is given without
    ///   lengths, lengths without a direction, or a direction the opcode does
    ///   not declare; E2BIG when the data or the metadata is longer than
    ///   `maxTransfer`.
    public func validate(maxTransfer: Int) throws(HostError) {
        let op = "opcode 0x" + String(sqe.opcode, radix: 16)
        if dataLength == 0 && metadataLength == 0 {
            guard direction == .none else {
                throw HostError(errno: EINVAL, "passthru: direction \(direction.rawValue) without data or metadata")
            }
            return
        }
        guard direction != .none else {
            throw HostError(errno: EINVAL, "passthru: \(dataLength) data and \(metadataLength) metadata bytes with direction 0")
        }
        guard direction == DataTransfer(opcode: sqe.opcode) else {
            throw HostError(errno: EINVAL, "passthru: \(op) transfers \(DataTransfer(opcode: sqe.opcode)), not \(direction)")
        }
        guard dataLength <= maxTransfer, metadataLength <= maxTransfer else {
            throw HostError(errno: E2BIG, "passthru: \(max(dataLength, metadataLength)) bytes exceed the "
                                + "maximum data transfer size (MDTS) of \(maxTransfer)")
        }
    }
}

/// The answer to a `passthru` request: the CQE the controller posted (or a
/// synthetic one, see `BuiltinHost.passthrough`), then the data and
/// metadata buffers as they were after the command, when the direction
/// brings data back (all of it, whatever the status, as Linux copies a
/// failed command's buffer back).
public struct PassthroughResponse: Sendable {
    public var cqe: CompletionQueueEntry
    public var data: [UInt8]
    public var metadata: [UInt8]

    public init(cqe: CompletionQueueEntry, data: [UInt8] = [], metadata: [UInt8] = []) {
        self.cqe = cqe; self.data = data; self.metadata = metadata
    }

    /// CQE, data, metadata.
    public var bytes: [UInt8] { cqe.bytes + data + metadata }
}
