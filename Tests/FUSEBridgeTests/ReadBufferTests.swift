import BlockIO
import Foundation
@testable import FUSEBridge
import HostMemory
import NVMeController
import NVMeHost
import Testing

/// The per-worker read buffer of `namespaces/N/data` reads (`ReadBuffer`).
@Suite("Read buffer")
struct ReadBufferTests {
    /// A controller over one TestBackend namespace (512-byte blocks) and a
    /// built-in host on it.
    final class Rig: @unchecked Sendable {
        let space = HostAddressSpace()
        let mem: AnonymousMemory
        let backend: TestBackend
        let host: BuiltinHost

        init(commandTimeout: Duration? = nil) throws {
            backend = TestBackend(size: 1 << 20)
            mem = try AnonymousMemory(size: 1 << 20)
            try space.map(base: 0, length: 1 << 20, pointer: mem.pointer, name: "mem", kind: .userMemory)
            let controller = NVMeController(parameters: ControllerParameters(),
                                            namespaces: [Namespace(nsid: 1, backend: backend, lbads: 9)], space: space)
            var c = BuiltinHostConfiguration()
            if let commandTimeout {
                c.commandTimeout = commandTimeout
                c.readyTimeout = commandTimeout
            }
            host = try BuiltinHost(controller: controller, configuration: c)
        }

        deinit { host.shutdown() }
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed } }

    @Test func readsReuseOneMappedBufferAndGrowItWhenNeeded() throws {
        let rig = try Rig()
        let data = Self.bytes(65536, seed: 3)
        rig.backend.write(data, at: 0)
        let rb = ReadBuffer()
        let (first, firstMapping) = rb.take(4096, host: rig.host)
        #expect(first.count == 4096)
        #expect(UInt(bitPattern: first.baseAddress) % 4096 == 0)
        let mapping = try #require(firstMapping)
        #expect(mapping.isMapped)
        #expect(try rig.host.read(nsid: 1, offset: 512, into: first, mapped: mapping, parking: rb.parking).get() == 4096)
        #expect(Array(first) == Array(data[512..<4608]))
        // The next read of the same size or smaller: the same memory and mapping.
        let (again, againMapping) = rb.take(1024, host: rig.host)
        #expect(again.baseAddress == first.baseAddress)
        #expect(againMapping === mapping)
        // A larger read: a larger buffer, mapped whole.
        let (large, largeMapping) = rb.take(65536, host: rig.host)
        #expect(large.count == 65536)
        #expect(!mapping.isMapped)
        let newMapping = try #require(largeMapping)
        #expect(newMapping.isMapped && newMapping.count >= 65536)
        #expect(try rig.host.read(nsid: 1, offset: 0, into: large, mapped: newMapping, parking: rb.parking).get() == 65536)
        #expect(Array(large) == data)
    }

    /// A read whose command the host gives up (its backend I/O stuck): the
    /// buffer leaves the thread, which reads into a new one next time; the
    /// late I/O writes into memory that is still allocated.
    @Test func aGivenUpReadDetachesTheBuffer() throws {
        let rig = try Rig(commandTimeout: .milliseconds(200))
        rig.backend.refusesCancel = true
        rig.backend.write(Self.bytes(8192, seed: 9), at: 0)
        let rb = ReadBuffer()
        let (buffer, mapping) = rb.take(8192, host: rig.host)
        rig.backend.addRule(.hold(operations: [.read]))
        let r = rig.host.read(nsid: 1, offset: 0, into: buffer, mapped: mapping, parking: rb.parking)
        #expect((try? r.get()) == nil)
        #expect(rig.backend.heldCount == 1)
        #expect(mapping?.isMapped != true)
        rig.backend.clearRules()
        let (next, nextMapping) = rb.take(8192, host: rig.host)
        #expect(next.baseAddress != buffer.baseAddress)
        #expect(nextMapping?.isMapped == true)
        // The stuck I/O ends: it writes into the detached buffer, which the
        // host then frees (AddressSanitizer would report a write after free).
        #expect(rig.backend.releaseAll() == 1)
    }
}
