import NVMeController
import Synchronization
import Glibc

/// The controller's trace sink, feeding the `trace` stream.
///
/// Events are built and recorded only while at least one handle of `trace`
/// is open for reading (`isEnabled`), so an unwatched device pays nothing.
/// Guest errors and refused file operations are recorded always: a reader
/// that opens `trace` later still sees why something failed (bounded by the
/// stream's capacity, oldest dropped first).
final class TraceRecorder: TraceSink {
    let stream = EventStream(capacity: 16384, lostLine: { "lost \($0) events" })
    private let readers = Atomic<Int>(0)

    var isEnabled: Bool { readers.load(ordering: .relaxed) > 0 }

    /// Called by the controller under its lock: format and append only.
    func record(_ event: TraceEvent) {
        guard event.isGuestError || isEnabled else { return }
        stream.append(Self.stamp() + " " + event.line)
    }

    /// An event of the file layer (always recorded).
    func note(_ name: TraceEventName, _ fields: [(String, String)]) {
        stream.append(Self.stamp() + " " + TraceEvent(name.rawValue, fields.map { ($0.0, Self.quoted($0.1)) }).line)
    }

    func readerOpened() { readers.add(1, ordering: .relaxed) }
    func readerClosed() { readers.subtract(1, ordering: .relaxed) }

    func close() { stream.close() }

    /// CLOCK_MONOTONIC as seconds.microseconds.
    static func stamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Text.timestamp(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// A value with blanks is double-quoted so that a line stays key=value.
    static func quoted(_ value: String) -> String {
        value.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" })
            ? "\"" + value.replacingAll("\"", with: "'").replacingAll("\n", with: " ") + "\"" : value
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}

/// `trace`: the stream file; each open handle counts as a reader.
struct TraceFile: FileHandler {
    let recorder: TraceRecorder
    var mode: UInt16 { 0o444 }
    var nonSeekable: Bool { true }

    final class Reader: Sendable {}

    func open(flags: Int32) throws(FileError) -> (any Sendable)? {
        recorder.readerOpened()
        return Reader()
    }

    func read(_ request: ReadRequest) { recorder.stream.read(request) }

    func release(file: OpenFile) {
        if file.state(as: Reader.self) != nil { recorder.readerClosed() }
    }
}

enum TraceFiles {
    static func trace(_ d: DeviceContext) -> Node {
        .file("trace", about: "event stream like trace_pipe (timestamp name key=value); recording runs while "
                + "a reader has it open, guest errors and refused writes are always kept",
              TraceFile(recorder: d.trace))
    }
}
