/// A backend that completes every AIO inside `submit` without touching data,
/// like an image wholly in the page cache minus the copy: for measuring the
/// engine's own per-command cost and for driving it hard in tests.
public final class NullBackend: BlockBackend, @unchecked Sendable {
    public let size: UInt64
    public init(size: UInt64) { self.size = size }
    public var name: String { "null" }
    public var isReadOnly: Bool { false }
    public func submit(_ aio: AIO, completion: @escaping @Sendable (Int32) -> Void) -> AIOTicket {
        completion(0)
        return AIOTicket(raw: 0)
    }
    public func performImmediately(_ aio: AIO) -> Int32? { 0 }
    public func cancel(_ ticket: AIOTicket) -> Bool { false }
    public func drainAndSync() {}
    public func close() {}
}
