import NVMeHost
import NVMeSpec
import Synchronization

/// The built-in host's files: `identify`, `log/*`, `cmd`, `passthru`, `firmware`, `events`.
enum HostFiles {
    static func identify(_ d: DeviceContext) -> Node {
        let host = d.host!
        return .file("identify", about: "4096-byte Identify Controller data (an Identify command)",
                     GeneratedFile(mode: 0o444, size: 4096, bytes: { () throws(FileError) -> [UInt8] in
                         do throws(HostError) { return try host.identifyController() } catch { throw FileError(error.errno) }
                     }))
    }

    /// Log pages read with Get Log Page (NVMe 1.4 §5.14). A read is the
    /// command, with its usual effects (Retain Asynchronous Event clear: the
    /// changed namespace list is cleared by reading it).
    static func log(_ d: DeviceContext) -> Node {
        let host = d.host!
        let elpe = Int(d.controller.parameters.elpe)
        let pages: [(String, LogPageIdentifier, Int, String)] = [
            ("error", .errorInformation, 64 * (elpe + 1), "Error Information log: 64-byte entries, newest first"),
            ("smart", .smartHealth, 512, "SMART / Health Information log (512 bytes)"),
            ("fw-slot", .firmwareSlot, 512, "Firmware Slot Information log (512 bytes)"),
            ("effects", .commandsSupportedAndEffects, 4096, "Commands Supported and Effects log (4096 bytes)"),
            ("changed-ns", .changedNamespaceList, 4096, "Changed Namespace List log (4096 bytes; reading clears it)"),
            ("self-test", .deviceSelfTest, DeviceSelfTestLog.size,
             "Device Self-test log (564 bytes): operation in progress, percent done, 20 results newest first"),
        ]
        return .directory("log", about: "binary log pages, each read is a Get Log Page command",
                          pages.map { name, lid, length, about in
                              .file(name, about: about,
                                    GeneratedFile(mode: 0o444, size: UInt64(length), bytes: { () throws(FileError) -> [UInt8] in
                                        do throws(HostError) { return try host.getLogPage(lid: lid.rawValue, length: length) } catch {
                                            throw FileError(error.errno)
                                        }
                                    }))
                          })
    }

    /// `events`: the asynchronous events the built-in host received through
    /// its own Asynchronous Event Requests, one line each, oldest first.
    static func events(_ d: DeviceContext) -> Node {
        let host = d.host!
        return .file("events", about: "asynchronous events the built-in host received (its own AERs), one per line: "
                        + "time type=NAME info=NAME log-page=0xNN (NAME)",
                     GeneratedFile(mode: 0o444, text: { host.events.map { $0.line + "\n" }.joined() }))
    }

    /// `firmware`: writing it downloads a firmware image (docs/FIRMWARE.md);
    /// commit it with a Firmware Commit through `cmd`.
    static func firmware(_ d: DeviceContext) -> Node {
        .file("firmware", about: "write-only: each write is Firmware Image Download at its offset (4 KiB pieces); "
                + "then commit through cmd, e.g. \"admin opcode=0x10 cdw10=0x0a\" (slot 2, activate at the next reset)",
              FirmwareFile(host: d.host!))
    }

    static func passthru(_ d: DeviceContext) -> Node {
        .file("passthru", about: "binary command transaction per open handle (docs/PASSTHRU.md): write an 80-byte header "
                + "(64-byte SQE, data and metadata lengths, timeout, queue, direction) + data-out, read the 16-byte CQE + data-in",
              PassthruFile(device: d, host: d.host!))
    }

    /// `rescan`: like sysfs's `rescan_controller`, a write of 1 makes the
    /// host identify the namespaces again (`BuiltinHost.rescanNamespaces`).
    static func rescan(_ d: DeviceContext) -> Node {
        .file("rescan", about: "write-only: writing 1 makes the built-in host read the active namespace list and identify "
                + "every namespace again (as Linux's namespace rescan; nvme ns-rescan)",
              RescanFile(device: d, host: d.host!))
    }

    static func cmd(_ d: DeviceContext) -> Node {
        .file("cmd", about: "command transaction per open handle: write \"admin|io opcode=N [nsid= cdw10..15= "
                + "slba= nlb= data-in=BYTES data-out=HEX]\", read \"status NAME (0xVALUE) dw0 .. dw1 ..\" + xxd of data-in",
              CommandFile(device: d, host: d.host!))
    }
}

/// Writes become Firmware Image Download commands at their offset.
struct FirmwareFile: FileHandler {
    let host: BuiltinHost
    var mode: UInt16 { 0o200 }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        do throws(HostError) { try host.firmwareImageDownload(data, offset: offset) } catch { throw FileError(error.errno) }
        return data.count
    }
}

/// A write of "1" rescans the namespaces.
struct RescanFile: FileHandler {
    let device: DeviceContext
    let host: BuiltinHost
    var mode: UInt16 { 0o200 }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        guard Text.trim(Substring(decoding: data, as: UTF8.self)) == "1" else {
            throw device.refuse("rescan", .invalid, "write 1 to rescan")
        }
        do throws(HostError) { try host.rescanNamespaces() } catch { throw FileError(error.errno) }
        return data.count
    }
}

/// One parsed `cmd` line.
struct PassthroughCommand: Equatable {
    var admin: Bool
    var sqe: SubmissionQueueEntry
    var dataIn: Int
    var dataOut: [UInt8]?

    /// Parses `admin|io key=value...` (keys below); numbers are 0x hex or decimal.
    ///
    /// Keys: opcode (required), nsid, fuse, cdw2, cdw3, cdw10...cdw15, mptr,
    /// prp1, prp2 (honoured only without data), slba (cdw10-11), nlb (0's
    /// based, cdw12 bits 15:0), data-in=BYTES, data-out=HEX (even number of
    /// hex digits), data-out-zeros=BYTES (zero-filled data-out buffer).
    /// Each key at most once; slba excludes cdw10 and cdw11; at most one of
    /// the data keys. nlb sets cdw12 bits 15:0 whatever the order of nlb and cdw12.
    /// - Throws: a one-line reason.
    static func parse(_ line: Substring, maxTransfer: Int) throws(CommandSyntaxError) -> PassthroughCommand {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let kind = words.first else { throw CommandSyntaxError("empty command") }
        var c: PassthroughCommand
        switch kind {
        case "admin": c = PassthroughCommand(admin: true, sqe: SubmissionQueueEntry(), dataIn: 0, dataOut: nil)
        case "io": c = PassthroughCommand(admin: false, sqe: SubmissionQueueEntry(), dataIn: 0, dataOut: nil)
        default: throw CommandSyntaxError("a command starts with 'admin' or 'io', not '\(kind)'")
        }
        var sawOpcode = false
        var seen = Set<Substring>()
        var nlb: UInt16?
        for word in words.dropFirst() {
            guard let eq = word.firstIndex(of: "=") else { throw CommandSyntaxError("'\(word)' is not key=value") }
            let key = word[..<eq], value = word[word.index(after: eq)...]
            guard seen.insert(key).inserted else { throw CommandSyntaxError("\(key) given twice") }
            func number(_ max: UInt64) throws(CommandSyntaxError) -> UInt64 {
                let v: UInt64
                do { v = try Text.parseNumber(value) } catch {
                    throw CommandSyntaxError("\(key): '\(value)' is not a 0x hex or decimal number")
                }
                guard v <= max else { throw CommandSyntaxError("\(key): \(value) is too large") }
                return v
            }
            let u32 = UInt64(UInt32.max)
            switch key {
            case "opcode": c.sqe.opcode = UInt8(try number(0xFF)); sawOpcode = true
            case "nsid": c.sqe.nsid = UInt32(try number(u32))
            case "fuse": c.sqe.fuse = UInt8(try number(3))
            case "cdw2": c.sqe.cdw2 = UInt32(try number(u32))
            case "cdw3": c.sqe.cdw3 = UInt32(try number(u32))
            case "cdw10": c.sqe.cdw10 = UInt32(try number(u32))
            case "cdw11": c.sqe.cdw11 = UInt32(try number(u32))
            case "cdw12": c.sqe.cdw12 = UInt32(try number(u32))
            case "cdw13": c.sqe.cdw13 = UInt32(try number(u32))
            case "cdw14": c.sqe.cdw14 = UInt32(try number(u32))
            case "cdw15": c.sqe.cdw15 = UInt32(try number(u32))
            case "mptr": c.sqe.mptr = try number(.max)
            case "prp1": c.sqe.prp1 = try number(.max)
            case "prp2": c.sqe.prp2 = try number(.max)
            case "slba": c.sqe.slba = try number(.max)
            case "nlb": nlb = UInt16(try number(0xFFFF))
            case "data-in": c.dataIn = Int(try number(UInt64(maxTransfer)))
            case "data-out-zeros": c.dataOut = [UInt8](repeating: 0, count: Int(try number(UInt64(maxTransfer))))
            case "data-out":
                guard value.utf8.count % 2 == 0, value.utf8.count / 2 <= maxTransfer else {
                    throw CommandSyntaxError("data-out: an even number of hex digits, at most \(maxTransfer) bytes")
                }
                var bytes: [UInt8] = []
                bytes.reserveCapacity(value.utf8.count / 2)
                var high: UInt8?
                for ch in value.utf8 {
                    let v: UInt8
                    switch ch {
                    case 0x30...0x39: v = ch - 0x30
                    case 0x61...0x66: v = ch - 0x61 + 10
                    case 0x41...0x46: v = ch - 0x41 + 10
                    default: throw CommandSyntaxError("data-out: '\(value.prefix(16))...' is not hex")
                    }
                    if let h = high { bytes.append(h << 4 | v); high = nil } else { high = v }
                }
                c.dataOut = bytes
            default:
                throw CommandSyntaxError("unknown key '\(key)'")
            }
        }
        guard sawOpcode else { throw CommandSyntaxError("opcode= is required") }
        if seen.contains("slba") && (seen.contains("cdw10") || seen.contains("cdw11")) {
            throw CommandSyntaxError("slba is cdw10-11: give one or the other")
        }
        if ["data-in", "data-out", "data-out-zeros"].filter({ seen.contains($0) }).count > 1 {
            throw CommandSyntaxError("data-in, data-out and data-out-zeros cannot be combined")
        }
        if let nlb { c.sqe.nlb = nlb }
        return c
    }
}

struct CommandSyntaxError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `cmd`: each open handle is a transaction. A complete line written runs
/// one command (the write returns when it has completed); reads return its
/// result from the start, then end of file. Text after the last newline of
/// a write waits for more (or runs at the next read).
struct CommandFile: TransactionFile {
    let device: DeviceContext
    let host: BuiltinHost

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        guard let t = file.state(as: FileTransaction.self) else { throw .invalid }
        try t.step(appending: data) { pending throws(FileError) in
            var lines: [[UInt8]] = []
            while let nl = pending.firstIndex(of: 0x0A) {
                lines.append(Array(pending[..<nl]))
                pending.removeSubrange(...nl)
            }
            return try run(lines)
        }
        return data.count
    }

    func read(_ request: ReadRequest) {
        guard let t = request.file.state(as: FileTransaction.self) else { request.fail(.invalid); return }
        t.read(request) { pending throws(FileError) in
            if pending.isEmpty { return nil }
            defer { pending = [] }
            return try run([pending])
        }
    }

    /// Runs the non-blank lines in order: their results (nil: no command).
    private func run(_ lines: [[UInt8]]) throws(FileError) -> [UInt8]? {
        var commands: [PassthroughCommand] = []
        for raw in lines {
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw device.refuse("cmd", .invalid, "command line is not UTF-8")
            }
            let line = Text.trim(Substring(text))
            if line.isEmpty || line.hasPrefix("#") { continue }
            let command: PassthroughCommand
            do {
                command = try PassthroughCommand.parse(line, maxTransfer: max(4096, host.maxTransfer))
            } catch {
                throw device.refuse("cmd", .invalid, error.description)
            }
            // The built-in host keeps its own AERs outstanding (see `events`);
            // one written here would wait for an event nobody acknowledges.
            if command.admin && command.sqe.opcode == AdminOpcode.asyncEventRequest.rawValue {
                throw device.refuse("cmd", .invalid, "Asynchronous Event Requests belong to the built-in host; read 'events'")
            }
            // The controller would take every queue's tail and head from the
            // given pages, the host's own queues too (NVMe 1.4 §7.13).
            if command.admin && command.sqe.opcode == AdminOpcode.doorbellBufferConfig.rawValue {
                throw device.refuse("cmd", .invalid, "Doorbell Buffer Config would take the built-in host's doorbells; "
                                    + "mount with --shadow-doorbells, or with --host none to configure them by hand")
            }
            commands.append(command)
        }
        guard !commands.isEmpty else { return nil }
        var response = ""
        for c in commands {
            let (cqe, data) = c.admin ? host.adminCommand(c.sqe, dataIn: c.dataIn, dataOut: c.dataOut)
                                      : host.ioCommand(c.sqe, dataIn: c.dataIn, dataOut: c.dataOut)
            response += "status \(cqe.status.name) (" + Text.hex(cqe.status.raw, digits: 4) + ") dw0 "
                + Text.hex(cqe.dw0, digits: 8) + " dw1 " + Text.hex(cqe.dw1, digits: 8) + "\n"
            if c.dataIn > 0 && cqe.status.isSuccess { response += Text.xxd(data) }
        }
        return Array(response.utf8)
    }
}
