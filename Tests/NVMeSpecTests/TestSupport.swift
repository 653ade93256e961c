import Testing
import NVMeSpec

/// `width` little-endian bytes of `value`.
func le(_ value: UInt128, _ width: Int) -> [UInt8] {
    (0 ..< width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt128($0))) }
}

/// A distinct, all-bytes-non-zero pattern for a field at `offset`.
func pattern(_ offset: Int, _ width: Int) -> [UInt8] {
    (0 ..< width).map { UInt8(truncatingIfNeeded: 0x41 &+ offset &* 3 &+ $0 &* 29) | 0x01 }
}

/// Integer value whose little-endian encoding is `bytes`.
func value<V: FixedWidthInteger>(_ bytes: [UInt8], as _: V.Type = V.self) -> V {
    bytes.reversed().reduce(V(0)) { $0 << 8 | V($1) }
}

/// One field of a wire structure: setting it must change exactly the bytes
/// `offset ..< offset + expected.count`, to `expected`.
struct FieldPin<T> {
    let name: String
    let offset: Int
    let expected: [UInt8]
    let set: (inout T) -> Void

    init(_ name: String, _ offset: Int, _ expected: [UInt8], _ set: @escaping (inout T) -> Void) {
        self.name = name; self.offset = offset; self.expected = expected; self.set = set
    }

    /// An integer field of `width` bytes written through a key path, with a distinct value.
    static func int<V: FixedWidthInteger>(_ name: String, _ offset: Int, _ width: Int,
                                         _ path: WritableKeyPath<T, V>) -> FieldPin<T> {
        precondition(width * 8 == V.bitWidth)
        let bytes = pattern(offset, width)
        let v: V = value(bytes)
        return FieldPin(name, offset, bytes) { $0[keyPath: path] = v }
    }

    var range: Range<Int> { offset ..< offset + expected.count }
}

/// Checks every pin against `base`: bytes at the spec offsets, nothing else
/// touched, and decoding gives the value back. Also checks that no two pins
/// overlap (a typo in the table would show up here). Returns `base` with
/// every pin applied (a fully populated value).
@discardableResult
func checkPins<T: NVMeWireFormat & Equatable>(_ base: T, _ pins: [FieldPin<T>],
                                              sourceLocation: SourceLocation = #_sourceLocation) -> T {
    let baseBytes = base.bytes
    #expect(baseBytes.count == T.size, sourceLocation: sourceLocation)
    for pin in pins {
        var v = base
        pin.set(&v)
        let enc = v.bytes
        #expect(Array(enc[pin.range]) == pin.expected, "field \(pin.name) at \(pin.offset)",
                sourceLocation: sourceLocation)
        let changedElsewhere = (0 ..< T.size).filter { !pin.range.contains($0) && enc[$0] != baseBytes[$0] }
        #expect(changedElsewhere.isEmpty, "field \(pin.name) also changed bytes \(changedElsewhere)",
                sourceLocation: sourceLocation)
        #expect(T(bytes: enc) == v, "field \(pin.name) does not decode back", sourceLocation: sourceLocation)
    }
    let sorted = pins.sorted { $0.offset < $1.offset }
    for (a, b) in zip(sorted, sorted.dropFirst()) {
        #expect(a.range.upperBound <= b.offset, "fields \(a.name) and \(b.name) overlap",
                sourceLocation: sourceLocation)
    }
    // Everything at once: the encoding is the baseline patched with every pin.
    var all = base
    var expected = baseBytes
    for pin in pins {
        pin.set(&all)
        expected.replaceSubrange(pin.range, with: pin.expected)
    }
    #expect(all.bytes == expected, "all fields together", sourceLocation: sourceLocation)
    #expect(T(bytes: expected) == all, "all fields decode", sourceLocation: sourceLocation)
    return all
}

/// Every prefix shorter than `size` decodes to nil; the full encoding decodes.
func checkShortPrefixes<T: NVMeWireFormat & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) {
    let enc = value.bytes
    var failures: [Int] = []
    for n in 0 ..< T.size where T(bytes: Array(enc.prefix(n))) != nil { failures.append(n) }
    #expect(failures.isEmpty, "prefixes that decoded: \(failures.prefix(5))", sourceLocation: sourceLocation)
    #expect(T(bytes: enc) == value, sourceLocation: sourceLocation)
    // Longer input decodes the first `size` bytes.
    #expect(T(bytes: enc + [0xFF, 0xFF]) == value, sourceLocation: sourceLocation)
    // The UnsafeRawBufferPointer and [UInt8] initialisers agree.
    #expect(enc.withUnsafeBytes { T(bytes: $0) } == value, sourceLocation: sourceLocation)
}

/// A register bit field: (name, hi, lo) with accessors through UInt64.
struct BitPin<R> {
    let name: String
    let hi: Int
    let lo: Int
    let get: (R) -> UInt64
    let set: (inout R, UInt64) -> Void

    init<V: FixedWidthInteger>(_ name: String, _ hi: Int, _ lo: Int, _ path: WritableKeyPath<R, V>) {
        self.name = name; self.hi = hi; self.lo = lo
        get = { UInt64($0[keyPath: path]) }
        set = { $0[keyPath: path] = V(truncatingIfNeeded: $1) }
    }
    init(_ name: String, _ bit: Int, _ path: WritableKeyPath<R, Bool>) {
        self.name = name; hi = bit; lo = bit
        get = { $0[keyPath: path] ? 1 : 0 }
        set = { $0[keyPath: path] = $1 != 0 }
    }
    var mask: UInt64 { (hi - lo + 1 >= 64 ? ~0 : (UInt64(1) << UInt64(hi - lo + 1)) - 1) << UInt64(lo) }
}

/// Checks each bit field's position and width on a register held as a raw value.
func checkBits<R>(_ make: (UInt64) -> R, raw: (R) -> UInt64, registerBits: Int, _ pins: [BitPin<R>],
                  sourceLocation: SourceLocation = #_sourceLocation) {
    let all: UInt64 = registerBits == 64 ? ~0 : (1 << UInt64(registerBits)) - 1
    for pin in pins {
        let ones = pin.mask >> UInt64(pin.lo)
        var r = make(0)
        pin.set(&r, ones)
        #expect(raw(r) == pin.mask, "set \(pin.name)", sourceLocation: sourceLocation)
        var s = make(all)
        pin.set(&s, 0)
        #expect(raw(s) == all & ~pin.mask, "clear \(pin.name)", sourceLocation: sourceLocation)
        #expect(pin.get(make(pin.mask)) == ones, "get \(pin.name)", sourceLocation: sourceLocation)
        #expect(pin.get(make(all & ~pin.mask)) == 0, "get \(pin.name) isolated", sourceLocation: sourceLocation)
        // A distinct value in the middle of the field reads back.
        let v = ones == 1 ? 1 : ones / 3
        var t = make(0)
        pin.set(&t, v)
        #expect(pin.get(t) == v && raw(t) == v << UInt64(pin.lo), "value \(pin.name)", sourceLocation: sourceLocation)
    }
}
