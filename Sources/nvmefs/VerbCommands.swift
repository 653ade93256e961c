import ArgumentParser
import FUSEBridge
import Glibc
import NVMeSpec

/// A `0x` hex or decimal number on the command line.
struct Number: ExpressibleByArgument {
    var value: UInt64
    init?(argument: String) {
        guard let v = Verbs.parseNumber(argument) else { return nil }
        value = v
    }
}

/// `nvmefs sqe [flags]`: a 64-byte submission queue entry on stdout (NVMe
/// 1.4 §4.2), e.g. for `dd` into `mem` at a queue slot.
struct SQECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sqe", abstract: "Encode a 64-byte submission queue entry to stdout.",
        discussion: "Numbers are 0x hex or decimal. Example: nvmefs sqe --opcode 0x06 --cid 1 --prp1 0x5000 --cdw10 1 "
            + "| dd of=MOUNT/mem bs=64 seek=$((0x1000)) oflag=seek_bytes conv=notrunc")

    @Option(help: "Opcode (CDW0 bits 7:0).") var opcode: Number
    @Option(help: "Command identifier (CDW0 bits 31:16).") var cid: Number?
    @Option(help: "Fused operation (CDW0 bits 9:8): 0, 1 first, 2 second.") var fuse: Number?
    @Option(help: "PRP or SGL (CDW0 bits 15:14): 0 PRP, 1 SGL (MPTR address), 2 SGL (MPTR segment).") var psdt: Number?
    @Option(help: "Namespace identifier (CDW1).") var nsid: Number?
    @Option var cdw2: Number?
    @Option var cdw3: Number?
    @Option(help: "Metadata pointer (CDW4-5).") var mptr: Number?
    @Option(help: "PRP entry 1 (CDW6-7).") var prp1: Number?
    @Option(help: "PRP entry 2 (CDW8-9).") var prp2: Number?
    @Option var cdw10: Number?
    @Option var cdw11: Number?
    @Option var cdw12: Number?
    @Option var cdw13: Number?
    @Option var cdw14: Number?
    @Option var cdw15: Number?
    @Option(help: "Starting LBA (CDW10-11; not with --cdw10/--cdw11).") var slba: Number?
    @Option(help: "Number of logical blocks, 0's based (CDW12 bits 15:0; the rest from --cdw12).") var nlb: Number?

    func validate() throws {
        func check(_ n: Number?, _ max: UInt64, _ name: String) throws {
            if let n, n.value > max { throw ValidationError("--\(name): \(n.value) is larger than \(max)") }
        }
        let u32 = UInt64(UInt32.max)
        try check(opcode, 0xFF, "opcode"); try check(cid, 0xFFFF, "cid"); try check(fuse, 3, "fuse")
        try check(psdt, 2, "psdt"); try check(nsid, u32, "nsid"); try check(nlb, 0xFFFF, "nlb")
        for (n, name) in [(cdw2, "cdw2"), (cdw3, "cdw3"), (cdw10, "cdw10"), (cdw11, "cdw11"), (cdw12, "cdw12"),
                          (cdw13, "cdw13"), (cdw14, "cdw14"), (cdw15, "cdw15")] { try check(n, u32, name) }
        if slba != nil && (cdw10 != nil || cdw11 != nil) { throw ValidationError("--slba is CDW10-11: give one or the other") }
    }

    func run() throws {
        var e = SubmissionQueueEntry()
        e.opcode = UInt8(opcode.value)
        e.cid = UInt16(cid?.value ?? 0)
        e.fuse = UInt8(fuse?.value ?? 0)
        e.psdt = UInt8(psdt?.value ?? 0)
        e.nsid = UInt32(nsid?.value ?? 0)
        e.cdw2 = UInt32(cdw2?.value ?? 0)
        e.cdw3 = UInt32(cdw3?.value ?? 0)
        e.mptr = mptr?.value ?? 0
        e.prp1 = prp1?.value ?? 0
        e.prp2 = prp2?.value ?? 0
        e.cdw10 = UInt32(cdw10?.value ?? 0)
        e.cdw11 = UInt32(cdw11?.value ?? 0)
        e.cdw12 = UInt32(cdw12?.value ?? 0)
        e.cdw13 = UInt32(cdw13?.value ?? 0)
        e.cdw14 = UInt32(cdw14?.value ?? 0)
        e.cdw15 = UInt32(cdw15?.value ?? 0)
        if let slba { e.slba = slba.value }
        if let nlb { e.nlb = UInt16(nlb.value) }
        try writeAll(e.bytes, to: 1)
    }
}

/// `nvmefs cqe`: decodes 16-byte completion entries from stdin, one line each.
struct CQECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cqe", abstract: "Decode 16-byte completion queue entries from stdin, one line each.",
        discussion: "Example: dd if=MOUNT/mem bs=16 skip=$((0x2000 / 16)) count=2 status=none | nvmefs cqe")

    func run() throws {
        let text = try Verbs.decodeCompletions(readAll(from: 0))
        try writeAll(Array(text.utf8), to: 1)
    }
}

/// `nvmefs show-regs MOUNT [-H]`: the registers from the mount's `bar0`.
struct ShowRegsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-regs", abstract: "Show the controller registers of a mount (from bar0), as nvme show-regs.")

    @Argument(help: "The mountpoint.") var mountpoint: String
    @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode every field.") var human = false

    func run() throws {
        let path = UnmountCommand.resolve(mountpoint)
        guard MountRegistry.isMounted(path) else { throw DaemonError("\(mountpoint) is not an nvmefs mount") }
        let fd = open(path + "/bar0", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DaemonError("cannot open \(path)/bar0: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bar0 = [UInt8](repeating: 0, count: 4096)
        let n = bar0.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == 4096 else { throw DaemonError("cannot read \(path)/bar0: \(n < 0 ? String(cString: strerror(errno)) : "short read")") }
        try writeAll(Array(Verbs.showRegisters(bar0: bar0, human: human).utf8), to: 1)
    }
}

/// `nvmefs list`: the live mounts with their namespaces, like `nvme list`.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the live nvmefs mounts and their namespaces, like nvme list.")

    func run() throws {
        try writeAll(Array(Verbs.listMounts().utf8), to: 1)
    }
}

/// Reads `fd` to end of file.
func readAll(from fd: Int32) throws -> [UInt8] {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw DaemonError("cannot read stdin: \(String(cString: strerror(errno)))") }
        if n == 0 { return data }
        data += chunk[0..<n]
    }
}

/// Writes all of `bytes` to `fd`.
func writeAll(_ bytes: [UInt8], to fd: Int32) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { throw DaemonError("cannot write stdout: \(String(cString: strerror(errno)))") }
        offset += n
    }
}
