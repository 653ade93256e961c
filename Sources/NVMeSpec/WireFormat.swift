/// A fixed-size NVMe data structure with an explicit little-endian encoding.
///
/// Conforming types decode with `init?(bytes:)` (nil when the input is shorter
/// than `size`) and encode into the first `size` bytes of a buffer; reserved
/// bytes encode as zero. Nothing is ever bound onto memory.
public protocol NVMeWireFormat: Sendable {
    /// Encoded size in bytes.
    static var size: Int { get }
    /// Decodes the first `size` bytes; nil on short input.
    init?(bytes: UnsafeRawBufferPointer)
    /// Encodes into the first `size` bytes of `out` (which must be at least `size` long).
    func encode(into out: UnsafeMutableRawBufferPointer)
}

extension NVMeWireFormat {
    /// Decodes the first `size` bytes of an array; nil on short input.
    public init?(bytes: [UInt8]) {
        guard let value = bytes.withUnsafeBytes({ Self(bytes: $0) }) else { return nil }
        self = value
    }

    /// The `size`-byte encoding.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }

    /// Decodes `count` consecutive values (a list of ranges); nil if `bytes` holds fewer.
    public static func decodeList(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Self]? {
        guard count >= 0, bytes.count >= count * size else { return nil }
        return (0 ..< count).map { i in Self(bytes: UnsafeRawBufferPointer(rebasing: bytes[i * size ..< (i + 1) * size]))! }
    }

    /// Encodes values back to back.
    public static func encodeList(_ values: [Self]) -> [UInt8] { values.flatMap(\.bytes) }
}

extension SubmissionQueueEntry: NVMeWireFormat {}
extension CompletionQueueEntry: NVMeWireFormat {}

// Internal helpers for the wider fields of Identify and log page data. Named
// distinctly so that they never collide with helpers elsewhere in the module.
extension UnsafeRawBufferPointer {
    /// A 128-bit little-endian value (SMART counters, capacities).
    @inlinable func leWide128(_ offset: Int) -> UInt128 {
        UInt128(le64(offset)) | UInt128(le64(offset + 8)) << 64
    }
    /// A 24-bit little-endian value (IEEE OUI).
    @inlinable func leWide24(_ offset: Int) -> UInt32 {
        UInt32(le16(offset)) | UInt32(self[offset + 2]) << 16
    }
    /// `count` raw bytes starting at `offset`.
    @inlinable func rawField(_ offset: Int, count: Int) -> [UInt8] {
        Array(self[offset ..< offset + count])
    }
    /// A fixed-width ASCII field; trailing spaces and NULs are trimmed.
    func asciiField(_ offset: Int, width: Int) -> String {
        var end = offset + width
        while end > offset, self[end - 1] == 0x20 || self[end - 1] == 0 { end -= 1 }
        return String(decoding: self[offset ..< end], as: UTF8.self)
    }
    /// A NUL-terminated UTF-8 field of at most `width` bytes.
    func nulTerminatedField(_ offset: Int, width: Int) -> String {
        var end = offset
        while end < offset + width, self[end] != 0 { end += 1 }
        return String(decoding: self[offset ..< end], as: UTF8.self)
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable func putWide128(_ value: UInt128, at offset: Int) {
        put64(UInt64(truncatingIfNeeded: value), at: offset)
        put64(UInt64(truncatingIfNeeded: value >> 64), at: offset + 8)
    }
    @inlinable func putWide24(_ value: UInt32, at offset: Int) {
        put16(UInt16(truncatingIfNeeded: value), at: offset)
        self[offset + 2] = UInt8(truncatingIfNeeded: value >> 16)
    }
    /// Copies `field` into `count` bytes at `offset`, truncating or zero padding.
    @inlinable func putRawField(_ field: [UInt8], at offset: Int, count: Int) {
        for i in 0 ..< count { self[offset + i] = i < field.count ? field[i] : 0 }
    }
    /// Copies UTF-8 text into `width` bytes at `offset`, NUL padded (SUBNQN);
    /// at most `width - 1` bytes of text so that a terminator always remains.
    func putNulTerminated(_ text: String, at offset: Int, width: Int) {
        putRawField(Array(text.utf8.prefix(width - 1)), at: offset, count: width)
    }
    /// Zeroes the first `count` bytes (reserved fields encode as zero).
    @inlinable func zeroFill(_ count: Int) {
        for i in 0 ..< count { self[i] = 0 }
    }
}
