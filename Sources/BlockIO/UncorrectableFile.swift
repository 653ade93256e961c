import Glibc

/// A set of logical blocks kept as sorted, disjoint, non-adjacent ranges:
/// the LBAs Write Uncorrectable marked (NVMe 1.4 §6.16). Empty costs one
/// branch to consult; otherwise a lookup is a binary search.
public struct LBARangeSet: Sendable, Equatable {
    /// Sorted by `start`; `end` exclusive; never overlapping or touching.
    public private(set) var ranges: [(start: UInt64, end: UInt64)] = []
    /// Blocks in the set.
    public private(set) var count: UInt64 = 0

    public init() {}

    /// A set of [start, end) ranges in any order (overlaps merge).
    public init<S: Sequence>(_ ranges: S) where S.Element == (start: UInt64, end: UInt64) {
        for r in ranges { insert(start: r.start, end: r.end) }
    }

    @inlinable public var isEmpty: Bool { count == 0 }

    public static func == (a: LBARangeSet, b: LBARangeSet) -> Bool {
        a.count == b.count && a.ranges.elementsEqual(b.ranges) { $0 == $1 }
    }

    /// Index of the first range whose end is past `lba`.
    private func firstEnding(after lba: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].end <= lba { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The lowest block of [start, end) in the set, nil when none is.
    public func firstMember(start: UInt64, end: UInt64) -> UInt64? {
        guard !isEmpty, start < end else { return nil }
        let i = firstEnding(after: start)
        guard i < ranges.count, ranges[i].start < end else { return nil }
        return max(ranges[i].start, start)
    }

    /// Adds [start, end). Returns true when the set changed.
    @discardableResult
    public mutating func insert(start: UInt64, end: UInt64) -> Bool {
        guard start < end else { return false }
        // Ranges touching [start, end) merge with it.
        let i = firstEnding(after: start == 0 ? 0 : start - 1)
        var j = i, lo = start, hi = end, removed: UInt64 = 0
        while j < ranges.count, ranges[j].start <= end {
            lo = min(lo, ranges[j].start); hi = max(hi, ranges[j].end)
            removed += ranges[j].end - ranges[j].start
            j += 1
        }
        let added = hi - lo - removed
        guard added > 0 else { return false }
        ranges.replaceSubrange(i..<j, with: [(lo, hi)])
        count += added
        return true
    }

    /// Removes [start, end). Returns true when the set changed.
    @discardableResult
    public mutating func remove(start: UInt64, end: UInt64) -> Bool {
        guard !isEmpty, start < end else { return false }
        let i = firstEnding(after: start)
        var j = i, kept: [(start: UInt64, end: UInt64)] = [], removed: UInt64 = 0
        while j < ranges.count, ranges[j].start < end {
            let r = ranges[j]
            if r.start < start { kept.append((r.start, start)) }
            if r.end > end { kept.append((end, r.end)) }
            removed += min(r.end, end) - max(r.start, start)
            j += 1
        }
        guard removed > 0 else { return false }
        ranges.replaceSubrange(i..<j, with: kept)
        count -= removed
        return true
    }

    public mutating func removeAll() { ranges.removeAll(); count = 0 }
}

/// The marks of Write Uncorrectable beside an image, `IMAGE.nvmefs-uc`
/// (README, "Write Uncorrectable"): a text file,
///
///     nvmefs-uncorrectable 1 lbads 9
///     SLBA NLB
///     ...
///
/// one line per range of marked LBAs in blocks of 2^lbads bytes, sorted,
/// decimal, NLB 1's based. No file: no marks. It is replaced whole
/// (written to `PATH.tmp`, fsync'd, renamed, the directory fsync'd) and
/// removed when no mark is left.
public final class UncorrectableFile: @unchecked Sendable {
    public static let suffix = ".nvmefs-uc"
    public static let magic = "nvmefs-uncorrectable 1"
    public let path: String
    public let readOnly: Bool

    public init(path: String, readOnly: Bool) { self.path = path; self.readOnly = readOnly }

    public static func path(forImage image: String) -> String { image + suffix }

    /// The text of `marks` in blocks of 2^lbads bytes.
    public static func render(_ marks: LBARangeSet, lbads: UInt8) -> String {
        var out = "\(magic) lbads \(lbads)\n"
        for r in marks.ranges { out += "\(r.start) \(r.end - r.start)\n" }
        return out
    }

    /// Parses `text`, converting to blocks of 2^lbads bytes: a block is
    /// marked when any byte of it was.
    public static func parse(_ text: String, lbads: UInt8) throws -> LBARangeSet {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first else { return LBARangeSet() }
        lines.removeFirst()
        let h = header.split(separator: " ")
        guard h.count == 4, h[0...1].joined(separator: " ") == magic, h[2] == "lbads",
              let recorded = UInt8(h[3]), (9...16).contains(recorded) else {
            throw UncorrectableFileError("not an nvmefs-uncorrectable 1 file (header \"\(header)\")")
        }
        var set = LBARangeSet()
        for (n, line) in lines.enumerated() {
            let f = line.split(separator: " ")
            guard f.count == 2, let slba = UInt64(f[0]), let nlb = UInt64(f[1]), nlb > 0,
                  slba.addingReportingOverflow(nlb).overflow == false,
                  (slba + nlb).leadingZeroBitCount > Int(recorded) else {
                throw UncorrectableFileError("line \(n + 2): \"\(line)\" is not SLBA NLB")
            }
            let first = (slba << UInt64(recorded)) >> UInt64(lbads)
            let endByte = (slba + nlb) << UInt64(recorded)
            let end = (endByte + (UInt64(1) << UInt64(lbads)) - 1) >> UInt64(lbads)
            set.insert(start: first, end: end)
        }
        return set
    }

    /// The recorded marks, in blocks of 2^lbads bytes (empty when no file).
    public func load(lbads: UInt8) throws -> LBARangeSet {
        let bytes: [UInt8]?
        do { bytes = try SystemCalls.readWholeFile(path) } catch {
            throw UncorrectableFileError(errnoDescription(error.errno))
        }
        guard let bytes else { return LBARangeSet() }
        return try Self.parse(String(decoding: bytes, as: UTF8.self), lbads: lbads)
    }

    /// Records `marks` durably (removes the file when they are empty).
    /// Blocks: call it off the controller's lock.
    /// - Returns: 0 or an errno.
    public func save(_ marks: LBARangeSet, lbads: UInt8) -> Int32 {
        guard !readOnly else { return EROFS }
        if marks.isEmpty {
            if unlink(path) != 0 && errno != ENOENT { return errno }
            return SystemCalls.syncDirectory(of: path)
        }
        return SystemCalls.replaceFile(path, with: Array(Self.render(marks, lbads: lbads).utf8),
                                       mode: SystemCalls.sidecarMode(path, suffix: Self.suffix))
    }
}

public struct UncorrectableFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
