import BlockIO
import NVMeSpec

import Glibc

/// Controller-wide counters for the `stats` file.
public struct ControllerStatistics: Sendable {
    /// Commands fetched per admin opcode and per I/O opcode.
    public var adminCommands: [UInt8: UInt64]
    public var ioCommands: [UInt8: UInt64]
    /// Commands completed with a non-success status.
    public var errors: UInt64
    public var doorbellWrites: UInt64
    public var invalidDoorbellWrites: UInt64
    public var guestErrors: UInt64
    public var completionsPosted: UInt64
}

extension NVMeController {
    /// Every existing queue, admin first, SQ before CQ.
    public func queueSnapshots() -> [QueueSnapshot] {
        lock.withLock {
            var out: [QueueSnapshot] = []
            for qid in 0..<sqs.count {
                if let sq = sqs[qid] {
                    out.append(QueueSnapshot(kind: .submission, qid: sq.sqid, base: sq.base, size: sq.size, head: sq.head,
                                             tail: sq.tail, phase: false, cqid: sq.cqid, vector: 0, interruptsEnabled: false,
                                             outstanding: sq.outstandingCount, lastDoorbell: sq.lastDoorbell))
                }
                if let cq = cqs[qid] {
                    out.append(QueueSnapshot(kind: .completion, qid: cq.cqid, base: cq.base, size: cq.size, head: cq.head,
                                             tail: cq.tail, phase: cq.phase, cqid: cq.cqid, vector: cq.vector,
                                             interruptsEnabled: cq.interruptsEnabled, outstanding: cq.pending.count,
                                             lastDoorbell: cq.lastDoorbell))
                }
            }
            return out
        }
    }

    /// Per-vector interrupt state for the `interrupts` file.
    public func interruptSnapshots() -> [InterruptSnapshot] {
        lock.withLock {
            let raised = interruptsRaised
            return interrupts.enumerated().map { v, s in
                InterruptSnapshot(vector: v, raised: raised[v], masked: v < 32 && intms & (1 << UInt32(v)) != 0, pending: s.pending)
            }
        }
    }

    public func statistics() -> ControllerStatistics {
        lock.withLock {
            let s = statsWithFastCounters
            return ControllerStatistics(adminCommands: nonZero(s.adminCommands), ioCommands: nonZero(s.ioCommands), errors: s.errors,
                                        doorbellWrites: s.doorbellWrites, invalidDoorbellWrites: s.invalidDoorbellWrites,
                                        guestErrors: s.guestErrors, completionsPosted: s.completionsPosted)
        }
    }

    /// The last value written to a doorbell (CONTRACT §3 doorbells/ reads).
    public func doorbellValue(qid: Int, completion: Bool) -> UInt32? {
        lock.withLock {
            let i = 2 * qid + (completion ? 1 : 0)
            return i < doorbellValues.count ? doorbellValues[i] : nil
        }
    }
}

extension NVMeController {
    /// Reads the stored metadata of namespace `nsid` (`namespaces/N/metadata`):
    /// `ms` bytes per LBA, LBA n's at byte n × ms, as on the wire (PI
    /// big-endian). Bypasses the fault injector (inspection is not I/O) and
    /// never holds the controller lock while the read runs.
    /// - Returns: bytes read: short at the end, 0 at or past it and on a
    ///   namespace without metadata.
    /// - Throws: `ImageBackendError` with the errno of a failed read
    ///   (ENODEV for an inactive namespace).
    public func readMetadata(nsid: UInt32, offset: UInt64,
                             into buffer: UnsafeMutableRawBufferPointer) throws(ImageBackendError) -> Int {
        let found: (any BlockBackend, UInt64, UInt64)?? = lock.withLock {
            guard let ns = namespace(nsid) else { return .none }
            guard let backend = ns.metadataBackend, ns.format.hasMetadata else { return .some(nil) }
            let inner = (backend as? FaultInjectingBackend)?.inner ?? backend
            return (inner, ns.metadataBase, ns.nsze * UInt64(ns.format.ms))
        }
        guard let found else { throw ImageBackendError(path: "namespace \(nsid)", operation: "read metadata of", errno: ENODEV) }
        guard let (backend, base, size) = found, offset < size, buffer.count > 0, let p = buffer.baseAddress else { return 0 }
        let n = Int(min(UInt64(buffer.count), size - offset))
        let done = CompletionSlot()
        backend.submit(AIO(operation: .read, offset: base + offset, length: UInt64(n), iov: [IOVector(base: p, length: n)])) {
            done.post($0)
        }
        let rc = done.wait()
        guard rc == 0 else { throw ImageBackendError(path: backend.name, operation: "read metadata from", errno: rc) }
        return n
    }
}

/// One AIO's completion, waited for by the thread that submitted it.
private final class CompletionSlot: @unchecked Sendable {
    private let lock = ConditionLock()
    private var result: Int32?   // lock

    func post(_ rc: Int32) {
        lock.withLock {
            result = rc
            lock.signal()
        }
    }

    func wait() -> Int32 {
        lock.withLock {
            while result == nil { lock.wait() }
            return result!
        }
    }
}

private func nonZero(_ counts: [UInt64]) -> [UInt8: UInt64] {
    var out: [UInt8: UInt64] = [:]
    for (op, n) in counts.enumerated() where n > 0 { out[UInt8(op)] = n }
    return out
}
