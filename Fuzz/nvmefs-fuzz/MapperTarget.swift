import BlockIO
import HostMemory
import NVMeSpec

/// Target `mappers`: the PRP and SGL mappers alone (NVMe 1.4 §4.3, §4.4)
/// over two 64 KiB regions with a hole between them. The input writes PRP
/// lists and SGL segments into host memory, then asks for one mapping.
///
/// Invariants: a mapping that succeeds covers exactly the length asked for;
/// every piece lies inside one region (or is the bit bucket's discard
/// buffer); a hostile list ends with a status, never a fault or a hang (the
/// guard pages make any access outside the regions fault).
enum MapperTarget {
    static let memory = GuardedMemory([(0, 64 << 10), (0x20000, 64 << 10)])

    /// An address an input names: mostly inside or at the edges of the
    /// regions (so that lists chain), sometimes anything.
    static func address(_ input: FuzzInput) -> UInt64 {
        let selector = input.u8()
        switch selector % 8 {
        case 0: return input.u64()
        case 1: return 0x10000 &- UInt64(input.u8())          // the end of region 0
        case 2: return 0x20000 &- UInt64(input.u8() & 0x1F)   // the hole's end
        case 3, 4: return UInt64(input.u16())                 // region 0
        default: return 0x20000 + UInt64(input.u16())         // region 1
        }
    }

    static func run(_ input: FuzzInput) {
        let space = memory.makeSpace()
        // Memory contents: PRP entries and SGL descriptors at chosen addresses.
        let writes = Int(input.u8() % 16)
        for _ in 0..<writes {
            let at = address(input) & ~7
            switch input.u8() % 3 {
            case 0:  // a PRP list: entries page aligned or not
                var a = at
                for _ in 0..<Int(input.u8() % 32) { memory.write64(a, address(input)); a &+= 8 }
            case 1:  // SGL descriptors
                var a = at
                for _ in 0..<Int(input.u8() % 8) {
                    let d = SGLDescriptor(address: address(input), length: UInt32(input.u16()) << UInt32(input.u8() % 6),
                                          type: SGLDescriptorType(rawValue: input.u8() % 6),
                                          subtype: SGLDescriptorSubtype(rawValue: input.u8() % 3))
                    memory.write64(a, d.low)
                    memory.write64(a &+ 8, d.high)
                    a &+= 16
                }
            default:
                memory.write(at, input.take(Int(input.u8())))
            }
        }
        let length = Int(input.u32() % (2 << 20))
        var iov: [IOVector] = []
        var pin: DMAPin? = input.bool() ? DMAPin() : nil
        let status: NVMeStatus
        if input.bool() {
            let pageSize = 4096 << Int(input.u8() % 5)
            status = PRPMapper.map(prp1: address(input), prp2: address(input), length: length, pageSize: pageSize,
                                   into: &iov, pinning: &pin, in: space)
        } else {
            let direction: DataDirection = input.bool() ? .hostToController : .controllerToHost
            let sgl1 = SGLDescriptor(address: address(input), length: UInt32(truncatingIfNeeded: input.u32() % (4 << 20)),
                                     type: SGLDescriptorType(rawValue: input.u8() % 6),
                                     subtype: SGLDescriptorSubtype(rawValue: input.u8() % 3))
            status = SGLMapper.map(sgl1: sgl1, length: length, direction: direction, into: &iov, pinning: &pin, in: space)
        }
        if let pin { space.unpin(pin) }
        guard status.isSuccess else { return }
        let total = totalLength(iov)
        guard total == length else { violation("mapped \(total) bytes for a length of \(length)") }
        for piece in iov where !space.isDiscard(piece) {
            guard memory.contains(piece.base, length: piece.length) else {
                violation("a piece of \(piece.length) bytes at \(piece.base) is outside host memory")
            }
        }
    }
}
