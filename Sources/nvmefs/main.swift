// Entry point only: the commands live in other files (a C callback or
// closure defined here would be main-actor isolated; see docs/ARCHITECTURE.md,
// "Swift on libfuse3").
CommandLineEntry.run()
