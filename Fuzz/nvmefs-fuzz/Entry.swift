import Glibc

// The libFuzzer entry points (docs/FUZZING.md). One binary holds every
// target; NVMEFS_FUZZ_TARGET (controller, mappers, parsers) picks the one
// this process runs. tools/fuzz sets it.

/// The targets, by name.
let fuzzTargets: [String: @Sendable (FuzzInput) -> Void] = [
    "controller": ControllerTarget.run,
    "mappers": MapperTarget.run,
    "parsers": ParserTarget.run,
]

nonisolated(unsafe) var selectedTarget: (@Sendable (FuzzInput) -> Void)?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    let name = getenv("NVMEFS_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = fuzzTargets[name] else {
        let names = fuzzTargets.keys.sorted().joined(separator: ", ")
        printError("nvmefs-fuzz: set NVMEFS_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selectedTarget else { return 0 }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    target(FuzzInput(bytes))
    return 0
}

/// Stops the process as libFuzzer's crash (it keeps the input): a broken
/// invariant of the harness.
func violation(_ message: String) -> Never {
    printError("nvmefs-fuzz: invariant broken: \(message)")
    abort()
}

/// One line on standard error.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// libFuzzer's driver (compiler-rt FuzzerDriver.cpp).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The process entry: SwiftPM links an executable's `main` to
/// `<module>_main`, so libFuzzer's own `main` is not used; this hands the
/// command line to libFuzzer's driver instead.
@_cdecl("nvmefs_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return runFuzzerDriver(&count, &vector, fuzzTestOneInput)
}
