import Synchronization

/// One trace event: a name from QEMU's nvme trace catalogue and key=value fields.
public struct TraceEvent: Sendable {
    public var name: String
    public var fields: [(String, String)]
    /// True for host misuse ("guest error") events.
    public var isGuestError: Bool
    public init(_ name: String, _ fields: [(String, String)] = [], guestError: Bool = false) {
        self.name = name; self.fields = fields; self.isGuestError = guestError
    }
    public var line: String {
        ([name] + fields.map { "\($0.0)=\($0.1)" }).joined(separator: " ")
    }
}

/// Receives trace events. Called with the controller's lock held: must not
/// call back into the controller and must be quick.
public protocol TraceSink: AnyObject, Sendable {
    /// Events are built only while this is true (checked on every command).
    var isEnabled: Bool { get }
    func record(_ event: TraceEvent)
}
