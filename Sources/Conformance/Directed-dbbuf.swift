import NVMeSpec

/// Directed Doorbell Buffer Config scenarios (NVMe 1.4 §5.7, shadow
/// doorbells §7.13): the statuses, what the controller writes into the
/// Shadow Doorbell and EventIdx buffers, I/O submitted through the shadow
/// tail (the MMIO write that wakes the device carries a stale tail, so only
/// a device that reads the shadow entry runs the commands), a queue created
/// after the configuration, and a controller reset ending it.
extension DirectedTable {
    /// The Shadow Doorbell and EventIdx pages (inside guest memory, above the data buffers).
    static let shadowPage: UInt64 = 0x300_0000
    static let eventIdxPage: UInt64 = 0x300_1000

    static func dbbufConfig(_ shadow: UInt64 = shadowPage, _ eventIdx: UInt64 = eventIdxPage) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: 0x7C, prp1: shadow, prp2: eventIdx)
    }

    /// Records the shadow and EventIdx entries of queues 0..<`queues` (SQ tail, CQ head) as `label.dbs.sqN` etc.
    static func observeDoorbellBuffers(_ s: Session, _ label: String, queues: UInt16) throws {
        for (name, page) in [("dbs", shadowPage), ("eis", eventIdxPage)] {
            let b = try s.peek(page, Int(queues) * 8)
            for q in 0..<Int(queues) {
                for (kind, at) in [("sq", 8 * q), ("cq", 8 * q + 4)] {
                    let v = UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
                    s.record("\(label).\(name).\(kind)\(q)", Session.hex32(v))
                }
            }
        }
    }

    /// Writes `entries` at SQ `qid`'s tail, stores the new tail in the shadow
    /// entry only, and writes the old tail to the MMIO doorbell (which wakes
    /// the device without telling it anything new); waits for each command.
    static func shadowSubmit(_ s: Session, _ label: String, _ entries: [SubmissionQueueEntry], qid: UInt16) throws {
        guard var q = s.sqs[qid] else { s.record(label, "no queue \(qid)"); return }
        let stale = q.sqTail
        var cids: [UInt16] = []
        for sqe in entries {
            var e = sqe
            e.cid = s.nextCID
            s.nextCID += 1
            try s.poke(q.sqBase + UInt64(q.sqTail) * 64, e.bytes)
            q.sqTail = (q.sqTail + 1) % q.sqSize
            cids.append(e.cid)
        }
        s.sqs[qid] = q
        try s.poke(shadowPage + 8 * UInt64(qid), withUnsafeBytes(of: UInt32(q.sqTail).littleEndian) { Array($0) })
        try s.write32(R.sqTail(qid), UInt32(stale))
        for (i, cid) in cids.enumerated() {
            s.recordCompletion("\(label)\(i)", try s.wait(cid: cid, qid: qid), dw0: false)
        }
    }

    /// Stores CQ `cqid`'s head, as the session consumed it, in its shadow entry.
    static func shadowCQHead(_ s: Session, cqid: UInt16) throws {
        guard let q = s.cqs[cqid] else { return }
        try s.poke(shadowPage + 8 * UInt64(cqid) + 4, withUnsafeBytes(of: UInt32(q.cqHead).littleEndian) { Array($0) })
    }

    static let doorbellBuffers: [Scenario] = [
        Scenario("dbbuf-config") { s in
            try s.bringUp()
            try s.poke(shadowPage, [UInt8](repeating: 0xEE, count: 8192))
            try s.command("prp1-misaligned", dbbufConfig(shadowPage + 0x800), dw0: false)
            try s.command("prp2-misaligned", dbbufConfig(shadowPage, eventIdxPage + 4), dw0: false)
            try observeDoorbellBuffers(s, "after-refusals", queues: 2)
            try s.command("config", dbbufConfig(), dw0: true)
            try observeDoorbellBuffers(s, "after-config", queues: 3)
            try s.command("identify", Cmd.identify(cns: 1), dw0: false)
            try observeDoorbellBuffers(s, "after-admin", queues: 2)
        },
        Scenario("dbbuf-shadow-io") { s in
            try s.bringUp()
            try s.poke(shadowPage, [UInt8](repeating: 0, count: 8192))
            try s.poke(L.data, [UInt8](repeating: 0x5A, count: 4096))
            try s.command("config", dbbufConfig(), dw0: false)
            try shadowSubmit(s, "shadow-writes", [Cmd.write(slba: 0, blocks: 1), Cmd.write(slba: 1, blocks: 1)], qid: 1)
            try observeDoorbellBuffers(s, "after-writes", queues: 2)
            try shadowCQHead(s, cqid: 1)
            try s.poke(L.data2, [UInt8](repeating: 0, count: 1024))
            try shadowSubmit(s, "shadow-read", [Cmd.read(slba: 0, blocks: 2, prp1: L.data2)], qid: 1)
            try s.observeData("read.data", L.data2, 1024)
            try observeDoorbellBuffers(s, "after-read", queues: 2)
            // A queue pair created after the configuration uses the buffers too.
            _ = try s.createCQ("createcq2", qid: 2, entries: 16)
            _ = try s.createSQ("createsq2", qid: 2, entries: 16, cqid: 2)
            try shadowSubmit(s, "sq2-read", [Cmd.read(slba: 1, blocks: 1, prp1: L.data2)], qid: 2)
            try observeDoorbellBuffers(s, "after-sq2", queues: 3)
            // Deleting it leaves its entries alone.
            try s.deleteSQ("deletesq2", qid: 2)
            try s.deleteCQ("deletecq2", qid: 2)
            try observeDoorbellBuffers(s, "after-delete", queues: 3)
        },
        Scenario("dbbuf-reset") { s in
            try s.bringUp()
            try s.poke(shadowPage, [UInt8](repeating: 0, count: 8192))
            try s.command("config", dbbufConfig(), dw0: false)
            try s.disable()
            try s.enable("reenable.csts")
            try s.command("identify", Cmd.identify(cns: 1), dw0: false)
            try observeDoorbellBuffers(s, "after-reset", queues: 1)
            // The I/O queue is gone with the reset; a new one rings by MMIO only.
            _ = try s.createCQ("createcq1", qid: 1, entries: 16)
            _ = try s.createSQ("createsq1", qid: 1, entries: 16, cqid: 1)
            try s.command("read", Cmd.read(slba: 0, blocks: 1), qid: 1, dw0: false)
            try observeDoorbellBuffers(s, "after-io", queues: 2)
        },
        Scenario("dbbuf-unbacked") { s in
            try s.enable()
            try s.command("prp1-unmapped", dbbufConfig(GuestMemory.unmapped), dw0: false)
        },
    ]
}
