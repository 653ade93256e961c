import NVMeSpec

import Glibc

/// nvmefs's own verbs where nvme-cli cannot serve (README "Command line"):
/// `sqe`, `cqe`, `show-regs`, `list`. The command line parses; these render.
public enum Verbs {
    /// A `0x` hex or decimal number, as the files take them; nil if malformed.
    public static func parseNumber(_ text: String) -> UInt64? { try? Text.parseNumber(Substring(text)) }

    /// One line per 16-byte completion entry of `bytes`, as `queues/cqN`
    /// decodes a slot (cid, sqid, sqhd, phase, status name and value, dw0, dw1).
    /// - Throws: `ConfigurationError` if `bytes` is not whole entries.
    public static func decodeCompletions(_ bytes: [UInt8]) throws(ConfigurationError) -> String {
        guard bytes.count % CompletionQueueEntry.size == 0 else {
            throw ConfigurationError("cqe: \(bytes.count) bytes are not whole 16-byte completion entries")
        }
        return stride(from: 0, to: bytes.count, by: CompletionQueueEntry.size).map {
            QueueFiles.cqeLine(Array(bytes[$0..<($0 + CompletionQueueEntry.size)])) + "\n"
        }.joined()
    }

    /// The registers of `bar0` (its first 4 KiB) as `nvme show-regs` prints
    /// them: one `name : hex` line each with nvme-cli's names, or with
    /// `human` every field decoded (as `regs/decoded`).
    public static func showRegisters(bar0: [UInt8], human: Bool) -> String {
        func read(_ offset: Int, _ size: Int) -> UInt64 {
            guard offset + size <= bar0.count else { return 0 }
            return bar0.withUnsafeBytes { size == 8 ? $0.le64(offset) : UInt64($0.le32(offset)) }
        }
        if human { return RegisterDecoder.render(read: read) }
        let rows: [(String, UInt64, Int)] = [
            ("cap", RegisterOffset.cap, 8), ("version", RegisterOffset.vs, 4), ("intms", RegisterOffset.intms, 4),
            ("intmc", RegisterOffset.intmc, 4), ("cc", RegisterOffset.cc, 4), ("csts", RegisterOffset.csts, 4),
            ("nssr", RegisterOffset.nssr, 4), ("aqa", RegisterOffset.aqa, 4), ("asq", RegisterOffset.asq, 8),
            ("acq", RegisterOffset.acq, 8), ("cmbloc", RegisterOffset.cmbloc, 4), ("cmbsz", RegisterOffset.cmbsz, 4),
            ("cmbmsc", RegisterOffset.cmbmsc, 8), ("cmbsts", RegisterOffset.cmbsts, 4),
        ].map { ($0.0, UInt64($0.1), $0.2) }
        return rows.map { name, offset, size in
            name.padding(8) + ": " + String(read(Int(offset), size), radix: 16) + "\n"
        }.joined()
    }

    /// The live nvmefs mounts and their namespaces, a table like `nvme list`:
    /// mount, namespace, serial number, model, usage, LBA format, firmware
    /// revision (the controller's strings need the built-in host: "-"
    /// without it).
    public static func listMounts() -> String {
        var rows: [[String]] = [["Mount", "Namespace", "SN", "Model", "Usage", "Format", "FW Rev"]]
        for mount in MountRegistry.mounts() {
            let id = readBytes(mount + "/identify", count: 4096)
            func text(_ range: Range<Int>) -> String {
                guard let id, id.count >= range.upperBound else { return "-" }
                return String(decoding: id[range], as: UTF8.self).trimmingSpaces
            }
            let nsids = (listDirectory(mount + "/namespaces") ?? []).compactMap { UInt32($0) }.sorted()
            if nsids.isEmpty {
                rows.append([mount, "-", text(4..<24), text(24..<64), "-", "-", text(64..<72)])
            }
            for nsid in nsids {
                let info = Dictionary(
                    (MountRegistry.readFile(mount + "/namespaces/\(nsid)/info") ?? "").split(separator: "\n").compactMap { line in
                        line.firstIndex(of: ":").map { (String(line[..<$0]), String(line[line.index(after: $0)...]).trimmingSpaces) }
                    }, uniquingKeysWith: { a, _ in a })
                let lba = UInt64(info["lba size"] ?? "") ?? 0
                let usage = "\(decimal((UInt64(info["nuse"] ?? "") ?? 0) * lba)) / \(decimal((UInt64(info["nsze"] ?? "") ?? 0) * lba))"
                rows.append([mount, "\(nsid)", text(4..<24), text(24..<64), usage, "\(lba) B + \(info["ms"] ?? "0") B",
                             text(64..<72)])
            }
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        var lines = rows.map { row in row.enumerated().map { $1.padding(widths[$0]) }.joined(separator: " ") }
        lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: " "), at: 1)
        return lines.map { String($0.reversed().drop { $0 == " " }.reversed()) + "\n" }.joined()
    }

    /// Bytes in decimal units, as nvme list shows sizes ("1.07 GB").
    static func decimal(_ bytes: UInt64) -> String {
        var value = Double(bytes)
        var unit = 0
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        let hundredths = Int((value * 100).rounded()), fraction = hundredths % 100
        return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction) " + units[unit]
    }

    /// The first `count` bytes of a file, nil if it cannot be read.
    static func readBytes(_ path: String, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        return done == count ? out : nil
    }

    /// The names in a directory (not . and ..), nil if it cannot be read.
    static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

extension String {
    /// Without leading and trailing spaces and NULs (Identify's ASCII fields).
    var trimmingSpaces: String {
        let isPad: (Character) -> Bool = { $0 == " " || $0 == "\0" }
        return String(drop(while: isPad).reversed().drop(while: isPad).reversed())
    }
}
