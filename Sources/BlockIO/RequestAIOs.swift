import NVMeSpec

import Glibc

/// One backend operation to cancel: the backend that issued the ticket and
/// the ticket. A ticket means nothing to any other backend.
public struct AIOCancellation: Sendable {
    public let backend: any BlockBackend
    public let ticket: AIOTicket
    public init(backend: any BlockBackend, ticket: AIOTicket) { self.backend = backend; self.ticket = ticket }

    /// Asks the backend to cancel; see `BlockBackend.cancel`.
    @discardableResult public func perform() -> Bool { backend.cancel(ticket) }
}

/// The request side of the multi-AIO rule: the AIOs a command has in flight,
/// each with the backend it was submitted to, and the status they produced.
/// It is also the one place that decides a request's completion status:
///
/// 1. a cancellation (Abort, SQ deletion, reset) wins over everything;
/// 2. then the first failed AIO's status, except that an Internal Error
///    replaces any other AIO error (QEMU "allow multiple aios per command");
/// 3. then the status the command handler decided.
///
/// Not thread-safe: the owner (the controller) guards it with its own lock.
public struct RequestAIOs: Sendable {
    /// Where one AIO stands. Finished AIOs leave the list.
    public enum State: Sendable, Equatable {
        /// Reserved; the backend has not returned its ticket yet.
        case submitting
        /// Submitted; cancellable through the backend with this ticket.
        case submitted(AIOTicket)
    }

    private struct Entry {
        var index: Int
        var backend: any BlockBackend
        var state: State
    }

    /// AIOs submitted and not yet completed. A small array: commands have few
    /// AIOs, and this is the hot path.
    private var entries: [Entry] = []
    /// The AIO status so far: first error, Internal Error replaces any other.
    public private(set) var status: NVMeStatus = .success
    /// Set by the first cancellation; replaces every other status.
    public private(set) var cancelStatus: NVMeStatus?
    private var nextIndex = 0

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// True if an outstanding AIO was submitted to `backend` (Format NVM
    /// waits until no AIO of its namespace's backends is in flight).
    public func uses(_ backend: any BlockBackend) -> Bool { entries.contains { $0.backend === backend } }

    /// The state of an outstanding AIO; nil once it has finished (or never existed).
    public subscript(index: Int) -> State? { entries.first { $0.index == index }?.state }

    /// Reserves an index for an AIO about to be submitted to `backend`.
    public mutating func reserve(on backend: any BlockBackend) -> Int {
        defer { nextIndex += 1 }
        entries.append(Entry(index: nextIndex, backend: backend, state: .submitting))
        return nextIndex
    }

    /// Records the backend's ticket for a reserved AIO. Returns the
    /// cancellation to perform now when the request was cancelled before
    /// the ticket was known (that cancel could not reach this AIO), else nil;
    /// an AIO that already finished is ignored.
    public mutating func attach(_ ticket: AIOTicket, to index: Int) -> AIOCancellation? {
        guard let i = entries.firstIndex(where: { $0.index == index }) else { return nil }
        entries[i].state = .submitted(ticket)
        return cancelStatus == nil ? nil : AIOCancellation(backend: entries[i].backend, ticket: ticket)
    }

    /// Marks the request cancelled with `status` (the first cancellation
    /// wins) and returns the AIOs to cancel, each with its own backend. AIOs
    /// still `.submitting` are cancelled by `attach`.
    public mutating func cancel(with status: NVMeStatus) -> [AIOCancellation] {
        if cancelStatus == nil { cancelStatus = status }
        return entries.compactMap { e in
            if case .submitted(let t) = e.state { return AIOCancellation(backend: e.backend, ticket: t) }
            return nil
        }
    }

    /// An AIO finished with `errno` (0 = success): its failure, if any, is
    /// merged into the status (an ECANCELED of a cancelled request is the
    /// cancellation itself, not an error). Returns true when it was the last one.
    public mutating func complete(_ index: Int, operation: AIOOperation, errno: Int32) -> Bool {
        if let failure = failureStatus(operation: operation, errno: errno) { setError(failure) }
        if let i = entries.firstIndex(where: { $0.index == index }) { entries.remove(at: i) }
        return entries.isEmpty
    }

    /// The status a failed AIO contributes, or nil when it contributes none.
    public func failureStatus(operation: AIOOperation, errno: Int32) -> NVMeStatus? {
        if errno == 0 || (errno == ECANCELED && cancelStatus != nil) { return nil }
        return nvmeStatus(forFailed: operation, errno: errno)
    }

    /// Merges `new` into the AIO status: the first error is kept, except that
    /// an Internal Error replaces any other.
    public mutating func setError(_ new: NVMeStatus) {
        guard !new.isSuccess else { return }
        if status.isSuccess || new.kind == .internalError { status = new }
    }

    /// The status the request completes with, given the status its handler
    /// decided: cancellation, else the AIO error, else `handler`.
    public func completionStatus(handler: NVMeStatus) -> NVMeStatus {
        if let cancelStatus { return cancelStatus }
        if !status.isSuccess { return status }
        return handler
    }

    /// Forgets everything (a fresh request in a reused slot), keeping capacity.
    public mutating func reset() {
        entries.removeAll(keepingCapacity: true)
        status = .success
        cancelStatus = nil
        nextIndex = 0
    }
}

/// The one place that maps a failed backend operation to an NVMe status:
/// read → Unrecovered Read Error, write / write zeroes → Write Fault,
/// anything else → Internal Error. DNR stays clear, as in QEMU: a host may
/// retry, and a fault injected N times lets the N+1st attempt succeed.
public func nvmeStatus(forFailed operation: AIOOperation, errno: Int32) -> NVMeStatus {
    switch operation {
    case .read: return .unrecoveredReadError
    case .write, .writeZeroes: return .writeFault
    case .flush, .discard: return .internalError
    }
}
