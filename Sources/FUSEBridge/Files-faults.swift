import NVMeController

extension TraceFiles {
    /// `faults`: read = the rules in canonical form, one per line; write =
    /// one rule per line (`NSID OP LBAS ACTION [COUNT]`, see
    /// `NVMeController.addFault`), or "clear" to remove every rule. A line
    /// that does not parse fails the write with EINVAL (rules of earlier
    /// lines of the same write stay).
    static func faults(_ d: DeviceContext) -> Node {
        .file("faults", about: "fault-injection rules, one per line: write \"NSID OP LBAS ACTION [COUNT]\" to add "
                + "(e.g. \"1 read 0-7 EIO once\"), \"clear\" to remove all",
              GeneratedFile(mode: 0o644, text: {
                  d.controller.faultLines().map { $0 + "\n" }.joined()
              }, store: { text throws(FileError) in
                  for raw in text.split(separator: "\n") {
                      let line = Text.trim(raw)
                      if line.isEmpty || line.hasPrefix("#") { continue }
                      if line == "clear" {
                          d.controller.clearFaults()
                          d.trace.note(.faultsCleared, [])
                          continue
                      }
                      do throws(FaultSpecError) {
                          _ = try d.controller.addFault(String(line))
                      } catch {
                          throw d.refuse("faults", .invalid, "'\(line)': \(error.description)")
                      }
                  }
              }))
    }
}
