import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

/// The request engine (CONTRACT §5) on the NBD backend (docs/NBD.md),
/// against nbdkit servers the tests start: multi-AIO commands spread over
/// connections, the server's errors as the engine's statuses, abort and
/// reset of commands NBD cannot cancel, a server that dies and returns.
@Suite("Request engine on an NBD export", .serialized)
struct NBDEngineTests {
    let buf = TestHost.dataBase

    /// A controller on `server`'s export, 16 KiB per AIO (a 64 KiB command
    /// is 4 AIOs, on 4 connections with nbdkit's multi-conn).
    func host(_ server: NBDTestServer) throws -> (TestHost, NBDBackend) {
        let backend = try NBDBackend(uri: server.uri)
        var p = ControllerParameters()
        p.maxBackendTransfer = 16 * 1024
        let h = try TestHost(backends: [(backend, 9)], parameters: p)
        h.bringUp()
        return (h, backend)
    }

    func prpList(_ h: TestHost, pages: Int, list: UInt64) {
        for i in 1..<pages { h.poke64(list + UInt64(i - 1) * 8, buf + UInt64(i) * 4096) }
    }

    @Test func multiAIOCommandsWriteZeroesAndDeallocateRoundTrip() throws {
        let server = try NBDTestServer(["memory", "2M"])
        let (h, backend) = try host(server)
        defer { backend.close() }
        #expect(backend.connections == 4)
        let data = TestHost.pattern(65536, seed: 3)
        h.poke(buf, data)
        prpList(h, pages: 16, list: buf + 0x100000)
        #expect(h.run(TestHost.write(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1).status == .success)
        h.poke(buf, [UInt8](repeating: 0, count: 65536))
        #expect(h.run(TestHost.read(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1).status == .success)
        #expect(h.peek(buf, 65536) == data)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1).status == .success)
        // Write Zeroes of blocks 8..<16; deallocate blocks 32..<40 (one DSM range).
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.cdw10 = 8; wz.cdw12 = 7
        #expect(h.run(wz, qid: 1).status == .success)
        let range = buf + 0x200000
        h.poke(range, [0, 0, 0, 0] + [8, 0, 0, 0] + [32, 0, 0, 0, 0, 0, 0, 0])
        let dsm = SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: range, cdw10: 0, cdw11: 4)
        #expect(h.run(dsm, qid: 1).status == .success)
        #expect(h.run(TestHost.read(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1).status == .success)
        let back = h.peek(buf, 65536)
        #expect(Array(back[0..<4096]) == Array(data[0..<4096]))
        #expect(back[4096..<8192].allSatisfy { $0 == 0 })
        #expect(Array(back[8192..<16384]) == Array(data[8192..<16384]))
        #expect(back[16384..<20480].allSatisfy { $0 == 0 })
        #expect(Array(back[20480...]) == Array(data[20480...]))
    }

    @Test func serverErrorsBecomeWriteFaultAndUnrecoveredReadError() throws {
        let trigger = "/tmp/nvmefs-nbd-inject-\(getpid())"
        let server = try NBDTestServer(["--filter=error", "memory", "1M", "error=EIO", "error-rate=100%",
                                        "error-file=\(trigger)"])
        let (h, backend) = try host(server)
        defer { backend.close(); unlink(trigger) }
        let fd = open(trigger, O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0)
        close(fd)
        prpList(h, pages: 16, list: buf + 0x100000)
        #expect(h.run(TestHost.write(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1).status == .writeFault)
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .unrecoveredReadError)
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.cdw12 = 7
        #expect(h.run(wz, qid: 1).status == .writeFault)
        // The errors stop with the trigger; the same commands succeed.
        unlink(trigger)
        #expect(h.run(TestHost.write(slba: 0, nlb: 128, prp1: buf, prp2: buf + 0x100000), qid: 1).status == .success)
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)
    }

    @Test func abortOfACommandOnTheWireCompletesItWhenTheServerAnswers() throws {
        // Every read waits 500 ms in the server.
        let server = try NBDTestServer(["--filter=delay", "memory", "1M", "rdelay=500ms"])
        let (h, backend) = try host(server)
        defer { backend.close() }
        let target = h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        usleep(100_000)
        let abort = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.abort.rawValue, cdw10: UInt32(target) << 16 | 1))
        #expect(abort.status == .success && abort.dw0 & 1 == 0)
        // NBD cannot take the read back: no CQE (and the buffer stays the
        // read's) until the server has answered.
        #expect(h.reap(1, timeout: 0.1) == nil)
        let e = try #require(h.reap(1))
        #expect(e.cid == target && e.status == .abortRequested)
    }

    @Test func resetWaitsForCommandsOnTheWire() throws {
        let server = try NBDTestServer(["--filter=delay", "memory", "1M", "rdelay=500ms"])
        let (h, backend) = try host(server)
        defer { backend.close() }
        h.place(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1)
        h.ring(1)
        usleep(100_000)
        h.write32(RegisterOffset.cc, 0x460000)
        usleep(100_000)
        #expect(h.csts.rdy)                 // still draining the read
        #expect(h.wait { !h.csts.rdy })
        #expect(h.reap(1, timeout: 0.2) == nil)
    }

    @Test func aDeadServerIsWriteFaultUntilItReturns() throws {
        let server = try NBDTestServer(["memory", "1M"])
        let (h, backend) = try host(server)
        defer { backend.close() }
        #expect(h.run(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)
        server.kill()
        var status = NVMeStatus.success
        for _ in 0..<200 where status == .success {
            status = h.run(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1).status
            if status == .success { usleep(10_000) }
        }
        #expect(status == .writeFault)
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .unrecoveredReadError)
        try server.start()
        #expect(h.wait { backend.isConnected })
        h.poke(buf, TestHost.pattern(4096, seed: 9))
        #expect(h.run(TestHost.write(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)
        h.poke(buf, [UInt8](repeating: 0, count: 4096))
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)
        #expect(h.peek(buf, 4096) == TestHost.pattern(4096, seed: 9))
    }
}
