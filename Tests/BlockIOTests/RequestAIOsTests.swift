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
    @Test(arguments: permutations([0, 1, 2, 3]))
    func emptyOnlyAfterTheLastAIOInAnyOrder(order: [Int]) {
        var r = RequestAIOs()
        #expect(r.isEmpty)
        let indices = (0..<4).map { _ in r.reserve() }
        #expect(Set(indices).count == 4)
        for (n, i) in indices.enumerated() { r.attach(AIOTicket(raw: UInt64(100 + n)), to: i) }
        #expect(r[indices[2]] == AIOTicket(raw: 102))
        for (step, position) in order.enumerated() {
            let last = r.finish(indices[position])
            #expect(last == (step == order.count - 1))
            #expect(r.isEmpty == last)
        }
    }

    @Test func attachAfterFinishDoesNotResurrect() {
        var r = RequestAIOs()
        let i = r.reserve()
        let last = r.finish(i)   // a synchronous completion inside submit
        #expect(last)
        r.attach(AIOTicket(raw: 5), to: i)
        #expect(r.isEmpty)
    }

    @Test func firstErrorIsKept() {
        var r = RequestAIOs()
        r.setError(.success)
        #expect(r.status == .success)
        r.setError(nvmeStatus(forFailed: .read, errno: EIO))
        r.setError(nvmeStatus(forFailed: .write, errno: EIO))
        #expect(r.status == NVMeStatus.unrecoveredReadError.withDNR)
        r.setError(.success)
        #expect(r.status == NVMeStatus.unrecoveredReadError.withDNR)
    }

    @Test func internalErrorReplacesOthers() {
        var r = RequestAIOs()
        r.setError(NVMeStatus.writeFault.withDNR)
        r.setError(NVMeStatus.internalError.withDNR)
        #expect(r.status == NVMeStatus.internalError.withDNR)
        r.setError(NVMeStatus.unrecoveredReadError.withDNR)
        #expect(r.status.kind == .internalError)
        r.reset()
        #expect(r.status == .success && r.isEmpty)
    }

    /// SPEC §5; NVMe 1.4 Figure 130 (media errors: 80h Write Fault,
    /// 81h Unrecovered Read Error) and Figure 128 (06h Internal Error).
    @Test(arguments: [
        (AIOOperation.read, UInt16(0x4281)),
        (.write, 0x4280),
        (.writeZeroes, 0x4280),
        (.flush, 0x4006),
        (.discard, 0x4006),
    ])
    func errnoToStatusTable(operation: AIOOperation, raw: UInt16) {
        for e in [EIO, ENOSPC, EBADF, ECANCELED] {
            let s = nvmeStatus(forFailed: operation, errno: e)
            #expect(s.raw == raw)
            #expect(s.dnr)
            #expect(!s.isSuccess)
        }
    }
}
