import BlockIO
import Glibc
import NVMeSpec

extension Namespace {
    /// A namespace on storage opened by `NamespaceStorage`: the image, its
    /// metadata file (docs/METADATA.md) and its Write Uncorrectable marks.
    public convenience init(nsid: UInt32, storage: NamespaceStorage, imagePath: String, readOnly: Bool = false,
                            nmic: UInt8 = 0, isCreated: Bool = false) {
        self.init(nsid: nsid, backend: storage.data, format: storage.format, metadata: storage.metadata,
                  metadataBase: MetadataFile.headerSize, metadataStore: storage.store, readOnly: readOnly,
                  uncorrectableFile: storage.uncorrectable, uncorrectableMarks: storage.marks,
                  nmic: nmic, isCreated: isCreated, imagePath: imagePath)
    }
}

/// The `NamespaceProvisioner` of a mount: created namespaces live in a
/// `NamespaceDirectory` (`--ns-dir`, docs/NAMESPACES.md).
public final class DirectoryProvisioner: NamespaceProvisioner {
    public let directory: NamespaceDirectory
    let mode: ImageBackend.ExecutionMode

    public init(directory: NamespaceDirectory, mode: ImageBackend.ExecutionMode = .default) {
        self.directory = directory
        self.mode = mode
    }

    public func create(nsid: UInt32, format: NamespaceFormat, nsze: UInt64, nmic: UInt8) throws -> Namespace {
        let storage = try directory.createStorage(nsid: nsid, format: format, nsze: nsze, mode: mode)
        return Namespace(nsid: nsid, storage: storage, imagePath: directory.imagePath(nsid), nmic: nmic, isCreated: true)
    }

    public func remove(nsid: UInt32) throws { try directory.removeStorage(nsid: nsid) }

    public func save(_ records: [NamespaceRecord]) throws { try directory.writeState(records) }

    /// Opens the namespaces the state file records (their formats as their
    /// metadata files record them).
    /// A recorded namespace whose image is gone (a deletion whose state
    /// could not be written, then its image removed) is left out and named
    /// in `missing`: the mount goes on without it.
    /// - Returns: the namespaces, the NSIDs among them not attached, and the
    ///   recorded NSIDs whose image is missing.
    /// - Throws: `NamespaceStorageError` (one line); nothing stays open.
    public func load() throws -> (namespaces: [Namespace], detached: Set<UInt32>, missing: [UInt32]) {
        var namespaces: [Namespace] = []
        var detached = Set<UInt32>()
        var missing: [UInt32] = []
        for record in try directory.readState() {
            let image = directory.imagePath(record.nsid)
            if access(image, F_OK) != 0 && errno == ENOENT {
                missing.append(record.nsid)
                continue
            }
            let storage: NamespaceStorage
            do {
                storage = try NamespaceStorage.open(imagePath: image, requested: NamespaceFormat(lbads: 9), explicit: false,
                                                    readOnly: false, mode: mode)
            } catch {
                for ns in namespaces { for b in ns.backends { b.close() } }
                throw NamespaceStorageError("namespace \(record.nsid) of \(directory.statePath): \(error)")
            }
            namespaces.append(Namespace(nsid: record.nsid, storage: storage, imagePath: image, nmic: record.nmic,
                                        isCreated: true))
            if !record.attached { detached.insert(record.nsid) }
        }
        return (namespaces, detached, missing)
    }
}
