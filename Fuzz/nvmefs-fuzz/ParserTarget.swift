@testable import FUSEBridge
@testable import NVMeController

/// Target `parsers`: the text the FUSE files take. The first byte picks the
/// parser, the rest is the text: a register or doorbell value (`regs/*`,
/// `doorbells/*`), a `cmd` line, a `faults` rule.
///
/// Invariants: no crash; a value taken is within its maximum and reads back
/// the same in hex; a `cmd` line's buffers stay within the transfer limit; a
/// fault rule's LBA range is ordered.
enum ParserTarget {
    static let maxTransfer = 512 << 10

    static func run(_ input: FuzzInput) {
        let selector = input.u8()
        let text = input.rest()
        switch selector % 3 {
        case 0:
            let max: UInt64 = selector & 0x80 != 0 ? UInt64(UInt32.max) : .max
            guard let value = try? Text.parseValue(text, max: max) else { return }
            guard value <= max else { violation("register text '\(text)' gave \(value), above \(max)") }
            guard (try? Text.parseValue(Text.hex(value), max: max)) == value else {
                violation("\(value) does not read back from \(Text.hex(value))")
            }
        case 1:
            guard let c = try? PassthroughCommand.parse(Substring(text), maxTransfer: maxTransfer) else { return }
            guard c.dataIn <= maxTransfer, (c.dataOut?.count ?? 0) <= maxTransfer else {
                violation("cmd line '\(text)' has buffers beyond \(maxTransfer) bytes")
            }
        default:
            guard let rule = try? FaultGrammar.parse(text) else { return }
            if let lbas = rule.lbas, lbas.lowerBound > lbas.upperBound { violation("fault rule '\(text)' has a reversed range") }
            if let n = rule.remaining, n < 1 { violation("fault rule '\(text)' applies \(n) times") }
        }
    }
}
