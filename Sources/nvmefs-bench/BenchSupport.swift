import BlockIO
import Glibc

// What the benchmarks share: failing, options, clocks, the page-cached
// image, and number formatting.

func benchFail(_ message: String) -> Never {
    let line = "nvmefs-bench: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// Parses `--name value` and `--flag` options: `numbers` take a positive
/// integer, `strings` any value, `flags` none. Anything else stops the bench
/// with a one-line error.
func parseBenchOptions(_ arguments: [String], numbers: [String: (Int) -> Void] = [:],
                       strings: [String: (String) -> Void] = [:], flags: [String: () -> Void] = [:]) {
    var i = 0
    while i < arguments.count {
        let option = arguments[i]
        if let flag = flags[option] {
            flag()
        } else if let setter = numbers[option] {
            i += 1
            guard i < arguments.count, let v = Int(arguments[i]), v > 0 else {
                benchFail("\(option) needs a positive number")
            }
            setter(v)
        } else if let string = strings[option] {
            i += 1
            guard i < arguments.count else { benchFail("missing value after \(option)") }
            string(arguments[i])
        } else {
            benchFail("unknown option \(option)")
        }
        i += 1
    }
}

func cpuSeconds() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

func wallSeconds() -> Double { Double(monotonicNanoseconds()) / 1e9 }

/// Creates the image at `path` (`sizeMiB` MiB) and writes it once with
/// `fill`, so that its pages are cached; false when it cannot be created.
@discardableResult
func makeCachedImage(path: String, sizeMiB: Int, fill: UInt8 = 0xA5, required: Bool = true) -> Bool {
    unlink(path)
    do {
        try ImageBackend.create(path: path, size: UInt64(sizeMiB) << 20)
    } catch {
        if required { benchFail("\(error)") }
        return false
    }
    var chunk = [UInt8](repeating: fill, count: 1 << 20)
    let fd = open(path, O_RDWR)
    defer { close(fd) }
    for m in 0..<sizeMiB { _ = chunk.withUnsafeMutableBytes { pwrite(fd, $0.baseAddress, 1 << 20, off_t(m) << 20) } }
    return true
}

/// `v` rounded to two decimals.
func benchFormat(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return "\(r)"
}

extension String {
    /// The string padded with spaces to `n` characters (at least one space after it).
    func benchPadding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}
