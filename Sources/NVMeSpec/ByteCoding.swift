/// Explicit little-endian access to byte buffers. NVMe structures are never
/// bound onto memory: every field is decoded and encoded through these helpers.
extension UnsafeRawBufferPointer {
    @inlinable public func le8(_ offset: Int) -> UInt8 { self[offset] }
    @inlinable public func le16(_ offset: Int) -> UInt16 { load(UInt16.self, offset) }
    @inlinable public func le32(_ offset: Int) -> UInt32 { load(UInt32.self, offset) }
    @inlinable public func le64(_ offset: Int) -> UInt64 { load(UInt64.self, offset) }

    /// One unaligned load of a little-endian integer (bounds checked).
    @inlinable @inline(__always)
    func load<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "field past the end of the buffer")
        return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable public func put8(_ value: UInt8, at offset: Int) { self[offset] = value }
    @inlinable public func put16(_ value: UInt16, at offset: Int) { store(value, offset) }
    @inlinable public func put32(_ value: UInt32, at offset: Int) { store(value, offset) }
    @inlinable public func put64(_ value: UInt64, at offset: Int) { store(value, offset) }

    /// One unaligned store of a little-endian integer (bounds checked).
    @inlinable @inline(__always)
    func store<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
        precondition(offset >= 0 && offset <= count - MemoryLayout<T>.size, "field past the end of the buffer")
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
    /// Copies ASCII text into a fixed-width field padded with spaces (Identify strings).
    @inlinable public func putASCII(_ text: String, at offset: Int, width: Int) {
        var bytes = Array(text.utf8.prefix(width))
        bytes += Array(repeating: 0x20, count: width - bytes.count)
        for (i, b) in bytes.enumerated() { self[offset + i] = b }
    }
}

/// Field access inside one fixed-size structure whose whole extent was
/// checked once, when this was made: the queue entries decoded and encoded
/// on every command read their fields with no bounds check per field. Only
/// for offsets that are constants inside the structure's size (debug builds,
/// which the tests run, still check each field).
@frozen public struct CheckedFields {
    public let base: UnsafeRawPointer
    public let size: Int
    /// Nil when `buffer` is shorter than `size` bytes.
    @inlinable @inline(__always) public init?(_ buffer: UnsafeRawBufferPointer, size: Int) {
        guard buffer.count >= size, let base = buffer.baseAddress else { return nil }
        self.base = base
        self.size = size
    }
    @inlinable @inline(__always) func load<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
        assert(offset >= 0 && offset + MemoryLayout<T>.size <= size, "field past the end of the structure")
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
    @inlinable @inline(__always) public func le8(_ offset: Int) -> UInt8 { load(UInt8.self, offset) }
    @inlinable @inline(__always) public func le16(_ offset: Int) -> UInt16 { load(UInt16.self, offset) }
    @inlinable @inline(__always) public func le32(_ offset: Int) -> UInt32 { load(UInt32.self, offset) }
    @inlinable @inline(__always) public func le64(_ offset: Int) -> UInt64 { load(UInt64.self, offset) }
}

/// The store side of `CheckedFields`.
@frozen public struct CheckedMutableFields {
    public let base: UnsafeMutableRawPointer
    public let size: Int
    /// Traps when `buffer` is shorter than `size` bytes (an encoder's caller error).
    @inlinable @inline(__always) public init(_ buffer: UnsafeMutableRawBufferPointer, size: Int) {
        precondition(buffer.count >= size && buffer.baseAddress != nil, "buffer shorter than the structure")
        base = buffer.baseAddress!
        self.size = size
    }
    @inlinable @inline(__always) func store<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
        assert(offset >= 0 && offset + MemoryLayout<T>.size <= size, "field past the end of the structure")
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
    @inlinable @inline(__always) public func put8(_ value: UInt8, at offset: Int) { store(value, offset) }
    @inlinable @inline(__always) public func put16(_ value: UInt16, at offset: Int) { store(value, offset) }
    @inlinable @inline(__always) public func put32(_ value: UInt32, at offset: Int) { store(value, offset) }
    @inlinable @inline(__always) public func put64(_ value: UInt64, at offset: Int) { store(value, offset) }
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
