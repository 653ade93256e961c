import BlockIO
import NVMeSpec

public enum RandomSequences {
    public static func scenarios(count: Int, seed: UInt64, commands: Int) -> [Scenario] {
        (0..<count).map { i in
            let s = seed &+ UInt64(i) &* 0x1000_0000_01
            return Scenario("random-\(seed)-\(i)") { session in try run(session, seed: s, commands: commands) }
        }
    }

    static func pick<T>(_ g: inout SeededGenerator, _ xs: [T]) -> T { xs[Int(g.next() % UInt64(xs.count))] }

    /// A data pointer: mostly good, sometimes hostile.
    static func pointer(_ g: inout SeededGenerator) -> UInt64 {
        switch g.next() % 10 {
        case 0: return 0
        case 1: return GuestMemory.unmapped + (g.next() % 16) * 0x1000
        case 2: return Session.Layout.data + (g.next() % 0x2000) * 4     // dword aligned, any offset
        case 3: return Session.Layout.data + 1                           // not dword aligned
        case 4: return UInt64(GuestMemory.size) - 0x1000                 // last page of RAM
        default: return Session.Layout.data + (g.next() % 64) * 0x1000
        }
    }

    /// True when an I/O command's PRP data may reach past guest RAM: its
    /// PRP1 page runs out of RAM, its PRP2 page does, or it needs a PRP
    /// list that is not the sequence's list of good pointers.
    static func mayRunPastMemory(_ e: SubmissionQueueEntry) -> Bool {
        let length = (UInt64(e.cdw12 & 0xFFFF) + 1) * 512
        if e.psdt == 1 || e.psdt == 2 {
            // SGL1 from the PRP fields: a Data Block reaches prp1 + its length; a
            // segment chain is read from memory the sequence does not control.
            let type = e.prp2 >> 60
            guard type == 0 else { return type == 2 || type == 3 }
            return e.prp1 &+ min(length, e.prp2 & 0xFFFF_FFFF) > UInt64(GuestMemory.size)
        }
        guard e.psdt == 0 else { return false }
        let first = min(length, 0x1000 - e.prp1 % 0x1000)
        let ram = UInt64(GuestMemory.size)
        if e.prp1 &+ first > ram { return true }
        let rest = length - first
        if rest == 0 { return false }
        if rest <= 0x1000 { return e.prp2 &+ rest > ram }
        return e.prp2 != Session.Layout.lists
    }

    /// The feature (Get/Set Features) or CNS (Identify) of an admin command,
    /// as a label suffix, so that deliberate differences can name them.
    static func selector(_ e: SubmissionQueueEntry, admin: Bool) -> String {
        guard admin else { return "" }
        switch e.opcode {
        case 0x09: return String(format: "-fid%02x", Int(e.cdw10 & 0xFF))
        case 0x0A:
            // SEL 4-7 are reserved: see D-getfeat-sel.
            return String(format: "-fid%02x", Int(e.cdw10 & 0xFF)) + ((e.cdw10 >> 8) & 7 >= 4 ? "-selreserved" : "")
        case 0x06: return String(format: "-cns%02x", Int(e.cdw10 & 0xFF))
        default: return ""
        }
    }

    static func nsid(_ g: inout SeededGenerator) -> UInt32 {
        pick(&g, [1, 1, 1, 1, 0, 2, 0xFFFF_FFFF, 0xFFFF_FFFE, UInt32(truncatingIfNeeded: g.next())])
    }

    /// Plausible-but-hostile entries; the queue pair 1 is never deleted and
    /// no AER is left outstanding, so every command must complete.
    static func run(_ s: Session, seed: UInt64, commands: Int) throws {
        var g = SeededGenerator(seed: seed)
        try s.bringUp()
        // A PRP list page of good pointers for PRP2.
        try s.poke64(Session.Layout.lists, (0..<512).map { Session.Layout.data + 0x1000 * UInt64($0 + 1) })
        let adminOps: [UInt8] = [0x02, 0x06, 0x08, 0x09, 0x0A, 0x18, 0x05, 0x01, 0x03, 0x07, 0x0B, 0x0D, 0x7F, 0xC0, 0xFF]
        let ioOps: [UInt8] = [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x11, 0x19, 0x7E, 0x80, 0xFF]
        for i in 0..<commands {
            let admin = g.next() % 3 == 0
            var e = SubmissionQueueEntry(opcode: admin ? pick(&g, adminOps) : pick(&g, ioOps))
            e.nsid = nsid(&g)
            e.prp1 = pointer(&g)
            e.prp2 = g.next() % 3 == 0 ? Session.Layout.lists : pointer(&g)
            if g.next() % 8 == 0 { e.psdt = UInt8(g.next() % 4) }
            if g.next() % 16 == 0 { e.fuse = UInt8(g.next() % 4) }
            if admin {
                e.cdw10 = UInt32(truncatingIfNeeded: g.next()) & pick(&g, [0xFF, 0xFFFF, 0x8000_00FF, 0xFFFF_FFFF, 0x0FFF_00FF])
                e.cdw11 = UInt32(truncatingIfNeeded: g.next()) & pick(&g, [0, 0xF, 0xFFFF, 0xFFFF_FFFF])
                e.cdw12 = g.next() % 4 == 0 ? UInt32(truncatingIfNeeded: g.next()) : 0
                // Queue creation: only ids 2...8 (never the pair this sequence uses).
                if e.opcode == 0x05 || e.opcode == 0x01 {
                    let qid = UInt32(2 + g.next() % 7)
                    e.cdw10 = UInt32(g.next() % 64) << 16 | qid
                    e.cdw11 = (e.opcode == 0x05 ? UInt32(g.next() % 4) : UInt32(1 + g.next() % 2) << 16) | UInt32(g.next() % 2)
                    e.prp1 = Session.Layout.sq(UInt16(qid)) + (g.next() % 4 == 0 ? 0x10 : 0)
                }
                // Set Features Number of Queues (FID 7) only before any I/O queue exists: skip; and not Timestamp reads.
                if e.opcode == 0x0A && e.cdw10 & 0xFF == 0x0E { e.cdw10 &= ~0xFF }
            } else {
                let r1 = g.next() % 8192, r2 = g.next()
                let slba: UInt64 = pick(&g, [0, r1, 8191, 8192, 8190, r2])
                e.slba = slba
                e.cdw12 = UInt32(pick(&g, [0, 1, 7, 8, 15, 63, 255, 1023, 0xFFFF]))
                    | (g.next() % 8 == 0 ? UInt32(truncatingIfNeeded: g.next()) & 0xFFFF_0000 : 0)
                e.cdw13 = g.next() % 8 == 0 ? UInt32(truncatingIfNeeded: g.next()) : 0
                if e.opcode == 0x09 { e.cdw10 = UInt32(g.next() % 4); e.cdw11 = pick(&g, [0, 4, 2]) }
            }
            // A Write whose data may lie outside guest RAM would leave the two
            // images different (QEMU writes what it could not read, nvmefs
            // refuses: D-dma-unbacked), and every later read would differ too.
            if !admin && e.opcode == 0x01 && ([e.prp1, e.prp2].contains { $0 >= GuestMemory.unmapped } || mayRunPastMemory(e)) {
                e.psdt = 0
                e.prp1 = Session.Layout.data
                e.prp2 = Session.Layout.lists
            }
            // Tagged when a data pointer is unbacked: see D-dma-unbacked in docs/CONFORMANCE.md.
            let unbacked = [e.prp1, e.prp2].contains { $0 >= GuestMemory.unmapped } || (!admin && mayRunPastMemory(e))
            // Tagged when an I/O command other than Flush names the broadcast NSID: see D-broadcast-nsid.
            let broadcast = !admin && e.opcode != 0x00 && e.nsid == 0xFFFF_FFFF
            // Tagged when PRP2 is not dword aligned: see D-prp-dword.
            let oddPRP2 = e.psdt == 0 && e.prp2 & 3 != 0
            // Tagged when PSDT is the reserved 11b: see D-psdt-reserved.
            // Tagged when an I/O command is half of a fused pair (FUSE 01b or
            // 10b), alone in its doorbell write: see D-fused.
            let fusedHalf = !admin && (e.fuse == 1 || e.fuse == 2)
            // Tagged when a Verify is longer than QEMU's VSL (512 KiB of the
            // namespace's 512-byte blocks): see D-verify-size.
            let verifyLong = !admin && e.opcode == 0x0C && (e.cdw12 & 0xFFFF) + 1 > 1024
            let label = String(format: "cmd%02d-%@-%02x", i, admin ? "admin" : "io", Int(e.opcode)) + selector(e, admin: admin)
                + (unbacked ? "-unbacked" : "") + (broadcast ? "-bcast" : "") + (oddPRP2 ? "-prp2odd" : "")
                + (e.psdt == 3 ? "-psdt3" : "") + (!admin && e.opcode == 0x09 && e.cdw11 & 4 != 0 ? "-deallocate" : "")
                + (fusedHalf ? "-fused" : "") + (verifyLong ? "-verifylong" : "")
            let c = try s.command(label, e, qid: admin ? 0 : 1)
            // Write Uncorrectable marks LBAs on nvmefs only (D-write-uncorrectable): a
            // Write Zeroes of the same range clears the marks, so later reads agree.
            if !admin && e.opcode == 0x04 {
                var z = SubmissionQueueEntry(opcode: 0x08, nsid: e.nsid)
                z.slba = e.slba; z.nlb = e.nlb
                try s.command(label + "-clear", z, qid: 1)
            }
            // Admin data (Identify, logs) legitimately differs between the devices (D-identity and
            // others): clear the pages it may have landed in, so that a later Write cannot carry
            // it into the image.
            if admin, let c, c.status.isSuccess {
                try s.poke(Session.Layout.data, [UInt8](repeating: 0, count: 0x4_1000))
                try s.poke(UInt64(GuestMemory.size) - 0x1000, [UInt8](repeating: 0, count: 0x1000))
            }
            if !admin && e.opcode == 0x02, let c, c.status.isSuccess {
                let len = min(Int(e.cdw12 & 0xFFFF) + 1, 8) * 512
                let inPage = min(len, 4096 - Int(e.prp1 % 4096))
                if e.psdt == 0 && e.prp1 >= Session.Layout.data && e.prp1 + UInt64(inPage) < UInt64(GuestMemory.size) {
                    try s.observeData(label + ".data", e.prp1, inPage)
                }
            }
        }
        try s.observe32("csts", Session.Register.csts)
    }
}
