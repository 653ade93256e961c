import Glibc
import ArgumentParser
import Conformance
import Foundation

/// Differential conformance: the same command sequences on QEMU's NVMe device
/// (qtest, no guest) and on nvmefs's controller (in process); the report goes
/// to stdout.
@main
struct ConformanceTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvmefs-conformance",
        abstract: "Diff nvmefs's NVMe controller against QEMU's NVMe device.",
        discussion: """
            Exit status: 0 no unexpected difference; 1 unexpected differences; 77 SKIP (QEMU cannot be used); 2 usage.
            Deliberate differences are read from docs/CONFORMANCE.md.
            """)

    @Flag(help: "Run the directed table (the default when --random is not given).")
    var directed = false
    @Option(help: "Run N seeded random sequences.")
    var random = 0
    @Option(help: "Seed of the random sequences (default: time based; printed).")
    var seed: UInt64?
    @Option(help: "Commands per random sequence.")
    var commands = 24
    @Option(name: .customLong("time-budget"), help: "Stop starting new sequences after this many seconds.")
    var timeBudget: Double?
    @Flag(help: "List the scenarios and exit.")
    var list = false
    @Option(help: "Only scenarios whose name matches this glob.")
    var filter: String?
    @Option(help: "QEMU binary.")
    var qemu = "qemu-system-x86_64"
    @Option(help: "The table of deliberate differences.")
    var table = "docs/CONFORMANCE.md"
    @Flag(help: "Also print deliberate differences and every observation count.")
    var verbose = false

    func run() throws {
        var scenarios: [Scenario] = []
        let wantDirected = directed || random == 0
        if wantDirected { scenarios += DirectedTable.all }
        let seedValue = seed ?? UInt64(Date().timeIntervalSince1970 * 1000)
        if random > 0 { scenarios += RandomSequences.scenarios(count: random, seed: seedValue, commands: commands) }
        if let f = filter { scenarios = scenarios.filter { DeliberateTable.glob(f, $0.name) } }
        if list {
            for s in scenarios { print(s.name) }
            return
        }
        if random > 0 { print("random: \(random) sequences, seed \(seedValue) (reproduce with --random \(random) --seed \(seedValue))") }

        guard let binary = Self.findExecutable(qemu) else {
            print("SKIP: \(qemu) not found (install Debian's qemu-system-x86)")
            throw ExitCode(77)
        }
        let markdown: String
        do { markdown = try String(contentsOfFile: table, encoding: .utf8) } catch {
            print("error: cannot read \(table): \(error)")
            throw ExitCode(2)
        }
        let deliberate = DeliberateTable(markdown: markdown)

        installSignalHandlers()
        let runner = try Runner(qemuBinary: binary, table: deliberate)
        defer { runner.cleanUp() }
        print("qemu: \(binary) (\(runner.clock == .qtestAccelerator ? "qtest accelerator" : "TCG, CPU halted")); deliberate differences: \(deliberate.rows.count) rows in \(table)")
        do { try runner.probeQEMU() } catch {
            print("SKIP: \(error)")
            runner.cleanUp()
            throw ExitCode(77)
        }

        let start = Date()
        var compared = 0, sequences = 0
        var unexpected: [Difference] = [], deliberateCount = 0
        for s in scenarios {
            if let b = timeBudget, Date().timeIntervalSince(start) > b {
                print("time budget of \(b) s spent: \(scenarios.count - sequences) sequences not run")
                break
            }
            let r: ScenarioResult
            do { r = try runner.run(s) } catch {
                print("SKIP: \(s.name): \(error)")
                runner.cleanUp()
                throw ExitCode(77)
            }
            sequences += 1
            compared += r.compared
            deliberateCount += r.deliberate.count
            unexpected += r.unexpected
            let verdict = r.unexpected.isEmpty ? "ok  " : "DIFF"
            print("\(verdict) \(s.name): \(r.compared) observations, \(r.deliberate.count) deliberate, \(r.unexpected.count) unexpected")
            for d in r.differences where d.deliberate == nil || verbose {
                let tag = d.deliberate.map { "[\($0)] " } ?? ""
                print("     \(tag)\(d.path)")
                print("         qemu:   \(d.qemu ?? "(absent)")")
                print("         nvmefs: \(d.nvmefs ?? "(absent)")")
            }
        }
        let agree = compared - unexpected.count - deliberateCount
        let pct = compared == 0 ? 100.0 : Double(agree) * 100 / Double(compared)
        print(String(format: "time: %.1f s", Date().timeIntervalSince(start)))
        print("agreement: \(agree) of \(compared) observations (\(String(format: "%.1f", pct))%), \(sequences) sequences, \(deliberateCount) deliberate differences, \(unexpected.count) unexpected")
        if !unexpected.isEmpty { throw ExitCode(1) }
    }

    static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}

/// SIGINT/SIGTERM/SIGHUP: end the running QEMU process first, then exit.
func installSignalHandlers() {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal(sig) { s in
            let pid = runningQEMUProcess.load(ordering: .sequentiallyConsistent)
            if pid > 0 { kill(pid, SIGKILL) }
            _exit(128 + s)
        }
    }
}
