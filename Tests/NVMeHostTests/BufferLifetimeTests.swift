import BlockIO
import Foundation
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Synchronization
import Testing

/// The reply buffer of one read, freed only when the host gives it back.
final class ParkedBuffer: @unchecked Sendable {
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 4096)
    private let parkedFlag = Atomic<Bool>(false)
    private let returnedFlag = Atomic<Bool>(false)
    var parked: Bool { parkedFlag.load(ordering: .sequentiallyConsistent) }
    var returned: Bool { returnedFlag.load(ordering: .sequentiallyConsistent) }
    /// What the buffer held when the host gave it back, just before it was freed.
    let contentsAtReturn = Locked<[UInt8]>([])

    init() { memory.initializeMemory(as: UInt8.self, repeating: 0xEE) }

    func park() -> @Sendable () -> Void {
        parkedFlag.store(true, ordering: .sequentiallyConsistent)
        return { [self] in
            contentsAtReturn.withLock { $0 = Array(memory) }
            returnedFlag.store(true, ordering: .sequentiallyConsistent)
            memory.deallocate()
        }
    }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
}

@Suite("Buffer lifetime")
struct BufferLifetimeTests {
    /// A host that gives up quickly on a backend whose I/O cannot be cancelled
    /// (it is inside a system call).
    static func stuckRig() throws -> (TestBackend, Rig) {
        var c = BuiltinHostConfiguration()
        c.commandTimeout = .milliseconds(200)
        c.readyTimeout = .milliseconds(200)
        let tb = TestBackend(size: 1 << 20)
        tb.refusesCancel = true
        return (tb, try Rig([(tb, 9)], configuration: c))
    }

    /// The host gives up on a read whose backend I/O is stuck in a system
    /// call: the buffer stays parked (not freed, not reused) until that I/O
    /// ends, and the late I/O writes into memory that is still valid.
    @Test(arguments: [false, true])
    func givenUpReadParksItsBufferUntilTheAIOEnds(mapped: Bool) throws {
        let (tb, rig) = try Self.stuckRig()
        let data = pattern(8192, seed: 5)
        tb.write(data, at: 0)
        tb.addRule(.hold(operations: [.read]))
        let buffer = ParkedBuffer()
        // A buffer mapped for many reads (as the bridge's pooled ones are)
        // loses its mapping when a command on it is given up.
        var mapping: MappedBuffer?
        if mapped {
            let made: MappedBuffer = try #require(rig.host.mapBuffer(buffer.memory.baseAddress!, count: buffer.memory.count))
            mapping = made
        }
        let result = rig.host.read(nsid: 1, offset: 0, into: buffer.memory, mapped: mapping, parking: { buffer.park() })
        // Recovery could not reset the controller (the AIO never drains): the read failed.
        #expect(result.error?.errno == EIO)
        #expect(tb.heldCount == 1)
        #expect(buffer.parked)
        #expect(!buffer.returned)
        #expect(mapping?.isMapped != true)
        // No temporary region is left for the controller to find.
        #expect(!rig.space.regions.contains { $0.kind == .temporary })
        // The I/O ends: it writes into the parked (still valid) buffer, then
        // the host gives the buffer back.
        #expect(tb.releaseAll() == 1)
        let end = Date().addingTimeInterval(30)   // hang guard
        while !buffer.returned && Date() < end { usleep(1000) }
        #expect(buffer.returned)
        #expect(buffer.contentsAtReturn.withLock { $0 } == data)
    }

    /// An unaligned read goes through a bounce page; when its command is
    /// given up, the page stays out of the pool until the stuck I/O ends, so
    /// no other command can be handed memory a late I/O still writes.
    @Test func givenUpBounceReadKeepsThePageUntilTheAIOEnds() throws {
        let (tb, rig) = try Self.stuckRig()
        let pages = rig.host.bounce.freeCount
        tb.addRule(.hold(operations: [.read]))
        var out = [UInt8](repeating: 0, count: 100)
        let r = out.withUnsafeMutableBytes { rig.host.read(nsid: 1, offset: 10, into: $0) }
        #expect(r.error?.errno == EIO)
        #expect(tb.heldCount == 1)
        #expect(rig.host.bounce.freeCount == pages - 1)
        #expect(tb.releaseAll() == 1)
        let end = Date().addingTimeInterval(30)   // hang guard
        while rig.host.bounce.freeCount != pages && Date() < end { usleep(1000) }
        #expect(rig.host.bounce.freeCount == pages)
    }

    /// Without a way to park the buffer (a write from the caller's memory),
    /// the call returns only once the stuck I/O has ended.
    @Test func givenUpWriteReturnsOnlyAfterTheAIOEnds() throws {
        let (tb, rig) = try Self.stuckRig()
        tb.addRule(.hold(operations: [.write]))
        let finished = Flag()
        let done = DispatchSemaphore(value: 0)
        let host = rig.host
        Thread {
            _ = pattern(4096, seed: 3).withUnsafeBytes { host.write(nsid: 1, offset: 0, from: $0) }
            finished.set()
            done.signal()
        }.start()
        #expect(tb.waitForHeld(count: 1))
        // Wait until the host has given up (recovery declared the controller dead).
        let end = Date().addingTimeInterval(30)
        while host.state != .dead && Date() < end { usleep(1000) }
        #expect(host.state == .dead)
        #expect(!finished.isSet)
        #expect(tb.releaseAll() == 1)
        #expect(done.wait(timeout: .now() + 30) == .success)
    }
}

@Suite("Asynchronous events")
struct HostEventTests {
    func waitFor(_ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(30)   // hang guard
        while !condition() && Date() < end { usleep(1000) }
        return condition()
    }

    /// An invalid doorbell write on a user queue is an Error event (NVMe 1.4
    /// §4.1, §5.2): the host's own AER reports it, the host records it, reads
    /// the Error Information log with RAE = 0 and re-arms — so the next one is
    /// reported too.
    @Test func invalidDoorbellWritesBecomeRecordedEventsAndAERsAreRearmed() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)])
        #expect(rig.host.events.isEmpty)
        #expect(waitFor { rig.host.eventRequestOutstanding })
        // SQ 7 does not exist: invalid doorbell register.
        rig.controller.mmioWrite(offset: 0x1000 + 7 * 8, value: 1, size: 4)
        #expect(waitFor { rig.host.events.count == 1 })
        let first = try #require(rig.host.events.first)
        #expect(first.completion == .invalidDoorbellRegister)
        #expect(first.line.contains("type=Error") && first.line.contains("log-page=0x01"))
        // Again: only seen if the AER was re-armed and the type unmasked by the log read.
        #expect(waitFor { rig.host.eventRequestOutstanding })
        rig.controller.mmioWrite(offset: 0x1000 + 7 * 8, value: 2, size: 4)
        #expect(waitFor { rig.host.events.count == 2 })
        // And after a recovery the host re-arms as well.
        rig.controller.mmioWrite(offset: 0x14, value: 0, size: 4)
        // The host's count of its AER may still be the old one's for a
        // moment (dropped by the reset, not yet seen by its thread): wait
        // for the controller to hold the new one as well.
        #expect(waitFor {
            rig.host.state == .live && rig.host.recoveryCount >= 1 && rig.host.eventRequestOutstanding
                && rig.controller.queueSnapshots().first { $0.qid == 0 && $0.kind == .submission }?.outstanding == 1
        })
        rig.controller.mmioWrite(offset: 0x1000 + 7 * 8, value: 3, size: 4)
        #expect(waitFor { rig.host.events.count == 3 })
    }

    /// AERs are the host's: a passthrough one is refused at once.
    @Test func passthroughAERIsRefused() throws {
        let rig = try Rig([(TestBackend(size: 1 << 20), 9)])
        let (cqe, _) = rig.host.adminCommand(SubmissionQueueEntry(opcode: AdminOpcode.asyncEventRequest.rawValue))
        #expect(cqe.status == NVMeStatus.invalidField.withDNR)
        #expect(errnoForStatus(cqe.status) == EINVAL)
    }
}
