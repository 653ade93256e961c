import Glibc
import Foundation

/// The text protocol of QEMU's qtest accelerator: one command line per
/// request, answered by one line `OK [VALUE]` or `FAIL REASON`. Lines starting
/// with `IRQ` are asynchronous interrupt notices (only sent after
/// `irq_intercept_in`) and are not answers.
public enum QTestProtocol {
    public enum Reply: Equatable, Sendable {
        case ok(String?)
        case fail(String)
        /// An asynchronous line (`IRQ raise 1`): not the answer to a command.
        case notice(String)
    }

    public struct ProtocolError: Error, CustomStringConvertible, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { "qtest: \(message)" }
    }

    public static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    public static func outl(_ port: UInt16, _ value: UInt32) -> String { "outl \(hex(UInt64(port))) \(hex(UInt64(value)))" }
    public static func inl(_ port: UInt16) -> String { "inl \(hex(UInt64(port)))" }
    public static func readl(_ addr: UInt64) -> String { "readl \(hex(addr))" }
    public static func readq(_ addr: UInt64) -> String { "readq \(hex(addr))" }
    public static func writel(_ addr: UInt64, _ value: UInt32) -> String { "writel \(hex(addr)) \(hex(UInt64(value)))" }
    public static func writeq(_ addr: UInt64, _ value: UInt64) -> String { "writeq \(hex(addr)) \(hex(value))" }
    public static func read(_ addr: UInt64, count: Int) -> String { "read \(hex(addr)) \(hex(UInt64(count)))" }
    /// `write ADDR LEN 0xHEX`: the data as two lowercase hex digits per byte.
    public static func write(_ addr: UInt64, _ bytes: [UInt8]) -> String {
        "write \(hex(addr)) \(hex(UInt64(bytes.count))) 0x" + hexDigits(bytes)
    }
    public static func clockStep(_ ns: UInt64) -> String { "clock_step \(ns)" }

    static let digits = Array("0123456789abcdef".utf8)
    public static func hexDigits(_ bytes: [UInt8]) -> String {
        var out = [UInt8](); out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Classifies one line received from QEMU (without its newline).
    public static func parse(_ line: String) -> Reply {
        if line.hasPrefix("IRQ") { return .notice(line) }
        if line == "OK" { return .ok(nil) }
        if line.hasPrefix("OK ") { return .ok(String(line.dropFirst(3))) }
        if line == "FAIL" { return .fail("") }
        if line.hasPrefix("FAIL ") { return .fail(String(line.dropFirst(5))) }
        return .notice(line)
    }

    /// The number in an `OK 0x...` answer.
    public static func value(_ reply: Reply) throws -> UInt64 {
        guard case .ok(let s?) = reply else { throw ProtocolError("expected a value, got \(reply)") }
        var t = Substring(s)
        if t.hasPrefix("0x") { t = t.dropFirst(2) }
        guard let v = UInt64(t, radix: 16) else { throw ProtocolError("not a hex number: \(s)") }
        return v
    }

    /// The bytes of a `read` answer (`OK 0xHEX`, two digits per byte).
    public static func bytes(_ reply: Reply, count: Int) throws -> [UInt8] {
        guard case .ok(let s?) = reply else { throw ProtocolError("expected data, got \(reply)") }
        var u = Array(s.utf8)
        if u.count >= 2, u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "x") { u.removeFirst(2) }
        guard u.count == count * 2 else { throw ProtocolError("expected \(count) bytes, got \(u.count / 2)") }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw ProtocolError("bad hex digit")
            }
        }
        var out = [UInt8](repeating: 0, count: count)
        for i in 0..<count { out[i] = try nibble(u[2 * i]) << 4 | nibble(u[2 * i + 1]) }
        return out
    }

    /// PCI configuration mechanism #1 address for bus 0 (CONFIG_ADDRESS, port 0xCF8).
    public static func configAddress(device: Int, function: Int = 0, register: Int) -> UInt32 {
        0x8000_0000 | UInt32(device & 31) << 11 | UInt32(function & 7) << 8 | UInt32(register & 0xFC)
    }
}

/// Splits a byte stream into lines.
public struct LineBuffer: Sendable {
    var pending: [UInt8] = []
    public init() {}
    public mutating func append(_ bytes: some Sequence<UInt8>) { pending.append(contentsOf: bytes) }
    /// The next complete line (without "\n"), if any.
    public mutating func nextLine() -> String? {
        guard let i = pending.firstIndex(of: 10) else { return nil }
        let line = String(decoding: pending[..<i], as: UTF8.self)
        pending.removeSubrange(...i)
        return line
    }
}
