import BlockIO
import Foundation
import Testing

@Suite struct TestBackendTests {
    private func read(_ b: TestBackend, _ offset: UInt64, _ n: Int, key: Int, _ c: Completions, _ buffer: Buffer) {
        b.submit(AIO(operation: .read, offset: offset, length: UInt64(n), iov: [IOVector(base: buffer.base, length: n)]),
                 completion: c.handler(key))
    }

    @Test func readsAndWritesTheByteArray() {
        let b = TestBackend(contents: pattern(8192))
        let c = Completions()
        let out = Buffer(bytes: [1, 2, 3, 4, 5])
        b.submit(AIO(operation: .write, offset: 100, length: 5, iov: out.iov(split: [2, 3])), completion: c.handler(0))
        c.wait(for: 1)
        let back = Buffer(count: 10)
        read(b, 98, 10, key: 1, c, back)
        c.wait(for: 2)
        var expected = pattern(8192)
        expected.replaceSubrange(100..<105, with: [1, 2, 3, 4, 5])
        #expect(back.bytes == Array(expected[98..<108]))
        #expect(b.contents == expected)
        b.submit(AIO(operation: .writeZeroes, offset: 0, length: 50), completion: c.handler(2))
        b.submit(AIO(operation: .discard, offset: 4096, length: 4096), completion: c.handler(3))
        c.wait(for: 4)
        #expect(b.read(offset: 0, count: 50) == [UInt8](repeating: 0, count: 50))
        #expect(b.read(offset: 4096, count: 4096) == [UInt8](repeating: 0, count: 4096))
        #expect(b.read(offset: 50, count: 50) == Array(expected[50..<100]))
        #expect(b.submitted.map(\.operation) == [.write, .read, .writeZeroes, .discard])
        #expect(b.submitted[1].offset == 98 && b.submitted[1].length == 10)
    }

    @Test func completionsNeverRunInsideSubmit() {
        let b = TestBackend(size: 4096)
        let submitter = pthread_self()
        let onSubmitter = Locked<[Bool]>([])
        let c = Completions()
        for i in 0..<20 {
            b.submit(AIO(operation: .flush, offset: 0, length: 0)) { e in
                onSubmitter.withLock { $0.append(pthread_equal(pthread_self(), submitter) != 0) }
                c.handler(i)(e)
            }
        }
        c.wait(for: 20)
        #expect(onSubmitter.withLock { $0 } == [Bool](repeating: false, count: 20))
    }

    @Test func failNTimesThenSucceed() {
        let b = TestBackend(size: 4096)
        b.addRule(.fail(EIO, operations: [.read], times: 2))
        let c = Completions()
        let buffer = Buffer(count: 512)
        for i in 0..<3 {
            read(b, 0, 512, key: i, c, buffer)
            c.wait(for: i + 1)   // one at a time: the order of rule use is the submission order anyway
        }
        b.submit(AIO(operation: .flush, offset: 0, length: 0), completion: c.handler(3))
        c.wait(for: 4)
        #expect(c.all == [0: [EIO], 1: [EIO], 2: [0], 3: [0]])
    }

    @Test func failAlwaysOnlyInsideTheRangeAndLeavesDataAlone() {
        let b = TestBackend(size: 8192)
        let rule = b.addRule(.fail(ENOSPC, operations: [.write], range: 4096..<5000))
        let c = Completions()
        let data = Buffer(count: 100, fill: 9)
        let offsets: [UInt64] = [3996, 3997, 4999, 5000, 0]   // overlap: 2nd and 3rd only
        for (i, offset) in offsets.enumerated() {
            b.submit(AIO(operation: .write, offset: offset, length: 100, iov: data.whole), completion: c.handler(i))
        }
        c.wait(for: offsets.count)
        #expect(c.all == [0: [0], 1: [ENOSPC], 2: [ENOSPC], 3: [0], 4: [0]])
        #expect(b.read(offset: 4096, count: 903) == [UInt8](repeating: 0, count: 903))  // 4096..<4999 never written
        b.removeRule(rule)
        b.submit(AIO(operation: .write, offset: 4999, length: 100, iov: data.whole), completion: c.handler(5))
        c.wait(for: 6)
        #expect(c.result(5) == 0)
    }

    @Test func holdAndReleaseOutOfOrder() {
        let b = TestBackend(size: 4096)
        b.addRule(.hold(operations: [.write]))
        let c = Completions()
        let buffers = (0..<3).map { Buffer(count: 4, fill: UInt8($0 + 1)) }
        for i in 0..<3 {
            b.submit(AIO(operation: .write, offset: UInt64(i * 4), length: 4, iov: buffers[i].whole),
                     completion: c.handler(i))
        }
        #expect(b.waitForHeld(count: 3))
        #expect(b.heldCount == 3)
        #expect(c.count == 0)
        #expect(b.contents.allSatisfy { $0 == 0 })   // held writes have not happened
        b.releaseHeld(inOrder: [2, 0])
        // Released on this thread: done when releaseHeld returns.
        #expect(c.deliveryOrder == [2, 0])
        #expect(b.heldCount == 1)
        #expect(b.read(offset: 0, count: 12) == [1, 1, 1, 1, 0, 0, 0, 0, 3, 3, 3, 3])
        #expect(b.releaseAll(errno: EIO) == 1)
        #expect(c.all == [0: [0], 1: [EIO], 2: [0]])
        #expect(b.read(offset: 4, count: 4) == [0, 0, 0, 0])
    }

    @Test func releaseWherePicksMatchingOperations() {
        let b = TestBackend(size: 1 << 16)
        b.addRule(.hold())
        let c = Completions()
        for i in 0..<4 {
            b.submit(AIO(operation: .writeZeroes, offset: UInt64(i) * 4096, length: 4096), completion: c.handler(i))
        }
        #expect(b.waitForHeld(count: 4))
        let n = b.release { $0.offset >= 8192 }
        #expect(n == 2)
        #expect(Set(c.all.keys) == [2, 3])
        #expect(b.held.map(\.offset) == [0, 4096])
        b.releaseAll()
        #expect(c.count == 4)
    }

    @Test func waitForHeldTimesOut() {
        let b = TestBackend(size: 4096)
        #expect(b.waitForHeld(count: 1, timeout: .milliseconds(20)) == false)
    }

    @Test func delayCompletesNoEarlierThanTheDelay() {
        let b = TestBackend(size: 4096)
        b.addRule(.delay(.milliseconds(30), operations: [.flush]))
        let c = Completions()
        let start = monotonicNanoseconds()
        let end = Locked<UInt64>(0)
        b.submit(AIO(operation: .flush, offset: 0, length: 0)) { e in
            end.withLock { $0 = monotonicNanoseconds() }
            c.handler(0)(e)
        }
        // A later, undelayed AIO overtakes the delayed one.
        b.submit(AIO(operation: .discard, offset: 0, length: 10), completion: c.handler(1))
        c.wait(for: 2)
        #expect(end.withLock { $0 } - start >= 30_000_000)
        #expect(c.deliveryOrder == [1, 0])
    }

    @Test func cancelHeldAndDelayedOperations() {
        let b = TestBackend(size: 4096)
        b.addRule(.hold(operations: [.write]))
        b.addRule(.delay(.seconds(3600), operations: [.read]))
        let c = Completions()
        let buffer = Buffer(count: 8, fill: 5)
        let held = b.submit(AIO(operation: .write, offset: 0, length: 8, iov: buffer.whole), completion: c.handler(0))
        let delayed = b.submit(AIO(operation: .read, offset: 0, length: 8, iov: buffer.whole), completion: c.handler(1))
        #expect(b.waitForHeld(count: 1))
        #expect(b.cancel(held))
        #expect(b.cancel(delayed))
        #expect(b.cancel(held) == false)
        c.wait(for: 2)
        #expect(c.all == [0: [ECANCELED], 1: [ECANCELED]])
        #expect(b.cancelled.map(\.ticket) == [held, delayed])
        #expect(b.heldCount == 0)
        #expect(b.contents.allSatisfy { $0 == 0 })
        let done = b.submit(AIO(operation: .flush, offset: 0, length: 0), completion: c.handler(2))
        b.drainAndSync()
        #expect(c.count == 3)
        #expect(b.cancel(done) == false)
        #expect(b.syncCount == 1)
    }

    @Test func invalidRequestsAndReadOnly() {
        let ro = TestBackend(size: 4096, readOnly: true)
        let c = Completions()
        let buffer = Buffer(count: 16)
        ro.submit(AIO(operation: .write, offset: 0, length: 16, iov: buffer.whole), completion: c.handler(0))
        ro.submit(AIO(operation: .read, offset: 4090, length: 16, iov: buffer.whole), completion: c.handler(1))
        ro.submit(AIO(operation: .read, offset: 0, length: 17, iov: buffer.whole), completion: c.handler(2))
        ro.submit(AIO(operation: .read, offset: 0, length: 16, iov: buffer.whole), completion: c.handler(3))
        c.wait(for: 4)
        #expect(c.all == [0: [EBADF], 1: [EINVAL], 2: [EINVAL], 3: [0]])
        ro.close()
        ro.submit(AIO(operation: .flush, offset: 0, length: 0), completion: c.handler(4))
        c.wait(for: 5)
        #expect(c.result(4) == EBADF)
    }
}
