import Glibc
import Synchronization

/// An error opening or creating an image file: the path, what was being
/// done, and the errno.
public struct ImageBackendError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    /// What failed: "open", "create", "stat", "truncate".
    public var operation: String
    public var errno: Int32
    public init(path: String, operation: String, errno: Int32) {
        self.path = path; self.operation = operation; self.errno = errno
    }
    public var description: String {
        "cannot \(operation) \(path): \(errnoDescription(errno)) (errno \(errno))"
    }
}

/// A block backend on an image file (or block device) accessed with
/// preadv/pwritev/fdatasync/fallocate.
///
/// - `.threadPool(workers:)` (the default): `submit` queues the AIO on a FIFO
///   served by that many pthreads; completions run on a worker thread.
///   A queued AIO can be cancelled; its ECANCELED completion is delivered by a
///   worker, never inside `cancel`.
/// - `.inline`: the I/O runs synchronously inside `submit`, whose completion is
///   called before `submit` returns; nothing is ever cancellable.
/// - `.hybrid(workers:)`: a read (or write) is first tried inside `submit` with
///   RWF_NOWAIT, which succeeds only when it needs no waiting (page-cached
///   data); then the completion runs before `submit` returns. Buffered writes
///   that the file system will not take with RWF_NOWAIT (ext4) run inside
///   `submit` as plain `pwritev`. Reads that would block, and every flush,
///   write zeroes and discard, go to the thread pool as in `.threadPool`.
///
/// Completion errno: 0 or the positive errno of the failing syscall. Reads past
/// the end of the file return zeros. Discard is advisory (file systems that
/// cannot punch holes report success, as QEMU does).
public final class ImageBackend: BlockBackend, @unchecked Sendable {
    public enum ExecutionMode: Sendable, Hashable, CustomStringConvertible {
        case inline
        case threadPool(workers: Int)
        case hybrid(workers: Int)
        public static let `default` = ExecutionMode.hybrid(workers: 4)
        public var description: String {
            switch self {
            case .inline: "inline"
            case .threadPool(let n): "pool(\(n))"
            case .hybrid(let n): "hybrid(\(n))"
            }
        }
    }

    public let name: String
    public let size: UInt64
    public let isReadOnly: Bool
    public let mode: ExecutionMode

    private let file: ImageFile
    private let pool: WorkerPool?
    /// Inline mode: bit 63 = closed, low bits = submits in progress.
    private let inlineState = Atomic<UInt64>(0)
    private let inlineTickets = Atomic<UInt64>(0)
    private let closeLock = Locked<Bool>(false)
    /// Hybrid mode: try reads and writes with RWF_NOWAIT inside `submit`.
    private let tryNoWait: Bool
    private let noWaitReadsUnsupported = Atomic<Bool>(false)
    private let noWaitWritesUnsupported = Atomic<Bool>(false)
    /// The image lives on a memory file system (tmpfs, ramfs): a read can
    /// never wait for a device, so hybrid mode reads inline even where the
    /// kernel refuses RWF_NOWAIT (tmpfs does, with EOPNOTSUPP).
    public let isMemoryBacked: Bool
    private static let closedBit: UInt64 = 1 << 63

    /// Opens an existing image (O_RDWR, or O_RDONLY when `readOnly`; O_CLOEXEC).
    /// - Throws: `ImageBackendError` with the path and errno.
    public init(path: String, readOnly: Bool = false, mode: ExecutionMode = .default) throws {
        let flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        var fd: Int32
        repeat { fd = open(path, flags) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ImageBackendError(path: path, operation: "open", errno: errno) }
        // lseek(SEEK_END) sizes regular files and block devices alike.
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let e = errno
            _ = Glibc.close(fd)
            throw ImageBackendError(path: path, operation: "stat", errno: e)
        }
        name = path
        size = UInt64(end)
        isMemoryBacked = SystemCalls.isMemoryFileSystem(fd)
        isReadOnly = readOnly
        self.mode = mode
        file = ImageFile(fd: fd)
        switch mode {
        case .inline:
            pool = nil
        case .threadPool(let workers), .hybrid(let workers):
            pool = WorkerPool(file: file, workers: max(1, workers), label: path)
        }
        if case .hybrid = mode { tryNoWait = true } else { tryNoWait = false }
    }

    /// Creates a new sparse image of `size` bytes (O_EXCL: an existing file is
    /// an error, EEXIST).
    /// - Throws: `ImageBackendError` with the path and errno.
    public static func create(path: String, size: UInt64) throws {
        guard size <= UInt64(Int64.max) else {
            throw ImageBackendError(path: path, operation: "create", errno: EFBIG)
        }
        var fd: Int32
        repeat { fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ImageBackendError(path: path, operation: "create", errno: errno) }
        defer { _ = Glibc.close(fd) }
        var rc: Int32
        repeat { rc = ftruncate(fd, off_t(size)) } while rc < 0 && errno == EINTR
        if rc < 0 {
            let e = errno
            unlink(path)
            throw ImageBackendError(path: path, operation: "truncate", errno: e)
        }
    }

    deinit { close() }

    @discardableResult
    public func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        if tryNoWait, let pool {
            if submitNoWait(aio, completion: completion) {
                // Bit 63 keeps these apart from the pool's tickets.
                return AIOTicket(raw: Self.closedBit | inlineTickets.wrappingAdd(1, ordering: .relaxed).newValue)
            }
            return pool.submit(aio, completion: completion)
        }
        if let pool {
            return pool.submit(aio, completion: completion)
        }
        let ticket = AIOTicket(raw: inlineTickets.wrappingAdd(1, ordering: .relaxed).newValue)
        completion(performInCallerThread(aio) ?? EBADF)
        return ticket
    }

    /// Performs `aio` in the caller's thread, counted as an inline submit
    /// (`close` waits for those); nil, having done nothing, once closed.
    private func performInCallerThread(_ aio: AIO) -> Int32? {
        let state = inlineState.wrappingAdd(1, ordering: .acquiring).newValue
        defer { inlineState.wrappingSubtract(1, ordering: .releasing) }
        return state & Self.closedBit != 0 ? nil : file.perform(aio)
    }

    /// Inline mode: every AIO, in the caller's thread. Hybrid mode: a read
    /// or write that needs no waiting (`submit`'s own fast path). Nil when
    /// the pool must run it (nothing was done).
    public func performImmediately(_ aio: AIO) -> Int32? {
        if tryNoWait, pool != nil {
            var result: Int32 = 0
            return submitNoWait(aio) { result = $0 } ? result : nil
        }
        guard pool == nil else { return nil }
        return performInCallerThread(aio) ?? EBADF
    }

    /// Hybrid mode: runs a read or write inside `submit` when it needs no
    /// waiting. Returns false (nothing done) when the pool must run it.
    private func submitNoWait(_ aio: AIO, completion: (Int32) -> Void) -> Bool {
        let isWrite: Bool
        switch aio.operation {
        case .read:
            if noWaitReadsUnsupported.load(ordering: .relaxed) {
                return isMemoryBacked ? performInline(aio, completion: completion) : false
            }
            isWrite = false
        case .write:
            // Buffered writes land in the page cache; where the kernel refuses
            // RWF_NOWAIT for them (ext4), they run here anyway: a pool hand-off
            // halved 4 KiB write IOPS through the mount (tools/bench).
            if noWaitWritesUnsupported.load(ordering: .relaxed) { return performInline(aio, completion: completion) }
            isWrite = true
        case .flush, .writeZeroes, .discard:
            return false
        }
        let state = inlineState.wrappingAdd(1, ordering: .acquiring).newValue
        if state & Self.closedBit != 0 {
            inlineState.wrappingSubtract(1, ordering: .releasing)
            return false   // the pool reports EBADF
        }
        let result = SystemCalls.transferNoWait(file.fd, aio.iov, offset: aio.offset, length: aio.length,
                                                isWrite: isWrite)
        inlineState.wrappingSubtract(1, ordering: .releasing)
        switch result {
        case .done:
            completion(0)
            return true
        case .retry:
            return false
        case .unsupported:
            if isWrite {
                noWaitWritesUnsupported.store(true, ordering: .relaxed)
                return performInline(aio, completion: completion)
            } else {
                noWaitReadsUnsupported.store(true, ordering: .relaxed)
                if isMemoryBacked { return performInline(aio, completion: completion) }
            }
            return false
        }
    }

    /// Runs `aio` synchronously in the caller's thread (hybrid writes).
    private func performInline(_ aio: AIO, completion: (Int32) -> Void) -> Bool {
        guard let result = performInCallerThread(aio) else { return false }   // the pool reports EBADF
        completion(result)
        return true
    }

    public func cancel(_ ticket: AIOTicket) -> Bool {
        pool?.cancel(ticket) ?? false
    }

    public func drainAndSync() {
        waitForInlineSubmits()
        pool?.drain()
        closeLock.withLock { closed in
            if !closed { _ = SystemCalls.fdatasync(file.fd) }
        }
    }

    public func close() {
        closeLock.withLock { closed in
            if closed { return }
            closed = true
            inlineState.bitwiseOr(Self.closedBit, ordering: .acquiringAndReleasing)
            waitForInlineSubmits()
            pool?.shutdown()
            file.close()
        }
    }

    /// Number of AIOs submitted and not yet completed (thread-pool mode;
    /// 0 in inline mode).
    public var inFlight: Int { pool?.inFlight ?? 0 }

    private func waitForInlineSubmits() {
        while inlineState.load(ordering: .acquiring) & ~Self.closedBit != 0 {
            usleep(100)
        }
    }
}

/// The file descriptor and the one function that turns an AIO into syscalls.
final class ImageFile: @unchecked Sendable {
    private(set) var fd: Int32
    /// Set once the file system has refused FALLOC_FL_ZERO_RANGE.
    private let zeroRangeUnsupported = Atomic<Bool>(false)

    init(fd: Int32) { self.fd = fd }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd); fd = -1 }
    }

    /// Runs one AIO; returns 0 or a positive errno.
    func perform(_ aio: AIO) -> Int32 {
        switch aio.operation {
        case .read:
            return SystemCalls.readFully(fd, aio.iov, offset: aio.offset)
        case .write:
            return SystemCalls.writeFully(fd, aio.iov, offset: aio.offset)
        case .flush:
            return SystemCalls.fdatasync(fd)
        case .writeZeroes:
            if aio.length == 0 { return 0 }
            if !zeroRangeUnsupported.load(ordering: .relaxed) {
                let rc = SystemCalls.fallocate(fd, mode: SystemCalls.fallocZeroRange,
                                               offset: aio.offset, length: aio.length)
                if rc != EOPNOTSUPP && rc != ENOSYS { return rc }
                zeroRangeUnsupported.store(true, ordering: .relaxed)
            }
            return SystemCalls.writeZeros(fd, offset: aio.offset, length: aio.length)
        case .discard:
            if aio.length == 0 { return 0 }
            let rc = SystemCalls.fallocate(fd, mode: SystemCalls.fallocPunchHole | SystemCalls.fallocKeepSize,
                                           offset: aio.offset, length: aio.length)
            // Deallocation is advisory: a file system without hole punching
            // leaves the data in place (QEMU does the same).
            return rc == EOPNOTSUPP || rc == ENOSYS ? 0 : rc
        }
    }
}

/// The FIFO of queued AIOs and the pthreads that serve it.
final class WorkerPool: @unchecked Sendable {
    private struct Pending {
        var ticket: UInt64
        var aio: AIO
        var completion: @Sendable (Int32) -> Void
    }

    private let file: ImageFile
    private let lock = ConditionLock()
    /// Signalled when `inFlightCount` drops to zero while someone drains.
    private let drained = Condition()
    // Guarded by `lock`:
    private var ring: [Pending?] = Array(repeating: nil, count: 64)
    private var head = 0
    private var count = 0          // slots used in `ring`, cancelled holes included
    private var cancelled: [Pending] = []
    private var nextTicket: UInt64 = 1
    private var inFlightCount = 0  // submitted, completion not yet returned
    private var idleWorkers = 0
    private var drainWaiters = 0
    private var stopping = false
    private var threads: [pthread_t] = []

    init(file: ImageFile, workers: Int, label: String) {
        self.file = file
        for _ in 0..<workers {
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { context in
                let pool = Unmanaged<WorkerPool>.fromOpaque(context!).takeRetainedValue()
                pool.run()
                return nil
            }, context)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
    }

    var inFlight: Int { lock.withLock { inFlightCount } }

    func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        lock.lock()
        let ticket = nextTicket
        nextTicket &+= 1
        if stopping {
            lock.unlock()
            completion(EBADF)
            return AIOTicket(raw: ticket)
        }
        if count == ring.count { grow() }
        ring[(head + count) & (ring.count - 1)] = Pending(ticket: ticket, aio: aio, completion: completion)
        count += 1
        inFlightCount += 1
        if idleWorkers > 0 { lock.signal() }
        lock.unlock()
        return AIOTicket(raw: ticket)
    }

    /// Removes a queued AIO; a worker then delivers its ECANCELED completion.
    func cancel(_ ticket: AIOTicket) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let mask = ring.count - 1
        for i in 0..<count {
            let slot = (head + i) & mask
            if let pending = ring[slot], pending.ticket == ticket.raw {
                ring[slot] = nil
                cancelled.append(pending)
                if idleWorkers > 0 { lock.signal() }
                return true
            }
        }
        return false
    }

    /// Waits until every submitted AIO's completion has returned.
    func drain() {
        lock.lock()
        drainWaiters += 1
        while inFlightCount > 0 { drained.wait(lock) }
        drainWaiters -= 1
        lock.unlock()
    }

    /// Lets the workers finish the queue, then joins them.
    func shutdown() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }

    private func grow() {
        var bigger = [Pending?](repeating: nil, count: ring.count * 2)
        let mask = ring.count - 1
        for i in 0..<count { bigger[i] = ring[(head + i) & mask] }
        ring = bigger
        head = 0
    }

    /// Worker loop. Takes the lock once per AIO: to account the previous
    /// completion and to take the next AIO.
    private func run() {
        var finished = false
        lock.lock()
        while true {
            if finished {
                finished = false
                inFlightCount -= 1
                if inFlightCount == 0 && drainWaiters > 0 { drained.broadcast() }
            }
            if !cancelled.isEmpty {
                let pending = cancelled.removeFirst()
                lock.unlock()
                pending.completion(ECANCELED)
                finished = true
                lock.lock()
                continue
            }
            if let pending = popLocked() {
                lock.unlock()
                let result = file.perform(pending.aio)
                pending.completion(result)
                finished = true
                lock.lock()
                continue
            }
            if stopping { break }
            idleWorkers += 1
            lock.wait()
            idleWorkers -= 1
        }
        lock.unlock()
    }

    private func popLocked() -> Pending? {
        let mask = ring.count - 1
        while count > 0 {
            let pending = ring[head]
            ring[head] = nil
            head = (head + 1) & mask
            count -= 1
            if let pending { return pending }
        }
        return nil
    }
}
