import BlockIO
import NVMeController
import NVMeSpec
import Testing

/// Device Self-test (NVMe 1.4 §5.8) and its log page (06h, §5.14.1.6;
/// docs/SELFTEST.md), driven through registers and host memory.
@Suite("Device Self-test")
struct SelfTestTests {
    static func selfTest(nsid: UInt32 = 0xFFFF_FFFF, stc: UInt32) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: AdminOpcode.deviceSelfTest.rawValue, nsid: nsid, cdw10: stc)
    }

    /// A host with two 1 MiB namespaces, 64 KiB self-test reads and short
    /// test times (`short`, `extended` in milliseconds).
    static func host(short: Int = 200, extended: Int = 1500) throws -> TestHost {
        var p = ControllerParameters()
        p.selfTestShortMilliseconds = short
        p.selfTestExtendedMilliseconds = extended
        p.selfTestChunk = 64 << 10
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 12)], parameters: p)
        h.bringUp()
        return h
    }

    static func log(_ h: TestHost) throws -> DeviceSelfTestLog {
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: 0xFFFF_FFFF, prp1: TestHost.dataBase,
                                             cdw10: UInt32(DeviceSelfTestLog.size / 4 - 1) << 16 | 0x06))
        #expect(e.status == .success)
        return try #require(DeviceSelfTestLog(bytes: h.peek(TestHost.dataBase, DeviceSelfTestLog.size)))
    }

    /// Waits until no operation runs; returns the log then.
    static func finished(_ h: TestHost) throws -> DeviceSelfTestLog {
        #expect(h.wait("self-test end", timeout: 20) { ((try? log(h))?.currentOperation ?? 1) == 0 })
        return try log(h)
    }

    @Test func statuses() throws {
        let h = try Self.host()
        for stc: UInt32 in [0, 3, 4, 0xE] {
            #expect(h.admin(Self.selfTest(stc: stc)).status == NVMeStatus.invalidField.withDNR)
        }
        #expect(h.admin(Self.selfTest(nsid: 3, stc: 1)).status == NVMeStatus.invalidField.withDNR)        // inactive
        #expect(h.admin(Self.selfTest(nsid: 300, stc: 1)).status == NVMeStatus.invalidNamespace.withDNR)  // above NN
        #expect(h.admin(Self.selfTest(nsid: 0xFFFF_FFFE, stc: 1)).status == NVMeStatus.invalidNamespace.withDNR)
        // Abort with nothing running succeeds and logs nothing.
        #expect(h.admin(Self.selfTest(stc: 0xF)).status == .success)
        #expect(try Self.log(h).results.allSatisfy { $0.result == .unused })
        #expect(h.admin(Self.selfTest(stc: 2)).status == .success)
        #expect(h.admin(Self.selfTest(nsid: 1, stc: 1)).status == .deviceSelfTestInProgress)
        #expect(NVMeStatus.deviceSelfTestInProgress.raw == 0x11D)
        #expect(h.admin(Self.selfTest(stc: 0xF)).status == .success)
    }

    @Test func shortTestCompletes() throws {
        let h = try Self.host()
        for nsid: UInt32 in [0, 2, 0xFFFF_FFFF] {
            #expect(h.admin(Self.selfTest(nsid: nsid, stc: 1)).status == .success)
            let log = try Self.finished(h)
            let r = log.results[0]
            #expect(r.operation == .short && r.result == .completed && r.validDiagnostics == 0)
        }
        let log = try Self.log(h)
        #expect(log.currentOperation == 0 && log.currentCompletion == 0)
        #expect(log.results.prefix(3).allSatisfy { $0.status == 0x10 })
        #expect(log.results.dropFirst(3).allSatisfy { $0.status == 0x0F })
    }

    @Test func progressWhileRunning() throws {
        let h = try Self.host(extended: 3000)
        #expect(h.admin(Self.selfTest(stc: 2)).status == .success)
        let first = try Self.log(h)
        #expect(first.currentOperation == 2 && first.currentCompletion < 50)
        #expect(h.wait("progress") { ((try? Self.log(h))?.currentCompletion ?? 0) >= 30 })
        let later = try Self.log(h)
        #expect(later.currentOperation == 2 && later.currentCompletion < 100)
        let done = try Self.finished(h)
        #expect(done.results[0].operation == .extended && done.results[0].result == .completed)
    }

    @Test func abortEndsTheTest() throws {
        let h = try Self.host(extended: 10_000)
        #expect(h.admin(Self.selfTest(stc: 2)).status == .success)
        #expect(h.admin(Self.selfTest(stc: 0xF)).status == .success)
        let log = try Self.log(h)
        #expect(log.currentOperation == 0)
        #expect(log.results[0].status == 0x21)  // extended, aborted by a Device Self-test command
        // A new test may start.
        #expect(h.admin(Self.selfTest(stc: 1)).status == .success)
        #expect(try Self.finished(h).results[0].status == 0x10)
    }

    @Test func resetEndsTheTest() throws {
        let h = try Self.host(short: 10_000)
        #expect(h.admin(Self.selfTest(stc: 1)).status == .success)
        h.write32(RegisterOffset.cc, 0)
        #expect(h.wait { !h.csts.rdy })
        h.bringUp()
        let log = try Self.log(h)
        #expect(log.currentOperation == 0)
        #expect(log.results[0].status == 0x12)  // short, aborted by a Controller Level Reset
    }

    @Test func formatEndsTheTest() throws {
        let h = try Self.host(extended: 10_000)
        #expect(h.admin(Self.selfTest(nsid: 1, stc: 2)).status == .success)
        // Formatting the other namespace leaves it running.
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: 2, cdw10: 0)).status == .success)
        #expect(try Self.log(h).currentOperation == 2)
        #expect(h.admin(SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: 1, cdw10: 0)).status == .success)
        let log = try Self.log(h)
        #expect(log.currentOperation == 0 && log.results[0].status == 0x24)  // aborted by Format NVM
    }

    @Test func faultFailsTheExtendedTest() throws {
        let h = try Self.host(extended: 500)
        try h.controller.addFault("2 read 100-103 EIO")
        #expect(h.admin(Self.selfTest(stc: 2)).status == .success)
        let r = try Self.finished(h).results[0]
        #expect(r.operation == .extended && r.result == .failedSegment)
        #expect(r.segment == 2 && r.nsid == 2 && r.failingLBA == 100)
        #expect(r.validDiagnostics == 0x0F && r.statusCodeType == 2 && r.statusCode == 0x81)
        // The short test reads only the first 64 KiB: LBA 100 of 4 KiB blocks is beyond.
        #expect(h.admin(Self.selfTest(stc: 1)).status == .success)
        #expect(try Self.finished(h).results[0].status == 0x10)
    }

    @Test func writeUncorrectableFailsTheTest() throws {
        let h = try Self.host(extended: 300)
        let wu = SubmissionQueueEntry(opcode: NVMOpcode.writeUncorrectable.rawValue, nsid: 1, cdw10: 700, cdw12: 3)
        #expect(h.run(wu, qid: 1).status == .success)
        #expect(h.admin(Self.selfTest(nsid: 1, stc: 2)).status == .success)
        let r = try Self.finished(h).results[0]
        #expect(r.result == .failedSegment && r.nsid == 1 && r.failingLBA == 700)
    }

    @Test func advertised() throws {
        let h = try Self.host(extended: 90_000)
        let e = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, prp1: TestHost.dataBase, cdw10: 1))
        #expect(e.status == .success)
        let id = try #require(IdentifyController(bytes: h.peek(TestHost.dataBase, 4096)))
        #expect(id.oacs & 0x10 != 0 && id.edstt == 2)
        let l = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: TestHost.dataBase, cdw10: 1023 << 16 | 0x05))
        #expect(l.status == .success)
        let effects = try #require(CommandsSupportedAndEffectsLog(bytes: h.peek(TestHost.dataBase, 4096)))
        let dst = effects.acs[Int(AdminOpcode.deviceSelfTest.rawValue)]
        #expect(dst.csupp && !dst.lbcc && dst.cse == 0)
        // The log page answers at an offset too (Get Log Page LPOL).
        let off = h.admin(SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, prp1: TestHost.dataBase,
                                               cdw10: 6 << 16 | 0x06, cdw12: 4))
        #expect(off.status == .success)
        #expect(h.peek(TestHost.dataBase, 1) == [0x0F])
    }
}
