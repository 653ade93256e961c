import BlockIO
import NVMeController
import NVMeHost
import NVMeSpec

/// `namespaces/N/`: `info` and `stats` always (they read the device model
/// without a command); `data` and `identify` with the built-in host (they
/// are NVMe commands).
enum NamespaceFiles {
    static func directory(_ d: DeviceContext) -> Node {
        var children: [Node] = []
        for ns in d.controller.namespaces {
            let index = Int(ns.nsid) - 1
            let config = index < d.configuration.namespaces.count ? d.configuration.namespaces[index] : nil
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
            files.append(.file("info", about: "namespace facts, key: value (nsze, ncap, nuse, lba size, ms, image...)",
                               GeneratedFile(mode: 0o444, text: { info(d, ns, config) })))
            files.append(.file("stats", about: "block accounting per operation: ops, bytes, failed, invalid, "
                                 + "total and max latency",
                               GeneratedFile(mode: 0o444, text: { stats(ns.accounting.snapshot()) })))
            children.append(.directory(String(ns.nsid), about: "",
                                       files))
        }
        return .directory("namespaces", about: "one directory per namespace: info and stats always, data and identify with the built-in host", children)
    }

    static func info(_ d: DeviceContext, _ ns: Namespace, _ config: DeviceConfiguration.Namespace?) -> String {
        let id = d.controller.identifyNamespaceData(ns)
        var out = "nsid: \(ns.nsid)\n"
        out += "nsze: \(id.nsze)\n"
        out += "ncap: \(id.ncap)\n"
        out += "nuse: \(id.nuse)\n"
        out += "lba size: \(ns.blockSize)\n"
        out += "lbads: \(ns.lbads)\n"
        out += "ms: \(config?.ms ?? 0)\n"
        out += "capacity: \(ns.nsze << UInt64(ns.lbads))\n"
        out += "image: \(config?.path ?? ns.backend.name)\n"
        out += "readonly: \(Text.yesNo(ns.isReadOnly))\n"
        out += "data file: \(d.host != nil ? "yes" : "no (--host none)")\n"
        return out
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
              DataFile(host: host, nsid: ns.nsid, capacity: ns.nsze << UInt64(ns.lbads),
                       cache: d.configuration.cache))
    }
}

/// `namespaces/N/data`: the namespace as a fixed-size block-device-like file
/// served by the built-in host (CONTRACT §3). Every error's errno comes from the
/// host's one status → errno map (`errnoForStatus`).
struct DataFile: FileHandler {
    let host: BuiltinHost
    let nsid: UInt32
    let capacity: UInt64
    let cache: Bool

    var mode: UInt16 { 0o644 }
    var directIO: Bool { !cache }
    var keepCache: Bool { cache }
    func size() -> UInt64 { capacity }

    func read(_ request: ReadRequest) {
        guard request.offset < capacity, request.size > 0 else { request.reply([]); return }
        switch host.read(nsid: nsid, offset: request.offset, into: request.buffer, parking: { request.parkBuffer() }) {
        case .success(let n): request.reply(bufferCount: n)
        case .failure(let e): request.fail(FileError(e.errno))
        }
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        guard offset < capacity else { throw .noSpace }
        switch host.write(nsid: nsid, offset: offset, from: data) {
        case .success(let n): return n
        case .failure(let e): throw FileError(e.errno)
        }
    }

    func fsync(file: OpenFile, dataOnly: Bool) throws(FileError) {
        if case .failure(let e) = host.flush(nsid: nsid) { throw FileError(e.errno) }
    }

    func fallocate(mode: Int32, offset: UInt64, length: UInt64, file: OpenFile) throws(FileError) {
        let result: Result<Void, HostError>
        if mode == FallocateMode.punchHole | FallocateMode.keepSize {
            result = host.deallocate(nsid: nsid, offset: offset, length: length)
        } else if mode & ~FallocateMode.keepSize == FallocateMode.zeroRange {
            result = host.writeZeroes(nsid: nsid, offset: offset, length: length)
        } else {
            throw .notSupported
        }
        if case .failure(let e) = result { throw FileError(e.errno) }
    }
}
