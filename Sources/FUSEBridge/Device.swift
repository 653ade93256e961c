import BlockIO
import HostMemory
import Logging
import NVMeController
import NVMeHost
import Synchronization
import Glibc

/// The parts of one running device that the files reach.
final class DeviceContext: Sendable {
    let configuration: DeviceConfiguration
    let controller: NVMeController
    /// nil with `--host none`.
    let host: BuiltinHost?
    /// User host memory (`mem`), mapped at address 0; nil with `--mem 0`.
    let mem: AnonymousMemory?
    let trace: TraceRecorder
    let logger: Logger

    init(configuration: DeviceConfiguration, controller: NVMeController, host: BuiltinHost?,
         mem: AnonymousMemory?, trace: TraceRecorder, logger: Logger) {
        self.configuration = configuration; self.controller = controller; self.host = host
        self.mem = mem; self.trace = trace; self.logger = logger
    }

    /// True when the built-in host owns queue `qid` (its doorbells refuse
    /// writes from files: CONTRACT §3 doorbells/).
    func hostOwns(qid: Int) -> Bool {
        guard let host, qid >= 0, qid <= Int(UInt16.max) else { return false }
        return host.ownedQueueIDs.contains(UInt16(qid))
    }

    /// A refused file operation: logged and traced (always, like a guest
    /// error), then thrown.
    func refuse(_ file: String, _ error: FileError, _ reason: String) -> FileError {
        logger.info("\(file): \(reason) (\(Errno.name(error.code)))")
        trace.note(.fileRefused, [("file", file), ("errno", Errno.name(error.code)), ("reason", reason)])
        return error
    }
}

/// The nvmefs device (CONTRACT §1-§3): host address space with `mem`, one image
/// backend and namespace per `--namespace`, the controller, the built-in
/// host unless `--host none`, and the file tree over them.
final class NVMeDevice: DeviceProvider {
    let selfTest: Bool
    private let context = Locked<DeviceContext?>(nil)
    private let selfTestStream = EventStream(capacity: 64)
    private let stopped = Atomic<Bool>(false)

    init(selfTest: Bool) { self.selfTest = selfTest }

    func makeTree(configuration: DeviceConfiguration, logger: Logger) throws -> Node {
        let space = HostAddressSpace()
        var mem: AnonymousMemory?
        if configuration.memSize > 0 {
            guard configuration.memSize <= UInt64(Int.max) else { throw ConfigurationError("--mem is too large") }
            let m: AnonymousMemory
            do { m = try AnonymousMemory(size: Int(configuration.memSize)) } catch {
                throw ConfigurationError("cannot allocate \(configuration.memSize) bytes of host memory: \(error)")
            }
            do { try space.map(base: 0, length: m.size, pointer: m.pointer, name: "mem", kind: .userMemory) } catch {
                throw ConfigurationError("cannot map host memory: \(error)")
            }
            mem = m
        }
        // Each image with its metadata file (README, "Metadata and protection
        // information"): the recorded format wins unless format options were
        // given, which must agree.
        var namespaces: [Namespace] = []
        func closeOpened() { for n in namespaces { for b in n.backends { b.close() } } }
        for (i, ns) in configuration.namespaces.enumerated() {
            if ns.isNBD {
                do { namespaces.append(try ns.openNBD(nsid: UInt32(i + 1))) } catch {
                    closeOpened()
                    throw error
                }
                continue
            }
            let storage: NamespaceStorage
            do {
                storage = try NamespaceStorage.open(imagePath: ns.path, requested: ns.format, explicit: ns.formatGiven,
                                                    readOnly: ns.readOnly)
            } catch {
                closeOpened()
                throw ConfigurationError("\(error)")
            }
            namespaces.append(Namespace(nsid: UInt32(i + 1), storage: storage, imagePath: ns.path, readOnly: ns.readOnly))
        }
        // The namespaces created with Namespace Management in earlier mounts
        // (docs/NAMESPACES.md), after the given ones' NSIDs.
        let provisioner: DirectoryProvisioner
        let detached: Set<UInt32>
        do {
            (provisioner, detached) = try Self.openNamespaceDirectory(configuration, given: namespaces.count, into: &namespaces,
                                                                      logger: logger)
        } catch {
            closeOpened()
            throw error
        }
        let parameters = configuration.controllerParameters
        // The firmware slots (docs/FIRMWARE.md); mounting is a power cycle,
        // which activates a pending image.
        var firmware: (store: FirmwareStore?, slots: FirmwareSlots)?
        if let dir = configuration.firmwareDirectory {
            let store = FirmwareStore(directory: dir)
            do { firmware = (store, try store.load()) } catch {
                closeOpened()
                throw ConfigurationError("\(error)")
            }
        }
        let trace = TraceRecorder()
        let controller = NVMeController(parameters: parameters, namespaces: namespaces, space: space,
                                        logger: logger, trace: trace, detached: detached, provisioner: provisioner,
                                        firmware: firmware)
        var host: BuiltinHost?
        if configuration.host == .builtin {
            var hostConfiguration = BuiltinHostConfiguration()
            hostConfiguration.ioQueuePairs = min(hostConfiguration.ioQueuePairs, configuration.queues)
            hostConfiguration.shadowDoorbells = configuration.shadowDoorbells
            do {
                host = try BuiltinHost(controller: controller, configuration: hostConfiguration, logger: logger)
            } catch {
                controller.drainAndSync()
                controller.closeBackends()
                throw ConfigurationError("built-in host: \(error)")
            }
        }
        let device = DeviceContext(configuration: configuration, controller: controller, host: host, mem: mem,
                                   trace: trace, logger: logger)
        context.withLock { $0 = device }

        let root = Directory()
        root.add(Readme.node(root: root))
        for node in DeviceFiles.tree(device) { root.add(node) }
        if selfTest { root.add(SelfTestFiles.directory(stream: selfTestStream)) }
        return Node.root(root)
    }

    /// Opens and locks the namespace directory and appends the namespaces
    /// its state records to `namespaces` (the `given` first ones came from
    /// `--namespace`, NSIDs 1...given).
    /// - Throws: `ConfigurationError` for a directory in use or unreadable,
    ///   or a recorded NSID that a `--namespace` or `--max-namespaces` rules out.
    static func openNamespaceDirectory(_ configuration: DeviceConfiguration, given: Int,
                                       into namespaces: inout [Namespace], logger: Logger) throws(ConfigurationError)
        -> (DirectoryProvisioner, Set<UInt32>) {
        let path = configuration.namespaceDirectory
        let provisioner: DirectoryProvisioner
        let loaded: (namespaces: [Namespace], detached: Set<UInt32>, missing: [UInt32])
        do {
            // A directory given with --ns-dir is made now; the default one when first needed.
            provisioner = DirectoryProvisioner(directory: try NamespaceDirectory(path: path, create: configuration.nsDir != nil,
                                                                                  imageMode: configuration.imageMode))
            loaded = try provisioner.load()
        } catch {
            throw ConfigurationError("\(error)")
        }
        for nsid in loaded.missing {
            logger.warning("namespace \(nsid) of \(path): its image \(provisioner.directory.imagePath(nsid)) is missing; left out")
        }
        let givenPaths = Set(configuration.namespaces.map(\.path))
        for ns in loaded.namespaces {
            var problem: String?
            if Int(ns.nsid) <= given {
                problem = "namespace \(ns.nsid) created in \(path) has the NSID of --namespace #\(ns.nsid) "
                    + "(give fewer --namespace options, or another --ns-dir)"
            } else if Int(ns.nsid) > configuration.maxNamespaces {
                problem = "namespace \(ns.nsid) created in \(path) is above --max-namespaces \(configuration.maxNamespaces)"
            } else if let image = ns.imagePath, givenPaths.contains(image) {
                problem = "image \(image) is both a --namespace and namespace \(ns.nsid) of \(path)"
            }
            if let problem {
                for n in loaded.namespaces { for b in n.backends { b.close() } }
                throw ConfigurationError(problem)
            }
        }
        namespaces += loaded.namespaces
        return (provisioner, loaded.detached)
    }

    func shutdown() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        selfTestStream.close()
        guard let device = context.withLock({ $0 }) else { return }
        device.trace.close()
        // The host shuts the controller down (CC.SHN, which syncs the images),
        // then every backend is drained and synced again for --host none.
        device.host?.shutdown()
        device.controller.drainAndSync()
        device.controller.closeBackends()
    }
}

/// The top-level files, in listing order.
enum DeviceFiles {
    static func tree(_ d: DeviceContext) -> [Node] {
        var nodes: [Node] = []
        nodes.append(RegisterFiles.bar0(d))
        nodes.append(RegisterFiles.directory(d))
        nodes.append(RegisterFiles.doorbells(d))
        if let mem = d.mem { nodes.append(MemoryFiles.mem(mem)) }
        if let cmb = d.controller.cmbMemory { nodes.append(MemoryFiles.cmb(cmb)) }
        nodes.append(QueueFiles.directory(d))
        nodes.append(NamespaceFiles.directory(d))
        if d.host != nil {
            nodes.append(HostFiles.identify(d))
            nodes.append(HostFiles.log(d))
            nodes.append(HostFiles.cmd(d))
            nodes.append(HostFiles.passthru(d))
            nodes.append(HostFiles.rescan(d))
            nodes.append(HostFiles.firmware(d))
            nodes.append(HostFiles.events(d))
        }
        nodes.append(InspectFiles.interrupts(d))
        nodes.append(InspectFiles.stats(d))
        nodes.append(TraceFiles.trace(d))
        nodes.append(TraceFiles.faults(d))
        if d.configuration.writeCacheSize > 0 { nodes.append(PowerFiles.power(d)) }
        return nodes
    }
}

/// errno names for logs and trace lines.
enum Errno {
    static func name(_ code: Int32) -> String {
        switch code {
        case EPERM: "EPERM"; case ENOENT: "ENOENT"; case EINTR: "EINTR"; case EIO: "EIO"
        case EAGAIN: "EAGAIN"; case ENOMEM: "ENOMEM"; case EACCES: "EACCES"; case EBUSY: "EBUSY"
        case ENODEV: "ENODEV"; case EINVAL: "EINVAL"; case ENOSPC: "ENOSPC"; case EROFS: "EROFS"
        case ERANGE: "ERANGE"; case EILSEQ: "EILSEQ"; case EOPNOTSUPP: "EOPNOTSUPP"; case ETIMEDOUT: "ETIMEDOUT"
        case E2BIG: "E2BIG"
        default: "errno \(code)"
        }
    }
}
