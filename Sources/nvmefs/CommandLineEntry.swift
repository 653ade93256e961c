import ArgumentParser
import FUSEBridge
import Glibc

/// Parses and runs a command; every failure is one line on stderr:
/// exit status 2 for command-line and configuration errors, 1 for others.
enum CommandLineEntry {
    static func run() -> Never {
        do {
            var command = try Nvmefs.parseAsRoot()
            try command.run()
            exit(0)
        } catch let error as ConfigurationError {
            fail(error.message, status: 2)
        } catch let error as DaemonError {
            fail(error.message, status: 1)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            let code = Nvmefs.exitCode(for: error)
            if code == .success {
                // --help and the like.
                writeLine(Nvmefs.fullMessage(for: error), to: 1)
                exit(0)
            }
            let message = Nvmefs.message(for: error)
            fail(message.isEmpty ? "\(error)" : message, status: 2)
        }
    }

    /// Prints "nvmefs: MESSAGE" (first line only) on stderr and exits.
    static func fail(_ message: String, status: Int32) -> Never {
        let line = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? message
        writeLine("nvmefs: " + line, to: 2)
        exit(status)
    }

    static func writeLine(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        if bytes.last != 0x0A { bytes.append(0x0A) }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
        }
    }
}

struct Nvmefs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvmefs",
        abstract: "Mount an emulated NVMe controller as a directory.",
        subcommands: [MountCommand.self, UnmountCommand.self, NvmeCommand.self, ExecCommand.self, SQECommand.self,
                      CQECommand.self, ShowRegsCommand.self, ListCommand.self, PidCommand.self])
}
