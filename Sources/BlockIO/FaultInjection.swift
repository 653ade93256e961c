import Dispatch
import Synchronization

import Glibc

/// One fault-injection rule (CONTRACT §3 `faults`): backend I/O of some operation
/// types over a byte range fails with an errno or is delayed, N times or always.
public struct FaultRule: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case fail(errno: Int32)
        case delay(milliseconds: UInt64)
        /// A read that succeeds with one bit flipped: bit 0 of the first
        /// byte the rule's range covers in the AIO (silent corruption, for
        /// end-to-end protection to catch).
        case corrupt
    }
    public var id: Int = 0
    /// Operations matched; empty = every operation.
    public var operations: Set<AIOOperation>
    /// The area matched (data or metadata); nil = both.
    public var area: AIOArea?
    /// Bytes matched (overlap); nil = everywhere. A flush (length 0) matches any range.
    public var range: Range<UInt64>?
    public var action: Action
    /// Matches left; nil = always.
    public var remaining: Int?

    public init(operations: Set<AIOOperation>, area: AIOArea? = nil, range: Range<UInt64>?, action: Action, remaining: Int?) {
        self.operations = operations; self.area = area; self.range = range; self.action = action; self.remaining = remaining
    }

    /// `bytes` is the AIO's range in data bytes (a metadata AIO's LBAs
    /// converted by its backend's `MetadataGeometry`).
    public func matches(_ aio: AIO, area aioArea: AIOArea, bytes: Range<UInt64>?) -> Bool {
        if !operations.isEmpty && !operations.contains(aio.operation) { return false }
        if let area, area != aioArea { return false }
        guard let range, let bytes, !bytes.isEmpty else { return true }
        return bytes.lowerBound < range.upperBound && range.lowerBound < bytes.upperBound
    }
}

/// Where a namespace's metadata lies in its metadata backend: LBA n's
/// `ms` bytes at `base + n * ms`. Lets fault rules written in LBAs match
/// metadata AIOs.
public struct MetadataGeometry: Sendable, Hashable {
    public var base: UInt64
    public var ms: UInt64
    public var lbads: UInt8
    public init(base: UInt64, ms: UInt64, lbads: UInt8) { self.base = base; self.ms = ms; self.lbads = lbads }

    /// The data bytes of the LBAs a metadata range covers.
    public func dataBytes(offset: UInt64, length: UInt64) -> Range<UInt64> {
        guard ms > 0, offset >= base else { return 0..<0 }
        let first = (offset - base) / ms
        let end = (offset - base + length + ms - 1) / ms
        let shift = UInt64(lbads)
        let limit = UInt64.max >> shift
        return (min(first, limit) << shift)..<(min(end, limit) << shift)
    }
}

/// A thread-safe rule table; cheap to consult when empty.
public final class FaultInjector: Sendable {
    private let state = Locked<(rules: [FaultRule], nextID: Int)>(([], 1))
    private let active = Atomic<Bool>(false)

    public init() {}

    @discardableResult
    public func add(_ rule: FaultRule) -> Int {
        state.withLock { s in
            var r = rule
            r.id = s.nextID
            s.nextID += 1
            s.rules.append(r)
            active.store(true, ordering: .releasing)
            return r.id
        }
    }

    public func remove(id: Int) -> Bool {
        state.withLock { s in
            let before = s.rules.count
            s.rules.removeAll { $0.id == id }
            active.store(!s.rules.isEmpty, ordering: .releasing)
            return s.rules.count != before
        }
    }

    public func clear() {
        state.withLock { s in
            s.rules.removeAll()
            active.store(false, ordering: .releasing)
        }
    }

    public var rules: [FaultRule] { state.withLock { $0.rules } }

    /// True while any rule is installed (no lock taken).
    public var hasRules: Bool { active.load(ordering: .acquiring) }

    /// The first matching rule's action and the byte of the AIO its range starts
    /// at (0 without a range), consuming one use of the rule.
    public func match(_ aio: AIO, geometry: MetadataGeometry? = nil) -> (action: FaultRule.Action, at: UInt64)? {
        guard active.load(ordering: .acquiring) else { return nil }
        let area: AIOArea = geometry == nil ? .data : .metadata
        var bytes: Range<UInt64>?
        if aio.length > 0 {
            if let geometry {
                bytes = geometry.dataBytes(offset: aio.offset, length: aio.length)
            } else {
                let (end, overflow) = aio.offset.addingReportingOverflow(aio.length)
                bytes = aio.offset..<(overflow ? UInt64.max : end)
            }
        }
        return state.withLock { s in
            guard let i = s.rules.firstIndex(where: { $0.matches(aio, area: area, bytes: bytes) }) else { return nil }
            let action = s.rules[i].action
            var at: UInt64 = 0
            if let range = s.rules[i].range, let bytes, range.lowerBound > bytes.lowerBound {
                // Back from data bytes to the AIO's own bytes.
                let skipped = range.lowerBound - bytes.lowerBound
                at = geometry.map { (skipped >> UInt64($0.lbads)) * $0.ms } ?? skipped
            }
            if let left = s.rules[i].remaining {
                if left <= 1 { s.rules.remove(at: i) } else { s.rules[i].remaining = left - 1 }
                active.store(!s.rules.isEmpty, ordering: .releasing)
            }
            return (action, at)
        }
    }
}

/// Flips bit 0 of byte `at` of a scatter-gather list.
func flipBit(at: Int, in iov: [IOVector]) {
    var left = at
    for v in iov {
        if left < v.length {
            v.base.storeBytes(of: v.base.load(fromByteOffset: left, as: UInt8.self) ^ 1, toByteOffset: left, as: UInt8.self)
            return
        }
        left -= v.length
    }
}

/// Wraps a backend and applies a `FaultInjector`'s rules before the real I/O.
public final class FaultInjectingBackend: BlockBackend, @unchecked Sendable {
    public let inner: any BlockBackend
    public let injector: FaultInjector
    /// Delayed operations not yet handed to `inner`, by ticket. The injector's
    /// own tickets (delayed and failed operations) have the high bit set and
    /// come from one counter, so each names one operation.
    private let delayed = Locked<(items: [UInt64: @Sendable (Int32) -> Void], next: UInt64)>(([:], 1 << 63))
    private let queue = DispatchQueue(label: "nvmefs.faults", attributes: .concurrent)

    /// Set when `inner` holds a namespace's metadata (rules see the AIO's LBAs).
    public let metadataGeometry: MetadataGeometry?

    public init(inner: any BlockBackend, injector: FaultInjector, metadata: MetadataGeometry? = nil) {
        self.inner = inner
        self.injector = injector
        self.metadataGeometry = metadata
    }

    public var name: String { inner.name }
    public var size: UInt64 { inner.size }
    public var isReadOnly: Bool { inner.isReadOnly }

    public func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        guard let (action, at) = injector.match(aio, geometry: metadataGeometry) else { return inner.submit(aio, completion: completion) }
        switch action {
        case .corrupt:
            guard aio.operation == .read, at < aio.length else { return inner.submit(aio, completion: completion) }
            let iov = aio.iov
            return inner.submit(aio) { err in
                if err == 0 { flipBit(at: Int(at), in: iov) }
                completion(err)
            }
        case .fail(let errno):
            // Completed off the caller's thread, like a real failed I/O.
            // Not cancellable: `cancel` finds no delayed item for its ticket.
            let ticket = delayed.withLock { d -> UInt64 in
                defer { d.next += 1 }
                return d.next
            }
            queue.async { completion(errno) }
            return AIOTicket(raw: ticket)
        case .delay(let ms):
            let ticket = delayed.withLock { d -> UInt64 in
                let t = d.next
                d.next += 1
                d.items[t] = completion
                return t
            }
            queue.asyncAfter(deadline: .now() + .milliseconds(Int(ms))) { [self] in
                guard let done = delayed.withLock({ $0.items.removeValue(forKey: ticket) }) else { return }
                inner.submit(aio, completion: done)
            }
            return AIOTicket(raw: ticket)
        }
    }

    /// The inner backend's fast path while there is no rule at all; nil
    /// otherwise (`submit` then consults the rules, and consumes one use
    /// of the rule that applies).
    public func performImmediately(_ aio: AIO) -> Int32? {
        guard !injector.hasRules else { return nil }
        return inner.performImmediately(aio)
    }

    public func cancel(_ ticket: AIOTicket) -> Bool {
        if ticket.raw & (1 << 63) != 0 {
            guard let done = delayed.withLock({ $0.items.removeValue(forKey: ticket.raw) }) else { return false }
            queue.async { done(ECANCELED) }
            return true
        }
        return inner.cancel(ticket)
    }

    public func drainAndSync() {
        // Delayed operations are part of the in-flight I/O: wait for them to be handed over.
        while delayed.withLock({ !$0.items.isEmpty }) { usleep(1000) }
        inner.drainAndSync()
    }

    public func close() { inner.close() }
}
