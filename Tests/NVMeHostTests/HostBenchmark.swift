import BlockIO
import Foundation
import NVMeController
import NVMeHost
import Testing

/// Read loops through `BuiltinHost.read` on a page-cached image (CONTRACT §6).
/// A measurement, not a test: it runs only with NVMEFS_HOST_BENCH=1 (use a
/// release build) and prints its numbers; it asserts nothing about time.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["NVMEFS_HOST_BENCH"] == "1"))
struct HostBenchmark {
    @Test(arguments: [ImageBackend.ExecutionMode.inline, .threadPool(workers: 4)])
    func readLoops(mode: ImageBackend.ExecutionMode) throws {
        let size: UInt64 = 256 << 20
        let image = try TempImage(size: size)
        // Fill the image so that its pages are cached.
        let fd = open(image.path, O_WRONLY)
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        for i in 0..<Int(size >> 20) { _ = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(i << 20)) } }
        close(fd)
        let rig = try Rig([(try ImageBackend(path: image.path, mode: mode), 9)])
        for blockSize in [4096, 1 << 20] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 4096)
            defer { buffer.deallocate() }
            var offset: UInt64 = 0
            // Warm up, then measure about two seconds.
            for _ in 0..<100 { _ = rig.host.read(nsid: 1, offset: 0, into: buffer) }
            let start = Date()
            var ops = 0
            while true {
                guard case .success(let n) = rig.host.read(nsid: 1, offset: offset, into: buffer), n == blockSize else {
                    Issue.record("read failed at \(offset)")
                    return
                }
                ops += 1
                offset = (offset + UInt64(blockSize)) % size
                if ops % 256 == 0 && Date().timeIntervalSince(start) > 2 { break }
            }
            let seconds = Date().timeIntervalSince(start)
            let opsPerSecond = Double(ops) / seconds
            let mbPerSecond = opsPerSecond * Double(blockSize) / 1_000_000
            print("host-bench mode=\(mode) block=\(blockSize) ops/s=\(Int(opsPerSecond)) MB/s=\(Int(mbPerSecond)) us/op=\(String(format: "%.2f", 1e6 / opsPerSecond))")
        }
    }
}
