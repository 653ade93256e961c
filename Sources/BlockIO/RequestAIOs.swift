import NVMeSpec

/// The request side of SPEC §5: the list of AIOs a command has in flight, and
/// the status they have produced. Not thread-safe: the owner (the controller)
/// guards it with its own lock.
public struct RequestAIOs: Sendable {
    /// AIOs submitted and not yet completed: (per-request index, backend
    /// ticket). A small array: commands have few AIOs, and this is the hot path.
    private var entries: [(index: Int, ticket: AIOTicket)] = []
    /// The request's status so far. The first error is kept, except that an
    /// Internal Error replaces any other (QEMU "allow multiple aios per command").
    public private(set) var status: NVMeStatus = .success
    private var nextIndex = 0

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// The ticket of an outstanding AIO (UInt64.max while not yet attached).
    public subscript(index: Int) -> AIOTicket? { entries.first { $0.index == index }?.ticket }

    /// Tickets of the outstanding AIOs that have been attached (cancellable ones).
    public var attachedTickets: [AIOTicket] { entries.compactMap { $0.ticket.raw == UInt64.max ? nil : $0.ticket } }

    /// Reserves an index for an AIO about to be submitted.
    public mutating func reserve() -> Int {
        defer { nextIndex += 1 }
        entries.append((nextIndex, AIOTicket(raw: UInt64.max)))
        return nextIndex
    }

    /// Records the backend's ticket for a reserved AIO (ignored if it already finished).
    public mutating func attach(_ ticket: AIOTicket, to index: Int) {
        if let i = entries.firstIndex(where: { $0.index == index }) { entries[i].ticket = ticket }
    }

    /// Removes a finished AIO; returns true when it was the last one.
    public mutating func finish(_ index: Int) -> Bool {
        if let i = entries.firstIndex(where: { $0.index == index }) { entries.remove(at: i) }
        return entries.isEmpty
    }

    /// Merges `new` into the request status per the engine rule.
    public mutating func setError(_ new: NVMeStatus) {
        guard !new.isSuccess else { return }
        if status.isSuccess || new.kind == .internalError { status = new }
    }

    /// Forgets everything (a fresh request in a reused slot), keeping capacity.
    public mutating func reset() {
        entries.removeAll(keepingCapacity: true)
        status = .success
        nextIndex = 0
    }
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
