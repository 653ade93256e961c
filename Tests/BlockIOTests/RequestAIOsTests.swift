import BlockIO
import Foundation
import NVMeSpec
import Testing

private func permutations(_ xs: [Int]) -> [[Int]] {
    if xs.count <= 1 { return [xs] }
    return xs.indices.flatMap { i -> [[Int]] in
        var rest = xs
        let x = rest.remove(at: i)
        return permutations(rest).map { [x] + $0 }
    }
}

@Suite struct RequestAIOsTests {
    let backend = TestBackend(size: 4096)

    @Test(arguments: permutations([0, 1, 2, 3]))
    func emptyOnlyAfterTheLastAIOInAnyOrder(order: [Int]) {
        var r = RequestAIOs()
        #expect(r.isEmpty)
        let indices = (0..<4).map { _ in r.reserve(on: backend) }
        #expect(Set(indices).count == 4)
        #expect(r[indices[2]] == .submitting)
        for (n, i) in indices.enumerated() { #expect(r.attach(AIOTicket(raw: UInt64(100 + n)), to: i) == nil) }
        #expect(r[indices[2]] == .submitted(AIOTicket(raw: 102)))
        for (step, position) in order.enumerated() {
            let last = r.complete(indices[position], operation: .read, errno: 0)
            #expect(last == (step == order.count - 1))
            #expect(r.isEmpty == last)
            #expect(r[indices[position]] == nil)
        }
    }

    @Test func attachAfterFinishDoesNotResurrect() {
        var r = RequestAIOs()
        let i = r.reserve(on: backend)
        let last = r.complete(i, operation: .read, errno: 0)   // a synchronous completion inside submit
        #expect(last)
        #expect(r.attach(AIOTicket(raw: 5), to: i) == nil)
        #expect(r.isEmpty)
    }

    /// Each cancellation names the backend that issued the ticket.
    @Test func cancellationsCarryTheirOwnBackend() {
        let other = TestBackend(size: 4096)
        var r = RequestAIOs()
        let a = r.reserve(on: backend), b = r.reserve(on: other), c = r.reserve(on: other)
        _ = r.attach(AIOTicket(raw: 7), to: a)
        _ = r.attach(AIOTicket(raw: 7), to: b)
        // c has no ticket yet: not cancellable until attached.
        let targets = r.cancel(with: .abortRequested)
        #expect(targets.count == 2)
        #expect(targets.contains { $0.backend === backend && $0.ticket.raw == 7 })
        #expect(targets.contains { $0.backend === other && $0.ticket.raw == 7 })
        // The late ticket is cancelled at its own backend when it arrives.
        let late = r.attach(AIOTicket(raw: 9), to: c)
        #expect(late?.backend === other && late?.ticket.raw == 9)
    }

    @Test func firstErrorIsKept() {
        var r = RequestAIOs()
        r.setError(.success)
        #expect(r.status == .success)
        r.setError(nvmeStatus(forFailed: .read, errno: EIO))
        r.setError(nvmeStatus(forFailed: .write, errno: EIO))
        #expect(r.status == NVMeStatus.unrecoveredReadError)
        r.setError(.success)
        #expect(r.status == NVMeStatus.unrecoveredReadError)
    }

    @Test func internalErrorReplacesOthers() {
        var r = RequestAIOs()
        r.setError(NVMeStatus.writeFault)
        r.setError(NVMeStatus.internalError)
        #expect(r.status == NVMeStatus.internalError)
        r.setError(NVMeStatus.unrecoveredReadError)
        #expect(r.status.kind == .internalError)
        r.reset()
        #expect(r.status == .success && r.isEmpty && r.cancelStatus == nil)
    }

    /// One row of the completion precedence table.
    struct PrecedenceRow: Sendable, CustomTestStringConvertible {
        var name: String
        /// (operation, errno) of each AIO, completed in this order.
        var aios: [(AIOOperation, Int32)]
        var cancel: NVMeStatus?
        var handler: NVMeStatus
        var expected: NVMeStatus
        var testDescription: String { name }
    }

    static let precedence: [PrecedenceRow] = [
        .init(name: "all succeed: handler status", aios: [(.read, 0), (.read, 0)], cancel: nil,
              handler: .success, expected: .success),
        .init(name: "handler error without AIO error", aios: [(.write, 0)], cancel: nil,
              handler: NVMeStatus.invalidField.withDNR, expected: NVMeStatus.invalidField.withDNR),
        .init(name: "AIO error beats handler status", aios: [(.read, EIO)], cancel: nil,
              handler: NVMeStatus.invalidField.withDNR, expected: NVMeStatus.unrecoveredReadError),
        .init(name: "first AIO error kept", aios: [(.write, EIO), (.read, EIO)], cancel: nil,
              handler: .success, expected: NVMeStatus.writeFault),
        .init(name: "internal error replaces an earlier error", aios: [(.read, EIO), (.flush, EIO)], cancel: nil,
              handler: .success, expected: NVMeStatus.internalError),
        .init(name: "internal error is not replaced", aios: [(.discard, EIO), (.write, EIO)], cancel: nil,
              handler: .success, expected: NVMeStatus.internalError),
        .init(name: "cancel beats success", aios: [(.read, 0)], cancel: .abortRequested,
              handler: .success, expected: .abortRequested),
        .init(name: "cancel beats AIO errors", aios: [(.read, EIO), (.flush, EIO)], cancel: .sqDeletion,
              handler: .success, expected: .sqDeletion),
        .init(name: "ECANCELED of a cancelled request is not an error", aios: [(.read, ECANCELED)],
              cancel: .abortRequested, handler: .success, expected: .abortRequested),
        .init(name: "ECANCELED without cancellation is an error", aios: [(.read, ECANCELED)], cancel: nil,
              handler: .success, expected: NVMeStatus.unrecoveredReadError),
    ]

    @Test(arguments: precedence)
    func completionPrecedence(row: PrecedenceRow) {
        var r = RequestAIOs()
        let indices = row.aios.map { _ in r.reserve(on: backend) }
        if let c = row.cancel { _ = r.cancel(with: c) }
        for (i, (op, err)) in zip(indices, row.aios) { _ = r.complete(i, operation: op, errno: err) }
        #expect(r.isEmpty)
        #expect(r.completionStatus(handler: row.handler) == row.expected)
    }

    @Test func firstCancellationWins() {
        var r = RequestAIOs()
        _ = r.reserve(on: backend)
        _ = r.cancel(with: .abortRequested)
        _ = r.cancel(with: .sqDeletion)
        #expect(r.completionStatus(handler: .success) == .abortRequested)
    }

    /// CONTRACT §5; NVMe 1.4 Figure 130 (media errors: 80h Write Fault,
    /// 81h Unrecovered Read Error) and Figure 128 (06h Internal Error);
    /// DNR clear, as QEMU.
    @Test(arguments: [
        (AIOOperation.read, UInt16(0x0281)),
        (.write, 0x0280),
        (.writeZeroes, 0x0280),
        (.flush, 0x0006),
        (.discard, 0x0006),
    ])
    func errnoToStatusTable(operation: AIOOperation, raw: UInt16) {
        for e in [EIO, ENOSPC, EBADF, ECANCELED] {
            let s = nvmeStatus(forFailed: operation, errno: e)
            #expect(s.raw == raw)
            #expect(!s.dnr)
            #expect(!s.isSuccess)
        }
    }
}
