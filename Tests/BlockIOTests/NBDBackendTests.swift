import BlockIO
import Foundation
import NVMeSpec
import Testing

typealias NBDKit = NBDTestServer

/// Submits one AIO and waits for its completion.
private func run(_ backend: any BlockBackend, _ aio: AIO) -> Int32 {
    let c = Completions()
    backend.submit(aio, completion: c.handler(0))
    c.wait(for: 1)
    return c.result(0) ?? -1
}

private func read(_ backend: any BlockBackend, _ offset: UInt64, _ count: Int) -> (Int32, [UInt8]) {
    let b = Buffer(count: count, fill: 0x55)
    let e = run(backend, AIO(operation: .read, offset: offset, length: UInt64(count), iov: b.whole))
    return (e, b.bytes)
}

private func write(_ backend: any BlockBackend, _ offset: UInt64, _ bytes: [UInt8]) -> Int32 {
    let b = Buffer(bytes: bytes)
    return run(backend, AIO(operation: .write, offset: offset, length: UInt64(bytes.count), iov: b.whole))
}

/// The NBD backend through the backend contract, against real nbdkit
/// servers (setup installs nbdkit; these tests fail, not skip, without it).
@Suite(.serialized) struct NBDBackendTests {
    @Test func writeThenReadWithUnalignedIOVectorsOverSeveralConnections() throws {
        let server = try NBDKit(["memory", "1M"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(backend.size == 1 << 20)
        #expect(!backend.isReadOnly)
        // nbdkit's memory plugin allows multi-conn.
        #expect(backend.canMultiConn && backend.connections == 4)
        let data = pattern(5000)
        let out = Buffer(bytes: data)
        #expect(run(backend, AIO(operation: .write, offset: 1234, length: 5000, iov: out.iov(split: [3, 509, 4096, 1, 391]))) == 0)
        let back = Buffer(count: 5000, fill: 0x55)
        #expect(run(backend, AIO(operation: .read, offset: 1234, length: 5000, iov: back.iov(split: [4999, 1]))) == 0)
        #expect(back.bytes == data)
        let (e, around) = read(backend, 0, 8192)
        #expect(e == 0)
        #expect(around[0..<1234].allSatisfy { $0 == 0 } && around[6234...].allSatisfy { $0 == 0 })
        #expect(run(backend, AIO(operation: .flush, offset: 0, length: 0)) == 0)
    }

    @Test func writeZeroesAndDiscardZeroExactlyTheRange() throws {
        let server = try NBDKit(["memory", "64K"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(backend.canZero && backend.canTrim)
        #expect(write(backend, 0, [UInt8](repeating: 0xAB, count: 65536)) == 0)
        #expect(run(backend, AIO(operation: .writeZeroes, offset: 4096, length: 8192)) == 0)
        // nbdkit's memory plugin reads trimmed ranges as zeros.
        #expect(run(backend, AIO(operation: .discard, offset: 32768, length: 4096)) == 0)
        let (e, bytes) = read(backend, 0, 65536)
        #expect(e == 0)
        #expect(bytes[0..<4096].allSatisfy { $0 == 0xAB })
        #expect(bytes[4096..<12288].allSatisfy { $0 == 0 })
        #expect(bytes[12288..<32768].allSatisfy { $0 == 0xAB })
        #expect(bytes[32768..<36864].allSatisfy { $0 == 0 })
        #expect(bytes[36864...].allSatisfy { $0 == 0xAB })
    }

    @Test func writeZeroesWithoutServerSupportWritesZeros() throws {
        // The nozero filter hides NBD_CMD_WRITE_ZEROES.
        let server = try NBDKit(["--filter=nozero", "memory", "4M", "zeromode=none"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(!backend.canZero)
        #expect(write(backend, 0, [UInt8](repeating: 0xCD, count: 4 << 20)) == 0)
        // More than the 1 MiB zero buffer: several writes.
        #expect(run(backend, AIO(operation: .writeZeroes, offset: 512, length: (3 << 20) - 1024)) == 0)
        let (e, bytes) = read(backend, 0, 4 << 20)
        #expect(e == 0)
        #expect(bytes[0..<512].allSatisfy { $0 == 0xCD })
        #expect(bytes[512..<((3 << 20) - 512)].allSatisfy { $0 == 0 })
        #expect(bytes[((3 << 20) - 512)...].allSatisfy { $0 == 0xCD })
    }

    @Test func readOnlyExportIsReadOnly() throws {
        let server = try NBDKit(["-r", "memory", "64K"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(backend.isReadOnly)
        #expect(write(backend, 0, [1, 2, 3, 4]) == EROFS)
        #expect(read(backend, 0, 4).0 == 0)
    }

    @Test func unreachableServerIsAnErrorNamingTheURI() throws {
        let uri = "nbd+unix:///?socket=" + temporaryPath("absent") + ".sock"
        #expect(throws: NBDBackendError.self) { try NBDBackend(uri: uri) }
        do { _ = try NBDBackend(uri: uri) } catch {
            #expect("\(error)".hasPrefix("NBD export \(uri): "))
            #expect(!"\(error)".contains("\n"))
        }
        #expect(throws: NBDBackendError.self) { try NBDBackend(uri: "nbd://") }
    }

    @Test func outOfRangeIsEINVALAndCancelNeverTakesACommandBack() throws {
        let server = try NBDKit(["memory", "64K"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(read(backend, 65536 - 512, 1024).0 == EINVAL)
        let c = Completions()
        let b = Buffer(count: 4096)
        let ticket = backend.submit(AIO(operation: .read, offset: 0, length: 4096, iov: b.whole), completion: c.handler(0))
        // An NBD command on the wire cannot be taken back: the buffer stays
        // in use until the server has answered.
        #expect(backend.cancel(ticket) == false)
        #expect(c.wait(for: 1))
        #expect(c.all == [0: [0]])
    }

    @Test func closeIsIdempotentAndLaterSubmitsFail() throws {
        let server = try NBDKit(["memory", "64K"])
        let backend = try NBDBackend(uri: server.uri)
        backend.close()
        backend.close()
        #expect(read(backend, 0, 512).0 == EBADF)
        backend.drainAndSync()
    }

    @Test func manyConcurrentOperationsCompleteExactlyOnce() throws {
        let blocks = 512
        let server = try NBDKit(["memory", "\(blocks * 512)"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        writeBlocksConcurrentlyAndDrain(backend, blocks: blocks)
        let (e, bytes) = read(backend, 0, blocks * 512)
        #expect(e == 0)
        expectConcurrentBlocks(bytes, blocks: blocks)
    }

    @Test func serverErrorsMapThroughTheOneStatusFunction() throws {
        // The error filter fails every request while the trigger file exists.
        let trigger = temporaryPath("inject")
        let server = try NBDKit(["--filter=error", "memory", "64K", "error=EIO", "error-rate=100%", "error-file=\(trigger)"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        let r = read(backend, 0, 4096).0
        let w = write(backend, 0, [UInt8](repeating: 9, count: 4096))
        let z = run(backend, AIO(operation: .writeZeroes, offset: 0, length: 4096))
        let t = run(backend, AIO(operation: .discard, offset: 0, length: 4096))
        #expect([r, w, z, t] == [EIO, EIO, EIO, EIO])
        #expect(nvmeStatus(forFailed: .read, errno: r) == .unrecoveredReadError)
        #expect(nvmeStatus(forFailed: .write, errno: w) == .writeFault)
        #expect(nvmeStatus(forFailed: .discard, errno: t) == .internalError)
        // The connection survives server errors: the next request succeeds.
        unlink(trigger)
        #expect(write(backend, 0, [UInt8](repeating: 9, count: 4096)) == 0)
        #expect(read(backend, 0, 4096) == (0, [UInt8](repeating: 9, count: 4096)))
    }

    @Test func aKilledServerFailsCommandsThenTheBackendReconnects() throws {
        let server = try NBDKit(["memory", "1M"])
        let backend = try NBDBackend(uri: server.uri)
        defer { backend.close() }
        #expect(write(backend, 0, [UInt8](repeating: 1, count: 4096)) == 0)
        // Writes in flight while the server dies fail; none hangs.
        let c = Completions()
        let buffers = (0..<64).map { _ in Buffer(count: 16384, fill: 2) }
        for i in 0..<64 {
            backend.submit(AIO(operation: .write, offset: UInt64(i * 16384), length: 16384, iov: buffers[i].whole),
                           completion: c.handler(i))
        }
        server.kill()
        #expect(c.wait(for: 64))
        let dropped: [Int32] = [ENOTCONN, EIO]
        #expect(c.all.values.allSatisfy { $0.count == 1 && ($0[0] == 0 || dropped.contains($0[0])) }, "\(c.all)")
        // While it is down, commands fail with ENOTCONN (a write fault).
        let deadline = Date().addingTimeInterval(10)
        var e = write(backend, 0, [3])
        while e == 0 && Date() < deadline { usleep(10_000); e = write(backend, 0, [3]) }
        // ENOTCONN while the connection is down (also when libnbd found it
        // dead before the loop thread did); EIO from the server's side.
        #expect(dropped.contains(e), "errno \(e)")
        #expect(nvmeStatus(forFailed: .write, errno: e) == .writeFault)
        // The server returns (empty: nbdkit memory); the backend reconnects.
        try server.start()
        let back = Date().addingTimeInterval(20)
        while !backend.isConnected && Date() < back { usleep(20_000) }
        #expect(backend.isConnected)
        #expect(backend.reconnects >= 1)
        #expect(write(backend, 4096, [UInt8](repeating: 4, count: 512)) == 0)
        #expect(read(backend, 4096, 512) == (0, [UInt8](repeating: 4, count: 512)))
    }
}
