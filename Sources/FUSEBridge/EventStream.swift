import BlockIO

/// A bounded stream of text lines read like tracefs's trace_pipe: reads
/// consume lines and block while there are none. When the buffer is full
/// the oldest lines are dropped, and the next read starts with a line
/// saying how many were lost. Memory stays bounded by `capacity` lines.
public final class EventStream: Sendable {
    private struct State {
        var lines: [String] = []
        var head = 0                       // index of the oldest line in `lines`
        var lost: UInt64 = 0
        var waiters: [ObjectIdentifier: ReadRequest] = [:]
        var waitOrder: [ObjectIdentifier] = []
        var closed = false
        var count: Int { lines.count - head }
    }
    private let state = Locked(State())
    /// Lines kept at most.
    public let capacity: Int
    private let lostLine: @Sendable (UInt64) -> String

    /// - Parameters:
    ///   - capacity: lines kept before the oldest are dropped.
    ///   - lostLine: the line telling a reader how many lines it lost.
    public init(capacity: Int = 4096, lostLine: @escaping @Sendable (UInt64) -> String = { "lost \($0) events" }) {
        self.capacity = max(1, capacity)
        self.lostLine = lostLine
    }

    /// Appends one line (without its newline) and wakes a parked reader.
    public func append(_ line: String) {
        let woken = state.withLock { s -> (ReadRequest, [UInt8])? in
            guard !s.closed else { return nil }
            s.lines.append(line)
            if s.count > capacity { s.head += 1; s.lost += 1 }
            if s.head > 1024 && s.head * 2 > s.lines.count { s.lines.removeFirst(s.head); s.head = 0 }
            // The first parked reader still waiting (an interrupted one may
            // linger until here).
            while let id = s.waitOrder.first {
                s.waitOrder.removeFirst()
                guard let request = s.waiters.removeValue(forKey: id), !request.isAnswered else { continue }
                return (request, Self.take(&s, upTo: request.size, lostLine: lostLine))
            }
            return nil
        }
        if let (request, bytes) = woken { request.reply(bytes) }
    }

    /// Ends the stream: parked and later reads get end of file.
    public func close() {
        let parked = state.withLock { s -> [ReadRequest] in
            s.closed = true
            defer { s.waiters = [:]; s.waitOrder = [] }
            return s.waitOrder.compactMap { s.waiters[$0] }
        }
        for request in parked { request.reply([]) }
    }

    /// Serves one read: lines now, or park until `append`.
    public func read(_ request: ReadRequest) {
        let id = ObjectIdentifier(request)
        request.onInterrupt { [weak self] in
            self?.state.withLock { s in
                if s.waiters.removeValue(forKey: id) != nil { s.waitOrder.removeAll { $0 == id } }
            }
        }
        let ready = state.withLock { s -> [UInt8]? in
            if s.count > 0 || s.lost > 0 { return Self.take(&s, upTo: request.size, lostLine: lostLine) }
            if s.closed || request.isAnswered { return [] }
            if request.file.flags & O_NONBLOCK_FLAG != 0 { return nil }
            s.waiters[id] = request
            s.waitOrder.append(id)
            return nil
        }
        if let ready {
            request.reply(ready)
        } else if request.file.flags & O_NONBLOCK_FLAG != 0 {
            request.fail(.wouldBlock)
        }
    }

    /// Whole lines (each with its newline) fitting in `size` bytes; a line
    /// longer than `size` is cut.
    private static func take(_ s: inout State, upTo size: Int, lostLine: (UInt64) -> String) -> [UInt8] {
        var out: [UInt8] = []
        if s.lost > 0 {
            out.append(contentsOf: lostLine(s.lost).utf8); out.append(0x0A)
            s.lost = 0
        }
        while s.count > 0 {
            let line = s.lines[s.head]
            let n = line.utf8.count + 1
            if out.count + n > size && !out.isEmpty { break }
            out.append(contentsOf: line.utf8); out.append(0x0A)
            s.head += 1
        }
        if s.count == 0 { s.lines.removeAll(keepingCapacity: true); s.head = 0 }
        return Array(out.prefix(size))
    }
}

/// O_NONBLOCK without importing Glibc into every user of EventStream.
let O_NONBLOCK_FLAG: Int32 = 0o4000

/// The file of an `EventStream` (mode 0444, direct I/O, not seekable).
public struct StreamFile: FileHandler {
    public let stream: EventStream
    public init(_ stream: EventStream) { self.stream = stream }
    public var mode: UInt16 { 0o444 }
    public var nonSeekable: Bool { true }
    public func read(_ request: ReadRequest) { stream.read(request) }
}
