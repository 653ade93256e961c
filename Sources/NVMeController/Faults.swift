import BlockIO

import Glibc

/// A malformed `faults` line; the description is one line naming the problem.
public struct FaultSpecError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// The `faults` file grammar (CONTRACT §3), one rule per line:
///
///     NSID OP LBAS ACTION [COUNT]
///
/// - NSID: a namespace id, or `*` for every namespace
/// - OP: read | write | flush | write-zeroes | discard | any, optionally
///   followed by `:data` or `:metadata` to match only the AIOs on the
///   namespace's image or only those on its metadata (docs/METADATA.md);
///   without it a rule matches both
/// - LBAS: `all`, `N`, `N-M` (inclusive) or `N+COUNT`
/// - ACTION: an errno name (`EIO`, `ENOSPC`, ...) or number, `delay=MS`, or
///   `corrupt` (reads only: the read succeeds with bit 0 of the first byte
///   of the rule's LBAs flipped — silent corruption for PI to catch)
/// - COUNT: `once`, `times=N` or `always` (the default)
///
/// Example: `1 read 0-1023 EIO times=2`.
enum FaultGrammar {
    static let errnoNames: [(String, Int32)] = [
        ("EIO", EIO), ("ENOSPC", ENOSPC), ("EROFS", EROFS), ("EINVAL", EINVAL), ("ENOMEM", ENOMEM),
        ("EAGAIN", EAGAIN), ("EBADF", EBADF), ("EPERM", EPERM), ("EACCES", EACCES), ("ENODATA", ENODATA),
        ("ETIMEDOUT", ETIMEDOUT), ("ECANCELED", ECANCELED), ("EFBIG", EFBIG), ("EDQUOT", EDQUOT), ("ENXIO", ENXIO),
    ]
    static let operations: [(String, Set<AIOOperation>)] = [
        ("read", [.read]), ("write", [.write]), ("flush", [.flush]), ("write-zeroes", [.writeZeroes]),
        ("discard", [.discard]), ("any", []),
    ]

    static func number(_ s: Substring) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
        return UInt64(s)
    }

    struct Parsed {
        var nsid: UInt32?      // nil = every namespace
        var operations: Set<AIOOperation>
        var area: AIOArea?
        var lbas: ClosedRange<UInt64>?
        var action: FaultRule.Action
        var remaining: Int?
    }

    static func parse(_ line: String) throws(FaultSpecError) -> Parsed {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 4 || words.count == 5 else {
            throw FaultSpecError("expected 'NSID OP LBAS ACTION [COUNT]', got \(words.count) words")
        }
        var nsid: UInt32?
        if words[0] != "*" {
            guard let n = number(words[0]), n >= 1, n <= UInt64(UInt32.max) else { throw FaultSpecError("bad namespace id '\(words[0])'") }
            nsid = UInt32(n)
        }
        let opWords = words[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let ops = operations.first(where: { $0.0 == opWords[0] })?.1 else {
            throw FaultSpecError("bad operation '\(words[1])' (read, write, flush, write-zeroes, discard, any; :data or :metadata after it)")
        }
        var area: AIOArea?
        if opWords.count == 2 {
            guard let a = AIOArea.allCases.first(where: { $0.description == opWords[1] }) else {
                throw FaultSpecError("bad area '\(opWords[1])' in '\(words[1])' (data or metadata)")
            }
            area = a
        }
        var lbas: ClosedRange<UInt64>?
        let r = words[2]
        if r != "all" {
            if let dash = r.firstIndex(of: "-"), let a = number(r[..<dash]), let b = number(r[r.index(after: dash)...]), a <= b {
                lbas = a...b
            } else if let plus = r.firstIndex(of: "+"), let a = number(r[..<plus]), let n = number(r[r.index(after: plus)...]), n >= 1,
                      a <= UInt64.max - (n - 1) {
                lbas = a...(a + n - 1)
            } else if let a = number(r) {
                lbas = a...a
            } else {
                throw FaultSpecError("bad LBA range '\(r)' (all, N, N-M or N+COUNT)")
            }
        }
        let a = words[3]
        let action: FaultRule.Action
        if a.hasPrefix("delay=") {
            guard let ms = number(a.dropFirst(6)), ms <= 600_000 else { throw FaultSpecError("bad delay '\(a)' (milliseconds, at most 600000)") }
            action = .delay(milliseconds: ms)
        } else if a == "corrupt" {
            guard ops == [.read] else { throw FaultSpecError("corrupt applies to reads only (OP read)") }
            action = .corrupt
        } else if let e = errnoNames.first(where: { $0.0 == a })?.1 {
            action = .fail(errno: e)
        } else if let n = number(a), n >= 1, n < 4096 {
            action = .fail(errno: Int32(n))
        } else {
            throw FaultSpecError("bad action '\(a)' (an errno such as EIO, delay=MS or corrupt)")
        }
        var remaining: Int?
        if words.count == 5 {
            let c = words[4]
            if c == "always" { remaining = nil }
            else if c == "once" { remaining = 1 }
            else if c.hasPrefix("times="), let n = number(c.dropFirst(6)), n >= 1, n <= 1_000_000_000 { remaining = Int(n) }
            else { throw FaultSpecError("bad count '\(c)' (once, times=N or always)") }
        }
        return Parsed(nsid: nsid, operations: ops, area: area, lbas: lbas, action: action, remaining: remaining)
    }

    static func format(nsid: UInt32, lbads: UInt8, rule: FaultRule) -> String {
        let op = (operations.first(where: { $0.1 == rule.operations })?.0 ?? "any") + (rule.area.map { ":\($0)" } ?? "")
        var lbas = "all"
        if let r = rule.range {
            let first = r.lowerBound >> UInt64(lbads)
            let last = (r.upperBound - 1) >> UInt64(lbads)
            lbas = first == last ? "\(first)" : "\(first)-\(last)"
        }
        let action: String
        switch rule.action {
        case .fail(let e): action = errnoNames.first(where: { $0.1 == e })?.0 ?? "\(e)"
        case .delay(let ms): action = "delay=\(ms)"
        case .corrupt: action = "corrupt"
        }
        let count = rule.remaining.map { "times=\($0)" } ?? "always"
        return "\(nsid) \(op) \(lbas) \(action) \(count) # id \(rule.id)"
    }
}

extension NVMeController {
    /// Adds a fault rule from one `faults` line; returns the rule id (the
    /// first one when `*` adds a rule to every namespace).
    @discardableResult
    public func addFault(_ line: String) throws(FaultSpecError) -> Int {
        let p = try FaultGrammar.parse(line.trimmingCharacters(in: " \t\n"))
        // The namespace tables change under the lock (Namespace Attachment
        // and Management): look them up under it.
        let targets: [Namespace] = lock.withLock {
            if let nsid = p.nsid { return namespace(nsid).map { [$0] } ?? [] }
            return namespaces
        }
        if let nsid = p.nsid, targets.isEmpty { throw FaultSpecError("no namespace \(nsid)") }
        var first = 0
        for ns in targets {
            var range: Range<UInt64>?
            if let l = p.lbas {
                let (nsze, lbads) = lock.withLock { (ns.nsze, ns.lbads) }
                guard l.lowerBound < nsze else { throw FaultSpecError("LBA \(l.lowerBound) is past the end of namespace \(ns.nsid) (\(nsze) blocks)") }
                let end = min(l.upperBound, nsze - 1) + 1
                range = (l.lowerBound << UInt64(lbads))..<(end << UInt64(lbads))
            }
            let id = ns.faults.add(FaultRule(operations: p.operations, area: p.area, range: range, action: p.action, remaining: p.remaining))
            if first == 0 { first = id }
        }
        logger.info("fault rule added: \(line.trimmingCharacters(in: " \t\n"))")
        return first
    }

    public func clearFaults() {
        for ns in lock.withLock({ namespaces }) { ns.faults.clear() }
    }

    /// Every rule in canonical form, namespace by namespace.
    public func faultLines() -> [String] {
        let shifts = lock.withLock { namespaces.map { ($0, $0.lbads) } }
        return shifts.flatMap { ns, lbads in ns.faults.rules.map { FaultGrammar.format(nsid: ns.nsid, lbads: lbads, rule: $0) } }
    }
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
