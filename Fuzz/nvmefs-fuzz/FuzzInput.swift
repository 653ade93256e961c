/// The fuzzer's bytes, read front to back; past the end every read is 0
/// and `isEmpty` is true (a short input is a short program, never an error).
final class FuzzInput {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isEmpty: Bool { position >= bytes.count }
    var remaining: Int { max(0, bytes.count - position) }

    func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }
    func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    func bool() -> Bool { u8() & 1 != 0 }
    /// A value in 0..<bound (bound > 0).
    func below(_ bound: Int) -> Int { Int(u16()) % bound }
    /// Up to `max` bytes.
    func take(_ max: Int) -> [UInt8] {
        let n = min(max, remaining)
        defer { position += n }
        return Array(bytes[position..<position + n])
    }
    /// The rest as text (lossy UTF-8).
    func rest() -> String { String(decoding: take(remaining), as: UTF8.self) }
}
