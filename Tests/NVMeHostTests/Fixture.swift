import BlockIO
import Foundation
import HostMemory
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Synchronization

/// A controller with `mem` at address 0 and namespaces over the given
/// backends, plus a built-in host brought up on it.
final class Rig: @unchecked Sendable {
    let space = HostAddressSpace()
    let mem: AnonymousMemory
    let controller: NVMeController
    let host: BuiltinHost

    convenience init(_ namespaces: [(any BlockBackend, UInt8)], parameters: ControllerParameters = ControllerParameters(),
                     configuration: BuiltinHostConfiguration = BuiltinHostConfiguration()) throws {
        try self.init(namespaces: namespaces.enumerated().map { i, ns in
            Namespace(nsid: UInt32(i + 1), backend: ns.0, lbads: ns.1)
        }, parameters: parameters, configuration: configuration)
    }

    init(namespaces nss: [Namespace], parameters: ControllerParameters = ControllerParameters(),
         configuration: BuiltinHostConfiguration = BuiltinHostConfiguration(),
         provisioner: (any NamespaceProvisioner)? = nil) throws {
        mem = try AnonymousMemory(size: 1 << 20)
        try space.map(base: 0, length: 1 << 20, pointer: mem.pointer, name: "mem", kind: .userMemory)
        controller = NVMeController(parameters: parameters, namespaces: nss, space: space, provisioner: provisioner)
        host = try BuiltinHost(controller: controller, configuration: configuration)
    }

    deinit { host.shutdown() }

    /// Reads through the host; the bytes or the error.
    func read(_ nsid: UInt32, _ offset: UInt64, _ count: Int) -> Result<[UInt8], HostError> {
        var out = [UInt8](repeating: 0xEE, count: count)
        let r = out.withUnsafeMutableBytes { host.read(nsid: nsid, offset: offset, into: $0) }
        return r.map { Array(out.prefix($0)) }
    }

    func write(_ nsid: UInt32, _ offset: UInt64, _ bytes: [UInt8]) -> Result<Int, HostError> {
        bytes.withUnsafeBytes { host.write(nsid: nsid, offset: offset, from: $0) }
    }
}

/// Deterministic pseudo-random bytes.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

/// A temporary image file, removed on deinit.
final class TempImage: @unchecked Sendable {
    let path: String
    init(size: UInt64) throws {
        path = NSTemporaryDirectory() + "nvmehost-\(UUID().uuidString).img"
        try ImageBackend.create(path: path, size: size)
    }
    deinit { unlink(path) }
    var contents: [UInt8] { (try? Array(Data(contentsOf: URL(fileURLWithPath: path)))) ?? [] }
}

/// Runs `body(i)` on `count` threads at once and waits for all.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchGroup()
    for i in 0..<count {
        done.enter()
        let t = Thread {
            body(i)
            done.leave()
        }
        t.start()
    }
    done.wait()
}

extension Result {
    var value: Success? { if case .success(let v) = self { return v } else { return nil } }
    var error: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}
