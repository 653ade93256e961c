import BlockIO
import NVMeController
import NVMeSpec
import Testing

/// Table tests for the controller's exact statuses (NVMe 1.4, and QEMU's
/// hw/nvme where the specification leaves a choice; deliberate differences
/// are listed in docs/CONFORMANCE.md). Each row failed on an earlier behaviour.
@Suite("Conformance")
struct ConformanceTests {
    static let adminOpcodes: [AdminOpcode] = [
        .deleteIOSQ, .createIOSQ, .getLogPage, .deleteIOCQ, .createIOCQ, .identify, .abort,
        .setFeatures, .getFeatures, .asyncEventRequest, .keepAlive,
    ]

    /// NVMe 1.4 §4.2: PSDT ≠ 0 on an admin command is Invalid Field in Command
    /// (DNR), before the command does anything.
    @Test(arguments: adminOpcodes, [UInt8(1), 2, 3])
    func adminCommandWithSGLFlagIsInvalidField(opcode: AdminOpcode, psdt: UInt8) throws {
        let h = try TestHost()
        h.enable()
        var e = SubmissionQueueEntry(opcode: opcode.rawValue, nsid: 0, prp1: TestHost.dataBase, cdw10: 1)
        if opcode == .createIOCQ { e.cdw10 = 15 << 16 | 1; e.cdw11 = 1; e.prp1 = 0x80000 }
        if opcode == .getFeatures { e.cdw10 = UInt32(FeatureIdentifier.arbitration.rawValue) }
        e.psdt = psdt
        let c = h.admin(e)
        #expect(c.status == NVMeStatus.invalidField.withDNR)
        if opcode == .createIOCQ {
            // Nothing was created: the same queue id is still free.
            #expect(h.createCQ(qid: 1, entries: 16) == .success)
        }
    }
}
