import Glibc
import BlockIO
import Foundation
import HostMemory
import Logging
import NVMeController
import NVMeSpec
import Synchronization

/// What a sequence may do to a device: register (BAR0) accesses, host memory
/// accesses, and letting time pass. Both QEMU's device (through qtest) and
/// nvmefs's controller (in process) implement it, so one sequence drives both.
public protocol ConformanceDevice: AnyObject {
    var name: String { get }
    func read32(_ offset: Int) throws -> UInt32
    func read64(_ offset: Int) throws -> UInt64
    func write32(_ offset: Int, _ value: UInt32) throws
    func write64(_ offset: Int, _ value: UInt64) throws
    func memWrite(_ address: UInt64, _ bytes: [UInt8]) throws
    func memRead(_ address: UInt64, _ count: Int) throws -> [UInt8]
    /// Lets the device make progress (QEMU: step the virtual clock, which its
    /// queue timers run on; nvmefs: yield to backend threads).
    func advance() throws
    /// Host address of the Controller Memory Buffer, when the device has one.
    var cmbBase: UInt64? { get }
    func close()
}

/// The guest-physical memory both devices see: `size` bytes of RAM at 0.
public enum GuestMemory {
    public static let size = 64 << 20
    /// An address no region backs (QEMU: outside every region of the system
    /// address space, so DMA fails; nvmefs: outside `mem` and the CMB).
    /// Addresses in QEMU's 32-bit PCI hole read as all ones without error.
    public static let unmapped: UInt64 = 0x100_0000_0000
}

/// The device parameters both devices are configured with (see docs/CONFORMANCE.md).
public struct DeviceConfiguration: Sendable {
    public var maxIOQueuePairs = 64
    public var mdts: UInt8 = 7
    public var aerl: UInt8 = 3
    public var serial = "NVMEFS0001"
    /// CMB in MiB; 0 = none.
    public var cmbMiB = 0
    /// Namespace 1's format (docs/METADATA.md). nil: the plain device every
    /// scenario without metadata runs on — 512-byte LBAs, QEMU's namespace
    /// from `-device nvme,drive=` (unless there is a second namespace). A
    /// format: QEMU gets an `nvme-ns` device with `logical_block_size`, `ms`,
    /// `mset`, `pi` and `pil`, nvmefs a namespace with a metadata file. Either
    /// way nvmefs opens the namespace as a mount does (`NamespaceStorage`),
    /// with a metadata store, so Format NVM can give it any advertised format.
    public var namespaceFormat: NamespaceFormat?
    /// A second namespace (NSID 2), for Format NVM of every namespace
    /// (NSID FFFFFFFFh): of `format` (the one namespace 1 starts with), on
    /// its own copy of the image (`secondImage`), read-only if asked. Both
    /// of QEMU's namespaces are then `nvme-ns` devices.
    public var secondNamespace: SecondNamespace?
    public struct SecondNamespace: Sendable {
        public var readOnly = false
        public init(readOnly: Bool = false) { self.readOnly = readOnly }
    }
    /// The format namespace 1 starts with.
    public var format: NamespaceFormat { namespaceFormat ?? NamespaceFormat(lbads: 9) }
    /// The image of namespace 2 beside namespace 1's.
    public static func secondImage(_ image: String) -> String { image + ".ns2" }
    public init() {}
}

// MARK: - nvmefs in process

/// nvmefs's controller with a 64 MiB `mem` region at guest address 0 and one
/// namespace on a private copy of the image (ImageBackend, inline mode); a
/// namespace with a format has its metadata file beside the image, opened
/// as a mount opens it (`NamespaceStorage.open`: every block deallocated).
public final class NVMefsDevice: ConformanceDevice {
    public let name = "nvmefs"
    let controller: NVMeController
    let space: HostAddressSpace
    let memory: AnonymousMemory
    let backends: [ImageBackend]

    public init(imagePath: String, configuration: DeviceConfiguration) throws {
        space = HostAddressSpace()
        memory = try AnonymousMemory(size: GuestMemory.size)
        try space.map(base: 0, length: GuestMemory.size, pointer: memory.pointer, name: "mem", kind: .userMemory)
        // Every namespace is opened as a mount opens it, so that it has a
        // metadata store and Format NVM can give it any advertised format.
        var images = [(nsid: UInt32(1), path: imagePath, readOnly: false)]
        if let second = configuration.secondNamespace {
            images.append((2, DeviceConfiguration.secondImage(imagePath), second.readOnly))
        }
        var namespaces: [Namespace] = [], opened: [ImageBackend] = []
        for image in images {
            let storage = try NamespaceStorage.open(imagePath: image.path, requested: configuration.format,
                                                    explicit: configuration.namespaceFormat != nil, readOnly: image.readOnly,
                                                    mode: .inline)
            opened += [storage.data] + (storage.metadata.map { [$0] } ?? [])
            namespaces.append(Namespace(nsid: image.nsid, storage: storage, imagePath: image.path, readOnly: image.readOnly))
        }
        // Namespace Management as a mount has it: a namespace directory
        // beside the image, made only if a namespace is created.
        let provisioner = DirectoryProvisioner(directory: try NamespaceDirectory(path: imagePath + ".nvmefs-ns", create: false),
                                               mode: .inline)
        backends = opened
        var p = ControllerParameters()
        p.maxIOQueuePairs = configuration.maxIOQueuePairs
        p.mdts = configuration.mdts
        p.aerl = configuration.aerl
        p.serial = configuration.serial
        p.cmbSize = configuration.cmbMiB << 20
        controller = NVMeController(parameters: p, namespaces: namespaces, space: space,
                                   logger: Logger(label: "nvmefs.conformance", factory: { _ in SwiftLogNoOpLogHandler() }),
                                   provisioner: provisioner)
    }

    public func read32(_ offset: Int) throws -> UInt32 { UInt32(truncatingIfNeeded: controller.mmioRead(offset: offset, size: 4)) }
    public func read64(_ offset: Int) throws -> UInt64 { controller.mmioRead(offset: offset, size: 8) }
    public func write32(_ offset: Int, _ value: UInt32) throws { controller.mmioWrite(offset: offset, value: UInt64(value), size: 4) }
    public func write64(_ offset: Int, _ value: UInt64) throws { controller.mmioWrite(offset: offset, value: value, size: 8) }
    public func memWrite(_ address: UInt64, _ bytes: [UInt8]) throws {
        _ = bytes.withUnsafeBytes { space.write(address, from: $0) }
    }
    public func memRead(_ address: UInt64, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        _ = out.withUnsafeMutableBytes { space.read(address, into: $0) }
        return out
    }
    public func advance() throws { usleep(100) }
    /// The CBA sequences program into CMBMSC: the address QEMU's BAR2 has, so both devices see one layout.
    public var cmbBase: UInt64? { controller.cmbMemory == nil ? nil : QEMUDevice.bar2 }
    public func close() {
        controller.drainAndSync()
        for b in backends { b.close() }
    }
}

// MARK: - QEMU through qtest

/// Why QEMU's device cannot be used: the tool reports it as SKIP.
public struct QEMUUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The QEMU process of the running scenario, so that a signal handler can end it.
public let runningQEMUProcess = Atomic<Int32>(0)

/// One QEMU process (`-qtest unix:PATH`, no guest) with an NVMe device whose
/// BAR0 is programmed at `bar0`, reached through the qtest protocol.
public final class QEMUDevice: ConformanceDevice {
    public let name = "qemu"
    public static let bar0: UInt64 = 0xC000_0000
    public static let bar2: UInt64 = 0xD000_0000
    let pid: pid_t
    let fd: Int32
    let directory: String
    var lines = LineBuffer()
    var closed = false
    let hasCMB: Bool
    /// Per-answer wait.
    static let replyTimeoutMilliseconds: Int32 = 10_000

    /// How QEMU's time runs. With the qtest accelerator (upstream builds) the
    /// virtual clock only moves on `clock_step`; Debian 12 does not ship that
    /// accelerator module, so the machine runs under TCG with a firmware stub
    /// whose reset vector halts the CPU (no BIOS touches the PCI bus or the
    /// NVMe device) and QEMU's timers run in real time.
    public enum Clock: Sendable, Equatable {
        case qtestAccelerator
        case haltedTCG(firmware: String)
    }
    let clock: Clock

    /// A 64 KiB firmware image whose reset vector (its last 16 bytes, at
    /// FFFFFFF0h) is `cli; hlt; jmp back to hlt`.
    public static func haltingFirmware() -> [UInt8] {
        var rom = [UInt8](repeating: 0xF4, count: 65536)
        rom.replaceSubrange((65536 - 16)..<(65536 - 12), with: [0xFA, 0xF4, 0xEB, 0xFD])
        return rom
    }

    /// The QEMU command line for an image and configuration (documented in docs/CONFORMANCE.md).
    public static func arguments(socket: String, image: String, configuration c: DeviceConfiguration, clock: Clock) -> [String] {
        let separate = c.namespaceFormat != nil || c.secondNamespace != nil
        var device = "nvme,serial=\(c.serial)" + (separate ? ",id=nvme0" : ",drive=d0")
        device += ",max_ioqpairs=\(c.maxIOQueuePairs),mdts=\(c.mdts),aerl=\(c.aerl)"
        device += ",msix_qsize=\(c.maxIOQueuePairs + 1)"
        if c.cmbMiB > 0 { device += ",cmb_size_mb=\(c.cmbMiB)" }
        var namespace: [String] = []
        if separate { namespace = ["-device", namespaceDevice(c.format)] }
        if let second = c.secondNamespace {
            namespace += ["-drive", "file=\(DeviceConfiguration.secondImage(image)),if=none,id=d1,format=raw,cache=writeback,discard=unmap"
                            + (second.readOnly ? ",readonly=on" : ""),
                          "-device", namespaceDevice(c.format, nsid: 2, drive: "d1")]
        }
        let accel: [String]
        switch clock {
        case .qtestAccelerator: accel = ["-accel", "qtest"]
        case .haltedTCG(let firmware): accel = ["-accel", "tcg", "-bios", firmware]
        }
        return ["-machine", "q35", "-nodefaults", "-display", "none", "-m", "\(GuestMemory.size >> 20)M"] + accel + [
                "-qtest", "unix:\(socket)", "-qtest-log", "/dev/null",
                "-drive", "file=\(image),if=none,id=d0,format=raw,cache=writeback,discard=unmap",
                "-device", device] + namespace
    }

    /// QEMU's `nvme-ns` device for a namespace of `format` on a drive (its
    /// image: the data, then every block's metadata, QEMU's layout).
    public static func namespaceDevice(_ f: NamespaceFormat, nsid: UInt32 = 1, drive: String = "d0") -> String {
        "nvme-ns,drive=\(drive),bus=nvme0,nsid=\(nsid),logical_block_size=\(f.lbaSize),physical_block_size=\(f.lbaSize)"
            + ",ms=\(f.ms),mset=\(f.extended ? 1 : 0),pi=\(f.pi.rawValue),pil=\(f.piFirst ? 1 : 0)"
    }

    public init(binary: String, imagePath: String, configuration: DeviceConfiguration, workDirectory: String,
                clock: Clock) throws {
        directory = workDirectory
        self.clock = clock
        hasCMB = configuration.cmbMiB > 0
        let socketPath = workDirectory + "/qtest.sock"
        unlink(socketPath)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw QEMUUnavailable(reason: "socket: errno \(errno)") }
        defer { Glibc.close(listener) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw QEMUUnavailable(reason: "socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
            raw[pathBytes.count] = 0
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw QEMUUnavailable(reason: "bind/listen \(socketPath): errno \(errno)") }

        // QEMU dies with this process (setpriv --pdeathsig), besides the explicit kill in close().
        var argv = [binary] + Self.arguments(socket: socketPath, image: imagePath, configuration: configuration, clock: clock)
        var program = binary
        if access("/usr/bin/setpriv", X_OK) == 0 {
            argv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] + argv
            program = "/usr/bin/setpriv"
        }
        let logPath = workDirectory + "/qemu.log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, program, &actions, nil, cargs, environ)
        guard rc == 0 else { throw QEMUUnavailable(reason: "cannot run \(binary): \(String(cString: strerror(rc)))") }
        pid = child
        runningQEMUProcess.store(child, ordering: .sequentiallyConsistent)

        // Wait for QEMU to connect (it is the client of the qtest socket).
        var connection: Int32 = -1
        var waited = 0
        while connection < 0 {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) > 0 { connection = accept(listener, nil, nil); if connection >= 0 { break } }
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                runningQEMUProcess.store(0, ordering: .sequentiallyConsistent)
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                let first = log.split(separator: "\n").first.map(String.init) ?? "exit status \(status)"
                throw QEMUUnavailable(reason: "\(binary) cannot start: \(first)")
            }
            waited += 100
            if waited > 30_000 {
                kill(child, SIGKILL); _ = waitpid(child, nil, 0)
                runningQEMUProcess.store(0, ordering: .sequentiallyConsistent)
                throw QEMUUnavailable(reason: "\(binary) did not connect to the qtest socket within 30 s")
            }
        }
        fd = connection
        do { try pciBringUp() } catch { close(); throw error }
    }

    // MARK: transport

    func send(_ line: String) throws -> QTestProtocol.Reply {
        guard !closed else { throw QTestProtocol.ProtocolError("connection closed") }
        var data = Array(line.utf8); data.append(10)
        var sent = 0
        while sent < data.count {
            let n = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, data.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw QTestProtocol.ProtocolError("send: errno \(errno)") }
            sent += n
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while let l = lines.nextLine() {
                let reply = QTestProtocol.parse(l)
                if case .notice = reply { continue }
                return reply
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Self.replyTimeoutMilliseconds)
            if r == 0 { throw QTestProtocol.ProtocolError("no answer to '\(line.prefix(60))'") }
            if r < 0 { if errno == EINTR { continue }; throw QTestProtocol.ProtocolError("poll: errno \(errno)") }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { throw QTestProtocol.ProtocolError("QEMU closed the connection") }
            if n < 0 { if errno == EINTR { continue }; throw QTestProtocol.ProtocolError("recv: errno \(errno)") }
            lines.append(buffer[0..<n])
        }
    }

    func ok(_ line: String) throws {
        let r = try send(line)
        guard case .ok = r else { throw QTestProtocol.ProtocolError("'\(line.prefix(60))' answered \(r)") }
    }

    func configRead(_ device: Int, _ register: Int) throws -> UInt32 {
        try ok(QTestProtocol.outl(0xCF8, QTestProtocol.configAddress(device: device, register: register)))
        return UInt32(truncatingIfNeeded: try QTestProtocol.value(send(QTestProtocol.inl(0xCFC))))
    }
    func configWrite(_ device: Int, _ register: Int, _ value: UInt32) throws {
        try ok(QTestProtocol.outl(0xCF8, QTestProtocol.configAddress(device: device, register: register)))
        try ok(QTestProtocol.outl(0xCFC, value))
    }

    /// Finds the NVMe function (vendor 1B36h, device 0010h), places BAR0 (and
    /// BAR2, the CMB) at fixed addresses, enables memory space and bus
    /// mastering, and enables MSI-X (all vectors stay masked: no interrupt
    /// message is ever written to memory).
    func pciBringUp() throws {
        var found: Int?
        for dev in 0..<32 where try configRead(dev, 0) == 0x0010_1B36 { found = dev; break }
        guard let dev = found else { throw QEMUUnavailable(reason: "no QEMU NVMe function (1b36:0010) on PCI bus 0") }
        try configWrite(dev, 0x10, UInt32(truncatingIfNeeded: Self.bar0))
        try configWrite(dev, 0x14, UInt32(truncatingIfNeeded: Self.bar0 >> 32))
        if hasCMB {
            try configWrite(dev, 0x18, UInt32(truncatingIfNeeded: Self.bar2))
            try configWrite(dev, 0x1C, UInt32(truncatingIfNeeded: Self.bar2 >> 32))
        }
        try configWrite(dev, 0x04, 0x0006)
        var cap = Int(try configRead(dev, 0x34) & 0xFC)
        var hops = 0
        while cap != 0 && hops < 48 {
            let header = try configRead(dev, cap)
            if header & 0xFF == 0x11 {
                try configWrite(dev, cap, (header & 0xFFFF_0000) | 0x8000_0000)
                break
            }
            cap = Int((header >> 8) & 0xFC)
            hops += 1
        }
    }

    // MARK: ConformanceDevice

    public func read32(_ offset: Int) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try QTestProtocol.value(send(QTestProtocol.readl(Self.bar0 + UInt64(offset)))))
    }
    public func read64(_ offset: Int) throws -> UInt64 { try QTestProtocol.value(send(QTestProtocol.readq(Self.bar0 + UInt64(offset)))) }
    public func write32(_ offset: Int, _ value: UInt32) throws { try ok(QTestProtocol.writel(Self.bar0 + UInt64(offset), value)) }
    public func write64(_ offset: Int, _ value: UInt64) throws { try ok(QTestProtocol.writeq(Self.bar0 + UInt64(offset), value)) }
    public func memWrite(_ address: UInt64, _ bytes: [UInt8]) throws {
        var i = 0
        while i < bytes.count {
            let n = min(1 << 16, bytes.count - i)
            try ok(QTestProtocol.write(address + UInt64(i), Array(bytes[i..<(i + n)])))
            i += n
        }
    }
    public func memRead(_ address: UInt64, _ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var i = 0
        while i < count {
            let n = min(1 << 16, count - i)
            out += try QTestProtocol.bytes(send(QTestProtocol.read(address + UInt64(i), count: n)), count: n)
            i += n
        }
        return out
    }
    public func advance() throws {
        switch clock {
        case .qtestAccelerator: try ok(QTestProtocol.clockStep(100_000))
        case .haltedTCG: usleep(100)
        }
    }
    public var cmbBase: UInt64? { hasCMB ? Self.bar2 : nil }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        kill(pid, SIGTERM)
        var status: Int32 = 0
        var tries = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            tries += 1
            if tries == 200 { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        runningQEMUProcess.store(0, ordering: .sequentiallyConsistent)
    }

    deinit { close() }
}
