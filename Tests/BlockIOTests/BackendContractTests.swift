import BlockIO
import Foundation
import Testing

/// One kind of backend under the contract: a 1 MiB store filled with 0xEE,
/// opened as a backend (read-only on request). The NBD kind is an nbdkit
/// `file` export of such a file, so both kinds start from the same bytes.
struct BackendKind: CustomStringConvertible, Sendable {
    let description: String
    let open: @Sendable (_ path: String, _ readOnly: Bool) throws -> (any BlockBackend, cleanup: () -> Void)

    static let size = 1 << 20

    static let all: [BackendKind] = [
        image(.inline), image(.threadPool(workers: 4)), image(.hybrid(workers: 2)),
        BackendKind(description: "nbd (nbdkit file, 4 connections)") { path, readOnly in
            let server = try NBDTestServer((readOnly ? ["-r"] : []) + ["file", path])
            let backend = try NBDBackend(uri: server.uri)
            return (backend, { backend.close(); server.kill() })
        },
    ]

    static func image(_ mode: ImageBackend.ExecutionMode) -> BackendKind {
        BackendKind(description: "image \(mode)") { path, readOnly in
            let backend = try ImageBackend(path: path, readOnly: readOnly, mode: mode)
            return (backend, { backend.close() })
        }
    }

    /// Runs `body` on a fresh store and backend; returns the store's bytes
    /// afterwards (read from the file, so what reached it, not a cache).
    @discardableResult
    func with(readOnly: Bool = false, _ body: (any BlockBackend) throws -> Void) throws -> [UInt8] {
        let path = makeFile([UInt8](repeating: 0xEE, count: Self.size))
        defer { unlink(path) }
        let (backend, cleanup) = try open(path, readOnly)
        defer { cleanup() }
        try body(backend)
        backend.drainAndSync()
        return fileBytes(path)
    }
}

private func run(_ backend: any BlockBackend, _ aio: AIO) -> Int32 {
    let c = Completions()
    backend.submit(aio, completion: c.handler(0))
    c.wait(for: 1)
    return c.result(0) ?? -1
}

/// The backend contract (`BlockBackend`) as the engine relies on it, checked
/// the same way on every image execution mode and on an NBD export: the
/// engine's tests drive the controller over any of them.
@Suite(.serialized) struct BackendContractTests {
    @Test(arguments: BackendKind.all)
    func writeAndReadScatteredVectorsExactlyWhereAddressed(kind: BackendKind) throws {
        let data = pattern(5000)
        let file = try kind.with { backend in
            #expect(backend.size == UInt64(BackendKind.size))
            let out = Buffer(bytes: data)
            #expect(run(backend, AIO(operation: .write, offset: 1234, length: 5000, iov: out.iov(split: [3, 509, 4096, 1, 391]))) == 0)
            let back = Buffer(count: 5000, fill: 0x55)
            #expect(run(backend, AIO(operation: .read, offset: 1234, length: 5000, iov: back.iov(split: [4999, 1]))) == 0)
            #expect(back.bytes == data)
        }
        #expect(Array(file[1234..<6234]) == data)
        #expect(file[..<1234].allSatisfy { $0 == 0xEE } && file[6234...].allSatisfy { $0 == 0xEE })
    }

    @Test(arguments: BackendKind.all)
    func moreVectorsThanOneSystemCallTakes(kind: BackendKind) throws {
        let count = 3000   // > IOV_MAX (1024)
        let data = pattern(count * 7, seed: 9)
        let file = try kind.with { backend in
            let out = Buffer(bytes: data)
            #expect(run(backend, AIO(operation: .write, offset: 50, length: UInt64(data.count),
                                     iov: out.iov(split: Array(repeating: 7, count: count)))) == 0)
            let back = Buffer(count: data.count)
            #expect(run(backend, AIO(operation: .read, offset: 50, length: UInt64(data.count),
                                     iov: back.iov(split: [1] + Array(repeating: 3, count: 6999) + [2]))) == 0)
            #expect(back.bytes == data)
        }
        #expect(Array(file[50..<(50 + data.count)]) == data)
    }

    @Test(arguments: BackendKind.all)
    func writeZeroesZeroesExactlyTheRangeAndFlushSucceeds(kind: BackendKind) throws {
        let offset = 4096 + 17, length = 256 * 1024 + 5
        let file = try kind.with { backend in
            #expect(run(backend, AIO(operation: .writeZeroes, offset: UInt64(offset), length: UInt64(length))) == 0)
            #expect(run(backend, AIO(operation: .flush, offset: 0, length: 0)) == 0)
        }
        #expect(file[offset..<(offset + length)].allSatisfy { $0 == 0 })
        #expect(file[..<offset].allSatisfy { $0 == 0xEE } && file[(offset + length)...].allSatisfy { $0 == 0xEE })
    }

    @Test(arguments: BackendKind.all)
    func discardKeepsTheSizeAndTheRest(kind: BackendKind) throws {
        let file = try kind.with { backend in
            #expect(run(backend, AIO(operation: .discard, offset: 65536, length: 65536)) == 0)
            #expect(backend.size == UInt64(BackendKind.size))
        }
        #expect(file.count == BackendKind.size)
        #expect(file[..<65536].allSatisfy { $0 == 0xEE } && file[131072...].allSatisfy { $0 == 0xEE })
    }

    @Test(arguments: BackendKind.all)
    func concurrentSubmittersEachGetOneCompletion(kind: BackendKind) throws {
        let file = try kind.with { backend in writeBlocksConcurrentlyAndDrain(backend, blocks: 256) }
        expectConcurrentBlocks(file, blocks: 256)
    }

    @Test(arguments: BackendKind.all)
    func readOnlyRefusesEveryModificationAndStillReads(kind: BackendKind) throws {
        let file = try kind.with(readOnly: true) { backend in
            #expect(backend.isReadOnly)
            let data = Buffer(count: 512, fill: 1)
            for op in [AIOOperation.write, .writeZeroes, .discard] {
                let iov = op == .write ? data.whole : []
                #expect(run(backend, AIO(operation: op, offset: 0, length: 512, iov: iov)) != 0, "\(op)")
            }
            let back = Buffer(count: 512)
            #expect(run(backend, AIO(operation: .read, offset: 512, length: 512, iov: back.whole)) == 0)
            #expect(back.bytes.allSatisfy { $0 == 0xEE })
        }
        #expect(file.allSatisfy { $0 == 0xEE })
    }

    /// `performImmediately` performs an AIO exactly as `submit` would, or does
    /// nothing at all and says so (nil). An inline image always performs.
    @Test(arguments: BackendKind.all)
    func performImmediatelyPerformsExactlyOrDoesNothing(kind: BackendKind) throws {
        let data = pattern(3000, seed: 4)
        let file = try kind.with { backend in
            let out = Buffer(bytes: data)
            let w = backend.performImmediately(AIO(operation: .write, offset: 777, length: 3000, iov: out.iov(split: [1000, 2000])))
            #expect(w == nil || w == 0)
            if kind.description == "image inline" { #expect(w == 0) }
            if w == nil {   // the caller submits it, as the engine does
                #expect(run(backend, AIO(operation: .write, offset: 777, length: 3000, iov: out.whole)) == 0)
            }
            let back = Buffer(count: 3000, fill: 0x55)
            let r = backend.performImmediately(AIO(operation: .read, offset: 777, length: 3000, iov: back.whole))
            #expect(r == nil || r == 0)
            if r == 0 { #expect(back.bytes == data) } else { #expect(back.bytes.allSatisfy { $0 == 0x55 }) }
        }
        #expect(Array(file[777..<3777]) == data)
        #expect(file[..<777].allSatisfy { $0 == 0xEE } && file[3777...].allSatisfy { $0 == 0xEE })
    }

    /// With a fault rule installed, the fast path stands aside (nil) and
    /// leaves the rule's one use to `submit`.
    @Test func faultRulesTakeTheSubmitPath() throws {
        try BackendKind.image(.inline).with { backend in
            let injector = FaultInjector()
            let faulty = FaultInjectingBackend(inner: backend, injector: injector)
            let buffer = Buffer(count: 512)
            let read = AIO(operation: .read, offset: 0, length: 512, iov: buffer.whole)
            #expect(faulty.performImmediately(read) == 0)
            injector.add(FaultRule(operations: [.read], range: nil, action: .fail(errno: EIO), remaining: 1))
            #expect(faulty.performImmediately(read) == nil)
            #expect(run(faulty, read) == EIO)
            #expect(faulty.performImmediately(read) == 0)   // the rule was used up by submit
        }
    }
}
