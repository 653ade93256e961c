import BlockIO
import Foundation
import HostMemory
import NVMeController
import NVMeSpec

/// A small host driver for tests: it reaches the controller only through MMIO
/// register writes and host memory (no shortcuts into controller internals).
/// Host memory is one 8 MiB region at address 0 laid out as:
///   0x1000 admin SQ, 0x2000 admin CQ, 0x10000 + 0x10000*q I/O SQ q, 0x80000 + 0x10000*q I/O CQ q,
///   0x400000.. data buffers (tests choose addresses).
final class TestHost: @unchecked Sendable {
    let controller: NVMeController
    let space: HostAddressSpace
    let memory: AnonymousMemory
    let backends: [any BlockBackend]
    static let memorySize = 8 << 20
    static let asq: UInt64 = 0x1000, acq: UInt64 = 0x2000
    static let dataBase: UInt64 = 0x400000

    struct QueueState {
        var sqBase: UInt64, cqBase: UInt64, sqSize: Int, cqSize: Int
        var sqTail = 0, cqHead = 0, phase = true
    }
    var queues: [UInt16: QueueState] = [:]
    var nextCID: UInt16 = 1
    let interrupts = InterruptCounter()

    convenience init(backends: [(any BlockBackend, UInt8)], parameters: ControllerParameters = ControllerParameters(),
                     readOnly: Set<Int> = []) throws {
        let namespaces = backends.enumerated().map { i, b in
            Namespace(nsid: UInt32(i + 1), backend: b.0, lbads: b.1, readOnly: readOnly.contains(i + 1))
        }
        try self.init(namespaces: namespaces, backends: backends.map(\.0), parameters: parameters)
    }

    /// A host over namespaces built by the test (formats with metadata);
    /// `backends` are the data backends, for `testBackend`.
    init(namespaces: [Namespace], backends: [any BlockBackend], parameters: ControllerParameters = ControllerParameters(),
         trace: (any TraceSink)? = nil, detached: Set<UInt32> = [], provisioner: (any NamespaceProvisioner)? = nil,
         firmware: (store: FirmwareStore?, slots: FirmwareSlots)? = nil) throws {
        space = HostAddressSpace()
        memory = try AnonymousMemory(size: Self.memorySize)
        try space.map(base: 0, length: Self.memorySize, pointer: memory.pointer, name: "mem", kind: .userMemory)
        self.backends = backends
        controller = NVMeController(parameters: parameters, namespaces: namespaces, space: space, trace: trace,
                                    detached: detached, provisioner: provisioner, firmware: firmware)
        for v in 0..<parameters.interruptVectors {
            let counter = interrupts
            controller.setInterruptHandler(vector: v) { vector in
                _ = counter.withLock { $0[vector, default: 0] += 1; return 0 }
            }
        }
    }

    /// A test may end with AIOs still held by its test backends. Their
    /// completions hold the controller, which holds the backends: release
    /// them (failed, rules cleared so that nothing is held again), so that
    /// the controller, its queues and its requests are freed (LeakSanitizer
    /// checks that every one is).
    deinit {
        let testBackends = backends.compactMap { $0 as? TestBackend }
        for tb in testBackends { tb.clearRules() }
        while testBackends.reduce(0, { $0 + $1.releaseAll(errno: ECANCELED) }) > 0 {}
        for tb in testBackends { tb.drainAndSync() }
    }

    convenience init(blocks: UInt64 = 2048, lbads: UInt8 = 9, parameters: ControllerParameters = ControllerParameters()) throws {
        try self.init(backends: [(TestBackend(size: blocks << UInt64(lbads)), lbads)], parameters: parameters)
    }

    var testBackend: TestBackend { backends[0] as! TestBackend }

    // MARK: registers

    func reg32(_ offset: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: controller.mmioRead(offset: Int(offset), size: 4)) }
    func reg64(_ offset: UInt64) -> UInt64 { controller.mmioRead(offset: Int(offset), size: 8) }
    func write32(_ offset: UInt64, _ value: UInt32) { controller.mmioWrite(offset: Int(offset), value: UInt64(value), size: 4) }
    func write64(_ offset: UInt64, _ value: UInt64) { controller.mmioWrite(offset: Int(offset), value: value, size: 8) }
    var csts: ControllerStatus { ControllerStatus(raw: reg32(RegisterOffset.csts)) }

    /// Programs the admin queues and sets CC.EN; returns CSTS afterwards.
    @discardableResult
    func enable(asqEntries: Int = 32, acqEntries: Int = 32, cc: UInt32 = 0x460001) -> ControllerStatus {
        // A host clears its completion queue memory before handing it over.
        poke(Self.acq, [UInt8](repeating: 0, count: acqEntries * 16))
        write32(RegisterOffset.aqa, UInt32(acqEntries - 1) << 16 | UInt32(asqEntries - 1))
        write64(RegisterOffset.asq, Self.asq)
        write64(RegisterOffset.acq, Self.acq)
        write32(RegisterOffset.cc, cc)
        queues[0] = QueueState(sqBase: Self.asq, cqBase: Self.acq, sqSize: asqEntries, cqSize: acqEntries)
        return csts
    }

    /// Waits (bounded) until `condition` holds.
    func wait(_ what: String = "", timeout: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { return false }
            usleep(200)
        }
        return true
    }

    // MARK: memory

    func poke(_ addr: UInt64, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = space.write(addr, from: $0) }
    }
    func peek(_ addr: UInt64, _ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { _ = space.read(addr, into: $0) }
        return out
    }
    func poke64(_ addr: UInt64, _ v: UInt64) {
        var b = [UInt8](repeating: 0, count: 8)
        b.withUnsafeMutableBytes { $0.put64(v, at: 0) }
        poke(addr, b)
    }

    // MARK: commands

    /// Writes `sqe` at the SQ tail (assigning a CID unless given) without ringing.
    @discardableResult
    func place(_ sqe: SubmissionQueueEntry, qid: UInt16 = 0, keepCID: Bool = false) -> UInt16 {
        var e = sqe
        if !keepCID { e.cid = nextCID; nextCID &+= 1; if nextCID == 0 { nextCID = 1 } }
        var q = queues[qid]!
        poke(q.sqBase + UInt64(q.sqTail) * 64, e.bytes)
        q.sqTail = (q.sqTail + 1) % q.sqSize
        queues[qid] = q
        return e.cid
    }

    func ring(_ qid: UInt16) {
        write32(RegisterOffset.sqTailDoorbell(qid), UInt32(queues[qid]!.sqTail))
    }

    /// Next CQE of the queue's CQ if its phase tag says it is new (does not consume).
    func peekCQE(_ qid: UInt16) -> CompletionQueueEntry? {
        let q = queues[qid]!
        let e = CompletionQueueEntry(bytes: peek(q.cqBase + UInt64(q.cqHead) * 16, 16))!
        return e.phase == q.phase ? e : nil
    }

    /// Consumes the next CQE, waiting for it (bounded); optionally rings the CQ head doorbell.
    func reap(_ qid: UInt16, timeout: Double = 10, ringHead: Bool = true) -> CompletionQueueEntry? {
        guard wait(timeout: timeout, { peekCQE(qid) != nil }) else { return nil }
        let e = peekCQE(qid)!
        var q = queues[qid]!
        q.cqHead += 1
        if q.cqHead == q.cqSize { q.cqHead = 0; q.phase.toggle() }
        queues[qid] = q
        if ringHead { write32(RegisterOffset.cqHeadDoorbell(qid), UInt32(q.cqHead)) }
        return e
    }

    /// Submits one command and waits for its completion.
    func run(_ sqe: SubmissionQueueEntry, qid: UInt16 = 0) -> CompletionQueueEntry {
        let cid = place(sqe, qid: qid)
        ring(qid)
        guard let e = reap(qid) else { fatalError("no completion for cid \(cid) on queue \(qid)") }
        precondition(e.cid == cid, "completion for cid \(e.cid), expected \(cid)")
        return e
    }

    func admin(_ sqe: SubmissionQueueEntry) -> CompletionQueueEntry { run(sqe, qid: 0) }

    // MARK: helpers for common admin commands

    func createCQ(qid: UInt16, entries: Int, vector: UInt16 = 0, ien: Bool = true, base: UInt64? = nil) -> NVMeStatus {
        let b = base ?? (0x80000 + 0x10000 * UInt64(qid))
        if space.pointer(b, length: entries * 16) != nil { poke(b, [UInt8](repeating: 0, count: entries * 16)) }
        let e = admin(SubmissionQueueEntry(opcode: AdminOpcode.createIOCQ.rawValue, prp1: b,
                                           cdw10: UInt32(entries - 1) << 16 | UInt32(qid),
                                           cdw11: UInt32(vector) << 16 | (ien ? 2 : 0) | 1))
        if e.status.isSuccess {
            queues[qid, default: QueueState(sqBase: 0, cqBase: b, sqSize: 0, cqSize: entries)].cqBase = b
            queues[qid]!.cqSize = entries
            queues[qid]!.cqHead = 0
            queues[qid]!.phase = true
        }
        return e.status
    }

    func createSQ(qid: UInt16, entries: Int, cqid: UInt16, base: UInt64? = nil) -> NVMeStatus {
        let b = base ?? (0x10000 + 0x10000 * UInt64(qid))
        let e = admin(SubmissionQueueEntry(opcode: AdminOpcode.createIOSQ.rawValue, prp1: b,
                                           cdw10: UInt32(entries - 1) << 16 | UInt32(qid),
                                           cdw11: UInt32(cqid) << 16 | 1))
        if e.status.isSuccess {
            var q = queues[cqid] ?? QueueState(sqBase: 0, cqBase: 0, sqSize: 0, cqSize: 0)
            if qid == cqid { q.sqBase = b; q.sqSize = entries; q.sqTail = 0; queues[qid] = q }
            else { queues[qid] = QueueState(sqBase: b, cqBase: q.cqBase, sqSize: entries, cqSize: q.cqSize) }
        }
        return e.status
    }

    /// Enable + one I/O queue pair (qid 1, vector 1).
    func bringUp(entries: Int = 64) {
        precondition(enable().rdy, "enable failed")
        precondition(createCQ(qid: 1, entries: entries, vector: 1).isSuccess)
        precondition(createSQ(qid: 1, entries: entries, cqid: 1).isSuccess)
    }

    static func read(nsid: UInt32 = 1, slba: UInt64, nlb: Int, prp1: UInt64, prp2: UInt64 = 0) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: NVMOpcode.read.rawValue, nsid: nsid, prp1: prp1, prp2: prp2)
        e.slba = slba; e.nlb = UInt16(nlb - 1)
        return e
    }
    static func write(nsid: UInt32 = 1, slba: UInt64, nlb: Int, prp1: UInt64, prp2: UInt64 = 0) -> SubmissionQueueEntry {
        var e = SubmissionQueueEntry(opcode: NVMOpcode.write.rawValue, nsid: nsid, prp1: prp1, prp2: prp2)
        e.slba = slba; e.nlb = UInt16(nlb - 1)
        return e
    }

    static func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 9)) }
    }
}

/// Interrupts raised per vector. A ConditionLock, which ThreadSanitizer
/// sees (it does not see Synchronization.Mutex on Linux).
final class InterruptCounter: @unchecked Sendable {
    private let lock = ConditionLock()
    private var counts: [Int: Int] = [:]
    func withLock(_ body: (inout [Int: Int]) -> Int) -> Int { lock.withLock { body(&counts) } }
}
