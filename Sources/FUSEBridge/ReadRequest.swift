import CFuse3
import NVMeHost
import BlockIO
import Glibc

/// A pending read(2): answer it exactly once, now or later, from any thread.
///
/// Three ways to answer:
/// - `reply(_:)` with bytes (copied to the kernel during the call);
/// - zero copy: fill `buffer` (allocated by the bridge, `size` bytes, 4 KiB
///   aligned, valid until the reply) and call `reply(bufferCount:)`, or use
///   `fill { buffer in ... }` synchronously;
/// - `fail(_:)` with an errno.
/// Further answers are ignored. A request dropped without an answer is
/// failed with EIO when it is freed (a handler bug, logged).
///
/// A read that parks (blocks until data arrives) must call `onInterrupt`
/// before taking its own lock, so a killed reader is released.
public final class ReadRequest: @unchecked Sendable {
    /// File offset of the read.
    public let offset: UInt64
    /// Bytes asked for (the reply may be shorter: end of file).
    public let size: Int
    /// The handle the read is made on.
    public let file: OpenFile

    private let request: fuse_req_t
    private let fileSystem: FileSystem
    private struct State {
        var answered = false
        var buffer: UInt = 0            // address of the bridge buffer, 0 = none
        var mapping: MappedBuffer?      // the buffer's mapping in the host address space, if any
        var interruptKey: UInt64 = 0    // nonzero while registered with the file system
        var onInterrupt: (@Sendable () -> Void)?
        var registering = false
        var interruptedWhileRegistering = false
    }
    private let state = Locked(State())

    init(request: fuse_req_t, offset: UInt64, size: Int, file: OpenFile, fileSystem: FileSystem) {
        self.request = request; self.offset = offset; self.size = size
        self.file = file; self.fileSystem = fileSystem
    }

    deinit {
        let (answered, buffer, mapping) = state.withLock { ($0.answered, $0.buffer, $0.mapping) }
        if !answered {
            fileSystem.logger.error("read of \(file.node.name) dropped without a reply; failing it with EIO")
            _ = fileSystem.gate.pass { fuse_reply_err(request, EIO) }
        }
        if buffer != 0, let p = UnsafeMutableRawPointer(bitPattern: buffer) {
            fileSystem.replyBuffers.release(p, size: max(size, 1), mapping: mapping)
        }
    }

    /// True once the request has been answered.
    public var isAnswered: Bool { state.withLock { $0.answered } }

    /// A `size`-byte buffer owned by the request (4 KiB aligned), valid until
    /// the request is answered. Allocated on first use.
    public var buffer: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: takeBuffer().address), count: size)
    }

    /// The reply buffer's address (taken from the pool on first use) and the
    /// mapping it came with.
    private func takeBuffer() -> (address: UInt, mapping: MappedBuffer?) {
        let size = max(self.size, 1)
        return state.withLock { s -> (UInt, MappedBuffer?) in
            if s.buffer == 0 {
                let (p, m) = fileSystem.replyBuffers.take(size)
                s.buffer = UInt(bitPattern: p)
                s.mapping = m
            }
            return (s.buffer, s.mapping)
        }
    }

    /// The reply buffer (see `buffer`) and its mapping into the built-in
    /// host's address space: the one it came from the pool with, or one
    /// `map` makes now for the whole pooled buffer. A mapping stays with the
    /// buffer when it returns to the pool, so later reads need none. Buffers
    /// too large to pool get no mapping. (`map` is not escaping: an optional
    /// closure would be, and its context would be allocated per read.)
    public func mappedBuffer(map: (UnsafeMutableRawPointer, Int) -> MappedBuffer?)
        -> (buffer: UnsafeMutableRawBufferPointer, mapping: MappedBuffer?) {
        let size = max(self.size, 1)
        let (address, mapping) = takeBuffer()
        let buffer = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: address), count: self.size)
        guard mapping?.isMapped != true, let c = ReplyBufferPool.sizeClass(size),
              let p = UnsafeMutableRawPointer(bitPattern: address) else { return (buffer, mapping) }
        let made = map(p, 1 << c)
        state.withLock { s in if s.buffer == address { s.mapping = made } }
        return (buffer, made)
    }

    /// Takes the reply buffer away from the request (it can no longer reply
    /// with it): it returns to the pool only when the returned closure is
    /// called — by the built-in host, once no backend I/O can write into it.
    public func parkBuffer() -> @Sendable () -> Void {
        let (address, mapping) = state.withLock { s -> (UInt, MappedBuffer?) in
            defer { s.buffer = 0; s.mapping = nil }
            return (s.buffer, s.mapping)
        }
        let pool = fileSystem.replyBuffers, size = max(size, 1)
        return {
            // The host removes a parked buffer's mapping before it parks it.
            // Were one still in place, the buffer is kept for good rather
            // than pooled: the closure may run inside the controller's
            // critical section, where removing a mapping would wait for that
            // very section, and mapped memory must never be freed.
            guard mapping?.isMapped != true, let p = UnsafeMutableRawPointer(bitPattern: address) else { return }
            pool.release(p, size: size, mapping: mapping)
        }
    }

    /// Answers with `bytes` (at most `size` of them are sent).
    public func reply(_ bytes: UnsafeRawBufferPointer) {
        finish { fuse_reply_buf(request, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), min(bytes.count, size)) }
    }

    /// Answers with `bytes` (at most `size` of them are sent).
    public func reply(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { reply($0) }
    }

    /// Answers with the first `count` bytes of `buffer`.
    public func reply(bufferCount count: Int) {
        let n = max(0, min(count, size))
        // The answer is claimed and the buffer read in one critical section.
        guard let (key, start) = state.withLock({ s -> (UInt64, UInt)? in
            guard let key = Self.claim(&s) else { return nil }
            return (key, s.buffer)
        }) else { return }
        deliver(key) { fuse_reply_buf(request, UnsafePointer(bitPattern: start), start == 0 ? 0 : n) }
    }

    /// Fails the read with an errno.
    public func fail(_ error: FileError) {
        finish { fuse_reply_err(request, error.code) }
    }

    /// Zero-copy synchronous answer: `body` fills the buffer and returns the
    /// byte count, or throws.
    public func fill(_ body: (UnsafeMutableRawBufferPointer) throws(FileError) -> Int) {
        do throws(FileError) {
            let n = try body(buffer)
            reply(bufferCount: n)
        } catch {
            fail(error)
        }
    }

    /// Registers what to do if the reader is interrupted (a signal, a killed
    /// process): `handler` runs once, on a FUSE thread, and typically
    /// un-parks the request. If the request is still unanswered when it
    /// returns, the bridge fails it with EINTR. When the reader was already
    /// interrupted, `handler` runs before this method returns.
    /// Call it before taking any lock that `handler` takes.
    public func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        let key = fileSystem.nextInterruptKey()
        let proceed = state.withLock { s -> Bool in
            guard !s.answered, s.interruptKey == 0 else { return false }
            s.onInterrupt = handler
            s.interruptKey = key
            s.registering = true
            return true
        }
        guard proceed else { return }
        fileSystem.registerInterruptible(self, key: key)
        // libfuse calls the function at once, holding the request's lock, when
        // the request is already interrupted; replying there would free the
        // request under that lock, so that case is deferred to just below.
        fuse_req_interrupt_func(request, fuseInterruptTrampoline, UnsafeMutableRawPointer(bitPattern: UInt(key)))
        let fire = state.withLock { s -> Bool in
            s.registering = false
            defer { s.interruptedWhileRegistering = false }
            return s.interruptedWhileRegistering
        }
        if fire { interrupted() }
    }

    /// Called by the interrupt trampoline.
    func interruptArrived() {
        let now = state.withLock { s -> Bool in
            if s.answered { return false }
            if s.registering { s.interruptedWhileRegistering = true; return false }
            return true
        }
        if now { interrupted() }
    }

    private func interrupted() {
        let handler = state.withLock { s -> (@Sendable () -> Void)? in
            defer { s.onInterrupt = nil }
            return s.onInterrupt
        }
        handler?()
        fail(.interrupted)
    }

    private func finish(_ send: () -> Int32) {
        guard let key = state.withLock({ Self.claim(&$0) }) else { return }
        deliver(key, send)
    }

    /// Marks the request answered (under the lock); nil if it already was,
    /// else its interrupt key (0: none registered).
    private static func claim(_ s: inout State) -> UInt64? {
        if s.answered { return nil }
        s.answered = true
        defer { s.interruptKey = 0 }
        return s.interruptKey
    }

    /// Sends the answer claimed with `key` (outside the lock).
    private func deliver(_ key: UInt64, _ send: () -> Int32) {
        if key != 0 { fileSystem.unregisterInterruptible(key: key) }
        _ = fileSystem.gate.pass(send)
    }
}

/// libfuse's interrupt callback: finds the request by its key (the data
/// pointer), so a late interrupt for an answered request is a no-op.
func fuseInterruptTrampoline(_ req: fuse_req_t?, _ data: UnsafeMutableRawPointer?) {
    guard let req, let userdata = fuse_req_userdata(req) else { return }
    let fileSystem = Unmanaged<FileSystem>.fromOpaque(userdata).takeUnretainedValue()
    let key = UInt64(UInt(bitPattern: data))
    fileSystem.interruptible(key: key)?.interruptArrived()
}
