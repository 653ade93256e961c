import BlockIO
import NVMeController
import NVMeSpec

/// A `--namespace` on an NBD export (docs/NBD.md): the URI is opened with
/// libnbd at mount; there are no files beside it, so no metadata (ms=0)
/// and no recorded format or Write Uncorrectable marks.
extension DeviceConfiguration.Namespace {
    /// The options that need a file beside an image do not apply to an export.
    func validateNBD() throws(ConfigurationError) {
        guard !sizeGiven else {
            throw ConfigurationError("namespace \(path): size= does not apply to an NBD export (the server sets its size)")
        }
        guard ms == 0 && pi == .none else {
            throw ConfigurationError("namespace \(path): an NBD export has no metadata (ms=0 only, no pi=; docs/NBD.md)")
        }
    }

    /// Connects to the export and makes namespace `nsid` on it: write-protected
    /// when `readonly` was given or the server exports it read-only.
    /// - Throws: `ConfigurationError` (one line): unreachable server, an
    ///   export size that is not a multiple of the LBA size.
    func openNBD(nsid: UInt32) throws(ConfigurationError) -> Namespace {
        let backend: NBDBackend
        do { backend = try NBDBackend(uri: path, readOnly: readOnly) } catch {
            throw ConfigurationError("namespace \(nsid): \(error)")
        }
        guard backend.size > 0, backend.size % lbaSize == 0 else {
            backend.close()
            throw ConfigurationError("namespace \(nsid): NBD export \(path) holds \(backend.size) bytes, "
                                     + "not a multiple of the LBA size \(lbaSize)")
        }
        return Namespace(nsid: nsid, backend: backend, format: format, readOnly: backend.isReadOnly)
    }
}
