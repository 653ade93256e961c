import BlockIO
import Dispatch
import NVMeSpec

import Glibc

/// One Format NVM command in progress (NVMe 1.4 §5.23, docs/FORMAT.md): the
/// namespaces it formats, one after another, and where it stands. Guarded
/// by the controller lock.
final class FormatJob: @unchecked Sendable {
    enum Phase { case zeroing, flushing, metadata }

    let request: Request
    let format: NamespaceFormat
    /// Namespaces still to format, in NSID order; the first is in progress.
    /// Each reports Format In Progress from the start of the command.
    var pending: [Namespace]
    /// I/O in flight on the namespaces when the command began: it finishes
    /// before the format touches anything.
    var blockers: [(request: Request, generation: UInt64)] = []
    var phase = Phase.zeroing
    /// Next data byte of `pending[0]` to zero.
    var cursor: UInt64 = 0

    init(request: Request, format: NamespaceFormat, namespaces: [Namespace]) {
        self.request = request; self.format = format; self.pending = namespaces
    }
}

/// Runs one blocking piece of work on a queue of the controller's own, as an
/// AIO of a request: Format NVM re-creates a namespace's metadata this way, so
/// the engine's rules apply to it (a reset waits for it; it is never
/// cancelled once queued, since a metadata file half re-created cannot be
/// left behind). Not a block device: it has no size and no ticket to cancel.
final class BlockingStep: BlockBackend, @unchecked Sendable {
    let name: String
    let size: UInt64 = 0
    let isReadOnly = false
    let queue: DispatchQueue
    let work: @Sendable () -> Int32

    init(name: String, queue: DispatchQueue, work: @escaping @Sendable () -> Int32) {
        self.name = name; self.queue = queue; self.work = work
    }

    func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        queue.async { [work] in completion(work()) }
        return AIOTicket(raw: 0)
    }
    func cancel(_ ticket: AIOTicket) -> Bool { false }
    func drainAndSync() { queue.sync {} }
    func close() {}
}

extension NVMeController {
    /// Write Zeroes AIOs a format keeps in flight.
    static let formatWindow = 4

    /// Format NVM (§5.23): checks the command, then formats its namespaces
    /// in the background; the command completes when they are done.
    /// CDW10: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9.
    func formatNVM(_ req: Request) -> NVMeStatus? {
        let c = req.cmd
        let lbaf = Int(c.cdw10 & 0xF), mset = c.cdw10 & 0x10 != 0
        let pi = UInt8((c.cdw10 >> 5) & 0x7), pil = c.cdw10 & 0x100 != 0
        let ses = UInt8((c.cdw10 >> 9) & 0x7)
        let targets: [Namespace]
        if c.nsid == Self.broadcastNSID {
            // FNA bit 0 clear: FFFFFFFFh formats every attached namespace (as QEMU).
            targets = namespaces
        } else {
            // As the other admin commands with an NSID (Identify CNS 03h).
            if let bad = inactiveNamespaceStatus(c.nsid) { return bad }
            targets = [namespace(c.nsid)!]
        }
        func refuse(_ status: NVMeStatus, _ reason: String) -> NVMeStatus {
            guestError(.invalidFormat, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("cdw10", hex(c.cdw10)), ("reason", reason)])
            return status
        }
        // §5.23: an LBA format the namespaces do not advertise, or protection
        // they cannot have (a type above 3, less than 8 bytes of metadata),
        // is Invalid Format.
        guard lbaf < NamespaceFormat.lbaFormats.count else { return refuse(NVMeStatus.invalidFormat.withDNR, "lbaf") }
        guard let type = ProtectionType(rawValue: pi) else { return refuse(NVMeStatus.invalidFormat.withDNR, "pi") }
        let advertised = NamespaceFormat.lbaFormats[lbaf]
        let format = NamespaceFormat(lbads: advertised.lbads, ms: advertised.ms, extended: mset && advertised.ms > 0,
                                     pi: type, piFirst: pil && type != .none)
        if let why = format.invalidReason { return refuse(NVMeStatus.invalidFormat.withDNR, why) }
        // SES 011b-111b are reserved; 2 (cryptographic erase) is a user data erase, as QEMU.
        guard ses <= 2 else { return refuse(NVMeStatus.invalidField.withDNR, "ses") }
        for ns in targets {
            if format.hasMetadata && ns.metadataStore == nil {
                return refuse(NVMeStatus.invalidFormat.withDNR, "namespace \(ns.nsid) has no metadata store")
            }
            if ns.isReadOnly {
                guestError(.nsReadonly, [("nsid", "\(ns.nsid)")])
                return NVMeStatus.namespaceWriteProtected.withDNR
            }
            if let busy = formatInProgress(req, ns) { return busy }
        }
        guard !targets.isEmpty else { return .success }
        // §5.8: a Format NVM of a namespace a self-test includes aborts it (result 4).
        abortSelfTest(targets, result: .abortedByFormat)
        let job = FormatJob(request: req, format: format, namespaces: targets)
        req.formatJob = job
        formatJobs.append(job)
        for ns in targets {
            ns.formatProgress = 0
            // The format replaces every block: cached writes are superseded.
            _ = ns.writeCache?.dropDirty()
        }
        traceEvent(.formatStart, [("cid", "\(c.cid)"), ("nsid", hex(c.nsid)), ("lbaf", "\(lbaf)"), ("mset", "\(mset ? 1 : 0)"),
                                  ("pi", "\(pi)"), ("pil", "\(pil ? 1 : 0)"), ("ses", "\(ses)")])
        // Commands already fetched finish first; new ones get Format In Progress.
        job.blockers = requestsInFlight(on: targets, except: req)
        return job.blockers.isEmpty ? formatStep(job) : nil
    }

    /// Format In Progress for a command reaching a namespace being formatted.
    @inline(__always)
    func formatInProgress(_ req: Request, _ ns: Namespace) -> NVMeStatus? {
        guard ns.formatProgress != nil else { return nil }
        guestError(.formatInProgress, [("cid", "\(req.cid)"), ("nsid", "\(ns.nsid)")])
        return NVMeStatus.formatInProgress
    }

    /// The namespaces no format is running on (Flush of every namespace and
    /// the write-back of Set Features 06h leave the others alone).
    var namespacesNotFormatting: [Namespace] { namespaces.filter { $0.formatProgress == nil } }

    /// Commands other than `except` with AIOs on any backend of `targets`.
    func requestsInFlight(on targets: [Namespace], except: Request) -> [(request: Request, generation: UInt64)] {
        let backends = targets.flatMap(\.backends)
        var found: [(request: Request, generation: UInt64)] = []
        for case let sq? in sqs {
            for r in sq.outstandingRequests where r !== except && !r.aios.isEmpty {
                if backends.contains(where: { r.aios.uses($0) }) { found.append((r, r.generation)) }
            }
        }
        return found
    }

    /// After an AIO completed: formats whose blocking I/O has all finished start.
    func startFormatsNoLongerBlocked() {
        for job in formatJobs where !job.blockers.isEmpty {
            job.blockers.removeAll { $0.request.generation != $0.generation || $0.request.aios.isEmpty }
            guard job.blockers.isEmpty, job.request.formatJob === job else { continue }
            if let status = formatStep(job) { finish(job.request, status: status) }
        }
    }

    /// Advances a format by one step: issues the next batch of AIOs (and
    /// returns nil; the request's continuation comes back here) or returns
    /// the command's status once every namespace is formatted. Per
    /// namespace: zero the whole data image, whatever SES (as QEMU), in
    /// `formatWindow` Write Zeroes AIOs at a time; flush it; re-create the
    /// metadata and install the new format.
    func formatStep(_ job: FormatJob) -> NVMeStatus? {
        let req = job.request
        req.continuation = { [unowned self] _ in self.formatStep(job) }
        while let ns = job.pending.first {
            switch job.phase {
            case .zeroing:
                let capacity = ns.dataCapacity
                guard job.cursor >= capacity else {
                    ns.formatProgress = min(99, Int(job.cursor * 100 / capacity))
                    traceEvent(.formatProgress, [("nsid", "\(ns.nsid)"), ("percent", "\(ns.formatProgress ?? 0)")])
                    for _ in 0..<Self.formatWindow where job.cursor < capacity {
                        let length = min(UInt64(parameters.formatChunk), capacity - job.cursor)
                        submitAIO(req, ns, AIO(operation: .writeZeroes, offset: job.cursor, length: length))
                        job.cursor += length
                    }
                    return nil
                }
                // The zeroes reach stable storage before the new format is recorded.
                ns.formatProgress = 99
                job.phase = .flushing
                submitAIO(req, ns, AIO(operation: .flush, offset: 0, length: 0))
                return nil
            case .flushing:
                job.phase = .metadata
                if let store = ns.metadataStore {
                    submitMetadataReplacement(job, ns, store)
                    return nil
                }
                // No metadata store: only formats without metadata get here.
                if let old = installFormat(ns, job.format, nsze: ns.dataCapacity >> UInt64(job.format.lbads),
                                           metadata: nil, base: 0) {
                    formatQueue.async { old.close() }
                }
            case .metadata:
                break  // installed by the metadata step
            }
            job.pending.removeFirst()
            job.phase = .zeroing
            job.cursor = 0
        }
        req.continuation = nil
        return .success
    }

    /// Re-creates `ns`'s metadata for the job's format on the format queue
    /// (it blocks), as one AIO of the request; the step installs the format.
    func submitMetadataReplacement(_ job: FormatJob, _ ns: Namespace, _ store: any MetadataStore) {
        let format = job.format
        let nsze = ns.dataCapacity >> UInt64(format.lbads)
        let previous = (format: ns.format, nsze: ns.nsze)
        let step = BlockingStep(name: "format-metadata", queue: formatQueue) { [weak self] in
            guard let self else { return ECANCELED }
            return self.replaceMetadata(ns, store, format: format, nsze: nsze, previous: previous)
        }
        submitAIO(job.request, nsid: ns.nsid, AIO(operation: .write, offset: store.base, length: nsze * UInt64(format.ms)),
                  on: step, area: .metadata)
    }

    /// On the format queue, without the lock: re-creates the metadata and
    /// installs the format. If that fails, the metadata of the previous
    /// format is re-created instead (the old file may already be gone), so
    /// the namespace keeps its format with deallocated metadata.
    /// - Returns: 0, or the errno of the failure (the command's Write Fault).
    func replaceMetadata(_ ns: Namespace, _ store: any MetadataStore, format: NamespaceFormat, nsze: UInt64,
                         previous: (format: NamespaceFormat, nsze: UInt64)) -> Int32 {
        var result: Int32 = 0
        var installed = (format: format, nsze: nsze)
        var metadata: (any BlockBackend)?
        do {
            metadata = try store.replace(format: format, nsze: nsze)
        } catch {
            result = (error as? ImageBackendError)?.errno ?? EIO
            logger.error("format of namespace \(ns.nsid) to \(format): \(error); keeping \(previous.format)")
            installed = previous
            do {
                metadata = try store.replace(format: previous.format, nsze: previous.nsze)
            } catch {
                logger.error("namespace \(ns.nsid): cannot re-create its metadata: \(error)")
                return result
            }
        }
        let old = locked { installFormat(ns, installed.format, nsze: installed.nsze, metadata: metadata, base: store.base) }
        // No AIO uses the old metadata backend any more (the format waited for them).
        old?.close()
        return result
    }

    /// Installs a format on `ns` (under the lock) and notes the change.
    /// - Returns: the previous metadata backend, for the caller to close off the lock.
    func installFormat(_ ns: Namespace, _ format: NamespaceFormat, nsze: UInt64, metadata: (any BlockBackend)?,
                       base: UInt64) -> (any BlockBackend)? {
        let old = ns.metadataBackend
        ns.format = format
        ns.nsze = nsze
        ns.metadataBackend = metadata.map { ns.wrapMetadata($0, format: format, base: base) }
        ns.metadataBase = base
        ns.formatProgress = nil
        clearUncorrectableOnFormat(ns)
        traceEvent(.formatSet, [("nsid", "\(ns.nsid)"), ("lbaf", "\(format.lbafIndex ?? 0)"), ("mset", "\(format.extended ? 1 : 0)"),
                                ("pi", "\(format.pi.rawValue)"), ("pil", "\(format.piFirst ? 1 : 0)")])
        namespaceChanged(ns.nsid)
        return old
    }

    /// Adds `nsid` to the Changed Namespace List and, when it was not listed
    /// yet and the Asynchronous Event Configuration allows it (bit 8,
    /// §5.21.1.11), queues a Namespace Attribute Changed notice (as QEMU).
    func namespaceChanged(_ nsid: UInt32) {
        guard changedNamespaces.insert(nsid).inserted else { return }
        if features.asyncEventConfig & (1 << 8) != 0 { enqueueEvent(.namespaceAttributeChanged) }
    }

    /// Ends the format `req` runs (it completed, or is dropped by a reset or
    /// SQ deletion; none of its AIOs runs any more). A namespace whose format
    /// was not installed keeps its old format; its data may be partly zeroed.
    func endFormat(_ req: Request) {
        guard let job = req.formatJob else { return }
        req.formatJob = nil
        formatJobs.removeAll { $0 === job }
        let abandoned = job.pending.filter { $0.formatProgress != nil }
        for ns in abandoned { ns.formatProgress = nil }
        traceEvent(.formatEnd, [("cid", "\(req.cid)"), ("result", abandoned.isEmpty ? "done" : "abandoned"),
                                ("nsids", abandoned.map { "\($0.nsid)" }.joined(separator: ","))])
    }
}
