// swift-tools-version: 6.1
import Foundation
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
/// The hot path (command dispatch, DMA mapping, backends, the built-in host, the
/// FUSE bridge's data files): dynamic exclusivity
/// checks cost ~10% of a command in release builds; debug builds keep them.
let hot: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "nvmefs",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nvmefs", targets: ["nvmefs"]),
        .executable(name: "nvmefs-conformance", targets: ["nvmefs-conformance"]),
        // libnvmefs-shim.so: the LD_PRELOAD shim of `nvmefs nvme` and `nvmefs exec`.
        .library(name: "nvmefs-shim", type: .dynamic, targets: ["CNVMeShim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Wire types: pure values, no C, no I/O.
        .target(name: "NVMeSpec", swiftSettings: strict),
        // Backends and the multi-AIO request engine.
        .target(name: "BlockIO", dependencies: ["NVMeSpec", "CNBD", "CCPU"], swiftSettings: hot),
        // Host address space (regions) and PRP/SGL data mapping.
        .target(name: "HostMemory", dependencies: ["NVMeSpec", "BlockIO"], swiftSettings: hot),
        // The emulated controller: registers, queues, commands.
        .target(name: "NVMeController",
                dependencies: ["NVMeSpec", "BlockIO", "HostMemory", .product(name: "Logging", package: "swift-log")],
                swiftSettings: hot),
        // The built-in host driver.
        .target(name: "NVMeHost",
                dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController", .product(name: "Logging", package: "swift-log")],
                swiftSettings: hot),
        // The only C: libfuse3 through a shim header.
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // libnbd, the NBD client library of the NBD backend (docs/NBD.md).
        .systemLibrary(name: "CNBD", pkgConfig: "libnbd", providers: [.apt(["libnbd-dev"])]),
        // sched_getcpu, which Swift's Glibc module does not declare (one header).
        .systemLibrary(name: "CCPU"),
        // The preload shim that presents a mount as /dev/nvme0 to programs (one C file, no Swift).
        .target(name: "CNVMeShim", cSettings: [.unsafeFlags(["-Wall", "-Wextra"])], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "FUSEBridge",
                dependencies: ["CFuse3", "NVMeSpec", "BlockIO", "HostMemory", "NVMeController", "NVMeHost",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: hot),
        .executableTarget(name: "nvmefs",
                          dependencies: ["FUSEBridge", "NVMeSpec", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: strict),
        // In-process benchmarks (not tests): the controller alone, backend modes.
        .executableTarget(name: "nvmefs-bench", dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController", "NVMeHost"],
                          swiftSettings: strict),
        // Differential conformance against QEMU's NVMe device (qtest): sequences, devices, diff.
        .target(name: "Conformance", dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController",
                                                   .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .executableTarget(name: "nvmefs-conformance",
                          dependencies: ["Conformance", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),
        .testTarget(name: "NVMeSpecTests", dependencies: ["NVMeSpec"]),
        .testTarget(name: "BlockIOTests", dependencies: ["NVMeSpec", "BlockIO"]),
        .testTarget(name: "HostMemoryTests", dependencies: ["NVMeSpec", "BlockIO", "HostMemory"]),
        .testTarget(name: "NVMeControllerTests", dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController"]),
        .testTarget(name: "NVMeHostTests", dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController", "NVMeHost"]),
        .testTarget(name: "FUSEBridgeTests", dependencies: ["NVMeSpec", "FUSEBridge"]),
        .testTarget(name: "ConformanceTests", dependencies: ["Conformance"]),
    ]
)

// The libFuzzer targets (docs/FUZZING.md): only when tools/fuzz builds them
// (NVMEFS_FUZZ=1, its own scratch directory, -sanitize=fuzzer,address), so
// that `swift build` and `swift test` neither build nor link them.
if ProcessInfo.processInfo.environment["NVMEFS_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(name: "nvmefs-fuzz",
                          dependencies: ["NVMeSpec", "BlockIO", "HostMemory", "NVMeController", "FUSEBridge"],
                          path: "Fuzz/nvmefs-fuzz",
                          swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]))
}
