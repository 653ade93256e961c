/// SplitMix64: a small seeded generator, the same sequence on every
/// platform: a power cut with a seed keeps the same writes on every run (and
/// the conformance run's random sequences repeat).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// What a write may lose at a power cut (NVMe 1.4 §6.4, atomic operations):
/// a write that lies within one power-fail atomic unit is all-or-nothing;
/// a larger one may be torn, at the unit's granularity.
public struct PowerFailAtomicity: Sendable, Equatable {
    /// Logical blocks of the atomic unit (AWUPF or NAWUPF, plus 1).
    public var unitBlocks: UInt64
    /// Blocks between atomic boundaries (NABSPF + 1) and the first
    /// boundary's LBA (NABO); 0: no boundaries.
    public var boundaryBlocks: UInt64
    public var boundaryOffset: UInt64
    /// Logical block size, log2.
    public var lbads: UInt8

    public init(unitBlocks: UInt64, boundaryBlocks: UInt64 = 0, boundaryOffset: UInt64 = 0, lbads: UInt8) {
        self.unitBlocks = max(unitBlocks, 1)
        self.boundaryBlocks = boundaryBlocks
        self.boundaryOffset = boundaryOffset
        self.lbads = lbads
    }

    /// The pieces [start, end) (in blocks) a write of [slba, slba + nlb)
    /// may tear into: one piece when it is atomic, else pieces of one unit
    /// (aligned to the boundaries when there are some).
    public func pieces(slba: UInt64, nlb: UInt64) -> [(UInt64, UInt64)] {
        let end = slba + nlb
        if boundaryBlocks == 0 {
            if nlb <= unitBlocks { return [(slba, end)] }
            return stride(from: slba, to: end, by: Int(unitBlocks)).map { ($0, min($0 + unitBlocks, end)) }
        }
        // Boundaries at boundaryOffset + k * boundaryBlocks; a unit never crosses one.
        var out: [(UInt64, UInt64)] = []
        var s = slba
        while s < end {
            let rel = s >= boundaryOffset ? (s - boundaryOffset) % boundaryBlocks : boundaryBlocks - (boundaryOffset - s) % boundaryBlocks
            let toBoundary = rel == 0 ? boundaryBlocks : boundaryBlocks - rel
            let e = min(end, s + min(unitBlocks, toBoundary))
            out.append((s, e))
            s = e
        }
        return out
    }
}

/// The outcome of a power cut for one namespace's dirty extents.
public struct PowerCutSelection: Sendable {
    /// The bytes that reach the image anyway.
    public var kept: [CacheExtent] = []
    /// Writes (by sequence) lost whole, kept whole, and torn.
    public var writesDropped = 0
    public var writesKept = 0
    public var writesTorn = 0
    public var bytesDropped: UInt64 = 0
    public var bytesKept: UInt64 = 0

    public init() {}

    /// Decides the fate of every unflushed write in `dirty`. Without a
    /// generator every write is lost. With one, each write (in arrival
    /// order) is kept or lost whole; with `torn`, a write larger than the
    /// atomic unit may instead be torn: each of its atomic pieces kept or
    /// lost on its own. Any such subset is a state a drive without
    /// ordering guarantees for unflushed writes could leave (§6.4).
    public static func select(_ dirty: [CacheExtent], generator: inout SeededGenerator?, torn: Bool,
                              atomicity: PowerFailAtomicity) -> PowerCutSelection {
        var result = PowerCutSelection()
        // One draw per write, in arrival order; the write's pieces in offset order.
        var bySequence: [UInt64: [CacheExtent]] = [:]
        for e in dirty { bySequence[e.sequence, default: []].append(e) }
        for sequence in bySequence.keys.sorted() {
            let extents = bySequence[sequence]!
            let bytes = extents.reduce(UInt64(0)) { $0 + UInt64($1.length) }
            guard var g = generator else {
                result.writesDropped += 1
                result.bytesDropped += bytes
                continue
            }
            defer { generator = g }
            let lbads = UInt64(atomicity.lbads)
            let units = extents.flatMap { e in
                atomicity.pieces(slba: e.offset >> lbads, nlb: UInt64(e.length) >> lbads).map { e.slice($0.0 << lbads, $0.1 << lbads) }
            }
            let choice = g.next() % (torn && units.count > 1 ? 3 : 2)
            switch choice {
            case 0:
                result.writesDropped += 1
                result.bytesDropped += bytes
            case 1:
                result.writesKept += 1
                result.bytesKept += bytes
                result.kept += extents
            default:
                result.writesTorn += 1
                for u in units {
                    if g.next() & 1 == 0 {
                        result.bytesDropped += UInt64(u.length)
                    } else {
                        result.bytesKept += UInt64(u.length)
                        result.kept.append(u)
                    }
                }
            }
        }
        return result
    }
}
