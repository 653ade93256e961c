import BlockIO
import Glibc
import HostMemory
import Logging
import NVMeController
import NVMeSpec
import Synchronization

/// Target `controller`: one fresh controller per input, driven as a host
/// driver would (registers, doorbells, SQEs in host memory), with the
/// input choosing every step: register writes, enables and resets, admin
/// and I/O commands of every opcode with well-formed or hostile PRP lists
/// and SGL chains, queue creation and deletion, raw doorbells, reaping.
///
/// Host memory: region 0 at 0 (512 KiB; its first 128 KiB hold the queues,
/// the rest data) and region 1 at 1 MiB (256 KiB of data), a hole between
/// them, guard pages around both. Data pointers never point into the queue
/// area (a host that DMAs over its own queues defeats the bookkeeping, not
/// the controller); everything else is fair game.
///
/// Invariants (docs/FUZZING.md):
/// - exactly one CQE per fetched command: a CQE must match a fetched and
///   not yet completed (SQID, CID); when the input ends, every fetched
///   command has completed except Asynchronous Event Requests and the
///   commands a fused operation holds. Commands dropped by a controller
///   reset, an NVM subsystem reset or the deletion of their SQ are
///   forgotten at that point (no CQE is owed for them, §7.3.2, §5.6);
/// - no DMA outside host memory (guard pages, ASan);
/// - no backend access outside the namespace, no write outside the LBAs the
///   input's write-type commands addressed (`FuzzBackend`);
/// - after the input, a controller reset ends (CSTS.RDY clears): nothing
///   is left in flight;
/// - bounded memory (libFuzzer's -rss_limit_mb and -malloc_limit_mb).
enum ControllerTarget {
    static let memory = GuardedMemory([(0, 0x80000), (0x100000, 0x40000)])
    static let queueAreaEnd: UInt64 = 0x20000
    static let asqSlot: UInt64 = 0x0, acqSlot: UInt64 = 0x1000
    static let maxQueues = 4
    static func sqSlot(_ qid: Int) -> UInt64 { 0x2000 + UInt64(qid - 1) * 0x2000 }   // 128 entries
    static func cqSlot(_ qid: Int) -> UInt64 { 0x10000 + UInt64(qid - 1) * 0x1000 }  // 256 entries
    static let logger = Logger(label: "nvmefs.fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    static func run(_ input: FuzzInput) {
        let harness = ControllerHarness(input: input)
        harness.runProgram()
        harness.finish()
    }
}

/// The host's view of one queue.
struct HostQueue {
    var base: UInt64
    var size: Int
    var index = 0       // SQ: tail; CQ: head
    var phase = true    // CQ only
}

/// The bookkeeping shared with the trace sink (called under the
/// controller's lock, possibly from a timer thread).
struct Bookkeeping {
    /// Fetched, not completed: (SQID << 16 | CID) → opcodes, oldest first.
    var outstanding: [UInt32: [UInt8]] = [:]
    var cqs: [Int: HostQueue] = [:]
    var sqs: [Int: HostQueue] = [:]
    /// CQ heads consumed but not yet written to the doorbell.
    var headsToRing: Set<Int> = []
    /// (SQID << 16 | CID) of the fused halves the host placed.
    var fused: Set<UInt32> = []
    /// Admin queue registers as last written.
    var aqa: UInt32 = 0
    var acq: UInt64 = 0
    /// A hostile CQ head doorbell was written: the CQE accounting is off.
    var unchecked = false
    /// A Doorbell Buffer Config was placed: the controller may take CQ heads
    /// from shadow doorbells the host does not keep (§7.13), so completions
    /// may stay pending for a full CQ; none is owed at the end.
    var shadowDoorbells = false
    /// The queue the admin command being processed creates (completion
    /// queue or not, QID, base, entries), taken on when it succeeds.
    var creating: (completion: Bool, qid: Int, base: UInt64, size: Int)?
    var adminCID = -1
}

/// The trace sink that keeps the books: fetches, drops, queue geometry,
/// and the CQEs read from host memory.
final class Accounting: TraceSink, @unchecked Sendable {
    typealias T = ControllerTarget
    let memory = T.memory
    let book = Mutex(Bookkeeping())
    var isEnabled: Bool { true }

    // MARK: trace sink (under the controller's lock)

    /// NVMEFS_FUZZ_TRACE=1: every trace event on stderr (to read a finding).
    static let echo = getenv("NVMEFS_FUZZ_TRACE") != nil

    func record(_ event: TraceEvent) {
        if Self.echo { printError(event.line) }
        func field(_ name: String) -> Int? {
            guard let v = event.fields.first(where: { $0.0 == name })?.1 else { return nil }
            return v.hasPrefix("0x") ? Int(v.dropFirst(2), radix: 16) : Int(v)
        }
        switch event.name {
        case TraceEventName.adminCmd.rawValue, TraceEventName.ioCmd.rawValue:
            guard let sqid = field("sqid"), let cid = field("cid"), let opc = field("opc") else { return }
            book.withLock { b in
                b.outstanding[UInt32(sqid) << 16 | UInt32(cid), default: []].append(UInt8(opc))
                if sqid == 0 { b.adminCID = cid; b.creating = nil }
            }
        case TraceEventName.delSq.rawValue:
            guard let qid = field("qid") else { return }
            reapAll()
            book.withLock { b in
                b.outstanding = b.outstanding.filter { $0.key >> 16 != UInt32(qid) }
                b.sqs[qid] = nil
            }
        case TraceEventName.delCq.rawValue:
            guard let qid = field("qid") else { return }
            reapAll()
            book.withLock { _ = $0.cqs.removeValue(forKey: qid) }
        case TraceEventName.mmioStopped.rawValue, TraceEventName.mmioSubsystemReset.rawValue:
            reapAll()
            book.withLock { b in
                b.outstanding = [:]; b.cqs = [:]; b.sqs = [:]; b.headsToRing = []
            }
        case TraceEventName.mmioStartSuccess.rawValue:
            book.withLock { b in
                b.cqs[0] = HostQueue(base: b.acq, size: Int(b.aqa >> 16 & 0xFFF) + 1)
                b.sqs[0] = HostQueue(base: T.asqSlot, size: Int(b.aqa & 0xFFF) + 1)
            }
        case TraceEventName.createCq.rawValue:
            guard let qid = field("cqid"), let addr = field("addr"), let qsize = field("qsize") else { return }
            book.withLock { $0.creating = (true, qid, UInt64(addr), qsize + 1) }
        case TraceEventName.createSq.rawValue:
            guard let qid = field("sqid"), let addr = field("addr"), let qsize = field("qsize") else { return }
            book.withLock { $0.creating = (false, qid, UInt64(addr), qsize + 1) }
        case TraceEventName.enqueueReqCompletion.rawValue:
            // The queue exists once its creation completes with success.
            guard field("cqid") == 0, let cid = field("cid"), let status = field("status") else { return }
            book.withLock { b in
                guard let c = b.creating, cid == b.adminCID else { return }
                b.creating = nil
                guard status == 0 else { return }
                if c.completion {
                    b.cqs[c.qid] = HostQueue(base: c.base, size: c.size)
                    // The host clears a CQ's memory before handing it over,
                    // also when a stale SQE re-creates it (a re-rung admin SQ
                    // tail): entries of an earlier queue would pass for new ones.
                    memory.write(c.base, [UInt8](repeating: 0, count: c.size * 16))
                } else {
                    b.sqs[c.qid] = HostQueue(base: c.base, size: c.size)
                }
            }
        default:
            break
        }
    }

    /// Consumes every new CQE of every CQ the host knows, checking each
    /// against the fetched commands.
    func reapAll() {
        book.withLock { b in
            for qid in b.cqs.keys.sorted() {
                guard var q = b.cqs[qid], q.size > 0 else { continue }
                var consumed = 0
                while consumed < q.size, let raw = memory.read(q.base &+ UInt64(q.index) * 16, 16),
                      let cqe = raw.withUnsafeBytes({ CompletionQueueEntry(bytes: $0) }), cqe.phase == q.phase {
                    let key = UInt32(cqe.sqid) << 16 | UInt32(cqe.cid)
                    if var list = b.outstanding[key], !list.isEmpty {
                        list.removeFirst()
                        b.outstanding[key] = list.isEmpty ? nil : list
                    } else if !b.unchecked {
                        violation("CQE on CQ \(qid) for SQ \(cqe.sqid) CID \(cqe.cid) (status \(cqe.status)) "
                                  + "with no fetched command outstanding")
                    }
                    q.index += 1
                    if q.index == q.size { q.index = 0; q.phase.toggle() }
                    consumed += 1
                }
                b.cqs[qid] = q
                if consumed > 0 { b.headsToRing.insert(qid) }
            }
        }
    }

}

final class ControllerHarness: @unchecked Sendable {
    typealias T = ControllerTarget
    let input: FuzzInput
    let memory = T.memory
    let space: HostAddressSpace
    let permit = WritePermit()
    let backends: [FuzzBackend]
    let controller: NVMeController
    let accounting = Accounting()
    var nextCID: UInt16 = 1

    init(input: FuzzInput) {
        self.input = input
        space = memory.makeSpace()
        let ns1 = FuzzBackend(size: 256 * 512, nsid: 1, unit: 512, permit: permit, memory: memory)
        let ns2 = FuzzBackend(size: 128 * 512, nsid: 2, unit: 512, permit: permit, memory: memory)
        let md2 = FuzzBackend(size: 128 * 8, nsid: 2, unit: 8, permit: permit, memory: memory)
        let ns3 = FuzzBackend(size: 32 * 4096, nsid: 3, unit: 4096, permit: permit, memory: memory)
        backends = [ns1, ns2, md2, ns3]
        var p = ControllerParameters()
        p.maxIOQueuePairs = T.maxQueues
        p.mqes = 255
        p.mdts = 2
        p.maxNamespaces = 4
        p.namespaceCapacity = 0
        p.selfTestShortMilliseconds = 1
        p.selfTestExtendedMilliseconds = 2
        p.selfTestChunk = 4096
        p.formatChunk = 16 << 10
        let namespaces = [
            Namespace(nsid: 1, backend: ns1, lbads: 9),
            Namespace(nsid: 2, backend: ns2, format: NamespaceFormat(lbads: 9, ms: 8, pi: .type1), metadata: md2),
            Namespace(nsid: 3, backend: ns3, lbads: 12),
        ]
        controller = NVMeController(parameters: p, namespaces: namespaces, space: space, logger: T.logger, trace: accounting)
    }

    /// Reaps, then rings the CQ head doorbells of what was consumed.
    func reapAndRing() {
        accounting.reapAll()
        let heads = accounting.book.withLock { b -> [(Int, Int)] in
            defer { b.headsToRing = [] }
            return b.headsToRing.compactMap { qid in b.cqs[qid].map { (qid, $0.index) } }
        }
        for (qid, head) in heads.sorted(by: { $0.0 < $1.0 }) {
            controller.mmioWrite(offset: Int(RegisterOffset.cqHeadDoorbell(UInt16(qid))), value: UInt64(head), size: 4)
        }
    }

    // MARK: the program

    func runProgram() {
        var steps = 0
        while !input.isEmpty && steps < 256 {
            steps += 1
            step(input.u8())
        }
    }

    func step(_ op: UInt8) {
        switch op % 12 {
        case 0: registerWrite()
        case 1: enable()
        case 2: writeCC(0x460000); waitNotReady()
        case 3: controller.mmioWrite(offset: Int(RegisterOffset.nssr), value: 0x4E56_4D65, size: 4)
        case 4: adminCommand(opcode: Self.adminOpcodes[Int(input.u8()) % Self.adminOpcodes.count])
        case 5: createQueuePair()
        case 6: deleteQueue()
        case 7, 8: ioCommand()
        case 9: rawDoorbell()
        case 10: reapAndRing()
        default: fusedPair()
        }
    }

    /// Every admin opcode the controller knows, a few it does not, and any byte.
    static let adminOpcodes: [UInt8] = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x10, 0x11,
                                        0x14, 0x15, 0x18, 0x19, 0x1A, 0x1C, 0x7C, 0x80, 0x81, 0x82, 0x84, 0x86, 0x03, 0xC0]
    static let ioOpcodes: [UInt8] = [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x0E, 0x11, 0x15, 0x19, 0x03, 0x80]

    func writeCC(_ value: UInt32) {
        let adminCQExists = accounting.book.withLock { $0.cqs[0] != nil }
        if !adminCQExists { zero(T.acqSlot, 4096) }
        controller.mmioWrite(offset: Int(RegisterOffset.cc), value: UInt64(value), size: 4)
    }

    func zero(_ address: UInt64, _ count: Int) { memory.write(address, [UInt8](repeating: 0, count: count)) }

    func waitNotReady() {
        for _ in 0..<2000 {
            if controller.mmioRead(offset: Int(RegisterOffset.csts), size: 4) & 1 == 0 { return }
            usleep(500)
        }
        violation("CSTS.RDY stays 1 a second after CC.EN was cleared")
    }

    func enable() {
        let aqa: UInt32 = 31 << 16 | 31
        accounting.book.withLock { $0.aqa = aqa; $0.acq = T.acqSlot }
        controller.mmioWrite(offset: Int(RegisterOffset.aqa), value: UInt64(aqa), size: 4)
        controller.mmioWrite(offset: Int(RegisterOffset.asq), value: T.asqSlot, size: 8)
        controller.mmioWrite(offset: Int(RegisterOffset.acq), value: T.acqSlot, size: 8)
        writeCC(0x460001)
    }

    /// Any register, any value, 4 or 8 bytes; the admin queue addresses
    /// are the host's slots or hostile (unbacked), their sizes bounded.
    func registerWrite() {
        let offsets: [UInt64] = [RegisterOffset.intms, RegisterOffset.intmc, RegisterOffset.cc, RegisterOffset.nssr,
                                 RegisterOffset.aqa, RegisterOffset.asq, RegisterOffset.acq, RegisterOffset.cmbmsc,
                                 RegisterOffset.cap, RegisterOffset.vs, RegisterOffset.csts, RegisterOffset.bprsel]
        let choice = Int(input.u8())
        var offset = choice < offsets.count * 16 ? offsets[choice % offsets.count] : UInt64(input.u16() & 0x1FFC)
        let size = input.bool() ? 8 : 4
        var value = input.u64()
        if size == 4 { value &= 0xFFFF_FFFF }
        if (0x28..<0x38).contains(offset) {
            offset = offset < 0x30 ? RegisterOffset.asq : RegisterOffset.acq
            let hostile = value & 1 != 0
            value = hostile ? (1 << 40) | (value & 0xFFFF_F000) : (offset == RegisterOffset.asq ? T.asqSlot : T.acqSlot)
            if offset == RegisterOffset.acq { accounting.book.withLock { $0.acq = value } }
            controller.mmioWrite(offset: Int(offset), value: value, size: 8)
            return
        }
        if offset == RegisterOffset.aqa {
            value &= 0x00FF_003F
            accounting.book.withLock { $0.aqa = UInt32(value) }
        }
        if offset == RegisterOffset.nssr && size == 8 {
            // The upper half is AQA.
            value = value & 0x00FF_003F_FFFF_FFFF
            accounting.book.withLock { $0.aqa = UInt32(value >> 32) }
        }
        if offset == RegisterOffset.cc || (offset == 0x10 && size == 8) {
            let adminCQExists = accounting.book.withLock { $0.cqs[0] != nil }
            if !adminCQExists { zero(T.acqSlot, 4096) }
        }
        if offset >= 0x1000 {
            // A doorbell through the register path: CQ heads as the host knows them.
            rawDoorbell(offset: offset, value: UInt32(truncatingIfNeeded: value))
            return
        }
        let wasEnabled = controller.mmioRead(offset: Int(RegisterOffset.cc), size: 4) & 1 != 0
        controller.mmioWrite(offset: Int(offset), value: value, size: size)
        if wasEnabled && controller.mmioRead(offset: Int(RegisterOffset.cc), size: 4) & 1 == 0 { waitNotReady() }
    }

    // MARK: data pointers

    /// A data address: mostly page aligned in one of the data areas, never
    /// in the queue area.
    func dataAddress() -> UInt64 {
        let sel = input.u8()
        let raw: UInt64
        switch sel % 8 {
        case 0: raw = input.u64()
        case 1: raw = 0x80000 &- UInt64(input.u8())                       // end of region 0
        case 2: raw = 0x140000 &- UInt64(input.u16() & 0x1FFF)            // end of region 1
        case 3: raw = T.queueAreaEnd + UInt64(input.u16()) * 4            // unaligned
        case 4, 5: raw = T.queueAreaEnd + UInt64(input.u8() % 96) * 4096  // region 0 pages
        default: raw = 0x100000 + UInt64(input.u8() % 64) * 4096          // region 1 pages
        }
        return outsideQueues(raw)
    }

    /// `address` moved out of the queue area (past it) if it lies there.
    func outsideQueues(_ address: UInt64) -> UInt64 {
        address < T.queueAreaEnd ? address + T.queueAreaEnd : address
    }

    /// Fills PRP1/PRP2 or SGL1 of `sqe` for `length` bytes, and writes any
    /// list or segment it needs into host memory.
    func dataPointer(_ sqe: inout SubmissionQueueEntry, length: Int) {
        switch input.u8() % 7 {
        case 0, 1:  // well-formed PRPs
            let first = dataAddress() & ~0xFFF | UInt64(input.u8() & 0x3C) * (input.bool() ? 1 : 0)
            sqe.prp1 = first
            let pages = (Int(first & 0xFFF) + length + 4095) / 4096
            if pages <= 2 {
                sqe.prp2 = outsideQueues((first & ~0xFFF) &+ 4096)
            } else {
                let list = dataAddress() & ~7
                sqe.prp2 = list
                for i in 1..<min(pages, 600) { memory.write64(list &+ UInt64(i - 1) * 8, outsideQueues((first & ~0xFFF) &+ UInt64(i) * 4096)) }
            }
        case 2:  // a PRP list of anything, maybe chained into itself
            sqe.prp1 = dataAddress()
            let list = dataAddress() & ~7
            sqe.prp2 = list
            for i in 0..<Int(input.u8() % 64) {
                memory.write64(list &+ UInt64(i) * 8, input.bool() ? list : dataAddress())
            }
        case 3:  // raw pointers
            sqe.prp1 = dataAddress()
            sqe.prp2 = dataAddress()
        case 4:  // one SGL Data Block
            sqe.psdt = 1 + input.u8() % 2
            let d = SGLDescriptor(address: dataAddress(), length: input.bool() ? UInt32(length) : input.u32() % 0x10000)
            sqe.prp1 = d.low; sqe.prp2 = d.high
        case 5:  // an SGL segment chain
            sqe.psdt = 1
            var segment = dataAddress() & ~0xF
            var count = Int(input.u8() % 16) + 1
            let head = SGLDescriptor(address: segment, length: UInt32(count * 16),
                                     type: input.bool() ? .lastSegment : .segment)
            sqe.prp1 = head.low; sqe.prp2 = head.high
            for _ in 0..<Int(input.u8() % 4) + 1 {
                var next: UInt64 = 0
                for i in 0..<count {
                    let type = SGLDescriptorType(rawValue: input.u8() % 6)
                    var d = SGLDescriptor(address: dataAddress(), length: UInt32(input.u16()), type: type,
                                          subtype: SGLDescriptorSubtype(rawValue: input.u8() % 8 == 0 ? 1 : 0))
                    if type == .segment || type == .lastSegment {
                        d.address = input.bool() ? segment : dataAddress() & ~0xF
                        d.length = UInt32(input.u8() % 16 + 1) * 16
                        next = d.address
                    }
                    memory.write64(segment &+ UInt64(i) * 16, d.low)
                    memory.write64(segment &+ UInt64(i) * 16 &+ 8, d.high)
                }
                guard next != 0 else { break }
                segment = next
                count = Int(input.u8() % 16) + 1
            }
        default:
            break
        }
    }

    // MARK: commands

    /// Places `sqe` at the tail of SQ `qid` (as the host knows it) and rings
    /// its doorbell unless the input says not to yet.
    func submit(_ sqe: SubmissionQueueEntry, qid: Int, ring: Bool = true) {
        var e = sqe
        if e.cid == 0 { e.cid = nextCID; nextCID = nextCID &+ 1 }
        let placed = accounting.book.withLock { b -> (UInt64, Int)? in
            guard var q = b.sqs[qid], q.size > 0 else { return nil }
            let at = q.base &+ UInt64(q.index) * 64
            q.index = (q.index + 1) % q.size
            b.sqs[qid] = q
            if e.fuse != 0 { b.fused.insert(UInt32(qid) << 16 | UInt32(e.cid)) }
            return (at, q.index)
        }
        guard let (at, tail) = placed else { return }
        if qid == 0 && e.opcode == 0x7C { accounting.book.withLock { $0.shadowDoorbells = true } }
        noteWrites(e, qid: qid)
        memory.write(at, e.bytes)
        if ring { controller.mmioWrite(offset: Int(RegisterOffset.sqTailDoorbell(UInt16(qid))), value: UInt64(tail), size: 4) }
    }

    /// Records the LBAs a write-type command may write.
    func noteWrites(_ e: SubmissionQueueEntry, qid: Int) {
        if qid == 0 {
            // Format NVM and Namespace Management may rewrite whole namespaces.
            if e.opcode == 0x80 || e.opcode == 0x0D { for n in 1...4 { permit.allowWhole(nsid: UInt32(n)) } }
            return
        }
        switch e.opcode {
        case 0x01, 0x04, 0x08:
            let nlb = UInt64(e.cdw12 & 0xFFFF) + 1
            let (end, overflow) = e.slba.addingReportingOverflow(nlb)
            if !overflow { permit.allow(nsid: e.nsid, lbas: e.slba..<end) }
        case 0x09, 0x19:
            permit.allowWhole(nsid: e.nsid)
        default:
            break
        }
    }

    /// One of `choices`, or (one time in n + 1) any NSID.
    func nsid(_ choices: [UInt32]) -> UInt32 {
        let index = Int(input.u8()) % (choices.count + 1)
        return index < choices.count ? choices[index] : input.u32()
    }

    func adminCommand(opcode: UInt8) {
        var e = SubmissionQueueEntry()
        e.opcode = input.u8() % 16 == 0 ? input.u8() : opcode
        e.nsid = nsid([0, 1, 2, 3, 4, 0xFFFF_FFFF])
        e.cdw10 = input.u32(); e.cdw11 = input.u32(); e.cdw12 = input.u32()
        e.cdw13 = input.u32(); e.cdw14 = input.u32(); e.cdw15 = input.u32()
        dataPointer(&e, length: Int(input.u16() % 8192) + 1)
        if input.u8() % 16 == 0 { e.fuse = input.u8() % 4 }
        // Queue creation uses the host's slots (cleared first for a new CQ).
        let qid = Int(e.cdw10 & 0xFFFF)
        if (e.opcode == 0x01 || e.opcode == 0x05) && (1...T.maxQueues).contains(qid) {
            e.psdt = 0
            if e.opcode == 0x01 {
                e.prp1 = T.sqSlot(qid)
                e.cdw10 = e.cdw10 & 0x007F_FFFF   // at most 128 entries
            } else {
                e.prp1 = T.cqSlot(qid)
                e.cdw10 = e.cdw10 & 0x00FF_FFFF   // at most 256 entries
                if accounting.book.withLock({ $0.cqs[qid] == nil }) { zero(T.cqSlot(qid), 4096) }
            }
        } else if e.opcode == 0x01 || e.opcode == 0x05 {
            e.prp1 = input.bool() ? (1 << 40) : T.queueAreaEnd + 0x1000   // refused for its QID anyway
        }
        submit(e, qid: 0, ring: input.u8() % 8 != 0)
    }

    func createQueuePair() {
        let qid = Int(input.u8()) % T.maxQueues + 1
        let cqSize = Int(input.u8()) + 1             // 1...256 (1 is refused)
        let sqSize = Int(input.u8() % 128) + 1
        let cqid = input.u8() % 8 == 0 ? Int(input.u8()) % (T.maxQueues + 2) : qid
        if accounting.book.withLock({ $0.cqs[qid] == nil }) { zero(T.cqSlot(qid), 4096) }
        var cq = SubmissionQueueEntry(opcode: 0x05, prp1: T.cqSlot(qid))
        cq.cdw10 = UInt32(cqSize - 1) << 16 | UInt32(qid)
        cq.cdw11 = UInt32(input.u8() % 8) << 16 | (input.bool() ? 2 : 0) | (input.u8() % 8 == 0 ? 0 : 1)
        submit(cq, qid: 0)
        var sq = SubmissionQueueEntry(opcode: 0x01, prp1: T.sqSlot(qid))
        sq.cdw10 = UInt32(sqSize - 1) << 16 | UInt32(qid)
        sq.cdw11 = UInt32(cqid) << 16 | UInt32(input.u8() % 8) << 1 | (input.u8() % 8 == 0 ? 0 : 1)
        submit(sq, qid: 0)
        reapAndRing()
    }

    func deleteQueue() {
        var e = SubmissionQueueEntry(opcode: input.bool() ? 0x00 : 0x04)
        e.cdw10 = input.u8() % 8 == 0 ? input.u32() : UInt32(input.u8()) % UInt32(T.maxQueues + 2)
        submit(e, qid: 0)
    }

    func ioCommand() {
        let qid = Int(input.u8()) % T.maxQueues + 1
        var e = SubmissionQueueEntry()
        e.opcode = input.u8() % 16 == 0 ? input.u8() : Self.ioOpcodes[Int(input.u8()) % Self.ioOpcodes.count]
        e.nsid = nsid([1, 2, 3, 1, 2, 3, 0, 4, 0xFFFF_FFFF])
        let hostile = input.u8() % 8 == 0
        e.slba = hostile ? input.u64() : UInt64(input.u8())
        let nlb = hostile ? UInt32(input.u16()) : UInt32(input.u8() % 32)
        e.cdw12 = nlb | UInt32(input.u16() & 0xFFFF) << 16 & 0xFFFF_0000
        e.cdw13 = input.u8() % 4 == 0 ? input.u32() : 0
        e.cdw14 = input.u32(); e.cdw15 = input.u32()
        if input.u8() % 4 == 0 { e.mptr = dataAddress() }
        let lbaSize = e.nsid == 3 ? 4096 : 512
        var length = (Int(nlb) + 1) * lbaSize
        switch e.opcode {
        case 0x09:  // Dataset Management: ranges in host memory
            e.cdw10 = UInt32(input.u8())
            e.cdw11 = UInt32(input.u8() & 7)
            length = (Int(e.cdw10 & 0xFF) + 1) * 16
        case 0x19:  // Copy: source ranges in host memory, SDLBA in CDW10-11
            e.cdw12 = UInt32(input.u8() % 8) | (input.u8() % 4 == 0 ? input.u32() & 0xFFFF_FF00 : 0)
            length = (Int(e.cdw12 & 0xFF) + 1) * 32
        default: break
        }
        dataPointer(&e, length: min(length, 64 << 10))
        if e.opcode == 0x09 || e.opcode == 0x19, e.psdt == 0 {
            // The range list itself: LBAs near the namespace, lengths small or hostile.
            var at = e.prp1
            for _ in 0..<min(8, Int(input.u8() % 8) + 1) {
                var range = [UInt8](repeating: 0, count: 32)
                for i in 0..<4 { range[4 + i] = UInt8(truncatingIfNeeded: input.u32() >> (8 * i)) }
                range[8] = input.u8(); range[9] = input.u8() % 4 == 0 ? input.u8() : 0
                if input.u8() % 8 == 0 { for i in 10..<16 { range[i] = input.u8() } }
                memory.write(at, range)
                at &+= e.opcode == 0x09 ? 16 : 32
            }
        }
        submit(e, qid: qid, ring: input.u8() % 8 != 0)
    }

    func fusedPair() {
        let qid = Int(input.u8()) % T.maxQueues + 1
        let nsid = UInt32(input.u8() % 3) + 1
        let slba = UInt64(input.u8()), nlb = UInt32(input.u8() % 8)
        let length = (Int(nlb) + 1) * (nsid == 3 ? 4096 : 512)
        var compare = SubmissionQueueEntry(opcode: 0x05, nsid: nsid)
        compare.fuse = 1; compare.slba = slba; compare.cdw12 = nlb
        dataPointer(&compare, length: length)
        var write = SubmissionQueueEntry(opcode: input.u8() % 8 == 0 ? 0x02 : 0x01, nsid: nsid)
        write.fuse = input.u8() % 8 == 0 ? 1 : 2
        write.slba = input.u8() % 8 == 0 ? UInt64(input.u8()) : slba
        write.cdw12 = input.u8() % 8 == 0 ? UInt32(input.u8() % 8) : nlb
        dataPointer(&write, length: length)
        submit(compare, qid: qid, ring: input.u8() % 4 == 0)
        if input.u8() % 8 != 0 { submit(write, qid: qid) }
    }

    func rawDoorbell() {
        let qid = UInt16(input.u8() % UInt8(T.maxQueues + 2))
        let completion = input.bool()
        let offset = completion ? RegisterOffset.cqHeadDoorbell(qid) : RegisterOffset.sqTailDoorbell(qid)
        rawDoorbell(offset: offset, value: UInt32(input.u16()))
    }

    /// A doorbell write: SQ tails take any value; a CQ head takes the host's
    /// head unless the input asks for a hostile one (which turns the CQE
    /// accounting off: the controller may then overwrite CQEs the host never saw).
    func rawDoorbell(offset: UInt64, value: UInt32) {
        var value = value
        let index = Int(offset - 0x1000) / 4
        if index % 2 == 1 {
            let qid = index / 2
            let hostile = value & 0x8000 != 0
            if hostile {
                accounting.book.withLock { $0.unchecked = true }
            } else if let head = accounting.book.withLock({ $0.cqs[qid]?.index }) {
                value = UInt32(head)
            }
        }
        controller.mmioWrite(offset: Int(offset), value: UInt64(value), size: 4)
    }

    // MARK: the end of an input

    /// Reaps until nothing more completes, checks that every fetched command
    /// completed (but AERs and held fused halves), then resets the
    /// controller and checks that the reset ends.
    func finish() {
        reapAndRing()
        // Without the accounting (a hostile CQ head) or with fused halves
        // that may be held, nothing is owed: no waiting.
        let exempt = accounting.book.withLock { $0.unchecked || $0.shadowDoorbells || !$0.fused.isEmpty }
        func owed() -> [UInt32: [UInt8]] {
            accounting.book.withLock { b in b.outstanding.filter { $0.key >> 16 != 0 || $0.value.contains { $0 != 0x0C } } }
        }
        // A format or self-test may still run on its own queue: up to 2 s.
        var i = 0
        while !exempt && !owed().isEmpty && i < 460 {
            usleep(i < 64 ? 100 : 5000)
            reapAndRing()
            i += 1
        }
        let left = owed()
        if !left.isEmpty && !exempt {
            let text = left.map { "SQ \($0.key >> 16) CID \($0.key & 0xFFFF) opcodes \($0.value)" }.sorted().joined(separator: ", ")
            violation("fetched commands never completed: \(text)")
        }
        controller.mmioWrite(offset: Int(RegisterOffset.cc), value: 0, size: 4)
        waitNotReady()
        controller.closeBackends()
    }
}
