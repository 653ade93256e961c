import Logging
import Glibc

/// The whole life of one mount in this process.
public enum Daemon {
    /// Prepares the images, builds the device, mounts and serves until
    /// unmounted or signalled, then shuts the device down (drain, sync) and
    /// unmounts. Returns after a clean stop.
    ///
    /// Call `TerminationSignals.block()` first thing in the process, before
    /// any thread exists (this function blocks them too, for callers that
    /// did not).
    /// - Parameters:
    ///   - configuration: validated (`validate()`, `checkFiles()`).
    ///   - mountpoint: the real path of a validated mountpoint.
    ///   - provider: the device.
    ///   - ready: called once the mount is in place, just before serving
    ///     (the daemonized child tells its parent here). The current
    ///     directory is "/" by then.
    /// - Throws: `ConfigurationError` (images), `DaemonError` (registration,
    ///   mount), or what `makeTree` or `ready` throws.
    public static func run(configuration: DeviceConfiguration, mountpoint: String,
                           provider: any DeviceProvider, logger: Logger,
                           ready: () throws -> Void) throws {
        TerminationSignals.block()
        var configuration = configuration
        let registration = try MountRegistry.register(mountpoint: mountpoint)
        defer { registration.remove() }
        try configuration.prepare()
        let root = try provider.makeTree(configuration: configuration, logger: logger)
        var shutDown = false
        defer { if !shutDown { provider.shutdown() } }
        let fileSystem = FileSystem(root: root, logger: logger, othersMayWrite: configuration.allowOtherWrite)
        let options = MountOptions(mountpoint: mountpoint, allowOther: configuration.allowOther,
                                   maxThreads: UInt32(configuration.fuseThreads ?? DeviceConfiguration.defaultFUSEThreads))
        try FUSESession.run(fileSystem: fileSystem, options: options, logger: logger, ready: {
            _ = chdir("/")
            try ready()
        }, stopping: {
            logger.info("stopping the device")
            provider.shutdown()
            shutDown = true
        })
        logger.info("stopped")
    }
}
