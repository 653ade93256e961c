import BlockIO
import Dispatch
import NVMeSpec

import Glibc

/// One Device Self-test operation in progress (NVMe 1.4 §5.8,
/// docs/SELFTEST.md). Guarded by the controller lock, except `buffer`,
/// which only the read in flight uses.
final class SelfTestJob: @unchecked Sendable {
    let operation: DeviceSelfTestResult.Operation
    let nsid: UInt32
    /// The namespaces the media check reads, and how many bytes of each.
    let targets: [(ns: Namespace, bytes: UInt64, lbads: UInt8)]
    let totalBytes: UInt64
    let start: UInt64
    let duration: UInt64
    /// The namespace being read (index into `targets`) and the next byte.
    var index = 0
    var cursor: UInt64 = 0
    var bytesDone: UInt64 = 0
    /// After a chunk failed, its blocks are read one at a time up to here,
    /// to find the first failing LBA.
    var scanEnd: UInt64?
    let buffer: UnsafeMutableRawPointer
    let bufferSize: Int

    init(operation: DeviceSelfTestResult.Operation, nsid: UInt32, targets: [(ns: Namespace, bytes: UInt64, lbads: UInt8)],
         duration: UInt64, chunk: Int) {
        self.operation = operation; self.nsid = nsid; self.targets = targets; self.duration = max(duration, 1)
        totalBytes = targets.reduce(0) { $0 + $1.bytes }
        start = monotonicNanoseconds()
        bufferSize = max(chunk, 4096)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    /// Percent done: the share of the media read, never ahead of the time
    /// elapsed; at most 99 while the operation runs.
    func percent(now: UInt64) -> UInt8 {
        var fraction = Double(now &- start) / Double(duration)
        if totalBytes > 0 { fraction = min(fraction, Double(bytesDone) / Double(totalBytes)) }
        return UInt8(max(0, min(99, Int(fraction * 100))))
    }

    func includes(_ ns: Namespace) -> Bool { targets.contains { $0.ns === ns } }
}

extension NVMeController {
    /// Self-test segments (§5.14.1.6 Segment Number): 1 checks the
    /// controller, 2 reads the namespaces' media.
    static let selfTestMediaSegment: UInt8 = 2

    /// Device Self-test (§5.8). CDW10 STC (3:0): 1h short, 2h extended, Fh
    /// abort. NSID 0: the controller only; FFFFFFFFh: the controller and
    /// every namespace; an active NSID: the controller and that namespace.
    /// The command completes at once; the operation runs in the background.
    func deviceSelfTest(_ req: Request) -> NVMeStatus {
        let c = req.cmd
        let stc = UInt8(c.cdw10 & 0xF)
        traceEvent(.selfTest, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("stc", hex(stc))])
        let operation: DeviceSelfTestResult.Operation
        switch stc {
        case 0x1: operation = .short
        case 0x2: operation = .extended
        case 0xF:
            // Abort: with no operation running there is nothing to do.
            if selfTest != nil { endSelfTest(.abortedByCommand) }
            return .success
        default:
            guestError(.invalidSelfTestCode, [("cid", "\(c.cid)"), ("stc", hex(stc))])
            return NVMeStatus.invalidField.withDNR
        }
        let scope: [Namespace]
        switch c.nsid {
        case 0: scope = []
        case Self.broadcastNSID: scope = namespaces
        default:
            if let bad = inactiveNamespaceStatus(c.nsid) { return bad }
            scope = [namespace(c.nsid)!]
        }
        guard selfTest == nil else {
            guestError(.selfTestInProgress, [("cid", "\(c.cid)")])
            return NVMeStatus.deviceSelfTestInProgress
        }
        // The short test reads the first chunk of each namespace, the
        // extended one all of it.
        let chunk = UInt64(max(parameters.selfTestChunk, 4096))
        let targets = scope.map { ns in
            (ns: ns, bytes: operation == .short ? min(chunk, ns.dataCapacity) : ns.dataCapacity, lbads: ns.lbads)
        }
        let ms = operation == .short ? parameters.selfTestShortMilliseconds : parameters.selfTestExtendedMilliseconds
        let job = SelfTestJob(operation: operation, nsid: c.nsid, targets: targets, duration: UInt64(max(ms, 1)) * 1_000_000,
                              chunk: parameters.selfTestChunk)
        selfTest = job
        selfTestQueue.async { [self] in selfTestTick(job) }
        return .success
    }

    /// Ends the running operation with `result` (under the lock) and logs it.
    func endSelfTest(_ result: DeviceSelfTestResult.Result, failure: (nsid: UInt32, lba: UInt64)? = nil) {
        guard let job = selfTest else { return }
        selfTest = nil
        var entry = DeviceSelfTestResult(operation: job.operation, result: result,
                                         powerOnHours: (monotonicNanoseconds() - startTime) / 3_600_000_000_000)
        if let failure {
            entry.segment = Self.selfTestMediaSegment
            entry.nsid = failure.nsid
            entry.failingLBA = failure.lba
            entry.statusCodeType = UInt8(NVMeStatus.unrecoveredReadError.raw >> 8)
            entry.statusCode = UInt8(truncatingIfNeeded: NVMeStatus.unrecoveredReadError.raw)
            entry.validDiagnostics = DeviceSelfTestResult.nsidValid | DeviceSelfTestResult.flbaValid
                | DeviceSelfTestResult.sctValid | DeviceSelfTestResult.scValid
        }
        selfTestResults.insert(entry, at: 0)
        if selfTestResults.count > DeviceSelfTestLog.resultCount { selfTestResults.removeLast() }
        traceEvent(.selfTestEnd, [("stc", "\(job.operation.rawValue)"), ("nsid", hex(job.nsid)), ("result", "\(result.rawValue)"),
                                  ("failing_nsid", "\(failure?.nsid ?? 0)"), ("failing_lba", "\(failure?.lba ?? 0)")])
    }

    /// Format NVM of `targets` (result 4), or their detachment or deletion
    /// (result 3, removed from the namespace inventory), aborts a running
    /// operation that includes one of them.
    func abortSelfTest(_ targets: [Namespace], result: DeviceSelfTestResult.Result) {
        guard let job = selfTest, targets.contains(where: { job.includes($0) }) else { return }
        endSelfTest(result)
    }

    /// The Device Self-test log page (Figure 203).
    func selfTestLog() -> DeviceSelfTestLog {
        var log = DeviceSelfTestLog()
        if let job = selfTest {
            log.currentOperation = job.operation.rawValue
            log.currentCompletion = job.percent(now: monotonicNanoseconds())
        }
        log.results = selfTestResults
        return log
    }

    /// What the self-test queue does next.
    private enum SelfTestStep {
        case stop
        case read(any BlockBackend, AIO)
        case wait(UInt64)
    }

    /// On the self-test queue, off the lock: issues the next read of the
    /// media check, or waits out the operation's time, or completes it.
    func selfTestTick(_ job: SelfTestJob) {
        let step: SelfTestStep = locked {
            guard selfTest === job else { return .stop }
            if job.index < job.targets.count {
                let t = job.targets[job.index]
                let blockSize = UInt64(1) << UInt64(t.lbads)
                let end = job.scanEnd ?? t.bytes
                let length = job.scanEnd != nil ? min(blockSize, end - job.cursor) : min(UInt64(job.bufferSize), end - job.cursor)
                let aio = AIO(operation: .read, offset: job.cursor, length: length,
                              iov: [IOVector(base: job.buffer, length: Int(length))])
                return .read(t.ns.backend, aio)
            }
            let now = monotonicNanoseconds(), deadline = job.start + job.duration
            if now < deadline { return .wait(deadline - now) }
            endSelfTest(.completed)
            return .stop
        }
        switch step {
        case .stop: return
        case let .read(backend, aio):
            backend.submit(aio) { [self] err in selfTestReadDone(job, aio: aio, errno: err) }
        case let .wait(ns):
            selfTestQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(ns))) { [self] in selfTestTick(job) }
        }
    }

    /// A read of the media check completed: a failure (or a block marked by
    /// Write Uncorrectable) ends the operation with a failed segment; the
    /// next read is paced so the operation takes its time.
    func selfTestReadDone(_ job: SelfTestJob, aio: AIO, errno err: Int32) {
        let delay: UInt64? = locked {
            guard selfTest === job else { return nil }
            let t = job.targets[job.index]
            let firstLBA = aio.offset >> UInt64(t.lbads)
            let blocks = max(1, aio.length >> UInt64(t.lbads))
            if err == 0, let lba = t.ns.firstUncorrectable(slba: firstLBA, nlb: min(blocks, t.ns.nsze - min(firstLBA, t.ns.nsze))) {
                endSelfTest(.failedSegment, failure: (t.ns.nsid, lba))
                return nil
            }
            if err != 0 {
                if job.scanEnd != nil || aio.length <= UInt64(1) << UInt64(t.lbads) {
                    endSelfTest(.failedSegment, failure: (t.ns.nsid, firstLBA))
                    return nil
                }
                // Find the failing block: read this chunk again block by block.
                job.scanEnd = aio.offset + aio.length
                return 0
            }
            job.cursor += aio.length
            job.bytesDone += aio.length
            if let end = job.scanEnd, job.cursor >= end { job.scanEnd = nil }
            if job.cursor >= t.bytes {
                job.index += 1
                job.cursor = 0
            }
            let due = job.start + UInt64(Double(job.duration) * Double(job.bytesDone) / Double(max(job.totalBytes, 1)))
            let now = monotonicNanoseconds()
            return due > now ? due - now : 0
        }
        guard let delay else { return }
        if delay == 0 {
            selfTestQueue.async { [self] in selfTestTick(job) }
        } else {
            selfTestQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay))) { [self] in selfTestTick(job) }
        }
    }

    /// Stops a running operation without logging it (unmount), and waits for
    /// a read it may have submitted to be issued.
    func stopSelfTestForClose() {
        lock.withLock { selfTest = nil }
        selfTestQueue.sync {}
    }
}
