import CFuse3
import Logging
import BlockIO
import Glibc

/// Routes libfuse's own messages into swift-log (label "libfuse") instead of
/// stderr, and keeps the last error so a failed mount can say why.
enum FuseLog {
    /// The last error-level message from libfuse. Global because libfuse's
    /// log sink has no userdata.
    static let lastError = Locked<String?>(nil)

    static func install() {
        fuse_set_log_func(fuseLogSink)
    }

    static func takeLastError() -> String? {
        lastError.withLock { e in defer { e = nil }; return e }
    }
}

func fuseLogSink(_ level: fuse_log_level, _ format: UnsafePointer<CChar>?, _ args: CVaListPointer?) {
    guard let format, let args else { return }
    var buffer = [UInt8](repeating: 0, count: 1024)
    let written = buffer.withUnsafeMutableBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { vsnprintf($0, b.count, format, args) }
    }
    var message = String(decoding: buffer.prefix(max(0, min(Int(written), buffer.count - 1))), as: UTF8.self)
    while message.last == "\n" { message.removeLast() }
    let logLevel: Logger.Level
    switch level {
    case FUSE_LOG_EMERG, FUSE_LOG_ALERT, FUSE_LOG_CRIT: logLevel = .critical
    case FUSE_LOG_ERR: logLevel = .error
    case FUSE_LOG_WARNING: logLevel = .warning
    case FUSE_LOG_NOTICE: logLevel = .notice
    case FUSE_LOG_INFO: logLevel = .info
    default: logLevel = .debug
    }
    if logLevel >= .error { FuseLog.lastError.withLock { $0 = message } }
    Logger(label: "libfuse").log(level: logLevel, "\(message)")
}
