import BlockIO
import Glibc

/// `selftest/`: files exercising every path of the bridge, for the FS
/// tests (mounted with the hidden `--selftest-files` option).
///
/// - `text`  0644 text attribute: a write stores the text, a read returns it
/// - `ro`    0444 text; `wo` 0200 write-only sink; `erange` 0644 refusing every write with ERANGE
/// - `blob`  1 MiB binary, block-device-like: zero-copy reads, writes past
///   the end fail with ENOSPC, O_TRUNC ignored, truncate to another size
///   EINVAL, fallocate PUNCH_HOLE|KEEP_SIZE or ZERO_RANGE zero the range
/// - `stream` a blocking line stream; `emit` 0200 appends each written line to it
public enum SelfTestFiles {
    public static func directory(stream: EventStream) -> Node {
        let text = Locked("hello\n")
        return .directory("selftest", about: "files that test the FUSE bridge", [
            .file("text", about: "read-write text attribute",
                  GeneratedFile(mode: 0o644, text: { text.withLock { $0 } },
                                store: { s in text.withLock { $0 = s } })),
            .file("ro", about: "read-only text",
                  GeneratedFile(text: { "read-only\n" })),
            .file("wo", about: "write-only sink",
                  GeneratedFile(text: nil, store: { _ in })),
            .file("erange", about: "refuses every write with ERANGE",
                  GeneratedFile(mode: 0o644, text: { "0\n" }, store: { _ throws(FileError) in throw .outOfRange })),
            .file("blob", about: "1 MiB block-device-like memory", MemoryFile(size: 1 << 20)),
            .file("stream", about: "blocking line stream", StreamFile(stream)),
            .file("emit", about: "appends each written line to stream",
                  GeneratedFile(text: nil, store: { s in
                      for line in s.split(separator: "\n") { stream.append(String(line)) }
                  })),
        ])
    }
}

/// A fixed-size in-memory file behaving like a block device.
final class MemoryFile: FileHandler {
    private let bytes: Locked<[UInt8]>
    private let length: Int

    init(size: Int) {
        length = size
        bytes = Locked([UInt8](repeating: 0, count: size))
    }

    var mode: UInt16 { 0o644 }
    func size() -> UInt64 { UInt64(length) }

    func read(_ request: ReadRequest) {
        request.fill { buffer in
            guard request.offset < UInt64(length) else { return 0 }
            let start = Int(request.offset)
            let n = min(buffer.count, length - start)
            bytes.withLock { b in b.withUnsafeBytes { src in buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<start + n])) } }
            return n
        }
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        guard offset < UInt64(length) else { throw .noSpace }
        let start = Int(offset)
        let n = min(data.count, length - start)
        bytes.withLock { b in
            b.withUnsafeMutableBytes { dst in
                UnsafeMutableRawBufferPointer(rebasing: dst[start..<start + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[0..<n]))
            }
        }
        return n
    }

    func fallocate(mode: Int32, offset: UInt64, length: UInt64, file: OpenFile) throws(FileError) {
        let punch = FallocateMode.punchHole | FallocateMode.keepSize
        guard mode == punch || mode & ~FallocateMode.keepSize == FallocateMode.zeroRange else { throw .notSupported }
        guard offset < UInt64(self.length) else { throw .noSpace }
        let start = Int(offset), end = Int(min(UInt64(self.length), offset + length))
        bytes.withLock { b in for i in start..<end { b[i] = 0 } }
    }
}
