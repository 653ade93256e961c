import BlockIO
@testable import HostMemory
import NVMeSpec
import Testing

/// One PRP case: list entries to write, the data pointer, and the outcome.
struct PRPCase: Sendable, CustomStringConvertible {
    var name: String
    var writes: [(UInt64, UInt64)] = []
    var prp1: UInt64
    var prp2: UInt64 = 0
    var length: Int
    var pageSize: Int = 4096
    var expected: Result<[Fixture.Piece], NVMeStatus>
    var description: String { name }
}

private let page: UInt64 = 4096
private let L: UInt64 = 0x10000      // a PRP list page
private let L2: UInt64 = 0x11000     // a second PRP list page
private let unbacked: UInt64 = 0x4000_0000

private func list(_ at: UInt64, _ entries: [UInt64]) -> [(UInt64, UInt64)] {
    entries.enumerated().map { (at + UInt64($0.offset) * 8, $0.element) }
}

private func host(_ a: UInt64, _ n: Int) -> Fixture.Piece { .host(a, n) }

let prpCases: [PRPCase] = [
    PRPCase(name: "single page", prp1: 0x1000, length: 4096, expected: .success([host(0x1000, 4096)])),
    PRPCase(name: "offset within first page", prp1: 0x1010, length: 100,
            expected: .success([host(0x1010, 100)])),
    PRPCase(name: "offset first page then PRP2 page", prp1: 0x1800, prp2: 0x5000, length: 4096,
            expected: .success([host(0x1800, 2048), host(0x5000, 2048)])),
    PRPCase(name: "exactly two pages", prp1: 0x1000, prp2: 0x3000, length: 8192,
            expected: .success([host(0x1000, 4096), host(0x3000, 4096)])),
    PRPCase(name: "two adjacent pages merge", prp1: 0x1000, prp2: 0x2000, length: 8192,
            expected: .success([host(0x1000, 8192)])),
    PRPCase(name: "PRP2 data page with offset", prp1: 0x1000, prp2: 0x3008, length: 8192,
            expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
    // Address 0 is host memory like any other (as QEMU).
    PRPCase(name: "PRP1 zero", prp1: 0, prp2: 0x3000, length: 512, expected: .success([host(0, 512)])),
    PRPCase(name: "length 0", prp1: 0, length: 0, expected: .success([])),
    PRPCase(name: "list of four pages", writes: list(L, [0x3000, 0x5000, 0x7000, 0x9000]),
            prp1: 0x1000, prp2: L, length: 5 * 4096,
            expected: .success([host(0x1000, 4096), host(0x3000, 4096), host(0x5000, 4096),
                                host(0x7000, 4096), host(0x9000, 4096)])),
    PRPCase(name: "list with partial last page and offset PRP1",
            writes: list(L, [0x3000, 0x5000, 0x7000]),
            prp1: 0x1800, prp2: L, length: 2048 + 2 * 4096 + 100,
            expected: .success([host(0x1800, 2048), host(0x3000, 4096), host(0x5000, 4096), host(0x7000, 100)])),
    PRPCase(name: "list pointer with offset", writes: list(L + 0x800, [0x3000, 0x5000]),
            prp1: 0x1000, prp2: L + 0x800, length: 3 * 4096,
            expected: .success([host(0x1000, 4096), host(0x3000, 4096), host(0x5000, 4096)])),
    PRPCase(name: "chained list pages (offset leaves two slots)",
            writes: list(L + 4080, [0x3000, L2]) + list(L2, [0x5000, 0x7000]),
            prp1: 0x1000, prp2: L + 4080, length: 4 * 4096,
            expected: .success([host(0x1000, 4096), host(0x3000, 4096), host(0x5000, 4096), host(0x7000, 4096)])),
    PRPCase(name: "chained full list page",
            writes: list(L, (0 ..< 511).map { 0x100000 + UInt64($0) * page } + [L2])
                + list(L2, (511 ..< 600).map { 0x100000 + UInt64($0) * page }),
            prp1: 0x1000, prp2: L, length: 601 * 4096,
            expected: .success([host(0x1000, 4096), host(0x100000, 600 * 4096)])),
    PRPCase(name: "list not chained when the last slot is data",
            writes: list(L + 4080, [0x3000, 0x5000]),
            prp1: 0x1000, prp2: L + 4080, length: 3 * 4096,
            expected: .success([host(0x1000, 4096), host(0x3000, 4096), host(0x5000, 4096)])),
    PRPCase(name: "list entry misaligned", writes: list(L, [0x3000, 0x5010]),
            prp1: 0x1000, prp2: L, length: 3 * 4096,
            expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
    PRPCase(name: "first list entry misaligned", writes: list(L, [0x3200, 0x5000]),
            prp1: 0x1000, prp2: L, length: 3 * 4096,
            expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
    PRPCase(name: "chain pointer misaligned", writes: list(L + 4080, [0x3000, L2 + 8]),
            prp1: 0x1000, prp2: L + 4080, length: 4 * 4096,
            expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
    PRPCase(name: "list pointer not dword aligned", writes: list(L, [0x3000, 0x5000]),
            prp1: 0x1000, prp2: L + 2, length: 3 * 4096,
            expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
    // An unreadable list is Data Transfer Error with DNR (QEMU 7.2); unbacked data pages without.
    PRPCase(name: "list in unbacked memory", prp1: 0x1000, prp2: unbacked, length: 3 * 4096,
            expected: .failure(NVMeStatus.dataTransferError.withDNR)),
    PRPCase(name: "chained list page unbacked", writes: list(L + 4080, [0x3000, unbacked]),
            prp1: 0x1000, prp2: L + 4080, length: 4 * 4096,
            expected: .failure(NVMeStatus.dataTransferError.withDNR)),
    PRPCase(name: "PRP1 page unbacked", prp1: unbacked, length: 512, expected: .failure(.dataTransferError)),
    PRPCase(name: "PRP2 page unbacked", prp1: 0x1000, prp2: unbacked, length: 8192,
            expected: .failure(.dataTransferError)),
    PRPCase(name: "list data page unbacked", writes: list(L, [0x3000, unbacked]),
            prp1: 0x1000, prp2: L, length: 3 * 4096, expected: .failure(.dataTransferError)),
    PRPCase(name: "data runs off the end of mem", prp1: 0x7F_F800, prp2: 0x80_0000, length: 4096,
            expected: .failure(.dataTransferError)),
    PRPCase(name: "self-looping list terminates",
            writes: list(L, Array(repeating: L, count: 512)),
            prp1: 0x1000, prp2: L + 4088, length: 4096 * 2001,
            expected: .success([host(0x1000, 4096)] + Array(repeating: host(L, 4096), count: 2000))),
    PRPCase(name: "8 KiB pages: offset PRP1 and PRP2", prp1: 0x2100, prp2: 0x6000, length: 8192, pageSize: 8192,
            expected: .success([host(0x2100, 7936), host(0x6000, 256)])),
    PRPCase(name: "8 KiB pages: PRP2 only 4 KiB aligned", prp1: 0x2000, prp2: 0x5000, length: 16384,
            pageSize: 8192, expected: .failure(NVMeStatus.prpOffsetInvalid.withDNR)),
]

@Suite("PRP mapping (NVMe 1.4 §4.3)")
struct PRPMapperTests {
    @Test(arguments: prpCases)
    func prp(_ c: PRPCase) {
        let f = Fixture()
        for (a, v) in c.writes { f.put64(a, v) }
        let result = PRPMapper.map(prp1: c.prp1, prp2: c.prp2, length: c.length, pageSize: c.pageSize, in: f.space)
        #expect(f.describe(result) == c.expected)
        if case .success(let iov) = result { #expect(totalLength(iov) == c.length) }
    }

    @Test func spansAdjacentRegions() throws {
        let f = Fixture(memSize: 1 << 20)
        let priv = try AnonymousMemory(size: 1 << 16)
        try f.space.map(base: 1 << 20, length: priv.size, pointer: priv.pointer, name: "host", kind: .hostPrivate)
        let iov = try PRPMapper.map(prp1: (1 << 20) - 4096 + 0x800, prp2: 1 << 20, length: 4096, pageSize: 4096,
                                    in: f.space).get()
        #expect(iov.count == 2)
        #expect(iov.first?.base == f.mem.pointer + (1 << 20) - 2048)
        #expect(iov.last?.base == priv.pointer)
        #expect(iov.map(\.length) == [2048, 2048])
    }

    @Test func appendingVariantReusesTheArray() {
        let f = Fixture()
        var iov: [IOVector] = []
        #expect(PRPMapper.map(prp1: 0x1000, prp2: 0x3000, length: 8192, pageSize: 4096, into: &iov, in: f.space)
            == .success)
        #expect(f.describe(iov) == [.host(0x1000, 4096), .host(0x3000, 4096)])
    }
}
