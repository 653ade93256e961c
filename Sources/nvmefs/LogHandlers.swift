import Logging
import Glibc

/// One line per message on stderr: "TIME LEVEL LABEL: MESSAGE key=value...",
/// written with a single write(2) so lines of several threads never mix.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var tm = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &tm)
        let millis = Int(now.tv_nsec / 1_000_000)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        let time = "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(ms)Z"
        let line = "\(time) \(event.level) \(label): \(event.message)\(formatMetadata(metadata, event.metadata))"
        CommandLineEntry.writeLine(line, to: 2)
    }
}

/// syslog(3) (facility daemon, ident "nvmefs", with the pid): where the
/// daemonized mount logs once it has left its parent.
struct SyslogLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    /// Opens the log once per process (the ident string must stay alive).
    static func open() {
        openlog(strdup("nvmefs"), LOG_PID | LOG_NDELAY, LOG_DAEMON)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let priority: Int32
        switch event.level {
        case .trace, .debug: priority = LOG_DEBUG
        case .info: priority = LOG_INFO
        case .notice: priority = LOG_NOTICE
        case .warning: priority = LOG_WARNING
        case .error: priority = LOG_ERR
        case .critical: priority = LOG_CRIT
        }
        let line = "\(label): \(event.message)\(formatMetadata(metadata, event.metadata))"
        line.withCString { text in withVaList([text]) { vsyslog(priority, "%s", $0) } }
    }
}

private func formatMetadata(_ base: Logger.Metadata, _ extra: Logger.Metadata?) -> String {
    var all = base
    if let extra { all.merge(extra) { $1 } }
    guard !all.isEmpty else { return "" }
    return " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
}
