import BlockIO
import Foundation
import Testing

private let modes: [ImageBackend.ExecutionMode] = [.inline, .threadPool(workers: 1), .threadPool(workers: 4),
                                                    .hybrid(workers: 2)]

/// Submits one AIO and waits for its completion.
private func run(_ backend: any BlockBackend, _ aio: AIO) -> Int32 {
    let c = Completions()
    backend.submit(aio, completion: c.handler(0))
    c.wait(for: 1)
    return c.result(0) ?? -1
}

@Suite struct ImageBackendTests {
    @Test(arguments: modes)
    func writeThenReadWithUnalignedIOVectors(mode: ImageBackend.ExecutionMode) throws {
        let path = makeFile([UInt8](repeating: 0xEE, count: 16384))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        defer { backend.close() }
        #expect(backend.size == 16384)
        let data = pattern(5000)
        let out = Buffer(bytes: data)
        let writeSplit = [3, 509, 4096, 1, 391]
        #expect(run(backend, AIO(operation: .write, offset: 1234, length: 5000, iov: out.iov(split: writeSplit))) == 0)
        let back = Buffer(count: 5000, fill: 0x55)
        #expect(run(backend, AIO(operation: .read, offset: 1234, length: 5000, iov: back.iov(split: [4999, 1]))) == 0)
        #expect(back.bytes == data)
        // The file holds the data exactly there, and nothing else changed.
        let file = fileBytes(path)
        #expect(Array(file[1234..<6234]) == data)
        #expect(file[0..<1234].allSatisfy { $0 == 0xEE })
        #expect(file[6234...].allSatisfy { $0 == 0xEE })
    }

    @Test(arguments: modes)
    func moreIOVectorsThanIOVMax(mode: ImageBackend.ExecutionMode) throws {
        let count = 3000   // > IOV_MAX (1024): several preadv/pwritev calls
        let path = makeFile([UInt8](repeating: 0, count: count * 7 + 100))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        defer { backend.close() }
        let data = pattern(count * 7, seed: 9)
        let out = Buffer(bytes: data)
        let len = UInt64(count * 7)
        #expect(run(backend, AIO(operation: .write, offset: 50, length: len,
                                 iov: out.iov(split: Array(repeating: 7, count: count)))) == 0)
        let back = Buffer(count: count * 7)
        #expect(run(backend, AIO(operation: .read, offset: 50, length: len,
                                 iov: back.iov(split: [1] + Array(repeating: 3, count: 6999) + [2]))) == 0)
        let readBack = back.bytes == data
        let inFile = Array(fileBytes(path)[50..<(50 + count * 7)]) == data
        #expect(readBack)
        #expect(inFile)
    }

    @Test(arguments: modes)
    func readPastEndOfFileFillsZeros(mode: ImageBackend.ExecutionMode) throws {
        let path = makeFile([UInt8](repeating: 0xAA, count: 1000))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        defer { backend.close() }
        let straddling = Buffer(count: 3000, fill: 0xFF)
        #expect(run(backend, AIO(operation: .read, offset: 500, length: 3000,
                                 iov: straddling.iov(split: [100, 700, 2200]))) == 0)
        #expect(straddling.bytes[0..<500].allSatisfy { $0 == 0xAA })
        #expect(straddling.bytes[500...].allSatisfy { $0 == 0 })
        let beyond = Buffer(count: 512, fill: 0xFF)
        #expect(run(backend, AIO(operation: .read, offset: 4096, length: 512, iov: beyond.whole)) == 0)
        #expect(beyond.bytes.allSatisfy { $0 == 0 })
    }

    @Test(arguments: modes)
    func flushSucceeds(mode: ImageBackend.ExecutionMode) throws {
        let path = makeFile([UInt8](repeating: 1, count: 4096))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        defer { backend.close() }
        #expect(run(backend, AIO(operation: .flush, offset: 0, length: 0)) == 0)
    }

    /// /tmp (ZERO_RANGE supported on ext4/xfs) and /dev/shm (tmpfs: the
    /// fallback that writes zeros).
    @Test(arguments: [NSTemporaryDirectory(), "/dev/shm"])
    func writeZeroesZeroesExactlyTheRange(directory: String) throws {
        guard FileManager.default.isWritableFile(atPath: directory) else { return }
        let path = makeFile([UInt8](repeating: 0xAA, count: 3 * 1024 * 1024), directory: directory)
        defer { unlink(path) }
        let backend = try ImageBackend(path: path)
        defer { backend.close() }
        let offset = 4096 + 17, length = 1024 * 1024 + 5
        #expect(run(backend, AIO(operation: .writeZeroes, offset: UInt64(offset), length: UInt64(length))) == 0)
        let file = fileBytes(path)
        #expect(file.count == 3 * 1024 * 1024)
        #expect(file[offset..<(offset + length)].allSatisfy { $0 == 0 })
        #expect(file[..<offset].allSatisfy { $0 == 0xAA })
        #expect(file[(offset + length)...].allSatisfy { $0 == 0xAA })
    }

    @Test func discardKeepsSize() throws {
        let path = makeFile([UInt8](repeating: 0xAA, count: 64 * 1024))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path)
        defer { backend.close() }
        // The whole tail: KEEP_SIZE must keep the file 64 KiB long.
        #expect(run(backend, AIO(operation: .discard, offset: 16384, length: 48 * 1024)) == 0)
        let file = fileBytes(path)
        #expect(file.count == 64 * 1024)
        #expect(file[..<16384].allSatisfy { $0 == 0xAA })
        // Hole punching is advisory, but every Linux file system a test runs on
        // (ext4, xfs, btrfs, tmpfs) supports it: the range reads as zeros.
        #expect(file[16384...].allSatisfy { $0 == 0 })
    }

    @Test func readOnlyBackendRefusesModification() throws {
        let path = makeFile([UInt8](repeating: 0xAA, count: 8192))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, readOnly: true)
        defer { backend.close() }
        #expect(backend.isReadOnly)
        let buffer = Buffer(count: 4096, fill: 1)
        let rc = run(backend, AIO(operation: .write, offset: 0, length: 4096, iov: buffer.whole))
        #expect(rc == EBADF || rc == EROFS)
        #expect(run(backend, AIO(operation: .writeZeroes, offset: 0, length: 4096)) != 0)
        #expect(run(backend, AIO(operation: .read, offset: 0, length: 4096, iov: buffer.whole)) == 0)
        #expect(fileBytes(path).allSatisfy { $0 == 0xAA })
    }

    @Test func openErrorsNameThePathAndErrno() throws {
        let missing = temporaryPath("missing")
        #expect(throws: ImageBackendError(path: missing, operation: "open", errno: ENOENT)) {
            try ImageBackend(path: missing)
        }
        do {
            _ = try ImageBackend(path: missing)
            Issue.record("opened a missing image")
        } catch let error as ImageBackendError {
            #expect(error.description.contains(missing))
            #expect(error.description.contains("No such file"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func createMakesASparseImageAndRefusesAnExistingOne() throws {
        let path = temporaryPath("create")
        defer { unlink(path) }
        try ImageBackend.create(path: path, size: 1 << 30)
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_size == 1 << 30)
        #expect(st.st_blocks * 512 < 1 << 20)   // sparse
        let backend = try ImageBackend(path: path)
        #expect(backend.size == 1 << 30)
        backend.close()
        #expect(throws: ImageBackendError(path: path, operation: "create", errno: EEXIST)) {
            try ImageBackend.create(path: path, size: 4096)
        }
    }

    @Test func cancelRemovesQueuedOperations() throws {
        let path = makeFile([UInt8](repeating: 0, count: 4 * 4096))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: .threadPool(workers: 1))
        defer { backend.close() }
        let c = Completions()
        let gate = Gate()
        let scratch = Buffer(count: 4096)
        // The only worker blocks in the first AIO's completion.
        let first = backend.submit(AIO(operation: .read, offset: 0, length: 4096, iov: scratch.whole)) { e in
            c.handler(0)(e)
            gate.block()
        }
        gate.waitEntered()
        let buffers = (1...3).map { Buffer(count: 4096, fill: UInt8($0)) }
        let tickets = (1...3).map { i in
            backend.submit(AIO(operation: .write, offset: UInt64(i * 4096), length: 4096, iov: buffers[i - 1].whole),
                           completion: c.handler(i))
        }
        #expect(backend.cancel(tickets[1]) == true)
        #expect(backend.cancel(tickets[1]) == false)   // already cancelled
        #expect(backend.cancel(first) == false)         // running: drained, not cancelled
        gate.open()
        #expect(c.wait(for: 4))
        backend.drainAndSync()
        #expect(c.all == [0: [0], 1: [0], 2: [ECANCELED], 3: [0]])
        let file = fileBytes(path)
        #expect(file[4096..<8192].allSatisfy { $0 == 1 })
        #expect(file[8192..<12288].allSatisfy { $0 == 0 })   // the cancelled write never ran
        #expect(file[12288...].allSatisfy { $0 == 3 })
        #expect(backend.cancel(tickets[2]) == false)          // completed
    }

    @Test func inlineModeCompletesInsideSubmit() throws {
        let path = makeFile([UInt8](repeating: 7, count: 4096))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: .inline)
        defer { backend.close() }
        let c = Completions()
        let buffer = Buffer(count: 4096)
        let ticket = backend.submit(AIO(operation: .read, offset: 0, length: 4096, iov: buffer.whole),
                                    completion: c.handler(0))
        #expect(c.count == 1)
        #expect(buffer.bytes.allSatisfy { $0 == 7 })
        #expect(backend.cancel(ticket) == false)
    }

    @Test func hybridModeReadsCachedDataInsideSubmit() throws {
        let data = pattern(8192, seed: 3)
        let path = makeFile(data)   // just written: in the page cache
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: .hybrid(workers: 1))
        defer { backend.close() }
        let c = Completions()
        let buffer = Buffer(count: 5000)
        let ticket = backend.submit(AIO(operation: .read, offset: 100, length: 5000, iov: buffer.iov(split: [1000, 4000])),
                                    completion: c.handler(0))
        #expect(c.count == 1)   // RWF_NOWAIT succeeded, no thread hop
        #expect(c.result(0) == 0)
        #expect(buffer.bytes == Array(data[100..<5100]))
        #expect(backend.cancel(ticket) == false)
        // A flush always goes through the pool.
        backend.submit(AIO(operation: .flush, offset: 0, length: 0), completion: c.handler(1))
        #expect(c.wait(for: 2))
        #expect(c.result(1) == 0)
    }

    @Test("An image on tmpfs is memory-backed: hybrid reads run inside submit although tmpfs refuses RWF_NOWAIT")
    func hybridReadsOnTmpfsRunInline() throws {
        let data = pattern(8192, seed: 5)
        let path = makeFile(data, directory: "/dev/shm/")
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: .hybrid(workers: 1))
        defer { backend.close() }
        #expect(backend.isMemoryBacked)
        let c = Completions()
        for i in 0..<2 {  // the first read learns that RWF_NOWAIT is refused, the second knows it
            let buffer = Buffer(count: 4096)
            backend.submit(AIO(operation: .read, offset: UInt64(i) * 4096, length: 4096, iov: buffer.whole), completion: c.handler(i))
            #expect(c.count == i + 1)   // completed before submit returned
            #expect(buffer.bytes == Array(data[(i * 4096)..<((i + 1) * 4096)]))
        }
    }

    @Test(arguments: modes)
    func closeIsIdempotentAndLaterSubmitsFail(mode: ImageBackend.ExecutionMode) throws {
        let path = makeFile([UInt8](repeating: 0, count: 4096))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        let buffer = Buffer(count: 4096)
        backend.close()
        backend.close()
        #expect(run(backend, AIO(operation: .read, offset: 0, length: 4096, iov: buffer.whole)) == EBADF)
        backend.drainAndSync()
        backend.close()
    }

    @Test(arguments: modes)
    func manyConcurrentOperationsCompleteExactlyOnce(mode: ImageBackend.ExecutionMode) throws {
        let blocks = 512
        let path = makeFile([UInt8](repeating: 0, count: blocks * 512))
        defer { unlink(path) }
        let backend = try ImageBackend(path: path, mode: mode)
        defer { backend.close() }
        writeBlocksConcurrentlyAndDrain(backend, blocks: blocks)
        expectConcurrentBlocks(fileBytes(path), blocks: blocks)
    }
}
