import Foundation

/// One thing a sequence saw on a device: a completion's status or DW0, a
/// register value, a field of returned data. `key` is unique within a scenario.
public struct Observation: Equatable, Sendable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) { self.key = key; self.value = value }
}

/// One observation on which the devices disagree.
public struct Difference: Equatable, Sendable {
    public var scenario: String
    public var key: String
    /// nil: the device did not produce this observation.
    public var qemu: String?
    public var nvmefs: String?
    /// The identifier of the docs/CONFORMANCE.md row that declares it deliberate.
    public var deliberate: String?
    public var path: String { scenario + "/" + key }
    public init(scenario: String, key: String, qemu: String?, nvmefs: String?, deliberate: String? = nil) {
        self.scenario = scenario; self.key = key; self.qemu = qemu; self.nvmefs = nvmefs; self.deliberate = deliberate
    }
}

public enum ObservationDiff {
    /// Pairs the observations by key (in the order first seen, QEMU's first)
    /// and returns the number compared and the differences.
    public static func diff(scenario: String, qemu: [Observation], nvmefs: [Observation],
                            table: DeliberateTable) -> (compared: Int, differences: [Difference]) {
        var q: [String: String] = [:], n: [String: String] = [:]
        var order: [String] = []
        for o in qemu where q[o.key] == nil { q[o.key] = o.value; order.append(o.key) }
        for o in nvmefs where n[o.key] == nil { n[o.key] = o.value; if q[o.key] == nil { order.append(o.key) } }
        var out: [Difference] = []
        for k in order where q[k] != n[k] {
            var d = Difference(scenario: scenario, key: k, qemu: q[k], nvmefs: n[k])
            d.deliberate = table.match(d.path)
            out.append(d)
        }
        return (order.count, out)
    }
}

/// The deliberate differences of docs/CONFORMANCE.md: every markdown table row
/// whose first cell is an identifier `D-...` and whose second cell holds one
/// or more patterns (in backquotes, separated by spaces or commas) over
/// `scenario/observation` paths; `*` matches any run of characters, `?` one.
public struct DeliberateTable: Sendable {
    public struct Row: Sendable, Equatable {
        public var id: String
        public var patterns: [String]
        public init(id: String, patterns: [String]) { self.id = id; self.patterns = patterns }
    }
    public var rows: [Row]

    public init(rows: [Row] = []) { self.rows = rows }

    public init(markdown: String) {
        var rows: [Row] = []
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("|") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2 else { continue }
            let id = cells[0].replacingOccurrences(of: "`", with: "")
            guard id.hasPrefix("D-"), id.count > 2,
                  id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else { continue }
            let patterns = cells[1].replacingOccurrences(of: "`", with: " ")
                .split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard !patterns.isEmpty else { continue }
            rows.append(Row(id: id, patterns: patterns))
        }
        self.rows = rows
    }

    /// The first row whose pattern matches `path`.
    public func match(_ path: String) -> String? {
        for r in rows where r.patterns.contains(where: { Self.glob($0, path) }) { return r.id }
        return nil
    }

    public static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) { pi += 1; ti += 1 }
            else if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
