import HostMemory
import NVMeController
import NVMeSpec
import BlockIO

/// `mem`: user host memory, file offset = host address; `cmb`: the
/// Controller Memory Buffer, file offset = offset in the CMB.
enum MemoryFiles {
    static func mem(_ memory: AnonymousMemory) -> Node {
        binary("mem", memory, about: "user host memory, addresses 0..size-1 (file offset = address); "
                 + "queues and PRP/SGL data live here with --host none")
    }

    static func cmb(_ memory: AnonymousMemory) -> Node {
        binary("cmb", memory, about: "Controller Memory Buffer (--cmb): file offset = CMB offset; commands reach it at "
                 + "regs/cmbmsc's CBA + offset once CRE and CMSE are set; queues and data may live there")
    }

    static func binary(_ name: String, _ memory: AnonymousMemory, about: String) -> Node {
        let size = memory.size
        return .file(name, about: about,
                     BinaryFile(mode: 0o644, size: { UInt64(size) }, read: { buffer, offset in
                         guard offset < UInt64(size) else { return 0 }
                         let n = min(buffer.count, size - Int(offset))
                         buffer.baseAddress!.copyMemory(from: memory.pointer + Int(offset), byteCount: n)
                         return n
                     }, write: { data, offset throws(FileError) in
                         guard offset < UInt64(size) else { throw .noSpace }
                         let n = min(data.count, size - Int(offset))
                         if n > 0 { (memory.pointer + Int(offset)).copyMemory(from: data.baseAddress!, byteCount: n) }
                         return n
                     }))
    }
}

/// `queues/`: one file per existing queue, decoded from host memory.
enum QueueFiles {
    static func directory(_ d: DeviceContext) -> Node {
        // Nodes are kept by name so a queue's file keeps its inode number.
        let cache = Locked<[String: Node]>([:])
        let dir = Directory(listing: {
            let names = d.controller.queueSnapshots().map { name($0.kind, $0.qid) }
            return cache.withLock { nodes in
                names.map { n in
                    if let node = nodes[n] { return node }
                    let completion = n.hasPrefix("cq")
                    let qid = UInt16(n.dropFirst(2))!
                    let node = Node.file(n, GeneratedFile(mode: 0o444, text: { () throws(FileError) -> String in
                        guard let s = d.controller.queueSnapshots().first(where: {
                            $0.qid == qid && ($0.kind == .completion) == completion
                        }) else { throw .notFound }
                        return render(s, d)
                    }))
                    nodes[n] = node
                    return node
                }
            }
        })
        return .directory("queues", about: "sqN/cqN for every existing queue: state line, then every slot decoded "
                            + "from host memory (H = head, T = tail); reading has no side effect", dir)
    }

    static func name(_ kind: QueueSnapshot.Kind, _ qid: UInt16) -> String {
        (kind == .submission ? "sq" : "cq") + String(qid)
    }

    static func render(_ s: QueueSnapshot, _ d: DeviceContext) -> String {
        let owner = d.hostOwns(qid: Int(s.qid)) ? "builtin" : "user"
        let entry = s.kind == .submission ? SubmissionQueueEntry.size : CompletionQueueEntry.size
        var out = name(s.kind, s.qid) + " base=" + Text.hex(s.base, digits: 16) + " size=\(s.size)"
            + " head=\(s.head) tail=\(s.tail)"
        if s.kind == .submission {
            out += " cqid=\(s.cqid) outstanding=\(s.outstanding)"
        } else {
            out += " phase=\(s.phase ? 1 : 0) vector=\(s.vector) ien=\(s.interruptsEnabled ? 1 : 0)"
                + " pending=\(s.outstanding)"
        }
        out += " doorbell=\(s.lastDoorbell) owner=\(owner)\n"
        let width = String(max(0, s.size - 1)).count
        var bytes = [UInt8](repeating: 0, count: entry)
        for slot in 0..<s.size {
            let marks = (slot == s.head ? "H" : " ") + (slot == s.tail ? "T" : " ")
            let index = String(repeating: " ", count: width - String(slot).count) + String(slot)
            let ok = bytes.withUnsafeMutableBytes { d.controller.space.read(s.base + UInt64(slot * entry), into: $0) }
            out += "[" + index + "] " + marks + " "
            guard ok else { out += "(not in host memory)\n"; continue }
            if bytes.allSatisfy({ $0 == 0 }) { out += "(zero)\n"; continue }
            if s.kind == .submission {
                out += sqeLine(bytes, admin: s.qid == 0) + "\n"
            } else {
                out += cqeLine(bytes) + "\n"
            }
        }
        return out
    }

    /// One submission entry: opcode name, cid, nsid, data pointer, cdw10-15.
    static func sqeLine(_ bytes: [UInt8], admin: Bool) -> String {
        guard let e = SubmissionQueueEntry(bytes: bytes) else { return "(short entry)" }
        let name = admin ? AdminOpcode(e.opcode).name : NVMOpcode(e.opcode).name
        var out = "opcode=" + Text.hex(e.opcode, digits: 2) + " " + name + " cid=\(e.cid) nsid=\(e.nsid)"
        if e.fuse != 0 { out += " fuse=\(e.fuse)" }
        if e.psdt == 0 {
            out += " prp1=" + Text.hex(e.prp1) + " prp2=" + Text.hex(e.prp2)
        } else {
            // DPTR holds SGL entry 1 (NVMe 1.4 §4.4); bytes 24-39.
            let sgl = SGLDescriptor(low: e.prp1, high: e.prp2)
            out += " psdt=\(e.psdt) sgl=" + String(describing: sgl.type) + " addr=" + Text.hex(sgl.address)
                + " len=\(sgl.length)"
        }
        if e.mptr != 0 { out += " mptr=" + Text.hex(e.mptr) }
        for (i, v) in [e.cdw10, e.cdw11, e.cdw12, e.cdw13, e.cdw14, e.cdw15].enumerated() {
            out += " cdw\(10 + i)=" + Text.hex(v)
        }
        return out
    }

    /// One completion entry: cid, sqid, sqhd, phase, status, dw0.
    static func cqeLine(_ bytes: [UInt8]) -> String {
        guard let e = CompletionQueueEntry(bytes: bytes) else { return "(short entry)" }
        return "cid=\(e.cid) sqid=\(e.sqid) sqhd=\(e.sqhd) phase=\(e.phase ? 1 : 0) status=\(e.status.name) ("
            + Text.hex(e.status.raw, digits: 4) + ") dw0=" + Text.hex(e.dw0) + " dw1=" + Text.hex(e.dw1)
    }
}

/// `interrupts` and `stats`.
enum InspectFiles {
    static func interrupts(_ d: DeviceContext) -> Node {
        .file("interrupts", about: "per interrupt vector: raised count, masked (INTMS), pending",
              GeneratedFile(mode: 0o444, text: {
                  d.controller.interruptSnapshots().map { v in
                      "vector=\(v.vector) raised=\(v.raised) masked=\(v.masked ? 1 : 0) pending=\(v.pending ? 1 : 0)\n"
                  }.joined()
              }))
    }

    static func stats(_ d: DeviceContext) -> Node {
        .file("stats", about: "controller-wide counters: commands per opcode, errors, doorbells",
              GeneratedFile(mode: 0o444, text: {
                  let s = d.controller.statistics()
                  var out = "errors: \(s.errors)\n"
                  out += "doorbell writes: \(s.doorbellWrites)\n"
                  out += "invalid doorbell writes: \(s.invalidDoorbellWrites)\n"
                  out += "guest errors: \(s.guestErrors)\n"
                  out += "completions posted: \(s.completionsPosted)\n"
                  out += "admin commands: \(s.adminCommands.values.reduce(0, +))\n"
                  out += "io commands: \(s.ioCommands.values.reduce(0, +))\n"
                  for (op, n) in s.adminCommands.sorted(by: { $0.key < $1.key }) {
                      out += "admin " + AdminOpcode(op).name + " (" + Text.hex(op, digits: 2) + "): \(n)\n"
                  }
                  for (op, n) in s.ioCommands.sorted(by: { $0.key < $1.key }) {
                      out += "io " + NVMOpcode(op).name + " (" + Text.hex(op, digits: 2) + "): \(n)\n"
                  }
                  return out
              }))
    }
}
