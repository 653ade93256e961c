import Glibc

/// SIGINT, SIGTERM and SIGHUP: the signals that stop a mount cleanly.
///
/// The daemon blocks them on its main thread before any other thread
/// exists, so every thread created later (device, backend, FUSE workers)
/// inherits the mask, and unblocks them on the main thread only when the
/// FUSE loop starts. libfuse's handler (`fuse_set_signal_handlers`) then
/// always runs on the thread waiting in the loop, which wakes and returns.
public enum TerminationSignals {
    static var set: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Blocks the termination signals in the calling thread (and in the
    /// threads it creates from now on). A signal that arrives stays pending.
    public static func block() {
        var s = set
        pthread_sigmask(SIG_BLOCK, &s, nil)
    }

    /// Unblocks them in the calling thread; pending ones are delivered now.
    public static func unblock() {
        var s = set
        pthread_sigmask(SIG_UNBLOCK, &s, nil)
    }
}
