import NVMeSpec

import Glibc

/// Where a namespace's metadata lives, and how a new format replaces it
/// (Format NVM). Implementations block; the controller calls them off
/// its lock, on its format queue.
public protocol MetadataStore: AnyObject, Sendable {
    /// Offset of LBA 0's metadata in the backend `replace` returns.
    var base: UInt64 { get }
    /// Re-creates the metadata for `nsze` blocks of `format` (every block
    /// deallocated) and records the format. Returns the backend holding it,
    /// nil when the format has no metadata.
    func replace(format: NamespaceFormat, nsze: UInt64) throws -> (any BlockBackend)?
}

/// The metadata file beside an image (`MetadataFile`).
public final class SidecarMetadataStore: MetadataStore {
    public let path: String
    public let readOnly: Bool
    public var base: UInt64 { MetadataFile.headerSize }

    public init(path: String, readOnly: Bool) { self.path = path; self.readOnly = readOnly }

    public func replace(format: NamespaceFormat, nsze: UInt64) throws -> (any BlockBackend)? {
        guard !readOnly else { throw ImageBackendError(path: path, operation: "format", errno: EROFS) }
        try MetadataFile.create(path: path, format: format, nsze: nsze)
        return format.hasMetadata ? try ImageBackend(path: path, mode: .default) : nil
    }
}

/// A namespace's files, opened at mount (docs/METADATA.md).
public struct NamespaceStorage {
    public var data: ImageBackend
    public var metadata: ImageBackend?
    public var format: NamespaceFormat
    public var nsze: UInt64
    public var store: SidecarMetadataStore
    /// The Write Uncorrectable marks beside the image, and those recorded.
    public var uncorrectable: UncorrectableFile
    public var marks: LBARangeSet

    /// Opens `imagePath` and its metadata file. The metadata file's format
    /// wins over `requested` unless the format was given explicitly
    /// (`explicit`), in which case the two must agree. A format with
    /// metadata and no metadata file yet gets a new one (every block
    /// deallocated); so does a format given explicitly (header only), so
    /// that it is recorded.
    /// - Throws: `NamespaceStorageError` (one line).
    public static func open(imagePath: String, requested: NamespaceFormat, explicit: Bool, readOnly: Bool,
                            mode: ImageBackend.ExecutionMode = .default) throws -> NamespaceStorage {
        let mdPath = MetadataFile.path(forImage: imagePath)
        let recorded: NamespaceFormat?
        do { recorded = try MetadataFile.readFormat(path: mdPath) } catch {
            throw NamespaceStorageError("metadata file \(mdPath): \(error)")
        }
        var format = requested
        if let recorded {
            if explicit && recorded != requested {
                throw NamespaceStorageError("image \(imagePath) is formatted \(recorded) (recorded in \(mdPath)), "
                                            + "not \(requested): drop the format options or remove \(mdPath)")
            }
            format = recorded
        }
        if let why = format.invalidReason { throw NamespaceStorageError("image \(imagePath): \(why)") }
        let data: ImageBackend
        do { data = try ImageBackend(path: imagePath, readOnly: readOnly, mode: mode) } catch {
            throw NamespaceStorageError("image \(imagePath): \(error)")
        }
        let nsze = data.size >> UInt64(format.lbads)
        guard nsze > 0 else {
            data.close()
            throw NamespaceStorageError("image \(imagePath): smaller than one \(format.lbaSize)-byte block")
        }
        let store = SidecarMetadataStore(path: mdPath, readOnly: readOnly)
        if recorded == nil && !format.hasMetadata && explicit && !readOnly {
            // A format chosen by options is recorded even without metadata,
            // so a later mount without options finds it.
            do { try MetadataFile.create(path: mdPath, format: format, nsze: nsze) } catch {
                data.close()
                throw NamespaceStorageError("metadata file \(mdPath): \(error)")
            }
        }
        var metadata: ImageBackend?
        if format.hasMetadata {
            do {
                if recorded == nil { try MetadataFile.create(path: mdPath, format: format, nsze: nsze) }
                let m = try ImageBackend(path: mdPath, readOnly: readOnly, mode: mode)
                let needed = MetadataFile.headerSize + nsze * UInt64(format.ms)
                guard m.size >= needed else {
                    m.close()
                    throw NamespaceStorageError("metadata file \(mdPath) holds \(m.size) bytes; \(format) on this image needs \(needed)")
                }
                metadata = m
            } catch let e as NamespaceStorageError {
                data.close()
                throw e
            } catch {
                data.close()
                throw NamespaceStorageError("metadata file \(mdPath): \(error)")
            }
        }
        let ucFile = UncorrectableFile(path: UncorrectableFile.path(forImage: imagePath), readOnly: readOnly)
        let marks: LBARangeSet
        do { marks = try ucFile.load(lbads: format.lbads) } catch {
            data.close()
            metadata?.close()
            throw NamespaceStorageError("uncorrectable marks \(ucFile.path): \(error)")
        }
        return NamespaceStorage(data: data, metadata: metadata, format: format, nsze: nsze, store: store,
                                uncorrectable: ucFile, marks: marks)
    }
}

public struct NamespaceStorageError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
