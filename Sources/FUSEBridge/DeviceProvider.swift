import Logging

/// What the daemon mounts: builds the device and its file tree, and stops it.
///
/// The daemon calls `makeTree` once, before mounting (after the
/// configuration is validated and the images are prepared), and `shutdown`
/// exactly once before the process exits when `makeTree` succeeded: after
/// the FUSE loop has stopped (unmount or signal) and while replies can
/// still be sent. `shutdown` must drain in-flight commands, answer parked
/// reads (e.g. `EventStream.close()`), and sync the images; when it returns,
/// `nvmefs unmount` may return.
public protocol DeviceProvider: Sendable {
    /// Builds the device and returns the root directory node of its tree.
    /// A thrown error is reported as the mount's one-line failure.
    func makeTree(configuration: DeviceConfiguration, logger: Logger) throws -> Node
    /// Drains, answers parked requests, syncs images.
    func shutdown()
}

/// The provider the daemon mounts: the nvmefs device (`NVMeDevice`).
/// - Parameter selfTest: add the `selftest/` directory (bridge test files).
public func makeDeviceProvider(selfTest: Bool) -> any DeviceProvider {
    NVMeDevice(selfTest: selfTest)
}
