import BlockIO
import CFuse3
import Glibc
import Synchronization

/// SIGINT, SIGTERM and SIGHUP: the signals that stop a mount cleanly.
///
/// The daemon blocks them on its main thread before any other thread
/// exists, so every thread inherits the mask and none ever takes them
/// asynchronously. While the FUSE loop runs, a `TerminationWatcher` thread
/// receives them with `sigwait`, so a signal is never lost: one that
/// arrives before the loop starts waits, pending, for the watcher.
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
}

/// Nothing to do: SIGUSR1 only interrupts the loop thread's wait.
func nvmefsWakeSignalHandler(_ signal: Int32) {}

/// Stops a FUSE session on a termination signal. libfuse's own handlers
/// set the session's exit flag from whichever thread the signal lands on,
/// and its multi-threaded loop checks that flag before it sleeps in
/// `sem_wait`: a signal between the check and the sleep was lost and the
/// daemon ignored it. The watcher instead takes the signals with `sigwait`
/// (they stay blocked everywhere), sets the exit flag, and interrupts the
/// loop thread with SIGUSR1 until the loop has returned.
final class TerminationWatcher: @unchecked Sendable {
    private let session: OpaquePointer
    private let loopThread: pthread_t
    private var thread = pthread_t()
    private let loopEnded = Atomic<Bool>(false)
    /// The signal that stopped the session (0: none yet).
    let signal = Atomic<Int32>(0)

    init(session: OpaquePointer) {
        self.session = session
        loopThread = pthread_self()
    }

    /// Installs the wake handler and starts the watcher thread. Call on the
    /// thread that will run the loop, with the termination signals blocked.
    func start() -> Bool {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = nvmefsWakeSignalHandler
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0   // no SA_RESTART: the interrupted wait returns
        guard sigaction(SIGUSR1, &action, nil) == 0 else { return false }
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let watcher = Unmanaged<TerminationWatcher>.fromOpaque(context!).takeRetainedValue()
            watcher.watch()
            return nil
        }, context)
        if rc != 0 { Unmanaged<TerminationWatcher>.fromOpaque(context).release() }
        return rc == 0
    }

    private func watch() {
        var set = TerminationSignals.set
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        if loopEnded.load(ordering: .acquiring) { return }   // woken by `stop`
        signal.store(received, ordering: .releasing)
        fuse_session_exit(session)
        while !loopEnded.load(ordering: .acquiring) {
            pthread_kill(loopThread, SIGUSR1)
            usleep(20_000)
        }
    }

    /// The loop has returned: ends the watcher thread.
    func stop() {
        loopEnded.store(true, ordering: .releasing)
        pthread_kill(thread, SIGHUP)   // blocked there: taken by its sigwait
        pthread_join(thread, nil)
    }
}
