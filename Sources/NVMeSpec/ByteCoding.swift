/// Explicit little-endian access to byte buffers. NVMe structures are never
/// bound onto memory: every field is decoded and encoded through these helpers.
extension UnsafeRawBufferPointer {
    @inlinable public func le8(_ offset: Int) -> UInt8 { self[offset] }
    @inlinable public func le16(_ offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }
    @inlinable public func le32(_ offset: Int) -> UInt32 {
        UInt32(le16(offset)) | UInt32(le16(offset + 2)) << 16
    }
    @inlinable public func le64(_ offset: Int) -> UInt64 {
        UInt64(le32(offset)) | UInt64(le32(offset + 4)) << 32
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable public func put8(_ value: UInt8, at offset: Int) { self[offset] = value }
    @inlinable public func put16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }
    @inlinable public func put32(_ value: UInt32, at offset: Int) {
        put16(UInt16(truncatingIfNeeded: value), at: offset)
        put16(UInt16(truncatingIfNeeded: value >> 16), at: offset + 2)
    }
    @inlinable public func put64(_ value: UInt64, at offset: Int) {
        put32(UInt32(truncatingIfNeeded: value), at: offset)
        put32(UInt32(truncatingIfNeeded: value >> 32), at: offset + 4)
    }
    /// Copies ASCII text into a fixed-width field padded with spaces (Identify strings).
    @inlinable public func putASCII(_ text: String, at offset: Int, width: Int) {
        var bytes = Array(text.utf8.prefix(width))
        bytes += Array(repeating: 0x20, count: width - bytes.count)
        for (i, b) in bytes.enumerated() { self[offset + i] = b }
    }
}

extension Array where Element == UInt8 {
    /// Runs `body` on the bytes; convenience for tests and encoders.
    @inlinable public func withLE<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

/// `0x` and lowercase hex without padding: how traces and messages show
/// addresses, opcodes and register values.
@inlinable public func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

/// Extracts bits `lo...hi` (inclusive) of a value.
@inlinable public func bits<T: FixedWidthInteger>(_ value: T, _ hi: Int, _ lo: Int) -> T {
    let width = hi - lo + 1
    let mask: T = width >= T.bitWidth ? ~0 : ((1 << T(width)) - 1)
    return (value >> T(lo)) & mask
}

/// Returns `value` with bits `lo...hi` replaced by `field`.
@inlinable public func settingBits<T: FixedWidthInteger>(_ value: T, _ hi: Int, _ lo: Int, to field: T) -> T {
    let width = hi - lo + 1
    let mask: T = width >= T.bitWidth ? ~0 : ((1 << T(width)) - 1)
    return (value & ~(mask << T(lo))) | ((field & mask) << T(lo))
}
