import BlockIO
import NVMeController
import NVMeHost
import NVMeSpec

import Glibc

/// `namespaces/N/`: `info`, `metadata` and `stats` always (they read the
/// device model without a command); `data` and `identify` with the built-in
/// host (they are NVMe commands). The listing is live: a namespace's
/// directory appears when it is attached and disappears when it is
/// detached or deleted (Namespace Attachment and Management,
/// docs/NAMESPACES.md). With the built-in host it lists the attached
/// namespaces the host has identified, as Linux shows `/dev/nvme0nN` after
/// its rescan; with `--host none`, the controller's attached namespaces.
enum NamespaceFiles {
    static func directory(_ d: DeviceContext) -> Node {
        let cache = NamespaceNodes()
        let listing = Directory(listing: {
            var attached = d.controller.attachedNamespaces
            if let host = d.host {
                let known = Set(host.namespaces.map(\.nsid))
                attached.removeAll { !known.contains($0.nsid) }
            }
            return cache.nodes(for: attached) { node(d, $0) }
        })
        return .directory("namespaces", about: "one directory per attached namespace: info, metadata and stats always, "
                            + "data and identify with the built-in host", listing)
    }

    /// One namespace's directory.
    static func node(_ d: DeviceContext, _ ns: Namespace) -> Node {
        var files: [Node] = []
        if let host = d.host {
            files.append(data(d, host, ns))
            files.append(.file("identify", about: "4096-byte Identify Namespace data (an Identify command)",
                               GeneratedFile(mode: 0o444, size: 4096, bytes: { () throws(FileError) -> [UInt8] in
                                   do throws(HostError) { return try host.identifyNamespace(ns.nsid) } catch {
                                       throw FileError(error.errno)
                                   }
                               })))
        }
        files.append(.file("info", about: "namespace facts, key: value (nsze, lba size, ms, metadata, pi type, "
                             + "metadata file, format progress, uncorrectable LBAs, image...)",
                           GeneratedFile(mode: 0o444, text: { info(d, ns) })))
        files.append(.file("metadata", about: "the stored metadata, read-only: ms bytes per LBA at offset "
                             + "LBA × ms, as on the wire (PI big-endian)",
                           MetadataFileHandler(controller: d.controller, nsid: ns.nsid)))
        files.append(.file("stats", about: "block accounting per operation: ops, bytes, failed, invalid, "
                             + "total and max latency",
                           GeneratedFile(mode: 0o444, text: {
                               stats(ns.accounting.snapshot()) + cacheStats(d.controller.writeCacheState(ns.nsid))
                           })))
        return .directory(String(ns.nsid), about: "", files)
    }

    static func info(_ d: DeviceContext, _ ns: Namespace) -> String {
        // The geometry, not the Namespace's fields: Format NVM changes them under the controller's lock.
        guard let g = d.controller.namespaceGeometry(ns.nsid) else { return "nsid: \(ns.nsid)\n" }
        let f = g.format
        let pil = f.pi == .none ? "no PI" : f.piFirst ? "PI in the first 8 bytes" : "PI in the last 8 bytes"
        var rows: [(String, String)] = [
            ("nsid", "\(ns.nsid)"), ("nsze", "\(g.nsze)"), ("ncap", "\(g.nsze)"), ("nuse", "\(g.nsze)"),
            ("lba size", "\(f.lbaSize)"), ("lbads", "\(f.lbads)"), ("ms", "\(f.ms)"),
            ("metadata", f.ms == 0 ? "none" : f.extended ? "extended" : "separate"),
            ("pi type", "\(f.pi.rawValue)"), ("pil", "\(f.piFirst ? 1 : 0) (\(pil))"), ("lba format", "\(f)"),
            ("capacity", "\(g.capacity)"), ("image", ns.imagePath ?? ns.backend.name),
            ("origin", ns.isCreated ? "created (Namespace Management)" : "given (--namespace)"),
            ("shared", Text.yesNo(ns.nmic & 1 != 0)),
        ]
        if let path = ns.imagePath {
            // Only an image mounted with no format options and never formatted has none.
            let md = MetadataFile.path(forImage: path)
            rows.append(("metadata file", access(md, F_OK) == 0 ? md : "none"))
        }
        rows += [("format", g.formatProgress.map { "\($0)%" } ?? "idle"), ("readonly", Text.yesNo(g.isReadOnly)),
                 ("uncorrectable", "\(d.controller.uncorrectableCount(ns.nsid) ?? 0)"),
                 ("data file", d.host != nil ? "yes" : "no (--host none)")]
        rows += cacheInfo(d.controller.writeCacheState(ns.nsid), metadata: f.ms != 0, lbads: f.lbads)
        return rows.map { "\($0.0): \($0.1)\n" }.joined()
    }

    /// The write cache's rows of `info` (docs/WRITE-CACHE.md): the dirty
    /// bytes and, LBA+count, the first dirty ranges.
    static func cacheInfo(_ state: WriteCacheState?, metadata: Bool, lbads: UInt8) -> [(String, String)] {
        guard let c = state else { return [("write cache", "none (no --vwc)")] }
        let shown = 16
        var ranges = c.dirtyRanges.prefix(shown).map { "\($0.0 >> UInt64(lbads))+\($0.1 >> Int(lbads))" }.joined(separator: " ")
        if c.dirtyRanges.count > shown { ranges += " (+\(c.dirtyRanges.count - shown) more)" }
        return [("write cache", metadata ? "write-through (a format with metadata is not cached)"
                    : c.enabled ? "on" : "off (Volatile Write Cache feature disabled)"),
                ("write cache size", "\(c.capacity)"), ("dirty bytes", "\(c.dirtyBytes)"),
                ("dirty ranges", "\(c.dirtyRanges.count)" + (ranges.isEmpty ? "" : " (LBA+blocks: \(ranges))")),
                ("write-back bytes", "\(c.inFlightBytes)")]
    }

    /// The write cache's line of `stats`.
    static func cacheStats(_ state: WriteCacheState?) -> String {
        guard let c = state else { return "" }
        return "write-cache".padding(13) + "cached=\(c.writesCached) flushes=\(c.flushes) evicted=\(c.evictedExtents)"
            + " evicted_bytes=\(c.evictedBytes) dirty_bytes=\(c.dirtyBytes)\n"
    }

    static func stats(_ s: BlockAccounting.Snapshot) -> String {
        var out = ""
        for op in AIOOperation.allCases {
            let o = s[op]
            out += op.description.padding(13) + "ops=\(o.ops) bytes=\(o.bytes) failed=\(o.failed) invalid=\(o.invalid)"
                + " total_latency_ns=\(o.totalLatencyNanoseconds) max_latency_ns=\(o.maxLatencyNanoseconds)"
                + " in_flight=\(o.inFlight)\n"
        }
        return out
    }

    static func data(_ d: DeviceContext, _ host: BuiltinHost, _ ns: Namespace) -> Node {
        .file("data", about: "the namespace's bytes (Read/Write commands; fsync = Flush, fallocate punch hole = "
                + "deallocate, zero range = Write Zeroes; past the end: reads 0 bytes, writes ENOSPC)",
              DataFile(host: host, nsid: ns.nsid, instance: host.namespaceInfo(ns.nsid)?.instance,
                       cache: d.configuration.cache))
    }
}

/// `namespaces/N/data`: the namespace's data (never its metadata) as a
/// block-device-like file served by the built-in host (CONTRACT §3). Its size
/// is the host's current view of the namespace (NSZE × LBA data size), so it
/// follows a Format NVM once the host has re-identified the namespace. Every
/// error's errno comes from the host's one status → errno map (`errnoForStatus`).
/// A class: a call through the open file's handler then copies a reference;
/// copying a struct's fields retained the built-in host, which every FUSE
/// worker shares (a contended reference count on every read and write).
final class DataFile: FileHandler {
    let host: BuiltinHost
    let nsid: UInt32
    /// The appearance of the namespace this file belongs to: once it went
    /// away (detached, deleted), the file fails with ENODEV, even if a new
    /// namespace has the NSID (as a removed disk's open files do).
    let instance: UInt64?
    let cache: Bool

    init(host: BuiltinHost, nsid: UInt32, instance: UInt64?, cache: Bool) {
        self.host = host; self.nsid = nsid; self.instance = instance; self.cache = cache
    }

    var mode: UInt16 { 0o644 }
    var directIO: Bool { !cache }
    var keepCache: Bool { cache }
    /// Writes run in parallel, as on a block device: whole blocks go to the
    /// controller concurrently, and the host's range lock makes the
    /// read-modify-write of a partial block exclusive (`RangeLock`).
    var parallelDirectWrites: Bool { true }
    var capacity: UInt64 { host.namespaceInfo(nsid, instance: instance)?.capacity ?? 0 }
    func size() -> UInt64 { capacity }

    func read(_ request: ReadRequest) {
        // Past the end the host reads 0 bytes and refuses writes (ENOSPC):
        // no capacity check (and no host lock) here on the data path.
        guard request.size > 0 else { request.reply([]); return }
        // The pooled reply buffer stays mapped in the host's address space
        // from one read to the next (no region mapped and removed per read).
        let host = self.host
        let (buffer, mapping) = request.mappedBuffer { host.mapBuffer($0, count: $1) }
        switch host.read(nsid: nsid, instance: instance, offset: request.offset, into: buffer, mapped: mapping, parking: { request.parkBuffer() }) {
        case .success(let n): request.reply(bufferCount: n)
        case .failure(let e): request.fail(FileError(e.errno))
        }
    }

    /// Every read of up to `ReadBuffer.largestKept` bytes (all of them, with
    /// the kernel's default 1 MiB limit) is answered here, in the worker's
    /// buffer, which stays mapped in the host's address space.
    func readNow(at offset: UInt64, size: Int, buffer: ReadBuffer) throws(FileError) -> UnsafeRawBufferPointer? {
        let (bytes, mapping) = buffer.take(size, host: host)
        switch host.read(nsid: nsid, instance: instance, offset: offset, into: bytes, mapped: mapping, parking: buffer.parking) {
        case .success(let n): return UnsafeRawBufferPointer(start: bytes.baseAddress, count: n)
        case .failure(let e): throw FileError(e.errno)
        }
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        try write(data, at: offset, fua: false)
    }

    /// An O_DSYNC write: every Write it makes has Force Unit Access (NVMe
    /// 1.4 §6.15), so no Flush of the whole cache is needed.
    func writeDurably(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        try write(data, at: offset, fua: true)
    }

    private func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws(FileError) -> Int {
        // The worker's receive buffer stays mapped from one write to the next.
        let mapping = WriteMapping.forThread().covering(data, host: host)
        switch host.write(nsid: nsid, instance: instance, offset: offset, from: data, mapped: mapping, fua: fua) {
        case .success(let n): return n
        case .failure(let e): throw FileError(e.errno)
        }
    }

    func fsync(file: OpenFile, dataOnly: Bool) throws(FileError) {
        if case .failure(let e) = host.flush(nsid: nsid, instance: instance) { throw FileError(e.errno) }
    }

    func fallocate(mode: Int32, offset: UInt64, length: UInt64, file: OpenFile) throws(FileError) {
        let result: Result<Void, HostError>
        if mode == FallocateMode.punchHole | FallocateMode.keepSize {
            result = host.deallocate(nsid: nsid, instance: instance, offset: offset, length: length)
        } else if mode & ~FallocateMode.keepSize == FallocateMode.zeroRange {
            result = host.writeZeroes(nsid: nsid, instance: instance, offset: offset, length: length)
        } else {
            throw .notSupported
        }
        if case .failure(let e) = result { throw FileError(e.errno) }
    }
}

/// `namespaces/N/metadata`: the metadata the controller stores for each LBA
/// (`IMAGE.nvmefs-md`), read straight from the metadata backend without a
/// command; its size (NSZE × ms) follows Format NVM.
struct MetadataFileHandler: FileHandler {
    let controller: NVMeController
    let nsid: UInt32

    var mode: UInt16 { 0o444 }

    func size() -> UInt64 {
        guard let g = controller.namespaceGeometry(nsid) else { return 0 }
        return g.nsze * UInt64(g.format.ms)
    }

    func read(_ request: ReadRequest) {
        do throws(ImageBackendError) {
            let n = try controller.readMetadata(nsid: nsid, offset: request.offset, into: request.buffer)
            request.reply(bufferCount: n)
        } catch {
            request.fail(FileError(error.errno))
        }
    }
}

/// The directory nodes of the namespaces listed so far, one per namespace
/// object: the same node (and inode) while a namespace stays, a new one for
/// a namespace created again under the same NSID.
final class NamespaceNodes: Sendable {
    private let nodes = Locked<[ObjectIdentifier: (ns: Namespace, node: Node)]>([:])

    /// The nodes of `namespaces`, in their order, made by `make` when new;
    /// nodes of namespaces no longer listed are dropped.
    func nodes(for namespaces: [Namespace], make: (Namespace) -> Node) -> [Node] {
        nodes.withLock { table in
            var kept: [ObjectIdentifier: (ns: Namespace, node: Node)] = [:]
            let list = namespaces.map { ns -> Node in
                let key = ObjectIdentifier(ns)
                let node = table[key]?.node ?? make(ns)
                kept[key] = (ns, node)
                return node
            }
            table = kept
            return list
        }
    }
}
