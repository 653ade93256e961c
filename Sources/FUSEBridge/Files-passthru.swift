import NVMeHost
import NVMeSpec
import BlockIO

import Glibc

/// The per-handle transaction of `cmd` and `passthru`: bytes written wait
/// in `pending` until they make a complete request; running it replaces the
/// response, which reads return from the start, then end of file. One
/// request runs at a time per handle.
final class FileTransaction: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var response: [UInt8] = []
        var cursor = 0
    }
    private let state = Locked(State())
    private let running = Locked(())

    /// Appends `data` (if any) to the pending bytes and lets `body` take
    /// what is complete from them (whatever it leaves stays pending, also
    /// when it throws); a response it returns replaces the previous one.
    func step(appending data: UnsafeRawBufferPointer?,
              _ body: (inout [UInt8]) throws(FileError) -> [UInt8]?) throws(FileError) {
        try running.withLock { _ throws(FileError) in
            var pending = state.withLock { s -> [UInt8] in
                if let data { s.pending.append(contentsOf: data) }
                defer { s.pending = [] }
                return s.pending
            }
            defer { state.withLock { $0.pending = pending } }
            if let response = try body(&pending) {
                state.withLock { s in
                    s.response = response
                    s.cursor = 0
                }
            }
        }
    }

    /// Answers a read: first `body` may take the pending bytes (as in
    /// `step`; a throw fails the read), then the next bytes of the response.
    func read(_ request: ReadRequest, _ body: (inout [UInt8]) throws(FileError) -> [UInt8]?) {
        do throws(FileError) {
            try step(appending: nil, body)
        } catch {
            request.fail(error)
            return
        }
        reply(request)
    }

    /// Answers a read with the next bytes of the response.
    private func reply(_ request: ReadRequest) {
        let bytes = state.withLock { s -> [UInt8] in
            let end = min(s.response.count, s.cursor + request.size)
            defer { s.cursor = end }
            return Array(s.response[s.cursor..<end])
        }
        request.reply(bytes)
    }
}

/// A file whose every open handle is a `FileTransaction` (`cmd`, `passthru`):
/// read-write, a stream.
protocol TransactionFile: FileHandler {}

extension TransactionFile {
    var mode: UInt16 { 0o644 }
    var nonSeekable: Bool { true }
    func open(flags: Int32) throws(FileError) -> (any Sendable)? { FileTransaction() }
}

/// `passthru` (docs/PASSTHRU.md): the binary form of `cmd`, for programs.
/// A request is a `PassthroughHeader` followed by its data-out and
/// metadata-out bytes, in one or more writes; the write that completes it
/// returns when the command has completed. Reads return the response
/// (`PassthroughResponse`: CQE, data-in, metadata-in).
///
/// The header is checked as soon as its 80 bytes are in, so a refused
/// request fails the write that brings them (EINVAL, E2BIG past MDTS,
/// EBUSY for the host's own commands) and the transaction starts afresh.
/// Bytes past the request, or a read while a request is incomplete:
/// EINVAL, and the partial request is dropped.
struct PassthruFile: TransactionFile {
    let device: DeviceContext
    let host: BuiltinHost

    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, file: OpenFile) throws(FileError) -> Int {
        guard let t = file.state(as: FileTransaction.self) else { throw .invalid }
        try t.step(appending: data) { pending throws(FileError) in
            guard pending.count >= PassthroughHeader.size else { return nil }
            do throws(HostError) {
                let parsed = pending.withUnsafeBytes { b in Result { () throws(HostError) in try PassthroughHeader(bytes: b) } }
                guard let header = try parsed.get() else { return nil }
                try host.checkPassthrough(header)
                let total = PassthroughHeader.size + header.outLength
                guard pending.count >= total else { return nil }
                defer { pending = [] }
                guard pending.count == total else {
                    throw HostError(errno: EINVAL, "passthru: \(pending.count - total) bytes past the request "
                                        + "(one request per transaction; read its response first)")
                }
                let dataEnd = PassthroughHeader.size + (header.direction.toController ? Int(header.dataLength) : 0)
                let response = pending.withUnsafeBytes { b in
                    Result { () throws(HostError) in
                        try host.passthrough(header, dataOut: UnsafeRawBufferPointer(rebasing: b[PassthroughHeader.size..<dataEnd]),
                                             metadataOut: UnsafeRawBufferPointer(rebasing: b[dataEnd..<total]))
                    }
                }
                return try response.get().bytes
            } catch {
                pending = []
                throw device.refuse("passthru", FileError(error.errno), error.message)
            }
        }
        return data.count
    }

    func read(_ request: ReadRequest) {
        guard let t = request.file.state(as: FileTransaction.self) else { request.fail(.invalid); return }
        t.read(request) { pending throws(FileError) in
            guard pending.isEmpty else {
                defer { pending = [] }
                throw device.refuse("passthru", .invalid, "read with an incomplete request of \(pending.count) bytes")
            }
            return nil
        }
    }
}
