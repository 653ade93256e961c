import Glibc
import Foundation
import NVMeSpec

/// A sequence written once against `Session` and run on both devices.
public struct Scenario: Sendable {
    public var name: String
    public var configuration: DeviceConfiguration
    public var body: @Sendable (Session) throws -> Void
    public init(_ name: String, configuration: DeviceConfiguration = DeviceConfiguration(),
                _ body: @escaping @Sendable (Session) throws -> Void) {
        self.name = name; self.configuration = configuration; self.body = body
    }
}

public struct ScenarioResult: Sendable {
    public var name: String
    public var compared: Int
    public var differences: [Difference]
    public var unexpected: [Difference] { differences.filter { $0.deliberate == nil } }
    public var deliberate: [Difference] { differences.filter { $0.deliberate != nil } }
}

/// Runs scenarios on a fresh QEMU process and a fresh in-process controller,
/// each on its own copy of one image, and diffs their observations.
public final class Runner {
    public let qemuBinary: String
    public let table: DeliberateTable
    public let workDirectory: String
    let baseImage: String
    /// How QEMU's clock runs on this machine (see `QEMUDevice.Clock`).
    public private(set) var clock: QEMUDevice.Clock
    /// Image size: 8192 LBAs of 512 bytes, LBA i filled with a pattern derived from i.
    public static let imageBlocks = 8192

    public init(qemuBinary: String, table: DeliberateTable) throws {
        self.qemuBinary = qemuBinary
        self.table = table
        var template = Array((NSTemporaryDirectory() + "/nvmefs-conformance.XXXXXX").utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw QEMUUnavailable(reason: "cannot create a temporary directory")
        }
        workDirectory = String(cString: dir)
        baseImage = workDirectory + "/base.img"
        var bytes = [UInt8](repeating: 0, count: Self.imageBlocks * 512)
        for lba in 0..<Self.imageBlocks {
            for i in 0..<512 { bytes[lba * 512 + i] = UInt8(truncatingIfNeeded: lba &* 7 &+ i &* 13 &+ (lba >> 8)) }
        }
        // A few all-zero blocks (LBA 100..107) for Compare and Write Zeroes checks.
        for i in (100 * 512)..<(108 * 512) { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: baseImage))
        let firmware = workDirectory + "/halt.rom"
        try Data(QEMUDevice.haltingFirmware()).write(to: URL(fileURLWithPath: firmware))
        clock = Self.hasQTestAccelerator(qemuBinary) ? .qtestAccelerator : .haltedTCG(firmware: firmware)
    }

    /// Whether `qemu -accel help` lists the qtest accelerator.
    static func hasQTestAccelerator(_ binary: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["-accel", "help"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "qtest" }
    }

    public func cleanUp() {
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    /// Checks that QEMU can be started at all (the SKIP decision).
    public func probeQEMU() throws {
        let dir = workDirectory + "/probe"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = dir + "/ns.img"
        try FileManager.default.copyItem(atPath: baseImage, toPath: image)
        let q = try QEMUDevice(binary: qemuBinary, imagePath: image, configuration: DeviceConfiguration(), workDirectory: dir,
                               clock: clock)
        let vs = try q.read32(Session.Register.vs)
        q.close()
        try? FileManager.default.removeItem(atPath: dir)
        guard vs != 0 && vs != 0xFFFF_FFFF else { throw QEMUUnavailable(reason: "QEMU's NVMe BAR0 does not answer (VS reads \(vs))") }
    }

    func observations(of scenario: Scenario, on device: any ConformanceDevice) -> [Observation] {
        let s = Session(device: device)
        do { try scenario.body(s) } catch { s.record("sequence.error", "\(error)") }
        return s.observations
    }

    /// Gives QEMU's image of a namespace with metadata the layout QEMU
    /// expects — the data, then every block's metadata (NSZE = image size /
    /// (LBA data size + MS)) — with every block's metadata as nvmefs creates
    /// its metadata file: deallocated (zeros, PI all FFh; docs/METADATA.md).
    /// QEMU reads the PI of blocks whose data is a hole as FFh too, but the
    /// base image's data is written, so it would read the stored PI.
    public static func appendMetadata(image: String, format: NamespaceFormat) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: image))
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        let nsze = Int(size) >> Int(format.lbads)
        var metadata = [UInt8](repeating: 0, count: nsze * Int(format.ms))
        metadata.withUnsafeMutableBytes { format.deallocatedMetadata(into: $0) }
        try handle.write(contentsOf: metadata)
    }

    public func run(_ scenario: Scenario) throws -> ScenarioResult {
        let dir = workDirectory + "/" + scenario.name.replacingOccurrences(of: "/", with: "_")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: baseImage, toPath: dir + "/qemu.img")
        try FileManager.default.copyItem(atPath: baseImage, toPath: dir + "/nvmefs.img")
        if scenario.configuration.secondNamespace != nil {
            for image in ["/qemu.img", "/nvmefs.img"] {
                try FileManager.default.copyItem(atPath: baseImage, toPath: DeviceConfiguration.secondImage(dir + image))
            }
        }
        if let format = scenario.configuration.namespaceFormat, format.hasMetadata {
            try Self.appendMetadata(image: dir + "/qemu.img", format: format)
            if scenario.configuration.secondNamespace != nil {
                try Self.appendMetadata(image: DeviceConfiguration.secondImage(dir + "/qemu.img"), format: format)
            }
        }

        let q = try QEMUDevice(binary: qemuBinary, imagePath: dir + "/qemu.img", configuration: scenario.configuration,
                               workDirectory: dir, clock: clock)
        let qo = observations(of: scenario, on: q)
        q.close()
        let n = try NVMefsDevice(imagePath: dir + "/nvmefs.img", configuration: scenario.configuration)
        let no = observations(of: scenario, on: n)
        n.close()
        let (compared, diffs) = ObservationDiff.diff(scenario: scenario.name, qemu: qo, nvmefs: no, table: table)
        return ScenarioResult(name: scenario.name, compared: compared, differences: diffs)
    }
}
