import BlockIO
import Glibc
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

/// A header decoded from `bytes`.
private func parse(_ bytes: [UInt8]) -> Result<PassthroughHeader?, HostError> {
    bytes.withUnsafeBytes { b in Result { () throws(HostError) in try PassthroughHeader(bytes: b) } }
}

/// `header` run with `out` as its data-out then metadata-out bytes.
private func run(_ host: BuiltinHost, _ header: PassthroughHeader, out: [UInt8]) -> Result<PassthroughResponse, HostError> {
    out.withUnsafeBytes { b in
        let split = min(b.count, Int(header.dataLength))
        return Result { () throws(HostError) in
            try host.passthrough(header, dataOut: UnsafeRawBufferPointer(rebasing: b[0..<split]),
                                 metadataOut: UnsafeRawBufferPointer(rebasing: b[split...]))
        }
    }
}

/// The `passthru` request layout and `BuiltinHost.passthrough(_:dataOut:metadataOut:)`.
@Suite struct PassthroughTests {
    @Test func headerFieldOffsets() throws {
        var sqe = SubmissionQueueEntry(opcode: 0x02, nsid: 7, cdw10: 0x1122_3344)
        sqe.cdw15 = 0xAABB_CCDD
        let h = PassthroughHeader(sqe: sqe, queue: .io, direction: .controllerToHost, dataLength: 0x0102_0304,
                                  metadataLength: 0x0506_0708, timeoutMilliseconds: 0x090A_0B0C)
        let b = h.bytes
        #expect(b.count == 80 && PassthroughHeader.size == 80)
        #expect(Array(b[0..<64]) == sqe.bytes)
        #expect(Array(b[64..<68]) == [0x04, 0x03, 0x02, 0x01])
        #expect(Array(b[68..<72]) == [0x08, 0x07, 0x06, 0x05])
        #expect(Array(b[72..<76]) == [0x0C, 0x0B, 0x0A, 0x09])
        #expect(b[76] == 1 && b[77] == 2 && b[78] == 0 && b[79] == 0)
        #expect(try parse(b).get() == h)
        #expect(h.outLength == 0 && h.inLength == 0x0102_0304 + 0x0506_0708)
        // Every prefix shorter than the header is "not yet".
        for n in 0..<80 {
            #expect(try parse(Array(b.prefix(n))).get() == nil)
        }
    }

    @Test(arguments: [(76, UInt8(2)), (77, UInt8(4)), (78, UInt8(1)), (79, UInt8(0x80))])
    func malformedHeadersAreEINVAL(offset: Int, value: UInt8) {
        var b = PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x06), queue: .admin).bytes
        b[offset] = value
        guard case .failure(let e) = parse(b) else { Issue.record("header with byte \(offset) = \(value) accepted"); return }
        #expect(e.errno == EINVAL)
    }

    @Test func directionMustFitTheOpcode() {
        func check(_ opcode: UInt8, _ d: DataTransfer, data: UInt32, md: UInt32 = 0) -> Int32 {
            let h = PassthroughHeader(sqe: SubmissionQueueEntry(opcode: opcode), queue: .io, direction: d,
                                      dataLength: data, metadataLength: md)
            do { try h.validate(maxTransfer: 4096) } catch { return error.errno }
            return 0
        }
        #expect(check(0x02, .controllerToHost, data: 512) == 0)       // Read
        #expect(check(0x01, .hostToController, data: 512) == 0)       // Write
        #expect(check(0x00, .none, data: 0) == 0)                     // Flush
        #expect(check(0x01, .hostToController, data: 0, md: 8) == 0)  // metadata alone
        #expect(check(0x02, .hostToController, data: 512) == EINVAL)  // Read sending data
        #expect(check(0x01, .controllerToHost, data: 512) == EINVAL)
        #expect(check(0x01, .bidirectional, data: 512) == EINVAL)
        #expect(check(0x00, .controllerToHost, data: 512) == EINVAL)  // Flush has no data
        #expect(check(0x02, .none, data: 512) == EINVAL)              // lengths without a direction
        #expect(check(0x02, .controllerToHost, data: 0) == EINVAL)    // a direction without lengths
        #expect(check(0x02, .controllerToHost, data: 4097) == E2BIG)
        #expect(check(0x02, .controllerToHost, data: 512, md: 4097) == E2BIG)
        #expect(DataTransfer.allCases.map { DataTransfer(opcode: 0x7C | $0.rawValue) } == DataTransfer.allCases)
    }

    @Test func identifyAndIOThroughTheHostQueues() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        let id = try rig.host.passthrough(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x06, cdw10: 1), queue: .admin,
                                                            direction: .controllerToHost, dataLength: 4096))
        #expect(id.cqe.status == .success && id.cqe.sqid == 0)
        #expect(id.data == (try rig.host.identifyController()))
        #expect(id.bytes.count == 16 + 4096)

        // A Write of 3 blocks and a Read back, on an I/O queue.
        var w = SubmissionQueueEntry(opcode: NVMOpcode.write.rawValue, nsid: 1)
        w.slba = 5
        w.nlb = 2
        let blocks = pattern(1536, seed: 4)
        let wr = try run(rig.host, PassthroughHeader(sqe: w, queue: .io, direction: .hostToController, dataLength: 1536),
                         out: blocks).get()
        #expect(wr.cqe.status == .success && wr.cqe.sqid != 0 && wr.data.isEmpty)
        #expect(backend.read(offset: 5 * 512, count: 1536) == blocks)
        var r = w
        r.opcode = NVMOpcode.read.rawValue
        let rd = try rig.host.passthrough(PassthroughHeader(sqe: r, queue: .io, direction: .controllerToHost, dataLength: 1536))
        #expect(rd.cqe.status == .success && rd.data == blocks)

        // A controller status comes back in the CQE, with the buffer as it was.
        r.slba = 4096
        let bad = try rig.host.passthrough(PassthroughHeader(sqe: r, queue: .io, direction: .controllerToHost, dataLength: 1536))
        #expect(bad.cqe.status.kind == .lbaOutOfRange && bad.data == [UInt8](repeating: 0, count: 1536))

        // Out bytes that do not match the lengths.
        let short = run(rig.host, PassthroughHeader(sqe: w, queue: .io, direction: .hostToController, dataLength: 1536),
                        out: [UInt8](repeating: 0, count: 10))
        guard case .failure(let e) = short else { Issue.record("10 bytes for 1536 accepted"); return }
        #expect(e.errno == EINVAL)
    }

    @Test func theHostsOwnCommandsArePastMDTSRefused() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)])
        func errno(_ h: PassthroughHeader) -> Int32 {
            do { _ = try rig.host.passthrough(h) } catch { return error.errno }
            return 0
        }
        #expect(errno(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x0C), queue: .admin)) == EBUSY)   // AER
        #expect(errno(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x7C), queue: .admin)) == EBUSY)   // DBBC
        #expect(errno(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x00, cdw10: 1), queue: .admin)) == EBUSY)
        #expect(errno(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x04, cdw10: 1), queue: .admin)) == EBUSY)
        // A queue the host does not own is the controller's business.
        #expect(errno(PassthroughHeader(sqe: SubmissionQueueEntry(opcode: 0x00, cdw10: 60), queue: .admin)) == 0)
        let past = PassthroughHeader(sqe: SubmissionQueueEntry(opcode: NVMOpcode.read.rawValue, nsid: 1), queue: .io,
                                     direction: .controllerToHost, dataLength: UInt32(rig.host.maxTransfer + 512))
        #expect(errno(past) == E2BIG)
        #expect(rig.write(1, 0, [1]).value == 1)
    }

    @Test func separateMetadataGoesThroughMPTR() throws {
        let format = NamespaceFormat(lbads: 9, ms: 8)
        let (rig, _, metadata) = try MetadataTests.rig(format)
        var w = SubmissionQueueEntry(opcode: NVMOpcode.write.rawValue, nsid: 1)
        w.slba = 3
        w.nlb = 1
        let data = pattern(1024, seed: 1), md = pattern(16, seed: 2)
        let wr = try run(rig.host, PassthroughHeader(sqe: w, queue: .io, direction: .hostToController, dataLength: 1024,
                                                     metadataLength: 16), out: data + md).get()
        #expect(wr.cqe.status == .success)
        #expect(metadata.read(offset: 4096 + 3 * 8, count: 16) == md)
        var r = w
        r.opcode = NVMOpcode.read.rawValue
        let rd = try rig.host.passthrough(PassthroughHeader(sqe: r, queue: .io, direction: .controllerToHost, dataLength: 1024,
                                                            metadataLength: 16))
        #expect(rd.cqe.status == .success && rd.data == data && rd.metadata == md)
        #expect(rd.bytes.count == 16 + 1024 + 16)
    }

    @Test func aTimeoutRecoversTheController() throws {
        let backend = TestBackend(size: 1 << 20)
        let rig = try Rig([(backend, 9)])
        _ = backend.addRule(.hold(operations: [.read], times: 1))
        var r = SubmissionQueueEntry(opcode: NVMOpcode.read.rawValue, nsid: 1)
        r.nlb = 0
        let before = rig.host.recoveryCount
        let rd = try rig.host.passthrough(PassthroughHeader(sqe: r, queue: .io, direction: .controllerToHost, dataLength: 512,
                                                            timeoutMilliseconds: 200))
        // The reset cancelled the held read; the host came back.
        #expect(rd.cqe.status.kind == .sqDeletion)
        #expect(rig.read(1, 0, 512).value?.count == 512)  // after the recovery
        #expect(rig.host.recoveryCount > before)
    }

    /// `rescan` and NVME_IOCTL_RESCAN: the table is made to match the
    /// controller again, entries missing and entries stale alike.
    @Test func rescanIdentifiesTheNamespacesAgain() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 21), 12)])
        let before = rig.host.namespaces
        rig.host.stateLock.withLock {
            rig.host.namespaceTable[1] = nil
            rig.host.namespaceTable[7] = rig.host.namespaceTable[2].map { var i = $0; i.nsid = 7; return i }
        }
        try rig.host.rescanNamespaces()
        #expect(rig.host.namespaces == before)
        #expect(rig.host.namespaceInfo(7) == nil)
        #expect(rig.read(1, 0, 512).value?.count == 512)
    }
}
