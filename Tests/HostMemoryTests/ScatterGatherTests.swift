import BlockIO
import HostMemory
import Testing

@Suite("scatter / gather")
struct ScatterGatherTests {
    @Test func roundTrip() throws {
        let mem = try AnonymousMemory(size: 4096)
        let iov = [IOVector(base: mem.pointer + 100, length: 7), IOVector(base: mem.pointer + 3000, length: 1),
                   IOVector(base: mem.pointer, length: 50)]
        let source: [UInt8] = (0 ..< 58).map { UInt8($0 + 1) }
        source.withUnsafeBytes { scatter($0, into: iov) }
        #expect(mem.pointer.load(fromByteOffset: 100, as: UInt8.self) == 1)
        #expect(mem.pointer.load(fromByteOffset: 3000, as: UInt8.self) == 8)
        #expect(mem.pointer.load(fromByteOffset: 0, as: UInt8.self) == 9)
        var back = [UInt8](repeating: 0, count: 58)
        back.withUnsafeMutableBytes { gather(iov, into: $0) }
        #expect(back == source)
    }

    @Test func stopsAtTheShorterSide() throws {
        let mem = try AnonymousMemory(size: 64)
        let iov = [IOVector(base: mem.pointer, length: 4), IOVector(base: mem.pointer + 8, length: 4)]
        let source: [UInt8] = [1, 2, 3, 4, 5, 6]
        source.withUnsafeBytes { scatter($0, into: iov) }
        #expect(mem.pointer.load(fromByteOffset: 10, as: UInt8.self) == 0)
        var back = [UInt8](repeating: 0xAA, count: 10)
        back.withUnsafeMutableBytes { gather(iov, into: $0) }
        #expect(back == [1, 2, 3, 4, 5, 6, 0, 0, 0xAA, 0xAA])
        #expect(totalLength(iov) == 8)
    }
}
