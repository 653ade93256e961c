import BlockIO
import HostMemory
import NVMeController
import NVMeSpec
import Glibc

// The controller alone, in process, no FUSE (CONTRACT §6): 4 KiB random Reads
// (image rows: a page-cached file in /tmp, and the same image on tmpfs),
// placed in an I/O SQ, one doorbell per batch, CQ reaped, head doorbell rung.
// One thread drives everything, so with an inline backend the numbers are
// commands per second on one core. The last rows use a 4096+8 namespace
// with PI type 1 (docs/METADATA.md): PRACT=1 and every PRCHK bit, so each
// command has a data AIO, a metadata AIO and a CRC per block. Usage:
//   nvmefs-bench controller [--ops N] [--depth D] [--size-mib M] [--runs R] [--only LABEL]

struct ControllerBenchOptions {
    var ops = 2_000_000
    var depth = 64
    var sizeMiB = 256
    var runs = 3
    var only: String?
}

/// One benchmark row's namespace and commands.
struct ControllerBenchRow {
    var label: String
    /// A fresh namespace (NSID 1) for one run; the bench closes its backends.
    var makeNamespace: () -> Namespace
    /// LBA data size as a power of two: 4 KiB commands are 2^(12-lbads) blocks.
    var lbads: UInt8 = 9
    /// CDW12 bits 29:26 (PRINFO) of every command.
    var prinfo: UInt8 = 0
    var write = false
}

/// Runs `ops` 4 KiB reads (or writes) at queue depth `depth` through one
/// queue pair; returns (wall s, cpu s).
func driveController(_ row: ControllerBenchRow, ops: Int, depth: Int) -> (Double, Double) {
    let space = HostAddressSpace()
    let memSize = 64 << 20
    guard let mem = try? AnonymousMemory(size: memSize) else { benchFail("cannot allocate host memory") }
    _ = try? space.map(base: 0, length: memSize, pointer: mem.pointer, name: "mem", kind: .userMemory)
    var params = ControllerParameters()
    params.maxIOQueuePairs = 2
    let ns = row.makeNamespace()
    defer { for b in ns.backends { b.close() } }
    let c = NVMeController(parameters: params, namespaces: [ns], space: space)
    let asq: UInt64 = 0x1000, acq: UInt64 = 0x2000, sq: UInt64 = 0x10000, cq: UInt64 = 0x40000, data: UInt64 = 0x100000
    let entries = 1024
    func put(_ addr: UInt64, _ e: SubmissionQueueEntry) {
        e.encode(into: UnsafeMutableRawBufferPointer(start: mem.pointer + Int(addr), count: 64))
    }
    c.mmioWrite(offset: 0x24, value: 0x001F_001F, size: 4)
    c.mmioWrite(offset: 0x28, value: asq, size: 8)
    c.mmioWrite(offset: 0x30, value: acq, size: 8)
    c.mmioWrite(offset: 0x14, value: 0x460001, size: 4)
    guard c.isReady else { benchFail("controller did not become ready") }
    put(asq, SubmissionQueueEntry(opcode: 0x05, cid: 1, prp1: cq, cdw10: UInt32(entries - 1) << 16 | 1, cdw11: 1))
    put(asq + 64, SubmissionQueueEntry(opcode: 0x01, cid: 2, prp1: sq, cdw10: UInt32(entries - 1) << 16 | 1, cdw11: 1 << 16 | 1))
    c.mmioWrite(offset: 0x1000, value: 2, size: 4)
    var waited = 0
    while c.queueSnapshots().count < 4 && waited < 1000 { usleep(1000); waited += 1 }
    let blocks = ns.dataCapacity / 4096
    let perCommand = UInt64(1) << (12 - UInt64(row.lbads))
    var rng = XorShift(seed: 0x9E37_79B9_7F4A_7C15)
    var tail = 0, head = 0, phase = true, submitted = 0, completed = 0
    let cqBase = mem.pointer + Int(cq)
    let t0 = wallSeconds(), c0 = cpuSeconds()
    while completed < ops {
        var batch = 0
        while submitted - completed < depth && submitted < ops {
            let slba = UInt64.random(in: 0..<blocks, using: &rng) * perCommand
            var e = SubmissionQueueEntry(opcode: row.write ? 0x01 : 0x02, cid: UInt16(tail), nsid: 1,
                                         prp1: data + UInt64(tail % 256) * 4096)
            e.slba = slba
            e.nlb = UInt16(perCommand - 1)
            e.cdw12 |= UInt32(row.prinfo) << 26
            e.cdw14 = UInt32(truncatingIfNeeded: slba)
            put(sq + UInt64(tail) * 64, e)
            tail = (tail + 1) % entries
            submitted += 1
            batch += 1
        }
        if batch > 0 { c.mmioWrite(offset: 0x1008, value: UInt64(tail), size: 4) }
        var reaped = 0
        while true {
            let p = UnsafeRawBufferPointer(start: cqBase + head * 16, count: 16)
            guard (p.le16(14) & 1 == 1) == phase else { break }
            head += 1
            if head == entries { head = 0; phase.toggle() }
            reaped += 1
        }
        if reaped > 0 {
            completed += reaped
            c.mmioWrite(offset: 0x100C, value: UInt64(head), size: 4)
        } else if batch == 0 {
            sched_yield()
        }
    }
    return (wallSeconds() - t0, cpuSeconds() - c0)
}

public func runControllerBench(arguments: [String]) {
    var o = ControllerBenchOptions()
    parseBenchOptions(arguments, numbers: ["--ops": { o.ops = $0 }, "--depth": { o.depth = $0 },
                                           "--size-mib": { o.sizeMiB = $0 }, "--runs": { o.runs = $0 }],
                      strings: ["--only": { o.only = $0 }])
    // Per process: two benches running at once must not share (and unlink) an image.
    let path = "/tmp/nvmefs-bench-controller-\(getpid()).img"
    makeCachedImage(path: path, sizeMiB: o.sizeMiB)
    defer { unlink(path) }
    // The same image on tmpfs, where reads are never tried with RWF_NOWAIT
    // (docs/ARCHITECTURE.md, BlockIO), when /dev/shm is there.
    let memoryPath = "/dev/shm/nvmefs-bench-controller-\(getpid()).img"
    let haveMemoryImage = makeCachedImage(path: memoryPath, sizeMiB: o.sizeMiB, required: false)
    defer { if haveMemoryImage { unlink(memoryPath) } }

    print("controller alone, 4 KiB random Read, depth \(o.depth), \(o.ops) commands per run, \(o.runs) runs (median)")
    print(String(repeating: "-", count: 78))
    print("backend".benchPadding(22) + "cmds/s".benchPadding(14) + "µs/cmd wall".benchPadding(14) + "µs/cmd cpu".benchPadding(14))
    var overhead = 0.0, inlineCost = 0.0
    let size = UInt64(o.sizeMiB) << 20
    func plain(_ label: String, _ make: @escaping () throws -> any BlockBackend) -> ControllerBenchRow {
        ControllerBenchRow(label: label, makeNamespace: { Namespace(nsid: 1, backend: opened(make), lbads: 9) })
    }
    let pi1 = NamespaceFormat(lbads: 12, ms: 8, pi: .type1)
    let mdPath = MetadataFile.path(forImage: path)
    defer { unlink(mdPath) }
    do { try writeValidPI(metadataPath: mdPath, format: pi1, blocks: size >> 12, fill: 0xA5) } catch { benchFail("\(error)") }
    func protected(_ label: String, write: Bool) -> ControllerBenchRow {
        ControllerBenchRow(label: label, makeNamespace: {
            Namespace(nsid: 1, backend: opened { try ImageBackend(path: path, mode: .inline) }, format: pi1,
                      metadata: opened { try ImageBackend(path: mdPath, mode: .inline) }, metadataBase: MetadataFile.headerSize)
        }, lbads: 12, prinfo: 0x8 | 0x7, write: write)
    }
    var rows = [plain("null (no data)") { NullBackend(size: size) },
                plain("image inline") { try ImageBackend(path: path, mode: .inline) },
                plain("image hybrid(4)") { try ImageBackend(path: path, mode: .hybrid(workers: 4)) }]
    if haveMemoryImage {
        rows += [plain("tmpfs inline") { try ImageBackend(path: memoryPath, mode: .inline) },
                 plain("tmpfs hybrid(4)") { try ImageBackend(path: memoryPath, mode: .hybrid(workers: 4)) }]
    }
    rows += [
                plain("image pool(4)") { try ImageBackend(path: path, mode: .threadPool(workers: 4)) },
                ControllerBenchRow(label: "inline 4096+0", makeNamespace: {
                    Namespace(nsid: 1, backend: opened { try ImageBackend(path: path, mode: .inline) }, lbads: 12)
                }, lbads: 12),
                protected("inline 4096+8 PI1", write: false),
                ControllerBenchRow(label: "inline 4096+0 wr", makeNamespace: {
                    Namespace(nsid: 1, backend: opened { try ImageBackend(path: path, mode: .inline) }, lbads: 12)
                }, lbads: 12, write: true),
                protected("inline 4096+8 PI1 wr", write: true)]
    for row in rows {
        let label = row.label
        if let only = o.only, !label.contains(only) { continue }
        var walls: [Double] = [], cpus: [Double] = []
        for _ in 0..<o.runs {
            let (w, cpu) = driveController(row, ops: o.ops, depth: o.depth)
            walls.append(w); cpus.append(cpu)
        }
        walls.sort(); cpus.sort()
        let w = walls[walls.count / 2], cpu = cpus[cpus.count / 2]
        let rate = Double(o.ops) / w
        if label.hasPrefix("null") { overhead = cpu / Double(o.ops) * 1e6 }
        if label == "image inline" { inlineCost = cpu / Double(o.ops) * 1e6 }
        print(label.benchPadding(22) + String(Int(rate)).benchPadding(14) + benchFormat(w / Double(o.ops) * 1e6).benchPadding(14) + benchFormat(cpu / Double(o.ops) * 1e6).benchPadding(14))
    }
    print(String(repeating: "-", count: 78))
    print("per-command overhead excluding the data copy (null backend, cpu): \(benchFormat(overhead)) µs")
    print("data copy + syscall share of an inline 4 KiB read: \(benchFormat(inlineCost - overhead)) µs")
    // The guard's cost alone: CRC-16 T10-DIF over 4 KiB blocks.
    let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    defer { block.deallocate() }
    block.initializeMemory(as: UInt8.self, repeating: 0x5A)
    var crc: UInt16 = 0
    let n = 200_000
    let t0 = wallSeconds()
    for _ in 0..<n { crc ^= CRC16T10DIF.checksum(UnsafeRawBufferPointer(block)) }
    let t = wallSeconds() - t0
    print("CRC-16 T10-DIF (slice-by-16): \(benchFormat(t / Double(n) * 1e6)) µs per 4 KiB block, "
          + "\(benchFormat(Double(n) * 4096 / t / 1e9)) GB/s (check \(crc))")
}

/// The backend `make` opens, or the bench stops with the error.
func opened(_ make: () throws -> any BlockBackend) -> any BlockBackend {
    do { return try make() } catch { benchFail("\(error)") }
}

/// A metadata file whose every block carries the PI of a 4 KiB block of
/// `fill` bytes (reference tag = LBA), so reads with PRCHK pass.
func writeValidPI(metadataPath: String, format: NamespaceFormat, blocks: UInt64, fill: UInt8) throws {
    try MetadataFile.create(path: metadataPath, format: format, nsze: blocks)
    let block = [UInt8](repeating: fill, count: format.lbaSize)
    let guardTag = block.withUnsafeBytes { CRC16T10DIF.checksum($0) }
    var tuples = [UInt8](repeating: 0, count: Int(blocks) * Int(format.ms))
    tuples.withUnsafeMutableBytes { out in
        for lba in 0..<Int(blocks) {
            ProtectionInformation(guardTag: guardTag, applicationTag: 0, referenceTag: UInt32(truncatingIfNeeded: lba))
                .store(to: out.baseAddress! + lba * Int(format.ms) + format.piOffset)
        }
    }
    let fd = open(metadataPath, O_RDWR)
    defer { close(fd) }
    guard fd >= 0, tuples.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, off_t(MetadataFile.headerSize)) }) == tuples.count else {
        benchFail("cannot write \(metadataPath)")
    }
}

/// A cheap deterministic generator (getrandom per command would dominate).
struct XorShift: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
}
