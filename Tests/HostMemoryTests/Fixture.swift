import BlockIO
@testable import HostMemory
import NVMeSpec

/// A host address space with `mem` at address 0, plus helpers to write
/// host memory and to describe a mapping result in host addresses.
final class Fixture: @unchecked Sendable {
    let space = HostAddressSpace()
    let mem: AnonymousMemory
    static let page: UInt64 = 4096

    init(memSize: Int = 8 << 20) {
        mem = try! AnonymousMemory(size: memSize)
        try! space.map(base: 0, length: memSize, pointer: mem.pointer, name: "mem", kind: .userMemory)
    }

    func put64(_ address: UInt64, _ value: UInt64) {
        precondition(space.writeUInt64(address, value))
    }

    func put(_ address: UInt64, _ descriptors: [SGLDescriptor]) {
        var bytes: [UInt8] = []
        for d in descriptors { bytes += d.bytes }
        let ok = bytes.withUnsafeBytes { space.write(address, from: $0) }
        precondition(ok)
    }

    /// One piece of a mapping, in host terms.
    enum Piece: Equatable, CustomStringConvertible {
        case host(UInt64, Int)
        case discard(Int)
        case foreign(Int)
        var description: String {
            switch self {
            case .host(let a, let n): "host(\(hex(a)), \(n))"
            case .discard(let n): "discard(\(n))"
            case .foreign(let n): "foreign(\(n))"
            }
        }
    }

    func describe(_ iov: [IOVector]) -> [Piece] {
        iov.map { v in
            let memStart = mem.pointer, memEnd = mem.pointer + mem.size
            if v.base >= memStart && v.base + v.length <= memEnd {
                return .host(UInt64(v.base - memStart), v.length)
            }
            if v.base >= space.discard && v.base + v.length <= space.discard + HostAddressSpace.discardSize {
                return .discard(v.length)
            }
            return .foreign(v.length)
        }
    }

    func describe(_ result: Result<[IOVector], NVMeStatus>) -> Result<[Piece], NVMeStatus> {
        result.map { describe($0) }
    }
}

func data(_ address: UInt64, _ length: UInt32, subtype: SGLDescriptorSubtype = .address) -> SGLDescriptor {
    SGLDescriptor(address: address, length: length, type: .dataBlock, subtype: subtype)
}
func bitBucket(_ length: UInt32) -> SGLDescriptor {
    SGLDescriptor(address: 0, length: length, type: .bitBucket)
}
func segment(_ address: UInt64, _ count: Int) -> SGLDescriptor {
    SGLDescriptor(address: address, length: UInt32(count * 16), type: .segment)
}
func lastSegment(_ address: UInt64, _ count: Int) -> SGLDescriptor {
    SGLDescriptor(address: address, length: UInt32(count * 16), type: .lastSegment)
}
