// Entry point only: the commands live in other files (a C callback or
// closure defined here would be main-actor isolated; see FUSE-NOTES.md).
CommandLineEntry.run()
