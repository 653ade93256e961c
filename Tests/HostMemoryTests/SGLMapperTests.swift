import BlockIO
@testable import HostMemory
import NVMeSpec
import Testing

/// One SGL case: segments to write, SGL1, and the outcome.
struct SGLCase: Sendable, CustomStringConvertible {
    var name: String
    var writes: [(UInt64, [SGLDescriptor])] = []
    var sgl1: SGLDescriptor
    var length: Int
    var direction: DataDirection = .controllerToHost
    var expected: Result<[Fixture.Piece], NVMeStatus>
    var description: String { name }
}

private let S1: UInt64 = 0x20000   // segment 1
private let S2: UInt64 = 0x21000   // segment 2
private let unbacked: UInt64 = 0x4000_0000
private func host(_ a: UInt64, _ n: Int) -> Fixture.Piece { .host(a, n) }
private let typeInvalid = NVMeStatus.sglDescriptorTypeInvalid.withDNR
private let segmentInvalid = NVMeStatus.invalidSGLSegmentDescriptor.withDNR
private let lengthInvalid = NVMeStatus.dataSGLLengthInvalid.withDNR
private let numberInvalid = NVMeStatus.invalidNumberOfSGLDescriptors.withDNR

let sglCases: [SGLCase] = [
    SGLCase(name: "single data block", sgl1: data(0x2000, 4096), length: 4096,
            expected: .success([host(0x2000, 4096)])),
    SGLCase(name: "data block longer than the transfer", sgl1: data(0x2000, 8192), length: 512,
            expected: .success([host(0x2000, 512)])),
    SGLCase(name: "data block shorter than the transfer", sgl1: data(0x2000, 511), length: 512,
            expected: .failure(lengthInvalid)),
    SGLCase(name: "data block with offset sub type", sgl1: data(0x2000, 512, subtype: .offset), length: 512,
            expected: .failure(typeInvalid)),
    SGLCase(name: "SGL1 keyed data block", sgl1: SGLDescriptor(address: 0x2000, length: 512, type: .keyedDataBlock),
            length: 512, expected: .failure(typeInvalid)),
    SGLCase(name: "SGL1 transport data block",
            sgl1: SGLDescriptor(address: 0x2000, length: 512, type: .transportDataBlock),
            length: 512, expected: .failure(typeInvalid)),
    SGLCase(name: "SGL1 reserved type", sgl1: SGLDescriptor(address: 0x2000, length: 512, type: .init(rawValue: 7)),
            length: 512, expected: .failure(typeInvalid)),
    SGLCase(name: "data block address overflow", sgl1: data(0xFFFF_FFFF_FFFF_F000, 0x2000), length: 512,
            expected: .failure(lengthInvalid)),
    SGLCase(name: "data block unbacked", sgl1: data(unbacked, 512), length: 512,
            expected: .failure(.dataTransferError)),
    SGLCase(name: "length 0", sgl1: SGLDescriptor(address: 0, length: 0, type: .init(rawValue: 9)), length: 0,
            expected: .success([])),
    SGLCase(name: "segment chain",
            writes: [(S1, [data(0x3000, 1000), lastSegment(S2, 2)]),
                     (S2, [data(0x5000, 500), data(0x5400, 2596)])],
            sgl1: segment(S1, 2), length: 4096,
            expected: .success([host(0x3000, 1000), host(0x5000, 500), host(0x5400, 2596)])),
    SGLCase(name: "three segments, adjacent data merges",
            writes: [(S1, [data(0x3000, 1024), segment(S2, 2)]),
                     (S2, [data(0x3400, 1024), lastSegment(S1 + 0x800, 1)]),
                     (S1 + 0x800, [data(0x3800, 2048)])],
            sgl1: segment(S1, 2), length: 4096,
            expected: .success([host(0x3000, 4096)])),
    SGLCase(name: "SGL1 last segment", writes: [(S1, [data(0x3000, 100), data(0x6000, 100)])],
            sgl1: lastSegment(S1, 2), length: 200,
            expected: .success([host(0x3000, 100), host(0x6000, 100)])),
    SGLCase(name: "zero-length data descriptors are skipped",
            writes: [(S1, [data(unbacked, 0), data(0x3000, 100), data(0x6000, 0)])],
            sgl1: lastSegment(S1, 3), length: 100, expected: .success([host(0x3000, 100)])),
    SGLCase(name: "last segment ending in a segment descriptor",
            writes: [(S1, [data(0x3000, 100), segment(S2, 1)])],
            sgl1: lastSegment(S1, 2), length: 200, expected: .failure(segmentInvalid)),
    SGLCase(name: "last segment ending in a last segment descriptor",
            writes: [(S1, [data(0x3000, 100), lastSegment(S2, 1)])],
            sgl1: lastSegment(S1, 2), length: 200, expected: .failure(segmentInvalid)),
    SGLCase(name: "segment descriptor not last in its segment",
            writes: [(S1, [data(0x3000, 100), segment(S2, 1), data(0x6000, 100)])],
            sgl1: segment(S1, 3), length: 200, expected: .failure(numberInvalid)),
    SGLCase(name: "segment length not a multiple of 16",
            sgl1: SGLDescriptor(address: S1, length: 24, type: .segment), length: 100,
            expected: .failure(segmentInvalid)),
    SGLCase(name: "segment length zero", sgl1: SGLDescriptor(address: S1, length: 0, type: .lastSegment),
            length: 100, expected: .failure(segmentInvalid)),
    SGLCase(name: "segment with offset sub type",
            sgl1: SGLDescriptor(address: S1, length: 16, type: .segment, subtype: .offset), length: 100,
            expected: .failure(typeInvalid)),
    SGLCase(name: "segment address overflow",
            sgl1: SGLDescriptor(address: UInt64.max - 15, length: 32, type: .segment), length: 100,
            expected: .failure(lengthInvalid)),
    SGLCase(name: "segment unbacked", sgl1: segment(unbacked, 2), length: 100,
            expected: .failure(NVMeStatus.dataTransferError.withDNR)),
    SGLCase(name: "next segment unbacked", writes: [(S1, [data(0x3000, 100), segment(unbacked, 2)])],
            sgl1: segment(S1, 2), length: 200, expected: .failure(NVMeStatus.dataTransferError.withDNR)),
    SGLCase(name: "data in a segment unbacked", writes: [(S1, [data(0x3000, 100), data(unbacked, 100)])],
            sgl1: lastSegment(S1, 2), length: 200, expected: .failure(.dataTransferError)),
    SGLCase(name: "unsupported type inside a segment",
            writes: [(S1, [data(0x3000, 100), SGLDescriptor(address: 0x6000, length: 100, type: .keyedDataBlock),
                           data(0x7000, 100)])],
            sgl1: lastSegment(S1, 3), length: 300, expected: .failure(typeInvalid)),
    SGLCase(name: "unsupported type ending a segment",
            writes: [(S1, [data(0x3000, 100), SGLDescriptor(address: 0x6000, length: 100, type: .vendorSpecific)])],
            sgl1: segment(S1, 2), length: 200, expected: .failure(typeInvalid)),
    SGLCase(name: "SGL shorter than the transfer",
            writes: [(S1, [data(0x3000, 100), lastSegment(S2, 1)]), (S2, [data(0x6000, 100)])],
            sgl1: segment(S1, 2), length: 300, expected: .failure(lengthInvalid)),
    // SGLS bit 18 is clear: describing more data than the transfer is an error.
    SGLCase(name: "excess data descriptor",
            writes: [(S1, [data(0x3000, 4096), data(0x8000, 4096)])],
            sgl1: lastSegment(S1, 2), length: 4096, expected: .failure(NVMeStatus.dataSGLLengthInvalid.withDNR)),
    // A last data block longer than the rest of the transfer is used in part (as QEMU).
    SGLCase(name: "the last data block longer than needed",
            writes: [], sgl1: data(0x3000, 8192), length: 4096, expected: .success([host(0x3000, 4096)])),
    SGLCase(name: "zero-length descriptors after the data are fine",
            writes: [(S1, [data(0x3000, 4096), data(0x8000, 0)])],
            sgl1: lastSegment(S1, 2), length: 4096, expected: .success([host(0x3000, 4096)])),
    SGLCase(name: "a segment chained after the data is complete is read",
            writes: [(S1, [data(0x3000, 4096), segment(unbacked, 4)])],
            sgl1: segment(S1, 2), length: 4096, expected: .failure(NVMeStatus.dataTransferError.withDNR)),
    SGLCase(name: "bit bucket in a read",
            writes: [(S1, [data(0x3000, 512), bitBucket(1024), data(0x6000, 512)])],
            sgl1: lastSegment(S1, 3), length: 2048, direction: .controllerToHost,
            expected: .success([host(0x3000, 512), .discard(1024), host(0x6000, 512)])),
    SGLCase(name: "bit bucket ending a read's segment",
            writes: [(S1, [data(0x3000, 512), bitBucket(1024)])],
            sgl1: segment(S1, 2), length: 1536, direction: .controllerToHost,
            expected: .success([host(0x3000, 512), .discard(1024)])),
    SGLCase(name: "bit bucket in a write",
            writes: [(S1, [data(0x3000, 512), bitBucket(1024), data(0x6000, 512)])],
            sgl1: lastSegment(S1, 3), length: 2048, direction: .hostToController,
            expected: .failure(typeInvalid)),
    SGLCase(name: "SGL1 bit bucket read larger than the discard buffer",
            sgl1: bitBucket(300 * 1024), length: 300 * 1024, direction: .controllerToHost,
            expected: .success([.discard(128 * 1024), .discard(128 * 1024), .discard(44 * 1024)])),
    SGLCase(name: "SGL1 bit bucket write", sgl1: bitBucket(512), length: 512, direction: .hostToController,
            expected: .failure(typeInvalid)),
    SGLCase(name: "segment larger than one read chunk",
            writes: [(S1, (0 ..< 300).map { data(0x40000 + UInt64($0) * 16, 16) })],
            sgl1: lastSegment(S1, 300), length: 300 * 16, expected: .success([host(0x40000, 4800)])),
    SGLCase(name: "segment pointing at itself (no progress)", writes: [(S1, [segment(S1, 1)])],
            sgl1: segment(S1, 1), length: 512, expected: .failure(segmentInvalid)),
    SGLCase(name: "loop of empty data (no progress)", writes: [(S1, [data(0x3000, 0), segment(S1, 2)])],
            sgl1: segment(S1, 2), length: 512, expected: .failure(segmentInvalid)),
    SGLCase(name: "loop making progress is bounded", writes: [(S1, [data(0x3000, 1), segment(S1, 2)])],
            sgl1: segment(S1, 2), length: 1 << 20, expected: .failure(numberInvalid)),
    SGLCase(name: "loop that completes the transfer, then describes more", writes: [(S1, [data(0x3000, 512), segment(S1, 2)])],
            sgl1: segment(S1, 2), length: 2048,
            expected: .failure(NVMeStatus.dataSGLLengthInvalid.withDNR)),
]

@Suite("SGL mapping (NVMe 1.4 §4.4)")
struct SGLMapperTests {
    @Test(arguments: sglCases)
    func sgl(_ c: SGLCase) {
        let f = Fixture()
        for (a, ds) in c.writes { f.put(a, ds) }
        let result = SGLMapper.map(sgl1Low: c.sgl1.low, sgl1High: c.sgl1.high, length: c.length,
                                   direction: c.direction, in: f.space)
        #expect(f.describe(result) == c.expected)
        if case .success(let iov) = result { #expect(totalLength(iov) == c.length) }
    }

    @Test func bitBucketReadLandsInDiscardNotHostMemory() throws {
        let f = Fixture()
        f.put(S1, [data(0x3000, 4), bitBucket(4), data(0x3004, 4)])
        let iov = try SGLMapper.map(sgl1Low: lastSegment(S1, 3).low, sgl1High: lastSegment(S1, 3).high,
                                    length: 12, direction: .controllerToHost, in: f.space).get()
        let payload: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        payload.withUnsafeBytes { scatter($0, into: iov) }
        var back = [UInt8](repeating: 0, count: 8)
        _ = back.withUnsafeMutableBytes { f.space.read(0x3000, into: $0) }
        #expect(back == [1, 2, 3, 4, 9, 10, 11, 12])
    }

    @Test func sqeSGL1MatchesTheDataPointerFields() {
        var sqe = SubmissionQueueEntry()
        sqe.sgl1 = lastSegment(0x1234_5678, 3)
        #expect(sqe.prp1 == 0x1234_5678)
        #expect(sqe.prp2 == UInt64(48) | UInt64(0x30) << 56)
        #expect(sqe.sgl1 == lastSegment(0x1234_5678, 3))
    }
}
