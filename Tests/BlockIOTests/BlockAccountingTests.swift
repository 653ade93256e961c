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

    /// Threads account on the shard of their CPU (and may start on one and
    /// end on another): the sums are exact, reads meanwhile see sane values,
    /// and a reset keeps what is in flight.
    @Test func shardsSumExactlyUnderConcurrency() {
        let acct = BlockAccounting()
        let held = acct.start(.write, bytes: 1)
        let threads = 4, perThread = 20_000
        DispatchQueue.concurrentPerform(iterations: threads + 1) { t in
            if t == threads {
                for _ in 0..<200 { #expect(acct.stats(for: .read).ops <= UInt64(threads * perThread)) }
                return
            }
            for i in 0..<perThread {
                let c = acct.start(.read, bytes: 512)
                if i % 7 == 0 { sched_yield() }   // moves threads between CPUs now and then
                if i % 100 == 0 { acct.failed(c) } else { acct.done(c) }
            }
        }
        let s = acct.stats(for: .read)
        let failed = UInt64(threads * (perThread / 100))
        #expect(s.ops == UInt64(threads * perThread) - failed)
        #expect(s.failed == failed)
        #expect(s.bytes == s.ops * 512)
        #expect(s.inFlight == 0)
        acct.reset()
        #expect(acct.stats(for: .read) == BlockAccounting.OperationStats())
        #expect(acct.stats(for: .write).inFlight == 1)
        acct.done(held)
        #expect(acct.stats(for: .write).inFlight == 0 && acct.stats(for: .write).ops == 1)
    }
}

/// The controller's lock: exclusive mode excludes every shared holder, on
/// any shard.
@Suite struct SharedExclusiveLockTests {
    final class Probe: @unchecked Sendable {
        let lock = SharedExclusiveLock(shards: 4)
        let guardLock = ConditionLock()
        var inside = 0        // guardLock
        var violations = 0    // guardLock
        var exclusiveCount = 0  // the lock, exclusive
    }

    @Test func exclusiveExcludesEverySharedHolder() {
        let p = Probe()
        DispatchQueue.concurrentPerform(iterations: 5) { t in
            for i in 0..<2_000 {
                if t == 4 {
                    p.lock.withLock {
                        p.guardLock.withLock { if p.inside != 0 { p.violations += 1 } }
                        p.exclusiveCount += 1
                    }
                } else {
                    p.lock.lockShared(t + i)
                    p.guardLock.withLock { p.inside += 1 }
                    if i % 50 == 0 { usleep(10) }
                    p.guardLock.withLock { p.inside -= 1 }
                    p.lock.unlockShared(t + i)
                }
            }
        }
        p.guardLock.withLock {
            #expect(p.violations == 0)
            #expect(p.inside == 0)
        }
        #expect(p.lock.withLock { p.exclusiveCount } == 2_000)
    }
}
