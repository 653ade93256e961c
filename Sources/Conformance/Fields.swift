import Foundation

/// Named byte ranges of returned data structures, compared field by field.
public struct FieldTable: Sendable {
    public var fields: [(name: String, offset: Int, length: Int, text: Bool)]
    public var size: Int

    /// Records every field as `label.name`, then the bytes no field covers as `label.reserved`.
    public func observe(_ s: Session, _ label: String, _ bytes: [UInt8]) {
        var covered = [Bool](repeating: false, count: size)
        for f in fields {
            let end = min(f.offset + f.length, bytes.count)
            guard f.offset < end else { continue }
            for i in f.offset..<end { covered[i] = true }
            s.record(label + "." + f.name, Self.format(Array(bytes[f.offset..<end]), text: f.text))
        }
        var rest: [String] = []
        for i in 0..<min(size, bytes.count) where !covered[i] && bytes[i] != 0 { rest.append(String(format: "%d=%02x", i, bytes[i])) }
        s.record(label + ".reserved", rest.isEmpty ? "zero" : rest.prefix(24).joined(separator: " "))
    }

    public static func format(_ b: [UInt8], text: Bool) -> String {
        if text {
            var b = b, nuls = 0
            while b.last == 0 { b.removeLast(); nuls += 1 }
            let s = b.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined()
            return "\"\(s)\"" + (nuls > 0 ? " + \(nuls) NUL" : "")
        }
        if b.count <= 8 {
            var v: UInt64 = 0
            for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            return String(format: "0x%0\(b.count * 2)llx", v)
        }
        if b.allSatisfy({ $0 == 0 }) { return "zero x\(b.count)" }
        return "0x" + QTestProtocol.hexDigits(b.reversed())
    }

    static func t(_ list: [(String, Int, Int)], text: Set<String> = [], size: Int) -> FieldTable {
        FieldTable(fields: list.map { ($0.0, $0.1, $0.2, text.contains($0.0)) }, size: size)
    }

    /// Identify Controller (NVMe 1.4 §5.15.2.2, Figure 247).
    public static let identifyController = t([
        ("vid", 0, 2), ("ssvid", 2, 2), ("sn", 4, 20), ("mn", 24, 40), ("fr", 64, 8), ("rab", 72, 1), ("ieee", 73, 3),
        ("cmic", 76, 1), ("mdts", 77, 1), ("cntlid", 78, 2), ("ver", 80, 4), ("rtd3r", 84, 4), ("rtd3e", 88, 4),
        ("oaes", 92, 4), ("ctratt", 96, 4), ("rrls", 100, 2), ("cntrltype", 111, 1), ("fguid", 112, 16),
        ("crdt1", 128, 2), ("crdt2", 130, 2), ("crdt3", 132, 2), ("nvmsr", 253, 1), ("vwci", 254, 1), ("mec", 255, 1),
        ("oacs", 256, 2), ("acl", 258, 1), ("aerl", 259, 1), ("frmw", 260, 1), ("lpa", 261, 1), ("elpe", 262, 1),
        ("npss", 263, 1), ("avscc", 264, 1), ("apsta", 265, 1), ("wctemp", 266, 2), ("cctemp", 268, 2),
        ("mtfa", 270, 2), ("hmpre", 272, 4), ("hmmin", 276, 4), ("tnvmcap", 280, 16), ("unvmcap", 296, 16),
        ("rpmbs", 312, 4), ("edstt", 316, 2), ("dsto", 318, 1), ("fwug", 319, 1), ("kas", 320, 2), ("hctma", 322, 2),
        ("mntmt", 324, 2), ("mxtmt", 326, 2), ("sanicap", 328, 4), ("hmminds", 332, 4), ("hmmaxd", 336, 2),
        ("nsetidmax", 338, 2), ("endgidmax", 340, 2), ("anatt", 342, 1), ("anacap", 343, 1), ("anagrpmax", 344, 4),
        ("nanagrpid", 348, 4), ("pels", 352, 4), ("sqes", 512, 1), ("cqes", 513, 1), ("maxcmd", 514, 2),
        ("nn", 516, 4), ("oncs", 520, 2), ("fuses", 522, 2), ("fna", 524, 1), ("vwc", 525, 1), ("awun", 526, 2),
        ("awupf", 528, 2), ("nvscc", 530, 1), ("nwpc", 531, 1), ("acwu", 532, 2), ("sgls", 536, 4), ("mnan", 540, 4),
        ("subnqn", 768, 256), ("ioccsz", 1792, 4), ("iorcsz", 1796, 4), ("icdoff", 1800, 2), ("fcatt", 1802, 1),
        ("msdbd", 1803, 1), ("psd0", 2048, 32), ("psd1-31", 2080, 992), ("vs", 3072, 1024),
    ], text: ["sn", "mn", "fr", "subnqn"], size: 4096)

    /// Identify Namespace (NVMe 1.4 §5.15.2.1, Figure 245); bytes 74-80 are
    /// reserved in NVMe 1.4 and named for what QEMU's `nvme-ns` puts there
    /// (the Copy limits MSSRL, MCL, MSRC of later revisions).
    public static let identifyNamespace: FieldTable = {
        var l: [(String, Int, Int)] = [
            ("nsze", 0, 8), ("ncap", 8, 8), ("nuse", 16, 8), ("nsfeat", 24, 1), ("nlbaf", 25, 1), ("flbas", 26, 1),
            ("mc", 27, 1), ("dpc", 28, 1), ("dps", 29, 1), ("nmic", 30, 1), ("rescap", 31, 1), ("fpi", 32, 1),
            ("dlfeat", 33, 1), ("nawun", 34, 2), ("nawupf", 36, 2), ("nacwu", 38, 2), ("nabsn", 40, 2), ("nabo", 42, 2),
            ("nabspf", 44, 2), ("noiob", 46, 2), ("nvmcap", 48, 16), ("npwg", 64, 2), ("npwa", 66, 2), ("npdg", 68, 2),
            ("npda", 70, 2), ("nows", 72, 2), ("mssrl", 74, 2), ("mcl", 76, 4), ("msrc", 80, 1), ("anagrpid", 92, 4), ("nsattr", 99, 1), ("nvmsetid", 100, 2),
            ("endgid", 102, 2), ("nguid", 104, 16), ("eui64", 120, 8),
        ]
        for i in 0..<16 { l.append(("lbaf\(i)", 128 + 4 * i, 4)) }
        l.append(("vs", 384, 3712))
        return t(l, size: 4096)
    }()

    /// SMART / Health Information (NVMe 1.4 §5.14.1.2, Figure 194).
    public static let smart = t([
        ("critical_warning", 0, 1), ("composite_temperature", 1, 2), ("available_spare", 3, 1),
        ("available_spare_threshold", 4, 1), ("percentage_used", 5, 1), ("endurance_group_summary", 6, 1),
        ("data_units_read", 32, 16), ("data_units_written", 48, 16), ("host_read_commands", 64, 16),
        ("host_write_commands", 80, 16), ("controller_busy_time", 96, 16), ("power_cycles", 112, 16),
        ("power_on_hours", 128, 16), ("unsafe_shutdowns", 144, 16), ("media_errors", 160, 16),
        ("error_log_entries", 176, 16), ("wctemp_time", 192, 4), ("cctemp_time", 196, 4),
        ("temperature_sensors", 200, 16), ("tmt1_count", 216, 4), ("tmt2_count", 220, 4), ("tmt1_time", 224, 4),
        ("tmt2_time", 228, 4),
    ], size: 512)

    /// Firmware Slot Information (NVMe 1.4 §5.14.1.3, Figure 195).
    public static let firmwareSlot: FieldTable = {
        var l: [(String, Int, Int)] = [("afi", 0, 1)]
        for i in 1...7 { l.append(("frs\(i)", 8 * i, 8)) }
        return t(l, text: Set((1...7).map { "frs\($0)" }), size: 512)
    }()

    /// Error Information entry (NVMe 1.4 §5.14.1.1, Figure 193).
    public static let errorEntry = t([
        ("error_count", 0, 8), ("sqid", 8, 2), ("cid", 10, 2), ("status", 12, 2), ("parameter_error_location", 14, 2),
        ("lba", 16, 8), ("nsid", 24, 4), ("vs", 28, 1), ("trtype", 29, 1), ("command_specific", 32, 8),
        ("trtype_specific", 40, 2),
    ], size: 64)
}

extension Session {
    /// Records the nonzero dwords of a buffer as `label[index]` (e.g. the
    /// Commands Supported and Effects log); a dword zero on one device is absent there.
    public func observeDwords(_ label: String, _ bytes: [UInt8], names: (Int) -> String) {
        for i in 0..<(bytes.count / 4) {
            let v = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
            if v != 0 { record("\(label).\(names(i))", Self.hex32(v)) }
        }
    }
}
