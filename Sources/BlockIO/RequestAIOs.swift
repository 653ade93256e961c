import NVMeSpec

/// The request side of SPEC §5: the list of AIOs a command has in flight, and
/// the status they have produced. Not thread-safe: the owner (the controller)
/// guards it with its own lock.
public struct RequestAIOs: Sendable {
    /// Tickets of AIOs submitted and not yet completed, keyed by a per-request index.
    public private(set) var outstanding: [Int: AIOTicket] = [:]
    /// The request's status so far. The first error is kept, except that an
    /// Internal Error replaces any other (QEMU "allow multiple aios per command").
    public private(set) var status: NVMeStatus = .success
    private var nextIndex = 0

    public init() {}

    public var isEmpty: Bool { outstanding.isEmpty }

    /// Reserves an index for an AIO about to be submitted.
    public mutating func reserve() -> Int {
        defer { nextIndex += 1 }
        outstanding[nextIndex] = AIOTicket(raw: UInt64.max)
        return nextIndex
    }

    /// Records the backend's ticket for a reserved AIO.
    public mutating func attach(_ ticket: AIOTicket, to index: Int) {
        if outstanding[index] != nil { outstanding[index] = ticket }
    }

    /// Removes a finished AIO; returns true when it was the last one.
    public mutating func finish(_ index: Int) -> Bool {
        outstanding[index] = nil
        return outstanding.isEmpty
    }

    /// Merges `new` into the request status per the engine rule.
    public mutating func setError(_ new: NVMeStatus) {
        guard !new.isSuccess else { return }
        if status.isSuccess || new.kind == .internalError { status = new }
    }

    /// Forgets the status (a fresh request in a reused slot).
    public mutating func reset() { self = RequestAIOs() }
}

/// The one place that maps a failed backend operation to an NVMe status
/// (SPEC §5): read → Unrecovered Read Error, write / write zeroes → Write
/// Fault, anything else → Internal Error. Media errors carry DNR as in QEMU.
public func nvmeStatus(forFailed operation: AIOOperation, errno: Int32) -> NVMeStatus {
    switch operation {
    case .read: return NVMeStatus.unrecoveredReadError.withDNR
    case .write, .writeZeroes: return NVMeStatus.writeFault.withDNR
    case .flush, .discard: return NVMeStatus.internalError.withDNR
    }
}
