import BlockIO
import Glibc

// Backend benchmark: 4 KiB random reads from a page-cached image through
// ImageBackend in each execution mode, at 1 and 32 AIOs in flight. Decides
// the default backend mode. Usage:
//   nvmefs-bench backend [--ops N] [--size-mib M] [--runs R] [--path FILE] [--keep]

/// Entry point called from the bench target's main.swift.
public func runBackendBench(arguments: [String]) {
    var options = BackendBenchOptions()
    if arguments.contains("-h") || arguments.contains("--help") {
        print("usage: nvmefs-bench backend [--ops N] [--size-mib M] [--runs R] [--path FILE] [--keep]")
        return
    }
    parseBenchOptions(arguments, numbers: ["--ops": { options.ops = $0 }, "--size-mib": { options.sizeMiB = $0 },
                                           "--runs": { options.runs = $0 }],
                      strings: ["--path": { options.path = $0 }],
                      flags: ["--keep": { options.keep = true }, "backend": {}])
    BackendBench(options: options).run()
}

struct BackendBenchOptions {
    var ops = 100_000
    var sizeMiB = 256
    var runs = 5
    var path = "/tmp/nvmefs-backend-bench-\(getpid()).img"
    var keep = false
}

/// Bounds the AIOs in flight. The submitter sleeps while the window is full
/// and is woken once half of it is free again, so that it refills in batches
/// (as a host reaping several completions per interrupt would).
private final class Window: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let depth: Int
    private let wakeAt: Int
    private var inFlight = 0
    private var waiting = false

    init(_ depth: Int) {
        self.depth = depth
        wakeAt = depth / 2
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition); pthread_mutex_destroy(mutex)
        condition.deallocate(); mutex.deallocate()
    }

    /// Takes a slot, sleeping while the window is full.
    func acquire() {
        pthread_mutex_lock(mutex)
        while inFlight >= depth {
            waiting = true
            pthread_cond_wait(condition, mutex)
        }
        inFlight += 1
        pthread_mutex_unlock(mutex)
    }

    /// Waits until nothing is in flight.
    func drain() {
        pthread_mutex_lock(mutex)
        while inFlight > 0 {
            waiting = true
            pthread_cond_wait(condition, mutex)
        }
        pthread_mutex_unlock(mutex)
    }

    func release() {
        pthread_mutex_lock(mutex)
        inFlight -= 1
        if waiting && inFlight <= wakeAt {
            waiting = false
            pthread_cond_signal(condition)
        }
        pthread_mutex_unlock(mutex)
    }
}

/// One measured configuration.
private struct BenchResult {
    var label: String
    var depth: Int
    var ops: Int
    var seconds: Double
    var cpuSeconds: Double
    var failures: Int
    var opsPerSecond: Double { Double(ops) / seconds }
    var microsecondsPerOp: Double { seconds * 1e6 / Double(ops) }
    var cpuMicrosecondsPerOp: Double { cpuSeconds * 1e6 / Double(ops) }
}


private struct BackendBench {
    let options: BackendBenchOptions
    let blockSize = 4096

    func run() {
        let size = UInt64(options.sizeMiB) << 20
        prepareImage(size: size)
        defer { if !options.keep { unlink(options.path) } }
        let offsets = randomOffsets(count: options.ops, blocks: Int(size) / blockSize)
        print("backend bench: \(options.ops) random 4 KiB reads per run, \(options.sizeMiB) MiB page-cached image "
              + "\(options.path), \(options.runs) alternating rounds, \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs")

        // Every configuration once per round, rounds alternating, so that
        // load from other processes spreads over all of them.
        var configurations: [(ImageBackend.ExecutionMode?, Int)] = [(nil, 1)]
        let modes: [ImageBackend.ExecutionMode] = [.inline, .threadPool(workers: 1), .threadPool(workers: 2),
                                                   .threadPool(workers: 4), .hybrid(workers: 4)]
        for mode in modes {
            for depth in [1, 32] {
                if case .inline = mode, depth > 1 { continue }   // synchronous: always one in flight
                configurations.append((mode, depth))
            }
        }
        func measure(_ configuration: (ImageBackend.ExecutionMode?, Int)) -> BenchResult {
            guard let mode = configuration.0 else { return preadLoop(offsets) }
            return throughBackend(mode: mode, depth: configuration.1, offsets: offsets)
        }
        for configuration in configurations { _ = measure(configuration) }   // warm-up
        var samples = [[BenchResult]](repeating: [], count: configurations.count)
        for _ in 0..<options.runs {
            for (i, configuration) in configurations.enumerated() { samples[i].append(measure(configuration)) }
        }
        printTable(samples.map { $0.sorted { $0.seconds < $1.seconds } })
    }

    /// Writes the image with non-zero data (so every page is really cached), then reads it once.
    private func prepareImage(size: UInt64) {
        unlink(options.path)
        do { try ImageBackend.create(path: options.path, size: size) } catch { benchFail("\(error)") }
        let fd = open(options.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { benchFail("cannot open \(options.path)") }
        defer { close(fd) }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        memset(buffer, 0xA5, chunk)
        var offset: UInt64 = 0
        while offset < size {
            guard pwrite(fd, buffer, chunk, off_t(offset)) == chunk else { benchFail("cannot write the image") }
            offset += UInt64(chunk)
        }
        offset = 0
        while offset < size {
            guard pread(fd, buffer, chunk, off_t(offset)) == chunk else { benchFail("cannot read the image") }
            offset += UInt64(chunk)
        }
    }

    private func randomOffsets(count: Int, blocks: Int) -> [UInt64] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return (state % UInt64(blocks)) * 4096
        }
    }

    /// The floor: plain pread on this thread, no backend.
    private func preadLoop(_ offsets: [UInt64]) -> BenchResult {
        let fd = open(options.path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        var failures = 0
        let cpu0 = cpuSeconds()
        let t0 = monotonicNanoseconds()
        for offset in offsets where pread(fd, buffer, blockSize, off_t(offset)) != blockSize { failures += 1 }
        let t1 = monotonicNanoseconds()
        return BenchResult(label: "pread loop", depth: 1, ops: offsets.count, seconds: Double(t1 - t0) / 1e9,
                           cpuSeconds: cpuSeconds() - cpu0, failures: failures)
    }

    /// One thread submits (like the controller); completions free window slots.
    private func throughBackend(mode: ImageBackend.ExecutionMode, depth: Int, offsets: [UInt64]) -> BenchResult {
        let backend: ImageBackend
        do { backend = try ImageBackend(path: options.path, readOnly: true, mode: mode) } catch { benchFail("\(error)") }
        defer { backend.close() }
        // One buffer per slot of a ring twice the depth. With reads only, a
        // reuse while an older read is still in flight would be harmless.
        let bufferCount = depth * 2
        let buffers = UnsafeMutableRawPointer.allocate(byteCount: bufferCount * blockSize, alignment: 4096)
        defer { buffers.deallocate() }
        let window = Window(depth)
        let failures = FailureCounter()
        let completion: @Sendable (Int32) -> Void = { errno in
            if errno != 0 { failures.add() }
            window.release()
        }
        let cpu0 = cpuSeconds()
        let t0 = monotonicNanoseconds()
        for (i, offset) in offsets.enumerated() {
            window.acquire()
            let buffer = buffers + (i % bufferCount) * blockSize
            backend.submit(AIO(operation: .read, offset: offset, length: UInt64(blockSize),
                               iov: [IOVector(base: buffer, length: blockSize)]), completion: completion)
        }
        window.drain()
        let t1 = monotonicNanoseconds()
        return BenchResult(label: mode.description, depth: depth, ops: offsets.count,
                           seconds: Double(t1 - t0) / 1e9, cpuSeconds: cpuSeconds() - cpu0,
                           failures: failures.value)
    }

    /// One row per configuration: its runs sorted fastest first.
    private func printTable(_ results: [[BenchResult]]) {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        func fixed(_ x: Double, _ digits: Int) -> String {
            let scale = pow(10.0, Double(digits))
            let r = (x * scale).rounded() / scale
            var s = String(r)
            if let dot = s.firstIndex(of: ".") {
                let decimals = s.distance(from: dot, to: s.endIndex) - 1
                if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
            }
            return s
        }
        print("| mode       | in flight | median ops/s | best ops/s | median µs/op | CPU µs/op | errors |")
        print("|------------|----------:|-------------:|-----------:|-------------:|----------:|-------:|")
        for runs in results {
            let m = runs[runs.count / 2], best = runs[0]
            let label = m.label + String(repeating: " ", count: max(0, 10 - m.label.count))
            print("| \(label) | \(pad(String(m.depth), 9)) | \(pad(String(Int(m.opsPerSecond.rounded())), 12)) "
                  + "| \(pad(String(Int(best.opsPerSecond.rounded())), 10)) "
                  + "| \(pad(fixed(m.microsecondsPerOp, 2), 12)) | \(pad(fixed(m.cpuMicrosecondsPerOp, 2), 9)) "
                  + "| \(pad(String(runs.reduce(0) { $0 + $1.failures }), 6)) |")
        }
    }
}

private final class FailureCounter: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var count = 0
    init() { pthread_mutex_init(lock, nil) }
    deinit { pthread_mutex_destroy(lock); lock.deallocate() }
    func add() { pthread_mutex_lock(lock); count += 1; pthread_mutex_unlock(lock) }
    var value: Int { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return count }
}
