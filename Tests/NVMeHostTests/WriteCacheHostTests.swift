import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

/// The built-in host over a controller with a write cache (docs/WRITE-CACHE.md).
@Suite struct WriteCacheHostTests {
    /// A plain write stays in the cache until a Flush; a FUA write (an
    /// O_DSYNC write of `data`) reaches the image at once, its unaligned
    /// edges too, and leaves nothing dirty.
    @Test func fuaWritesReachTheImage() throws {
        let tb = TestBackend(size: 1 << 20)
        var p = ControllerParameters()
        p.writeCacheSize = 1 << 20
        let rig = try Rig([(tb, 9)], parameters: p)
        let plain = pattern(4096, seed: 1)
        #expect(try rig.write(1, 0, plain).get() == 4096)
        #expect(tb.read(offset: 0, count: 4096) == [UInt8](repeating: 0, count: 4096))
        #expect(try rig.read(1, 0, 4096).get() == plain)
        let durable = pattern(5000, seed: 2)
        let n = durable.withUnsafeBytes { rig.host.write(nsid: 1, offset: 8192 + 100, from: $0, fua: true) }
        #expect(try n.get() == 5000)
        #expect(tb.read(offset: 8192 + 100, count: 5000) == durable)
        #expect(rig.controller.writeCacheState(1)?.dirtyBytes == 4096)
        let fuaWrites = tb.submitted.filter { $0.operation == .write }.count
        #expect(fuaWrites >= 2)
        #expect(try rig.host.flush(nsid: 1).get() == ())
        #expect(tb.read(offset: 0, count: 4096) == plain)
    }
}
