import NVMeController
import NVMeSpec

import Glibc

extension BuiltinHost {
    /// Controller state changes. Runs on whatever thread the controller
    /// delivers them (maybe inside one of our own MMIO writes): it only
    /// starts recovery on its own thread.
    func controllerEvent(_ event: ControllerEvent) {
        switch event {
        case .resetComplete, .fatal:
            // While starting, recovering or shutting down the host caused the
            // event itself. Live: a user reset (CC.EN=0, NSSR) or a fatal
            // error. Dead: a later reset may revive the controller.
            // An event is delivered after the reset, on some thread: that of
            // the host's own last reset may arrive once it is live again, and
            // must not start a recovery (it would abort the commands retried
            // by the one that just ended).
            if event == .resetComplete, controller.completedResets <= resetsSeen.load(ordering: .acquiring) { return }
            let s = state
            if s == .live || s == .dead {
                requestRecovery(event == .fatal ? "controller fatal status (CSTS.CFS)" : "controller reset")
            }
        case .ready, .shutdownComplete:
            break
        }
    }

    /// Starts recovery (like Linux's nvme_reset_ctrl) unless one is running,
    /// in which case that one runs again. New I/O waits from now on.
    func requestRecovery(_ reason: String) {
        let start: Bool = stateLock.withLock {
            if state == .shutDown { return false }
            stateValue.store(HostState.recovering.rawValue, ordering: .releasing)
            stateChanged.broadcast()
            if recoveryRunning {
                recoveryAgain = true
                return false
            }
            recoveryRunning = true
            return true
        }
        guard start else { return }
        logger.notice("built-in host: recovering: \(reason)")
        // The recovery thread keeps the host alive until it is done.
        let started = spawnDetachedThread { [self] in recover() }
        if !started { recover() }
    }

    /// Disables the controller, fails what it dropped (retryable), re-enables
    /// it and re-creates the queues. Up to three attempts, then `.dead`. A
    /// request arriving meanwhile starts the attempts over.
    func recover() {
        var attempts = 0
        while true {
            stateLock.withLock { recoveryAgain = false }
            attempts += 1
            var ok = false
            do {
                try bringUp()
                ok = true
            } catch {
                logger.error("built-in host: recovery attempt \(attempts) failed: \(error)")
                // Nothing may still run on the old queues when their commands
                // are failed; if the controller will not even reset, fail them
                // anyway (Linux does the same with a dead controller).
                let reset = disableController()
                for q in [admin] + io { q.stopAccepting(); q.abortOutstandingAndReset(retryable: reset) }
            }
            if !ok && attempts < 3 && stateLock.withLock({ state != .shutDown }) { continue }
            if !ok {
                // Fail whatever is left so that no thread waits forever.
                for q in [admin] + io { q.stopAccepting(); q.abortOutstandingAndReset(retryable: false) }
            }
            let finished: Bool = stateLock.withLock {
                if state == .shutDown {
                    recoveryRunning = false
                    return true
                }
                if recoveryAgain {
                    attempts = 0
                    return false
                }
                recoveries += 1
                recoveryRunning = false
                stateValue.store((ok ? HostState.live : HostState.dead).rawValue, ordering: .releasing)
                stateChanged.broadcast()
                return true
            }
            if finished {
                if ok { logger.notice("built-in host: recovered") } else { logger.error("built-in host: controller is dead") }
                return
            }
        }
    }

    /// Normal shutdown (NVMe 1.4 §7.6.2): new I/O fails, outstanding commands
    /// finish (bounded by the command timeout), CC.SHN = 01b and wait for
    /// CSTS.SHST = 10b, then CC.EN = 0. Idempotent.
    public func shutdown() {
        let proceed: Bool = stateLock.withLock {
            if state == .shutDown { return false }
            stateValue.store(HostState.shutDown.rawValue, ordering: .releasing)
            stateChanged.broadcast()
            return true
        }
        guard proceed else { return }
        // Let a running recovery end first.
        _ = poll(timeout: readyTimeout * 2) { stateLock.withLock { !recoveryRunning } }
        let end = deadline(after: configuration.commandTimeout)
        _ = poll(timeout: end &- min(end, monotonicNow())) {
            // The host's own AER never completes by itself: not waited for.
            admin.outstandingCount - aerOutstanding.value.load(ordering: .relaxed) <= 0
                && io.allSatisfy { $0.outstandingCount == 0 }
        }
        for q in [admin] + io { q.stopAccepting() }
        var cc = readCC()
        if cc.en && readCSTS().rdy {
            cc.shn = 1
            writeCC(cc)
            if !poll(timeout: readyTimeout, { readCSTS().shst == 2 }) {
                logger.warning("built-in host: shutdown did not complete (CSTS.SHST)")
            }
        }
        if !disableController() {
            logger.warning("built-in host: controller did not clear CSTS.RDY at shutdown")
        }
        for q in [admin] + io { q.abortOutstandingAndReset(retryable: false) }
        activeIOQueues.store(0, ordering: .relaxed)
        detach()
    }
}
