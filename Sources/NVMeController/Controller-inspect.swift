import NVMeSpec

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
            interrupts.enumerated().map { v, s in
                InterruptSnapshot(vector: v, raised: s.raised, masked: v < 32 && intms & (1 << UInt32(v)) != 0, pending: s.pending)
            }
        }
    }

    public func statistics() -> ControllerStatistics {
        lock.withLock {
            ControllerStatistics(adminCommands: nonZero(stats.adminCommands), ioCommands: nonZero(stats.ioCommands), errors: stats.errors,
                                 doorbellWrites: stats.doorbellWrites, invalidDoorbellWrites: stats.invalidDoorbellWrites,
                                 guestErrors: stats.guestErrors, completionsPosted: stats.completionsPosted)
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

private func nonZero(_ counts: [UInt64]) -> [UInt8: UInt64] {
    var out: [UInt8: UInt64] = [:]
    for (op, n) in counts.enumerated() where n > 0 { out[UInt8(op)] = n }
    return out
}
