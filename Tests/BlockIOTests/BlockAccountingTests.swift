import BlockIO
import Foundation
import Testing

@Suite struct BlockAccountingTests {
    @Test func doneCountsOpsBytesAndLatency() {
        let acct = BlockAccounting()
        let cookie = acct.start(.read, bytes: 4096)
        #expect(acct.stats(for: .read).inFlight == 1)
        usleep(2000)
        acct.done(cookie)
        let quick = acct.start(.read, bytes: 512)
        acct.done(quick)
        let s = acct.snapshot()[.read]
        #expect(s.ops == 2)
        #expect(s.bytes == 4608)
        #expect(s.inFlight == 0)
        #expect(s.failed == 0)
        #expect(s.maxLatencyNanoseconds >= 2_000_000)
        #expect(s.totalLatencyNanoseconds >= s.maxLatencyNanoseconds)
        #expect(s.totalLatencyNanoseconds - s.maxLatencyNanoseconds <= s.maxLatencyNanoseconds)
        #expect(acct.snapshot()[.write] == BlockAccounting.OperationStats())
    }

    @Test func failedAndInvalidAreSeparate() {
        let acct = BlockAccounting()
        let w = acct.start(.write, bytes: 100)
        let f = acct.start(.flush, bytes: 0)
        #expect(acct.stats(for: .write).inFlight == 1)
        acct.failed(w)
        acct.invalid(.write)
        acct.invalid(.write)
        acct.done(f)
        let s = acct.snapshot()
        #expect(s[.write].failed == 1)
        #expect(s[.write].invalid == 2)
        #expect(s[.write].ops == 0 && s[.write].bytes == 0 && s[.write].inFlight == 0)
        #expect(s[.write].totalLatencyNanoseconds == 0)
        #expect(s[.flush].ops == 1 && s[.flush].failed == 0)
        acct.reset()
        #expect(acct.snapshot()[.write] == BlockAccounting.OperationStats())
    }

    @Test func concurrentUpdatesAreNotLost() {
        let acct = BlockAccounting()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            let op: AIOOperation = t % 2 == 0 ? .read : .write
            for _ in 0..<10_000 { acct.done(acct.start(op, bytes: 1)) }
        }
        let s = acct.snapshot()
        #expect(s[.read].ops == 20_000 && s[.read].bytes == 20_000 && s[.read].inFlight == 0)
        #expect(s[.write].ops == 20_000 && s[.write].inFlight == 0)
    }
}
