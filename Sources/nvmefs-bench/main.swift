import Glibc
// nvmefs-bench: in-process benchmarks (no FUSE).
//   nvmefs-bench controller [...]   the controller alone (CONTRACT §6)
//   nvmefs-bench backend [...]      backend execution modes
//   nvmefs-bench host [...]         the built-in host and the controller (no FUSE)
let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "controller": runControllerBench(arguments: Array(args.dropFirst()))
case "backend": runBackendBench(arguments: Array(args.dropFirst()))
case "host": runHostBench(arguments: Array(args.dropFirst()))
default:
    print("usage: nvmefs-bench controller|backend|host [options]")
    exit(2)
}
