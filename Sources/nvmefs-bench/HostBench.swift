import BlockIO
import HostMemory
import NVMeController
import NVMeHost
import Glibc

// The built-in host and the controller, in process, no FUSE: what the daemon
// does for one `namespaces/1/data` read besides FUSE's own system calls.
// Each thread calls `BuiltinHost.read` (or `write`) for 4 KiB at random
// block-aligned offsets into a buffer of its own, as a FUSE worker does with
// its reply buffer, mapped once in the host's address space as the bridge
// maps its pooled reply buffers and its workers' write payloads
// (`--unmapped`: a region mapped per command).
// Usage:
//   nvmefs-bench host [--ops N] [--threads T] [--size-mib M] [--runs R] [--write] [--unmapped]
//                     [--shadow-doorbells] [--vwc-mib M] [--only LABEL]
// --vwc-mib: the controller has a volatile write cache of M MiB
// (docs/WRITE-CACHE.md): writes complete from memory, the oldest evicted.
// --shadow-doorbells: the host uses shadow doorbells (NVMe 1.4 §7.13); each
// row also prints the MMIO doorbell writes per operation.

struct HostBenchOptions {
    var ops = 500_000
    var threads = 1
    var sizeMiB = 256
    var runs = 3
    var write = false
    var unmapped = false
    var only: String?
    var shadowDoorbells = false
    var vwcMiB = 0
}

public func runHostBench(arguments: [String]) {
    var o = HostBenchOptions()
    parseBenchOptions(arguments, numbers: ["--ops": { o.ops = $0 }, "--threads": { o.threads = $0 },
                                           "--size-mib": { o.sizeMiB = $0 }, "--runs": { o.runs = $0 },
                                           "--vwc-mib": { o.vwcMiB = $0 }],
                      strings: ["--only": { o.only = $0 }],
                      flags: ["--write": { o.write = true }, "--unmapped": { o.unmapped = true },
                              "--shadow-doorbells": { o.shadowDoorbells = true }])
    let path = "/tmp/nvmefs-bench-host-\(getpid()).img"
    makeCachedImage(path: path, sizeMiB: o.sizeMiB)
    defer { unlink(path) }
    let size = UInt64(o.sizeMiB) << 20
    let rows: [(String, () throws -> any BlockBackend)] = [
        ("null (no data)", { NullBackend(size: size) }),
        ("image inline", { try ImageBackend(path: path, mode: .inline) }),
        ("image hybrid(4)", { try ImageBackend(path: path, mode: .hybrid(workers: 4)) }),
    ]
    print("built-in host + controller, 4 KiB random \(o.write ? "Write" : "Read"), \(o.threads) thread(s), "
          + "\(o.ops) operations per run, \(o.runs) runs (median)"
          + (o.shadowDoorbells ? ", shadow doorbells" : "") + (o.vwcMiB > 0 ? ", write cache \(o.vwcMiB) MiB" : ""))
    print(String(repeating: "-", count: 64))
    print("backend".benchPadding(22) + "ops/s".benchPadding(14) + "µs/op wall".benchPadding(14)
          + "µs/op cpu".benchPadding(14) + "doorbells/op")
    for (label, make) in rows {
        if let only = o.only, !label.contains(only) { continue }
        var walls: [Double] = [], cpus: [Double] = [], doorbells: [Double] = []
        for _ in 0..<o.runs {
            let (w, c, d) = driveHost(backend: opened(make), size: size, options: o)
            walls.append(w); cpus.append(c); doorbells.append(Double(d) / Double(o.ops))
        }
        walls.sort(); cpus.sort(); doorbells.sort()
        let w = walls[walls.count / 2], c = cpus[cpus.count / 2]
        print(label.benchPadding(22) + String(Int(Double(o.ops) / w)).benchPadding(14)
              + benchFormat(w / Double(o.ops) * 1e6).benchPadding(14) + benchFormat(c / Double(o.ops) * 1e6).benchPadding(14)
              + String(format: "%.3f", doorbells[doorbells.count / 2]))
    }
}

/// One run: a controller and host over `backend`; returns (wall s, cpu s,
/// MMIO doorbell writes during the operations).
private func driveHost(backend: any BlockBackend, size: UInt64, options o: HostBenchOptions) -> (Double, Double, UInt64) {
    let space = HostAddressSpace()
    let ns = Namespace(nsid: 1, backend: backend, lbads: 9)
    defer { backend.close() }
    var parameters = ControllerParameters()
    parameters.writeCacheSize = o.vwcMiB << 20
    let controller = NVMeController(parameters: parameters, namespaces: [ns], space: space)
    let host: BuiltinHost
    var configuration = BuiltinHostConfiguration()
    configuration.shadowDoorbells = o.shadowDoorbells
    do { host = try BuiltinHost(controller: controller, configuration: configuration) } catch { benchFail("host bring-up: \(error)") }
    defer { host.shutdown() }
    let blocks = size / 4096
    let perThread = o.ops / o.threads
    let failures = HostBenchCounter()
    let doorbells0 = controller.statistics().doorbellWrites
    let t0 = wallSeconds(), c0 = cpuSeconds()
    var threads: [pthread_t] = []
    for t in 0..<o.threads {
        let work = HostBenchWork(host: host, blocks: blocks, ops: perThread, seed: UInt64(t + 1), write: o.write,
                                 mapped: !o.unmapped, failures: failures)
        var th = pthread_t()
        let arg = Unmanaged.passRetained(work).toOpaque()
        guard pthread_create(&th, nil, { raw in
            let w = Unmanaged<HostBenchWork>.fromOpaque(raw!).takeRetainedValue()
            w.run()
            return nil
        }, arg) == 0 else { benchFail("cannot start a thread") }
        threads.append(th)
    }
    for th in threads { pthread_join(th, nil) }
    let result = (wallSeconds() - t0, cpuSeconds() - c0, controller.statistics().doorbellWrites - doorbells0)
    if failures.value > 0 { benchFail("\(failures.value) operations failed") }
    return result
}

private final class HostBenchCounter: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var count = 0
    init() { pthread_mutex_init(&mutex, nil) }
    func add() { pthread_mutex_lock(&mutex); count += 1; pthread_mutex_unlock(&mutex) }
    var value: Int { pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }; return count }
}

private final class HostBenchWork: @unchecked Sendable {
    let host: BuiltinHost, blocks: UInt64, ops: Int, seed: UInt64, write: Bool, mapped: Bool, failures: HostBenchCounter
    init(host: BuiltinHost, blocks: UInt64, ops: Int, seed: UInt64, write: Bool, mapped: Bool, failures: HostBenchCounter) {
        self.host = host; self.blocks = blocks; self.ops = ops; self.seed = seed; self.write = write
        self.mapped = mapped; self.failures = failures
    }

    func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
        let mapping = mapped ? host.mapBuffer(buffer.baseAddress!, count: buffer.count) : nil
        defer { mapping?.unmap() }
        var rng = XorShift(seed: seed &* 0x9E37_79B9_7F4A_7C15)
        for _ in 0..<ops {
            let offset = UInt64.random(in: 0..<blocks, using: &rng) * 4096
            let r = write ? host.write(nsid: 1, offset: offset, from: UnsafeRawBufferPointer(buffer), mapped: mapping)
                          : host.read(nsid: 1, offset: offset, into: buffer, mapped: mapping)
            guard case .success(4096) = r else { failures.add(); continue }
        }
    }
}
