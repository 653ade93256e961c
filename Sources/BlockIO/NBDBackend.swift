import CNBD
import Glibc
import Synchronization

/// An error opening an NBD export: the URI and libnbd's message.
public struct NBDBackendError: Error, CustomStringConvertible, Sendable, Equatable {
    public var uri: String
    public var message: String
    public init(uri: String, message: String) { self.uri = uri; self.message = message }
    public var description: String { "NBD export \(uri): \(message)" }
}

/// A block backend on an NBD export, through libnbd's asynchronous API
/// (docs/NBD.md).
///
/// - Every AIO becomes one or more NBD commands (`nbd_aio_pread`, `pwrite`,
///   `flush`, `trim`, `zero`): one per I/O vector for reads and writes,
///   pieces of at most 1 GiB for trim and zero. When the server allows
///   multi-conn, the commands are spread round-robin over `connections`
///   handles; otherwise there is one.
/// - Each connection has an event-loop thread that polls the socket and
///   runs libnbd's state machine. libnbd calls the completion callbacks with
///   its handle lock held, so they only count the piece; the loop thread
///   delivers an AIO's completion once its last piece is answered, outside
///   every lock.
/// - NBD cannot cancel a command on the wire, so `cancel` always returns
///   false: the completion (and the release of the buffer) comes when the
///   server has answered, or the connection is gone.
/// - A dropped connection fails its commands (libnbd's errno, ENOTCONN) and
///   new ones (ENOTCONN) until the loop thread has reconnected; it retries
///   with a backoff from 100 ms doubling to 5 s. The backend stays usable.
/// - Flush on a server without flush, and trim on one without trim, succeed
///   at once (nothing to do; trim is advisory). Write zeroes on a server
///   without NBD_CMD_WRITE_ZEROES writes a zero buffer.
public final class NBDBackend: BlockBackend, @unchecked Sendable {
    public let name: String
    public let size: UInt64
    public let isReadOnly: Bool
    /// What the server advertised at connection time.
    public let canFlush: Bool
    public let canTrim: Bool
    public let canZero: Bool
    public let canMultiConn: Bool

    /// The largest piece of one trim or zero command.
    static let maxPiece: UInt64 = 1 << 30
    /// The zero buffer of emulated write zeroes.
    static let zeroBufferSize = 1 << 20

    let connectionList: [NBDConnection]
    private let nextConnection = Atomic<Int>(0)
    private let tickets = Atomic<UInt64>(0)
    private let zeroBuffer: UnsafeMutableRawPointer?
    // In-flight AIOs, for drain; guarded by `lock`.
    private let lock = ConditionLock()
    private let drained = Condition()
    private var inFlight = 0
    private var closed = false

    /// Connects to `uri` (libnbd's URI forms: nbd://, nbd+unix://, ...).
    /// - Parameters:
    ///   - readOnly: the namespace is read-only even if the export is writable.
    ///   - connections: how many connections to use when the server allows
    ///     multi-conn (1 otherwise).
    /// - Throws: `NBDBackendError` with libnbd's message (unreachable
    ///   server, unknown export, bad URI).
    public init(uri: String, readOnly: Bool = false, connections: Int = 4) throws {
        name = uri
        let first = try NBDConnection.connect(uri: uri)
        let exportSize = nbd_get_size(first)
        guard exportSize >= 0 else {
            let message = NBDConnection.lastError()
            nbd_close(first)
            throw NBDBackendError(uri: uri, message: message)
        }
        size = UInt64(exportSize)
        isReadOnly = readOnly || nbd_is_read_only(first) == 1
        canFlush = nbd_can_flush(first) == 1
        canTrim = nbd_can_trim(first) == 1
        canZero = nbd_can_zero(first) == 1
        canMultiConn = nbd_can_multi_conn(first) == 1
        var handles = [first]
        if canMultiConn {
            for _ in 1..<max(1, connections) {
                do { handles.append(try NBDConnection.connect(uri: uri)) } catch {
                    for h in handles { nbd_close(h) }
                    throw error
                }
            }
        }
        if canZero || isReadOnly {
            zeroBuffer = nil
        } else {
            let z = UnsafeMutableRawPointer.allocate(byteCount: Self.zeroBufferSize, alignment: 4096)
            z.initializeMemory(as: UInt8.self, repeating: 0, count: Self.zeroBufferSize)
            zeroBuffer = z
        }
        connectionList = handles.enumerated().map { NBDConnection(uri: uri, index: $0.offset, handle: $0.element, size: UInt64(exportSize)) }
        for c in connectionList { c.start() }
    }

    deinit {
        close()
        zeroBuffer?.deallocate()
    }

    /// How many connections are open (more than one only with multi-conn).
    public var connections: Int { connectionList.count }

    /// How many times a dropped connection has been re-established.
    public var reconnects: Int { connectionList.reduce(0) { $0 + $1.reconnects.load(ordering: .relaxed) } }

    /// True when every connection is up.
    public var isConnected: Bool { connectionList.allSatisfy { $0.isConnected } }

    @discardableResult
    public func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        let ticket = AIOTicket(raw: tickets.wrappingAdd(1, ordering: .relaxed).newValue)
        let admitted = lock.withLock {
            if closed { return false }
            inFlight += 1
            return true
        }
        guard admitted else {
            completion(EBADF)
            return ticket
        }
        let request = NBDRequest { [self] errno in
            completion(errno)
            finishedOne()
        }
        let pieces: [NBDPiece]
        switch plan(aio) {
        case .done(let errno):
            request.deliver(errno)
            return ticket
        case .pieces(let p):
            pieces = p
        }
        request.expect(pieces.count)
        for piece in pieces {
            let errno = issue(piece, request)
            if errno != 0 && request.finish(errno) { request.deliverRecorded() }
        }
        return ticket
    }

    private enum Plan {
        case done(Int32)
        case pieces([NBDPiece])
    }

    /// The NBD commands of `aio`, or its result when none is needed.
    private func plan(_ aio: AIO) -> Plan {
        if aio.operation != .read && aio.operation != .flush && isReadOnly { return .done(EROFS) }
        guard aio.operation == .flush || aio.offset <= size && aio.length <= size - aio.offset else {
            return .done(EINVAL)
        }
        switch aio.operation {
        case .read, .write:
            var pieces: [NBDPiece] = []
            var offset = aio.offset
            for v in aio.iov where v.length > 0 {
                pieces.append(NBDPiece(operation: aio.operation, offset: offset, length: UInt64(v.length), buffer: v.base))
                offset += UInt64(v.length)
            }
            return pieces.isEmpty ? .done(0) : .pieces(pieces)
        case .flush:
            return canFlush ? .pieces([NBDPiece(operation: .flush, offset: 0, length: 0, buffer: nil)]) : .done(0)
        case .discard:
            guard canTrim, aio.length > 0 else { return .done(0) }
            return .pieces(split(aio, piece: Self.maxPiece, buffer: nil))
        case .writeZeroes:
            guard aio.length > 0 else { return .done(0) }
            if canZero { return .pieces(split(aio, piece: Self.maxPiece, buffer: nil)) }
            guard let zeroBuffer else { return .done(EROFS) }
            return .pieces(split(aio, piece: UInt64(Self.zeroBufferSize), buffer: zeroBuffer).map {
                NBDPiece(operation: .write, offset: $0.offset, length: $0.length, buffer: $0.buffer)
            })
        }
    }

    private func split(_ aio: AIO, piece: UInt64, buffer: UnsafeMutableRawPointer?) -> [NBDPiece] {
        var pieces: [NBDPiece] = []
        var offset = aio.offset
        let end = aio.offset + aio.length
        while offset < end {
            let n = min(piece, end - offset)
            pieces.append(NBDPiece(operation: aio.operation, offset: offset, length: n, buffer: buffer))
            offset += n
        }
        return pieces
    }

    /// Queues `piece` on the next connection that is up. Returns 0, or the
    /// errno when no connection took it.
    private func issue(_ piece: NBDPiece, _ request: NBDRequest) -> Int32 {
        let count = connectionList.count
        let start = count == 1 ? 0 : nextConnection.wrappingAdd(1, ordering: .relaxed).oldValue
        var errno: Int32 = ENOTCONN
        for i in 0..<count {
            errno = connectionList[(start &+ i) % count].issue(piece, request)
            if errno != ENOTCONN { return errno }
        }
        return errno
    }

    private func finishedOne() {
        lock.withLock {
            inFlight -= 1
            if inFlight == 0 { drained.broadcast() }
        }
    }

    /// NBD cannot take back a command it has sent: nothing is cancellable.
    public func cancel(_ ticket: AIOTicket) -> Bool { false }

    public func drainAndSync() {
        lock.withLock {
            while inFlight > 0 { drained.wait(lock) }
        }
        guard canFlush else { return }
        let done = ConditionLock()
        let finished = Locked<Bool>(false)
        submit(AIO(operation: .flush, offset: 0, length: 0)) { _ in
            done.withLock {
                finished.withLock { $0 = true }
                done.broadcast()
            }
        }
        done.withLock {
            while !finished.withLock({ $0 }) { done.wait() }
        }
    }

    public func close() {
        let first = lock.withLock {
            if closed { return false }
            closed = true
            return true
        }
        guard first else { return }
        lock.withLock {
            while inFlight > 0 { drained.wait(lock) }
        }
        for c in connectionList { c.stop() }
    }
}

/// One NBD command of an AIO.
struct NBDPiece: @unchecked Sendable {
    var operation: AIOOperation
    var offset: UInt64
    var length: UInt64
    var buffer: UnsafeMutableRawPointer?
}

/// An AIO in flight: how many of its commands are unanswered, the first
/// error, and the completion.
final class NBDRequest: @unchecked Sendable {
    private let completion: @Sendable (Int32) -> Void
    private let remaining = Atomic<Int>(0)
    private let error = Atomic<Int32>(0)

    init(completion: @escaping @Sendable (Int32) -> Void) { self.completion = completion }

    func expect(_ pieces: Int) { remaining.store(pieces, ordering: .releasing) }

    /// Counts one answered (or refused) command; true for the last one.
    func finish(_ errno: Int32) -> Bool {
        if errno != 0 { _ = error.compareExchange(expected: 0, desired: errno, ordering: .relaxed) }
        return remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0
    }

    func deliverRecorded() { completion(error.load(ordering: .acquiring)) }
    func deliver(_ errno: Int32) { completion(errno) }
}

/// What libnbd's completion callback gets as user data.
final class NBDCallbackContext {
    let request: NBDRequest
    let connection: NBDConnection
    init(request: NBDRequest, connection: NBDConnection) { self.request = request; self.connection = connection }
}

/// libnbd's completion callback: called once per queued command, with the
/// handle lock held. Counts the piece; the loop thread delivers.
private func nbdCommandCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let userData else { return 1 }
    let context = Unmanaged<NBDCallbackContext>.fromOpaque(userData).takeRetainedValue()
    var errno = error?.pointee ?? 0
    // A command the server failed without an errno still failed.
    if errno < 0 { errno = EIO }
    if context.request.finish(errno) { context.connection.completed(context.request) }
    return 1   // retire the command
}

/// One libnbd handle and its event-loop thread.
final class NBDConnection: @unchecked Sendable {
    let uri: String
    let index: Int
    let size: UInt64
    let reconnects = Atomic<Int>(0)
    /// Guards `handle` and `stopping`: submitters use the handle under it;
    /// the loop thread swaps it under it.
    private let lock = ConditionLock()
    private var handle: OpaquePointer?
    private var stopping = false
    private let done = Locked<[NBDRequest]>([])
    /// A pipe that wakes the loop thread (new output to send, completions
    /// queued from another thread, stop).
    private var wake: (read: Int32, write: Int32) = (-1, -1)
    private var thread = pthread_t()
    /// The loop thread's pthread_self, once it runs.
    private let loopThread = Atomic<UInt>(0)
    private var started = false

    static let firstBackoff: UInt64 = 100_000_000
    static let maxBackoff: UInt64 = 5_000_000_000

    init(uri: String, index: Int, handle: OpaquePointer, size: UInt64) {
        self.uri = uri; self.index = index; self.handle = handle; self.size = size
    }

    /// libnbd's message for the last failed call of this thread.
    static func lastError() -> String {
        guard let m = nbd_get_error() else { return "libnbd error (errno \(nbd_get_errno()))" }
        return String(cString: m)
    }

    /// A new handle connected to `uri` (blocking).
    static func connect(uri: String) throws -> OpaquePointer {
        guard let h = nbd_create() else { throw NBDBackendError(uri: uri, message: lastError()) }
        guard nbd_connect_uri(h, uri) == 0 else {
            let message = lastError()
            nbd_close(h)
            throw NBDBackendError(uri: uri, message: message)
        }
        return h
    }

    var isConnected: Bool { lock.withLock { handle != nil } }

    func start() {
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe failed: \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wake = (fds[0], fds[1])
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let connection = Unmanaged<NBDConnection>.fromOpaque(context!).takeRetainedValue()
            connection.run()
            return nil
        }, context)
        precondition(created == 0, "pthread_create failed: \(created)")
        started = true
    }

    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
        poke()
        if started { pthread_join(thread, nil) }
        started = false
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    private func poke() {
        var one: UInt8 = 1
        _ = Glibc.write(wake.write, &one, 1)
    }

    /// Queues one command. Returns 0 or the errno (ENOTCONN while the
    /// connection is down).
    func issue(_ piece: NBDPiece, _ request: NBDRequest) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        guard let h = handle, !stopping else { return ENOTCONN }
        let context = Unmanaged.passRetained(NBDCallbackContext(request: request, connection: self))
        let callback = nbd_completion_callback(callback: nbdCommandCompleted, user_data: context.toOpaque(), free: nil)
        let cookie: Int64
        switch piece.operation {
        case .read:
            cookie = nbd_aio_pread(h, piece.buffer!, Int(piece.length), piece.offset, callback, 0)
        case .write:
            cookie = nbd_aio_pwrite(h, piece.buffer!, Int(piece.length), piece.offset, callback, 0)
        case .flush:
            cookie = nbd_aio_flush(h, callback, 0)
        case .discard:
            cookie = nbd_aio_trim(h, piece.length, piece.offset, callback, 0)
        case .writeZeroes:
            cookie = nbd_aio_zero(h, piece.length, piece.offset, callback, 0)
        }
        if cookie < 0 {
            // Not queued: libnbd never calls the completion callback.
            context.release()
            // A connection that died before the loop thread noticed refuses
            // with libnbd's "invalid state" (EINVAL): it is down, like any
            // other dropped connection (another one may take the command).
            if nbd_aio_is_dead(h) != 0 || nbd_aio_is_closed(h) != 0 { return ENOTCONN }
            let e = nbd_get_errno()
            return e > 0 ? e : EIO
        }
        // Output libnbd could not send at once is sent by the loop thread,
        // which may be polling for input only.
        if nbd_aio_get_direction(h) & nvmefs_nbd_direction_write != 0 { poke() }
        return 0
    }

    /// Called by the completion callback for an AIO whose last command is
    /// answered (libnbd's lock held): the loop thread delivers it.
    func completed(_ request: NBDRequest) {
        done.withLock { $0.append(request) }
        if loopThread.load(ordering: .relaxed) != UInt(pthread_self()) { poke() }
    }

    private func deliverCompleted() {
        let requests = done.withLock { list in
            let taken = list
            list.removeAll()
            return taken
        }
        for r in requests { r.deliverRecorded() }
    }

    private func run() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        var backoff = Self.firstBackoff
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            lock.lock()
            let h = handle
            if stopping && (h == nil || nbd_aio_in_flight(h) == 0) {
                handle = nil
                lock.unlock()
                if let h { nbd_close(h) }
                deliverCompleted()
                return
            }
            lock.unlock()
            guard let h else {
                reconnect(backoff: &backoff)
                continue
            }
            if nbd_aio_is_dead(h) != 0 || nbd_aio_is_closed(h) != 0 {
                // Its commands have been failed by libnbd; the handle goes.
                lock.withLock { handle = nil }
                nbd_close(h)
                deliverCompleted()
                continue
            }
            let fd = nbd_aio_get_fd(h)
            let direction = nbd_aio_get_direction(h)
            var events: Int16 = 0
            if direction & nvmefs_nbd_direction_read != 0 { events |= Int16(POLLIN) }
            if direction & nvmefs_nbd_direction_write != 0 { events |= Int16(POLLOUT) }
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 { continue }   // EINTR
            if fds[1].revents != 0 { while Glibc.read(wake.read, &buffer, buffer.count) > 0 {} }
            let revents = fds[0].revents
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                _ = nbd_aio_notify_read(h)
            } else if revents & Int16(POLLOUT) != 0 {
                _ = nbd_aio_notify_write(h)
            }
            deliverCompleted()
        }
    }

    /// Waits `backoff` (or until stopped), then tries one connection; the
    /// backoff doubles on failure up to `maxBackoff`.
    private func reconnect(backoff: inout UInt64) {
        let stop = lock.withLock {
            let deadline = monotonicNanoseconds() + backoff
            while !stopping {
                if !lock.wait(untilMonotonicNanoseconds: deadline) { break }
            }
            return stopping
        }
        if stop { return }
        guard let h = try? Self.connect(uri: uri) else {
            backoff = min(backoff * 2, Self.maxBackoff)
            return
        }
        // The same export: a different size is not the namespace's disk.
        guard nbd_get_size(h) == Int64(size) else {
            nbd_close(h)
            backoff = min(backoff * 2, Self.maxBackoff)
            return
        }
        lock.withLock { handle = h }
        reconnects.wrappingAdd(1, ordering: .relaxed)
        backoff = Self.firstBackoff
    }
}
