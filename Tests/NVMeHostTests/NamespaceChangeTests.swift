import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

/// The built-in host follows Namespace Attachment and Management sent
/// through its passthrough (the `cmd` and `passthru` files), as Linux
/// rescans: the namespace table changes before the completion is returned,
/// and the Namespace Attribute Changed notice reaches `events`.
@Suite("Built-in host: namespace changes")
struct NamespaceChangeTests {
    @Test func attachDetachAndDeleteReachTheTable() throws {
        let dir = NSTemporaryDirectory() + "nvmefs-host-nsdir-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let provisioner = DirectoryProvisioner(directory: try NamespaceDirectory(path: dir))
        let rig = try Rig(namespaces: [Namespace(nsid: 1, backend: TestBackend(size: 1 << 20), lbads: 9)],
                          provisioner: provisioner)
        let host = rig.host
        let attachList = ControllerList([0]).bytes
        func admin(_ opcode: AdminOpcode, nsid: UInt32 = 0, cdw10: UInt32 = 0, data: [UInt8]? = nil) -> CompletionQueueEntry {
            host.adminCommand(SubmissionQueueEntry(opcode: opcode.rawValue, nsid: nsid, cdw10: cdw10), dataOut: data).0
        }
        let created = admin(.namespaceManagement, data: NamespaceManagementCreate(nsze: 256, ncap: 256, flbas: 4).bytes)
        #expect(created.status == .success && created.dw0 == 2)
        #expect(host.namespaces.map(\.nsid) == [1])

        #expect(admin(.namespaceAttachment, nsid: 2, data: attachList).status == .success)
        #expect(host.namespaceInfo(2) == NamespaceInfo(nsid: 2, nsze: 256, format: NamespaceFormat(lbads: 12)))
        let bytes = pattern(8192, seed: 5)
        #expect(rig.write(2, 4096, bytes).value == 8192)
        #expect(rig.read(2, 4096, 8192).value == bytes)
        var noticed = false
        for _ in 0..<200 where !noticed {
            noticed = host.events.contains { $0.completion.info == .noticeNamespaceAttributeChanged }
            if !noticed { usleep(10_000) }
        }
        #expect(noticed)

        #expect(admin(.namespaceAttachment, nsid: 2, cdw10: 1, data: attachList).status == .success)
        #expect(host.namespaceInfo(2) == nil)
        #expect(rig.read(2, 0, 512).error != nil)

        // Attached again, then deleted with FFFFFFFFh: it leaves the table; namespace 1 stays.
        #expect(admin(.namespaceAttachment, nsid: 2, data: attachList).status == .success)
        #expect(host.namespaces.map(\.nsid) == [1, 2])
        #expect(admin(.namespaceManagement, nsid: 0xFFFF_FFFF, cdw10: 1).status == .success)
        #expect(host.namespaces.map(\.nsid) == [1])
    }
}
