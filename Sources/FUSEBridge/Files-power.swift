import Glibc
import NVMeController

/// `power` (with `--vwc`; docs/WRITE-CACHE.md): a sudden power loss on
/// demand, and what the last one did.
enum PowerFiles {
    static func power(_ d: DeviceContext) -> Node {
        .file("power", about: "power control: write \"cut\" (every unflushed write lost) or \"cut seed=S [torn]\" "
                + "(a seeded subset survives, torn within the atomicity); read: the last cut",
              GeneratedFile(mode: 0o644, text: { describe(d.controller) }, store: { text throws(FileError) in
                  guard let (seed, torn) = parse(text) else {
                      throw d.refuse("power", .invalid, "'\(Text.trim(Substring(text)))': expected \"cut\" or \"cut seed=S [torn]\"")
                  }
                  d.controller.powerCut(seed: seed, torn: torn)
              }))
    }

    /// "cut", "cut seed=S" or "cut seed=S torn" (one line); nil otherwise.
    static func parse(_ text: String) -> (seed: UInt64?, torn: Bool)? {
        let words = Text.trim(Substring(text)).split(separator: " ", omittingEmptySubsequences: true)
        guard words.first == "cut", words.count <= 3, !text.dropLast(text.hasSuffix("\n") ? 1 : 0).contains("\n") else { return nil }
        var seed: UInt64?
        var torn = false
        for w in words.dropFirst() {
            if w.hasPrefix("seed="), seed == nil, let s = UInt64(w.dropFirst(5)) {
                seed = s
            } else if w == "torn", !torn {
                torn = true
            } else {
                return nil
            }
        }
        // Tearing picks pieces at random: it needs a seed.
        if torn && seed == nil { return nil }
        return (seed, torn)
    }

    static func describe(_ controller: NVMeController) -> String {
        let counters = controller.powerCounters
        var rows: [(String, String)] = [("state", "on"), ("power cycles", "\(counters.powerCycles)"),
                                        ("unsafe shutdowns", "\(counters.unsafeShutdowns)")]
        if let r = controller.lastPowerCutReport {
            var t = time_t(r.time)
            var tm = Glibc.tm()
            gmtime_r(&t, &tm)
            var buf = [CChar](repeating: 0, count: 32)
            strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &tm)
            let stamp = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            rows += [("last cut", stamp), ("seed", r.seed.map { "\($0)" } ?? "none (every unflushed write lost)"),
                     ("torn", Text.yesNo(r.torn)), ("writes dropped", "\(r.writesDropped)"),
                     ("writes kept", "\(r.writesKept)"), ("writes torn", "\(r.writesTorn)"),
                     ("bytes dropped", "\(r.bytesDropped)"), ("bytes kept", "\(r.bytesKept)")]
        } else {
            rows.append(("last cut", "never"))
        }
        return rows.map { "\($0.0): \($0.1)\n" }.joined()
    }
}
