import BlockIO
import Foundation
import Synchronization
import Testing

/// A heap buffer that outlives the AIOs using it.
final class Buffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int
    init(count: Int, fill: UInt8 = 0) {
        self.count = count
        base = .allocate(byteCount: max(count, 1), alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: fill, count: max(count, 1))
    }
    convenience init(bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
    deinit { base.deallocate() }
    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: count)) }
    /// The buffer split into iovecs of the given lengths (which must add up to at most `count`).
    func iov(split lengths: [Int]) -> [IOVector] {
        var position = 0
        return lengths.map { len in
            defer { position += len }
            return IOVector(base: base + position, length: len)
        }
    }
    var whole: [IOVector] { [IOVector(base: base, length: count)] }
}

/// Collects completions by key and lets a test wait for them.
final class Completions: Sendable {
    private let results = Locked<[Int: [Int32]]>([:])
    private let order = Locked<[Int]>([])

    func handler(_ key: Int) -> @Sendable (Int32) -> Void {
        { errno in
            self.results.withLock { $0[key, default: []].append(errno) }
            self.order.withLock { $0.append(key) }
        }
    }

    var count: Int { results.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    var all: [Int: [Int32]] { results.withLock { $0 } }
    var deliveryOrder: [Int] { order.withLock { $0 } }
    func result(_ key: Int) -> Int32? { results.withLock { $0[key]?.first } }

    /// Waits (up to a generous hang guard, not a timing assertion) until `n` completions arrived.
    @discardableResult
    func wait(for n: Int) -> Bool {
        let deadline = Date().addingTimeInterval(30)
        while count < n {
            if Date() > deadline { return false }
            usleep(200)
        }
        return true
    }
}

/// A one-shot gate a completion can block on.
final class Gate: Sendable {
    private let opened = Atomic<Bool>(false)
    private let entered = Atomic<Int>(0)
    func open() { opened.store(true, ordering: .releasing) }
    /// Called on the blocked thread.
    func block() {
        entered.add(1, ordering: .relaxed)
        while !opened.load(ordering: .acquiring) { usleep(200) }
    }
    /// Waits until someone is blocked in `block()`.
    func waitEntered() {
        while entered.load(ordering: .relaxed) == 0 { usleep(200) }
    }
}

/// A fresh path in the temporary directory, removed by `cleanup`.
func temporaryPath(_ tag: String = "img", directory: String = NSTemporaryDirectory()) -> String {
    (directory as NSString).appendingPathComponent("blockio-\(tag)-\(getpid())-\(UUID().uuidString)")
}

/// Creates a file holding `bytes`.
func makeFile(_ bytes: [UInt8], directory: String = NSTemporaryDirectory()) -> String {
    let path = temporaryPath(directory: directory)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { fatalError("cannot create \(path)") }
    return path
}

func fileBytes(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

/// A deterministic byte pattern.
func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ ($0 >> 8)) }
}

/// Four threads write `blocks` 512-byte blocks (block i filled with i | 1)
/// at once; `drainAndSync` must return only after every completion ran,
/// each exactly once and successful.
func writeBlocksConcurrentlyAndDrain(_ backend: any BlockBackend, blocks: Int) {
    let c = Completions()
    let buffers = (0..<blocks).map { Buffer(count: 512, fill: UInt8(truncatingIfNeeded: $0 | 1)) }
    DispatchQueue.concurrentPerform(iterations: 4) { thread in
        for i in stride(from: thread, to: blocks, by: 4) {
            backend.submit(AIO(operation: .write, offset: UInt64(i * 512), length: 512, iov: buffers[i].whole),
                           completion: c.handler(i))
        }
    }
    backend.drainAndSync()
    #expect(c.count == blocks)
    #expect(c.all.count == blocks)
    #expect(c.all.values.allSatisfy { $0 == [0] })
}

/// The blocks `writeBlocksConcurrentlyAndDrain` wrote, read back.
func expectConcurrentBlocks(_ bytes: [UInt8], blocks: Int) {
    for i in 0..<blocks {
        #expect(bytes[(i * 512)..<((i + 1) * 512)].allSatisfy { $0 == UInt8(truncatingIfNeeded: i | 1) })
    }
}
