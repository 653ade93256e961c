import BlockIO
import Glibc
import HostMemory
import Synchronization

/// The LBAs a harness input may write: the union of the ranges its write-type
/// commands address, per NSID (or all of a namespace once a command that may
/// rewrite it all, Format NVM, Dataset Management, Copy, was issued).
final class WritePermit: Sendable {
    private struct State { var ranges: [UInt32: [Range<UInt64>]] = [:]; var whole: Set<UInt32> = [] }
    private let state = Mutex(State())

    func allow(nsid: UInt32, lbas: Range<UInt64>) { state.withLock { $0.ranges[nsid, default: []].append(lbas) } }
    func allowWhole(nsid: UInt32) { state.withLock { _ = $0.whole.insert(nsid) } }
    func allowsAll(nsid: UInt32) -> Bool { state.withLock { $0.whole.contains(nsid) } }

    /// Whether every LBA of `lbas` lies in an allowed range.
    func allows(nsid: UInt32, lbas: Range<UInt64>) -> Bool {
        state.withLock { s in
            if s.whole.contains(nsid) { return true }
            var uncovered = [lbas]
            for r in s.ranges[nsid] ?? [] {
                uncovered = uncovered.flatMap { u -> [Range<UInt64>] in
                    guard u.overlaps(r) else { return [u] }
                    var rest: [Range<UInt64>] = []
                    if u.lowerBound < r.lowerBound { rest.append(u.lowerBound..<r.lowerBound) }
                    if r.upperBound < u.upperBound { rest.append(r.upperBound..<u.upperBound) }
                    return rest
                }
                if uncovered.isEmpty { return true }
            }
            return uncovered.isEmpty
        }
    }
}

/// An in-memory backend that completes every AIO inside `submit` (the
/// harness stays single-threaded and deterministic) and checks what the
/// controller asks of it: every AIO inside the namespace, vectors adding up
/// to the length and lying in host memory, and writes only to LBAs that a
/// write-type command of the input addressed.
final class FuzzBackend: BlockBackend, @unchecked Sendable {
    let size: UInt64
    let nsid: UInt32
    /// Bytes per LBA in this backend (the LBA data size, or the metadata size).
    let unit: UInt64
    let permit: WritePermit
    let memory: GuardedMemory
    let data: UnsafeMutableRawPointer
    var name: String { "fuzz" }
    var isReadOnly: Bool { false }

    init(size: UInt64, nsid: UInt32, unit: UInt64, permit: WritePermit, memory: GuardedMemory) {
        self.size = size; self.nsid = nsid; self.unit = unit; self.permit = permit; self.memory = memory
        data = .allocate(byteCount: Int(size), alignment: 4096)
        memset(data, 0, Int(size))
    }

    deinit { data.deallocate() }

    func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        let (end, overflow) = aio.offset.addingReportingOverflow(aio.length)
        guard !overflow, end <= size else {
            violation("\(aio.operation) AIO at \(aio.offset)+\(aio.length) outside namespace \(nsid) of \(size) bytes")
        }
        switch aio.operation {
        case .read, .write:
            guard totalLength(aio.iov) == Int(aio.length) else {
                violation("\(aio.operation) AIO of \(aio.length) bytes with vectors of \(totalLength(aio.iov))")
            }
        default: break
        }
        if aio.operation != .read && aio.operation != .flush && aio.length > 0 {
            let first = aio.offset / unit, last = (end + unit - 1) / unit
            guard permit.allows(nsid: nsid, lbas: first..<last) else {
                violation("\(aio.operation) AIO on namespace \(nsid) LBAs \(first)..<\(last) that no command addressed")
            }
        }
        var offset = Int(aio.offset)
        switch aio.operation {
        case .read:
            for piece in aio.iov {
                piece.base.copyMemory(from: data + offset, byteCount: piece.length)
                offset += piece.length
            }
        case .write:
            for piece in aio.iov {
                (data + offset).copyMemory(from: piece.base, byteCount: piece.length)
                offset += piece.length
            }
        case .writeZeroes, .discard:
            memset(data + offset, 0, Int(aio.length))
        case .flush:
            break
        }
        completion(0)
        return AIOTicket(raw: 0)
    }

    func cancel(_ ticket: AIOTicket) -> Bool { false }
    func drainAndSync() {}
    func close() {}
}
