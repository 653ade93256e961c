import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

@Suite("Fault injection rules")
struct FaultTests {
    let buf = TestHost.dataBase

    @Test(arguments: [
        "", "1 read", "0 read all EIO", "x read all EIO", "1 fetch all EIO", "1 read 5-2 EIO", "1 read abc EIO",
        "1 read all EWHAT", "1 read all delay=x", "1 read all EIO times=0", "1 read all EIO sometimes", "9 read all EIO",
        "1 read 4096 EIO", "1 read all EIO once extra",
        // boundaries of each field
        "4294967296 read all EIO", "0x read all EIO", "1 READ all EIO", "1 read 0+0 EIO", "1 read -5 EIO",
        "1 read 18446744073709551615+2 EIO", "1 read 3- EIO", "1 read all eio", "1 read all 0", "1 read all 4096",
        "1 read all delay=", "1 read all delay=600001", "1 read all EIO times=", "1 read all EIO times=1000000001",
        "1 read all EIO ONCE",
    ])
    func malformedLinesAreRejected(_ line: String) throws {
        let h = try TestHost()
        #expect(throws: FaultSpecError.self) { try h.controller.addFault(line) }
        #expect(h.controller.faultLines().isEmpty)
    }

    @Test func failOnceThenSucceed() throws {
        let h = try TestHost()
        h.bringUp()
        try h.controller.addFault("1 read 10-19 EIO once")
        #expect(h.controller.faultLines() == ["1 read 10-19 EIO times=1 # id 1"])
        #expect(h.run(TestHost.read(slba: 0, nlb: 8, prp1: buf), qid: 1).status == .success)      // outside the range
        #expect(h.run(TestHost.read(slba: 12, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.unrecoveredReadError)
        #expect(h.run(TestHost.read(slba: 12, nlb: 1, prp1: buf), qid: 1).status == .success)      // used up
        #expect(h.controller.faultLines().isEmpty)
    }

    @Test func alwaysUntilCleared() throws {
        let h = try TestHost()
        h.bringUp()
        try h.controller.addFault("* write all ENOSPC")
        for _ in 0..<3 {
            #expect(h.run(TestHost.write(slba: 1, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.writeFault)
        }
        #expect(h.run(TestHost.read(slba: 1, nlb: 1, prp1: buf), qid: 1).status == .success)
        h.controller.clearFaults()
        #expect(h.run(TestHost.write(slba: 1, nlb: 1, prp1: buf), qid: 1).status == .success)
    }

    @Test func delayedFlushCompletesLater() throws {
        let h = try TestHost()
        h.bringUp()
        try h.controller.addFault("1 flush all delay=300 times=1")
        let cid = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1)
        h.ring(1)
        #expect(h.reap(1, timeout: 0.1) == nil)
        let e = try #require(h.reap(1))
        #expect(e.cid == cid && e.status == .success)
    }
}
