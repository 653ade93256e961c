import BlockIO
import Foundation
import NVMeController
import Synchronization
import NVMeSpec

import Glibc

/// One asynchronous event the built-in host received.
public struct HostEvent: Sendable, Hashable {
    /// Wall-clock time the event arrived.
    public var time: Date
    public var completion: AsyncEventCompletion

    /// `time type=NAME info=NAME log-page=0xNN (NAME)` — one line of the `events` file.
    public var line: String {
        let t = ISO8601DateFormatter.string(from: time, timeZone: .gmt,
                                            formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        let lid = completion.logPage.rawValue
        let hex = String(lid, radix: 16, uppercase: false)
        return "\(t) type=\(completion.type.name) info=\(completion.info.name(for: completion.type))"
            + " log-page=0x\(hex.count < 2 ? "0" + hex : hex) (\(completion.logPage.name))"
    }
}

/// Asynchronous Event Requests (NVMe 1.4 §5.2) are the host's own: like
/// Linux, it keeps one outstanding after every bring-up, records each event
/// (log and a bounded list), reads the event's log page with RAE = 0 (which
/// unmasks the event type, §5.14.1) and submits the next request.
extension BuiltinHost {
    /// How many events `events` keeps (the oldest are dropped).
    public static let eventHistory = 256

    /// The events received, oldest first (at most `eventHistory`).
    public var events: [HostEvent] { eventLock.withLock { eventList } }

    /// True while the host's own AER waits in the controller.
    var eventRequestOutstanding: Bool { aerOutstanding.value.load(ordering: .acquiring) > 0 }

    /// Starts the thread that keeps an AER outstanding (once, at init). The
    /// thread holds the host only between waits, so a host dropped without
    /// `shutdown()` still goes away (its deinit wakes the thread).
    func startEventThread() {
        let started = spawnDetachedThread { [weak self, admin, aerOutstanding, stateLock, stateChanged] in
            while true {
                // Wait until live (or gone).
                stateLock.lock()
                var s = self?.state
                while s != nil && s != .live && s != .shutDown {
                    stateChanged.wait(stateLock)
                    s = self?.state
                }
                let seenRecoveries = self?.recoveries ?? 0
                stateLock.unlock()
                guard s == .live else { return }
                let result = Self.submitAER(on: admin, counter: aerOutstanding)
                switch result {
                case .completed(let cqe) where cqe.status.isSuccess:
                    self?.record(AsyncEventCompletion(dw0: cqe.dw0))
                case .completed(let cqe):
                    // Not accepted (e.g. the limit exceeded): try again after the next bring-up.
                    self?.logger.warning("built-in host: Asynchronous Event Request failed: \(cqe.status.name)")
                    Self.waitForBringUp(after: seenRecoveries, host: { self }, stateLock, stateChanged)
                case .aborted(retryable: true) where self?.state == .live:
                    // Not rung (the queue was down): wait for the bring-up in progress.
                    Self.waitForBringUp(after: seenRecoveries, host: { self }, stateLock, stateChanged)
                case .aborted, .pending:
                    break  // a reset dropped it: re-armed once live again
                }
            }
        }
        if !started { logger.error("built-in host: cannot start the asynchronous event thread; events are not received") }
    }

    /// One AER on the admin queue, waited for without a timeout (it completes
    /// only when an event occurs, or a reset drops it).
    static func submitAER(on admin: QueuePair, counter: OutstandingCounter) -> SlotResult {
        let batch = Batch(count: 1)
        let (slot, cid) = admin.acquireSlot(for: batch, index: 0)
        if !admin.ring(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue), cid: cid) {
            admin.releaseUnsubmitted(slot, batch: batch, result: .aborted(retryable: true))
            return .aborted(retryable: true)
        }
        // Counted once the doorbell write returned: the controller holds it.
        counter.value.wrappingAdd(1, ordering: .releasing)
        defer { counter.value.wrappingSubtract(1, ordering: .releasing) }
        _ = admin.wait(batch, deadline: .max)
        return admin.results(of: batch)[0]
    }

    /// Blocks until a recovery completes after `seen` of them, or the host goes.
    /// `host` gives the host while it exists (the caller's weak reference).
    static func waitForBringUp(after seen: Int, host: () -> BuiltinHost?, _ stateLock: ConditionLock, _ stateChanged: Condition) {
        stateLock.lock()
        while host().map({ $0.recoveries == seen && $0.state != .shutDown }) ?? false { stateChanged.wait(stateLock) }
        stateLock.unlock()
    }

    /// Logs and keeps the event, then reads its log page with RAE = 0.
    func record(_ completion: AsyncEventCompletion) {
        let event = HostEvent(time: Date(), completion: completion)
        logger.notice("built-in host: asynchronous event: \(event.line)")
        eventLock.withLock {
            eventList.append(event)
            if eventList.count > Self.eventHistory { eventList.removeFirst(eventList.count - Self.eventHistory) }
        }
        let length: Int
        switch completion.logPage {
        case .errorInformation: length = 64            // the newest entry
        case .changedNamespaceList: length = 4096
        default: length = 512                           // SMART / health, firmware slot
        }
        do throws(HostError) {
            let log = try getLogPage(lid: completion.logPage.rawValue, length: length, rae: false)
            if completion.type == .notice && completion.info == .noticeNamespaceAttributeChanged
                && completion.logPage == .changedNamespaceList {
                namespacesChanged(log: log)
            }
        } catch {
            logger.warning("built-in host: reading log page \(completion.logPage.name) for an event failed: \(error)")
        }
    }
}

/// A count shared with the event thread (which must not hold the host).
final class OutstandingCounter: Sendable {
    let value = Atomic<Int>(0)
}
