import BlockIO
import HostMemory
import NVMeSpec

import Glibc

extension NVMeController {
    // MARK: - Doorbells (§3.1.24, §3.1.25)

    func processDoorbell(offset: Int, value: UInt32) {
        stats.doorbellWrites += 1
        let index = (offset - 0x1000) >> (2 + Int(cap.dstrd))
        let qid = index >> 1
        let isCQ = index & 1 == 1
        if index < doorbellValues.count { doorbellValues[index] = value }
        if tracing { traceEvent(isCQ ? .mmioDoorbellCQ : .mmioDoorbellSQ, [("qid", "\(qid)"), ("value", "\(value)")]) }
        guard csts.rdy, !resetInProgress else {
            guestError(.dbWrNotReady, [("qid", "\(qid)"), ("value", "\(value)")])
            return
        }
        if isCQ {
            guard qid < cqs.count, let cq = cqs[qid] else {
                invalidDoorbell(.dbWrInvalidCq, qid: qid, value: value, event: .invalidDoorbellRegister)
                return
            }
            guard Int(value) < cq.size else {
                invalidDoorbell(.dbWrInvalidCqhead, qid: qid, value: value, event: .invalidDoorbellWriteValue)
                return
            }
            cq.lastDoorbell = value
            cq.head = Int(value)
            if qid == 0, doorbellBuffers != nil { mirrorAdminDoorbell(index: index, value) }
            postCompletions(cq)
            // Room in the CQ may let requests of its SQs complete and new ones be fetched.
            processSubmissionQueues()
        } else {
            guard qid < sqs.count, let sq = sqs[qid], !sq.deleted else {
                invalidDoorbell(.dbWrInvalidSq, qid: qid, value: value, event: .invalidDoorbellRegister)
                return
            }
            guard Int(value) < sq.size else {
                invalidDoorbell(.dbWrInvalidSqtail, qid: qid, value: value, event: .invalidDoorbellWriteValue)
                return
            }
            sq.lastDoorbell = value
            sq.tail = Int(value)
            // Shadow doorbells (§7.13): the tail is the one in host memory.
            if let buffers = doorbellBuffers {
                if qid == 0 { mirrorAdminDoorbell(index: index, value) }
                loadShadowTail(sq, buffers)
            }
            // Only this queue has new entries: every other queue's were
            // fetched when it was rung, or wait for free requests, which the
            // CQ head doorbell that follows their completions looks for.
            fetch(from: sq, burst: Int.max)
        }
    }

    /// An invalid doorbell write produces an Error asynchronous event when an
    /// AER is outstanding (NVMe 1.4 §4.1; QEMU nvme_process_db).
    func invalidDoorbell(_ name: GuestErrorName, qid: Int, value: UInt32, event: AsyncEventCompletion) {
        stats.invalidDoorbellWrites += 1
        guestError(name, [("qid", "\(qid)"), ("value", "\(value)")])
        if !aerRequests.isEmpty {
            enqueueEvent(event)
        }
    }

    // MARK: - Fetching (§4.11 round robin with arbitration burst)

    /// Fetches commands round robin across submission queues, up to the
    /// arbitration burst from each queue per round, until no queue has work
    /// or free request slots.
    func processSubmissionQueues() {
        guard csts.rdy, !resetInProgress, !csts.cfs else { return }
        let burst = features.arbitrationBurst
        // Another round only while a queue's burst ended with entries left
        // (a command never frees another queue's request slots as it is
        // dispatched, so one round that drained every queue is the last).
        var again = true
        while again {
            again = false
            for sq in activeSQs where !sq.deleted {
                switch fetch(from: sq, burst: burst) {
                case .failed: return
                case .burstUsed: again = true
                case .done: break
                }
            }
        }
    }

    enum FetchPass { case done, burstUsed, failed }

    /// Fetches and dispatches up to `burst` commands from `sq` while it has
    /// entries and free requests (call under the lock). `.burstUsed`: both
    /// are left; `.failed`: the controller failed.
    @discardableResult
    func fetch(from sq: SubmissionQueue, burst: Int) -> FetchPass {
        guard csts.rdy, !resetInProgress, !csts.cfs, !sq.deleted else { return .done }
        var taken = 0
        while taken < burst, !sq.isEmpty, !sq.free.isEmpty, csts.rdy, !csts.cfs {
            switch fetchAndDispatch(sq) {
            case .failed: return .failed
            case .stalled:
                sq.fusedStalled = true
                return .done
            case .dispatched: break
            }
            // Shadow doorbells: EventIdx, then the tail again (§7.13).
            if let buffers = doorbellBuffers, !sq.deleted { sqEventIdxAndReload(sq, buffers) }
            taken += 1
        }
        return taken == burst && !sq.isEmpty && !sq.free.isEmpty ? .burstUsed : .done
    }

    enum FetchResult { case dispatched, stalled, failed }

    /// Reads the entry at the SQ head and runs it: `.failed` if the
    /// controller failed (the entry was not readable), `.stalled` if it is
    /// the first of a fused pair and no request slot is free for the second.
    func fetchAndDispatch(_ sq: SubmissionQueue) -> FetchResult {
        guard let cmd = readEntry(sq, at: sq.head) else { return .failed }
        // §4.12: a fused pair is fetched as one, both entries or neither.
        var second: SubmissionQueueEntry?
        if cmd.fuse == 1, sq.sqid != 0 {
            switch fusedSecond(sq) {
            case .stall: return .stalled
            case .second(let e): second = e
            case .none: break
            }
        }
        let req = take(sq, cmd)
        if let second {
            let partner = take(sq, second)
            if sq.abortOnFetch.remove(cmd.cid) != nil {
                finish(req, status: .abortRequested)
                finish(partner, status: .failedFused)
            } else if sq.abortOnFetch.remove(second.cid) != nil {
                finish(partner, status: .abortRequested)
                finish(req, status: .missingFused)
            } else {
                fusedCompareAndWrite(req, partner)
            }
            return .dispatched
        }
        // (Checked for emptiness first: removing from a set hashes the CID.)
        if !sq.abortOnFetch.isEmpty, sq.abortOnFetch.remove(cmd.cid) != nil {
            finish(req, status: .abortRequested)
            return .dispatched
        }
        let status: NVMeStatus? = sq.sqid == 0 ? adminCommand(req) : ioCommand(req)
        if let status { finish(req, status: status) }
        return .dispatched
    }

    /// The entry at `index` of the SQ; an unreadable one sets CSTS.CFS (QEMU).
    func readEntry(_ sq: SubmissionQueue, at index: Int) -> SubmissionQueueEntry? {
        let addr = sq.base &+ UInt64(index) &* 64
        guard let p = space.pointer(addr, length: 64),
              let cmd = SubmissionQueueEntry(bytes: UnsafeRawBufferPointer(start: p, count: 64)) else {
            guestError(.addrRead, [("addr", hex(addr))])
            csts.cfs = true
            emit(.fatal)
            return nil
        }
        return cmd
    }

    /// Consumes the entry at the SQ head into a free request (counted and traced).
    func take(_ sq: SubmissionQueue, _ cmd: SubmissionQueueEntry) -> Request {
        sq.head = (sq.head + 1) % sq.size
        let req = sq.free.removeLast()
        req.reset(cmd)
        sq.markOutstanding(req)
        if sq.sqid == 0 {
            stats.adminCommands[Int(cmd.opcode)] += 1
            if tracing { traceEvent(.adminCmd, [("cid", "\(cmd.cid)"), ("sqid", "0"), ("opc", hex(cmd.opcode)), ("opname", AdminOpcode(cmd.opcode).name)]) }
        } else {
            stats.ioCommands[Int(cmd.opcode)] += 1
            if tracing { traceEvent(.ioCmd, [("cid", "\(cmd.cid)"), ("nsid", hex(cmd.nsid)), ("sqid", "\(sq.sqid)"), ("opc", hex(cmd.opcode)), ("opname", NVMOpcode(cmd.opcode).name)]) }
        }
        return req
    }

    // MARK: - Backend I/O (CONTRACT §5)

    /// Queues one AIO of `req` for submission once the lock is released, on
    /// the namespace's data backend, or on its metadata backend (`area:
    /// .metadata`; the namespace has metadata).
    func submitAIO(_ req: Request, _ ns: Namespace, _ aio: AIO, area: AIOArea = .data) {
        submitAIO(req, nsid: ns.nsid, aio, on: area == .data ? ns.backend : ns.metadataBackend!, area: area)
    }

    /// Queues one AIO of `req` on `backend`, traced as touching namespace
    /// `nsid`'s `area` (0: no namespace).
    func submitAIO(_ req: Request, nsid: UInt32, _ aio: AIO, on backend: any BlockBackend, area: AIOArea) {
        let index = req.aios.reserve(on: backend)
        if tracing {
            traceEvent(.reqAddAio, [("cid", "\(req.cid)"), ("nsid", "\(nsid)"), ("op", aio.operation.description),
                                    ("area", area.description), ("offset", "\(aio.offset)"), ("len", "\(aio.length)")])
        }
        addEffect(.submit(backend, req, AIOKey(generation: req.generation, index: index), aio))
    }

    /// Backend completion (any thread, no lock held).
    func aioCompleted(_ req: Request, key: AIOKey, operation: AIOOperation, errno err: Int32) {
        if err == 0, fastAIOCompleted(req, key: key, operation: operation) { return }
        locked {
            // A format waiting for its namespaces' I/O may start now.
            defer {
                if !formatJobs.isEmpty { startFormatsNoLongerBlocked() }
                if !fusedOperations.isEmpty { startFusedNoLongerBlocked() }
            }
            if tracing { traceEvent(.aioCb, [("cid", "\(req.cid)"), ("op", operation.description), ("ret", "\(-err)")]) }
            if tracing, let status = req.aios.failureStatus(operation: operation, errno: err) {
                traceEvent(.aio, [("cid", "\(req.cid)"), ("op", operation.description), ("errno", "\(err)"), ("status", hex(status.raw))])
            }
            req.lastFinished.store(key)
            guard req.aios.complete(key.index, operation: operation, errno: err) else { return }
            if req.sq.deleted {
                // No completion for a deleted queue; its accounting ends as failed.
                closeAccounting(req, success: false)
                release(req)
                return
            }
            if req.cancelStatus == nil, req.aios.status.isSuccess, let next = req.continuation {
                req.continuation = nil
                guard let status = next(req) else { return }  // more AIOs issued
                finish(req, status: status)
                return
            }
            finish(req, status: req.pendingStatus)
        }
    }

    // MARK: - Completion (§4.6)

    /// The one path by which a command completes: accounting, error log, then
    /// the CQE is queued (posted when the CQ has room).
    func finish(_ req: Request, status handlerStatus: NVMeStatus) {
        let status = req.aios.completionStatus(handler: handlerStatus)
        // Half of a fused pair: its partner's fate follows its CQE (§4.12).
        let fused = req.fused
        req.fused = nil
        defer { if let fused { fusedRequestFinished(req, fused, status: status) } }
        // No AIO of the command runs any more: its host memory is unpinned
        // (and its format ended) before the CQE can be seen, so a host that
        // removes the buffer's region on seeing the CQE never finds it in use.
        if req.aios.isEmpty { releaseMemory(req) } else if req.formatJob != nil { endFormat(req) }
        closeAccounting(req, success: status.isSuccess)
        if !status.isSuccess {
            stats.errors += 1
            recordError(req, status: status)
        }
        if req.sq.deleted {
            release(req)
            return
        }
        guard let cq = cqs[Int(req.sq.cqid)] else { release(req); return }
        req.pendingStatus = status
        if tracing { traceEvent(.enqueueReqCompletion, [("cid", "\(req.cid)"), ("cqid", "\(cq.cqid)"), ("dw0", hex(req.dw0)), ("dw1", hex(req.dw1)), ("status", hex(status.raw))]) }
        // Nothing queued ahead of it: posted at once when the CQ has room
        // (the usual case), with no trip through the pending list.
        if cq.pending.isEmpty {
            if let buffers = doorbellBuffers { cqEventIdxAndReload(cq, buffers) }
            if !cq.isFull {
                guard post(req, to: cq) else { cq.pending.append(req); return }
                if cq.interruptsEnabled { signalCompletions(vector: cq.vector, count: 1) }
                return
            }
        }
        cq.pending.append(req)
        postCompletions(cq)
    }

    /// Frees the request's bounce buffer and unpins its host memory, and
    /// ends its format if it runs one: no AIO of it runs any more.
    func releaseMemory(_ req: Request) {
        if req.formatJob != nil { endFormat(req) }
        if req.cacheBatches != nil { endCacheBatches(req) }
        // Never called now; it may hold what holds the request (a format job).
        req.continuation = nil
        req.releaseBounce()
        // Moved out, not copied: no retain of the regions it holds.
        if let pin = req.pin.take() { space.unpin(pin) }
    }

    /// Ends the block accounting the command started, on every namespace it touched.
    func closeAccounting(_ req: Request, success: Bool) {
        req.accounting.removeAll { entry in
            if success { entry.namespace.accounting.done(entry.cookie) } else { entry.namespace.accounting.failed(entry.cookie) }
        }
    }

    /// Returns a request to its SQ's free list; drives pending SQ deletions and resets.
    func release(_ req: Request) {
        let sq = req.sq
        // Dropped without `finish` (its queue deleted while its AIOs ran).
        if let op = req.fused { fusedRequestFinished(req, op, status: .sqDeletion) }
        releaseMemory(req)
        sq.unmarkOutstanding(req)
        if !sq.deleted { sq.free.append(req) }
        if sq.fusedStalled, !sq.deleted {
            // Fetched again once this critical section ends (see `locked`).
            sq.fusedStalled = false
            refetchPending = true
        }
        if sq.deleted {
            // The last draining request leaves the slot table empty: no
            // request refers back to the queue from it any more.
            if sq.outstandingCount == 0 { sq.dropRequests() }
            if sqs.indices.contains(Int(sq.sqid)), sqs[Int(sq.sqid)] === sq {
                // Delete I/O SQ: completes once the drain is over.
                if sq.outstandingCount == 0 { completeSQDeletion(sq) }
            } else if resetInProgress {
                drainingAfterReset -= 1
                finishResetIfDrained()
            }
        }
    }

    /// Writes as many pending CQEs as fit, with phase tags, and raises the vector.
    func postCompletions(_ cq: CompletionQueue) {
        var posted = 0
        while !cq.pending.isEmpty {
            // Shadow doorbells (§7.13): the head is in host memory.
            if let buffers = doorbellBuffers { cqEventIdxAndReload(cq, buffers) }
            if cq.isFull { break }
            let req = cq.pending.removeFirst()
            guard post(req, to: cq) else { cq.pending.insert(req, at: 0); return }
            posted += 1
        }
        if posted > 0 && cq.interruptsEnabled { signalCompletions(vector: cq.vector, count: posted) }
        if !cq.pending.isEmpty, cq.isFull, tracing {
            traceEvent(.cqFull, [("cqid", "\(cq.cqid)")])
        }
    }

    /// Writes `req`'s CQE at the tail of `cq` (which has room), with its
    /// phase tag, and releases the request. False, with the controller
    /// failed (CSTS.CFS, as QEMU), when the CQ's memory is not there; the
    /// request is then not released.
    private func post(_ req: Request, to cq: CompletionQueue) -> Bool {
        let addr = cq.base &+ UInt64(cq.tail) &* 16
        guard let p = space.pointer(addr, length: 16) else {
            guestError(.addrWrite, [("addr", hex(addr))])
            csts.cfs = true
            emit(.fatal)
            return false
        }
        writeCQE(req, to: cq, at: p)
        stats.completionsPosted += 1
        release(req)
        return true
    }

    /// Writes `req`'s CQE at `entry`, the memory of the tail entry of `cq`,
    /// and advances the tail (wrapping flips the phase tag).
    func writeCQE(_ req: Request, to cq: CompletionQueue, at entry: UnsafeMutableRawPointer) {
        let cqe = CompletionQueueEntry(dw0: req.dw0, dw1: req.dw1, sqhd: UInt16(req.sq.head), sqid: req.sq.sqid,
                                       cid: req.cid, phase: cq.phase, status: req.pendingStatus)
        cqe.encode(into: UnsafeMutableRawBufferPointer(start: entry, count: 16))
        cq.tail += 1
        if cq.tail == cq.size { cq.tail = 0; cq.phase.toggle() }
    }

    /// Interrupt coalescing (§5.21.1.8): an I/O vector fires once THR+1
    /// completions have aggregated, or TIME × 100 µs after the first one. The
    /// admin vector and vectors with Coalescing Disable set fire at once, and
    /// TIME = 0 means no delay.
    func signalCompletions(vector: Int, count: Int) {
        guard vector < interrupts.count else { return }
        let threshold = Int(features.interruptCoalescing & 0xFF) + 1
        let time = Int((features.interruptCoalescing >> 8) & 0xFF)
        if vector == 0 || time == 0 || threshold == 1 || features.coalescingDisabled.contains(UInt16(vector)) {
            raiseInterrupt(vector: vector)
            return
        }
        interrupts[vector].aggregated += count
        if interrupts[vector].aggregated >= threshold {
            raiseInterrupt(vector: vector)
            return
        }
        if !interrupts[vector].timerArmed {
            interrupts[vector].timerArmed = true
            addEffect(.timer(microseconds: time * 100) { [weak self] in
                guard let self else { return }
                self.locked {
                    self.interrupts[vector].timerArmed = false
                    if self.interrupts[vector].aggregated > 0 { self.raiseInterrupt(vector: vector) }
                }
            })
        }
    }

    /// MSI-X style delivery; vectors 0-31 obey INTMS/INTMC masking.
    func raiseInterrupt(vector: Int) {
        guard vector < interrupts.count else { return }
        interrupts[vector].aggregated = 0
        if vector < 32 && intms & (1 << UInt32(vector)) != 0 {
            interrupts[vector].pending = true
            traceEvent(.irqMasked, [("vector", "\(vector)")])
            return
        }
        interrupts[vector].pending = false
        interrupts[vector].raised += 1
        traceEvent(.irqMsix, [("vector", "\(vector)")])
        if vector < interruptHandlers.count, let h = interruptHandlers[vector] { addEffect(.interrupt(vector, h)) }
    }

    // MARK: - Cancellation

    /// Cancels every outstanding request of `sq`: AIOs not yet started are
    /// cancelled at the backend, running ones drain; the requests complete with
    /// `status` (or silently, if the SQ is being deleted).
    func cancelOutstanding(of sq: SubmissionQueue, status: NVMeStatus) {
        if let cq = cqs.indices.contains(Int(sq.cqid)) ? cqs[Int(sq.cqid)] : nil {
            // Completed requests of this SQ still waiting for CQ room are dropped.
            cq.pending.removeAll { $0.sq === sq }
        }
        aerRequests.removeAll { $0.sq === sq }
        if !fusedOperations.isEmpty || !deferredCommands.isEmpty { dropFusedAndDeferred(of: sq) }
        for req in sq.outstandingRequests {
            if req.aios.isEmpty {
                // Parked (AER, a Delete SQ waiting for another queue) or already
                // completed: nothing runs for it any more.
                releaseMemory(req)
                sq.unmarkOutstanding(req)
                if !sq.deleted { sq.free.append(req) }
            } else {
                cancel(req, status: status)
            }
        }
    }

    /// Cancels one request: marks its status and cancels each of its AIOs
    /// at the backend that issued it.
    func cancel(_ req: Request, status: NVMeStatus) {
        let targets = req.aios.cancel(with: status)
        if !targets.isEmpty { addEffect(.cancel(targets)) }
    }
}
