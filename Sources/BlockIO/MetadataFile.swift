import NVMeSpec

import Glibc

/// The metadata file of a namespace (docs/METADATA.md): `IMAGE.nvmefs-md`
/// beside the image. A 4 KiB text header records the namespace's format,
/// so a format chosen by mount options or by Format NVM survives a
/// remount; LBA n's `ms` metadata bytes follow at `headerSize + n * ms`,
/// as on the wire (PI big-endian). The image itself holds only data.
public enum MetadataFile {
    public static let headerSize: UInt64 = 4096
    public static let suffix = ".nvmefs-md"
    static let magic = "nvmefs namespace format 1"

    public static func path(forImage image: String) -> String { image + suffix }

    /// The header's text for `format`.
    public static func header(_ format: NamespaceFormat) -> String {
        "\(magic)\nlbads=\(format.lbads)\nms=\(format.ms)\nextended=\(format.extended ? 1 : 0)\n"
            + "pi=\(format.pi.rawValue)\npil=\(format.piFirst ? 1 : 0)\n"
    }

    /// Parses a header; nil if it is not one (or names an invalid format).
    public static func parse(_ text: String) -> NamespaceFormat? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(magic) else { return nil }
        lines.removeFirst()
        var values: [Substring: UInt16] = [:]
        for line in lines {
            let kv = line.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = UInt16(kv[1]) else { return nil }
            values[kv[0]] = v
        }
        guard let lbads = values["lbads"], let ms = values["ms"], let ext = values["extended"], let pi = values["pi"],
              let pil = values["pil"], lbads <= 12, ext <= 1, pil <= 1,
              let type = ProtectionType(rawValue: UInt8(truncatingIfNeeded: pi)), pi <= 3 else { return nil }
        let f = NamespaceFormat(lbads: UInt8(lbads), ms: ms, extended: ext == 1, pi: type, piFirst: pil == 1)
        return f.invalidReason == nil ? f : nil
    }

    /// The format recorded in the metadata file at `path`; nil when there
    /// is no such file.
    /// - Throws: `ImageBackendError` for a file that cannot be read or is not a metadata file (EINVAL).
    public static func readFormat(path: String) throws -> NamespaceFormat? {
        guard let fd = try SystemCalls.openExisting(path) else { return nil }
        defer { _ = Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: Int(headerSize))
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw ImageBackendError(path: path, operation: "read", errno: n < 0 ? errno : EINVAL) }
        let end = buffer[0..<n].firstIndex(of: 0) ?? n
        guard let text = String(validating: buffer[0..<end], as: UTF8.self), let format = parse(text) else {
            throw ImageBackendError(path: path, operation: "parse the header of", errno: EINVAL)
        }
        return format
    }

    /// Writes a metadata file for `nsze` blocks of `format` (replacing any):
    /// the header, then every block's metadata as deallocated (zeros, PI
    /// tuples FFh). Runs in the caller's thread (a file of up to
    /// nsze × ms bytes is written when the format has PI).
    /// - Throws: `ImageBackendError` with the path and errno.
    public static func create(path: String, format: NamespaceFormat, nsze: UInt64) throws {
        let (bytes, overflow) = nsze.multipliedReportingOverflow(by: UInt64(format.ms))
        guard !overflow, bytes <= UInt64(Int64.max) - headerSize else {
            throw ImageBackendError(path: path, operation: "create", errno: EFBIG)
        }
        var fd: Int32
        // Beside its image, it is no more open than the image.
        let mode = SystemCalls.sidecarMode(path, suffix: suffix)
        repeat { fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ImageBackendError(path: path, operation: "create", errno: errno) }
        defer { _ = Glibc.close(fd) }
        func fail(_ op: String) -> ImageBackendError { ImageBackendError(path: path, operation: op, errno: errno) }
        var head = [UInt8](repeating: 0, count: Int(headerSize))
        let text = Array(header(format).utf8)
        head.replaceSubrange(0..<text.count, with: text)
        guard head.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == Int(headerSize) else { throw fail("write") }
        var rc: Int32
        repeat { rc = ftruncate(fd, off_t(headerSize + bytes)) } while rc < 0 && errno == EINTR
        guard rc == 0 else { throw fail("truncate") }
        if format.pi != .none && bytes > 0 {
            // A chunk of whole blocks' metadata, written over and over.
            let blocksPerChunk = max(1, (1 << 20) / Int(format.ms))
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: blocksPerChunk * Int(format.ms), alignment: 4096)
            defer { chunk.deallocate() }
            format.deallocatedMetadata(into: chunk)
            var at: UInt64 = 0
            while at < bytes {
                let n = Int(min(UInt64(chunk.count), bytes - at))
                let w = pwrite(fd, chunk.baseAddress, n, off_t(headerSize + at))
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw fail("write") }
                at += UInt64(w)
            }
        }
        guard fsync(fd) == 0 else { throw fail("sync") }
    }
}
