import NVMeController
import NVMeSpec

/// `bar0`, `regs/` and `doorbells/` (CONTRACT §3): the register space as MMIO.
enum RegisterFiles {
    /// One register file: name, offset, width in bytes, writable.
    struct Register {
        let name: String
        let offset: Int
        let size: Int
        let writable: Bool
        let about: String
    }

    /// NVMe 1.4 §3.1, Figure 78.
    static let registers: [Register] = [
        Register(name: "cap", offset: Int(RegisterOffset.cap), size: 8, writable: false,
                 about: "Controller Capabilities (read-only)"),
        Register(name: "vs", offset: Int(RegisterOffset.vs), size: 4, writable: false, about: "Version (read-only)"),
        Register(name: "intms", offset: Int(RegisterOffset.intms), size: 4, writable: true,
                 about: "Interrupt Mask Set: write bits to mask vectors; reads the mask"),
        Register(name: "intmc", offset: Int(RegisterOffset.intmc), size: 4, writable: true,
                 about: "Interrupt Mask Clear: write bits to unmask vectors; reads the mask"),
        Register(name: "cc", offset: Int(RegisterOffset.cc), size: 4, writable: true,
                 about: "Controller Configuration (EN 0->1 enables, 1->0 resets; SHN shuts down)"),
        Register(name: "csts", offset: Int(RegisterOffset.csts), size: 4, writable: true,
                 about: "Controller Status (NSSRO is write-1-to-clear)"),
        Register(name: "nssr", offset: Int(RegisterOffset.nssr), size: 4, writable: true,
                 about: "NVM Subsystem Reset: write 0x4e564d65 to reset; reads 0"),
        Register(name: "aqa", offset: Int(RegisterOffset.aqa), size: 4, writable: true,
                 about: "Admin Queue Attributes (ACQS 27:16, ASQS 11:0, 0's based)"),
        Register(name: "asq", offset: Int(RegisterOffset.asq), size: 8, writable: true,
                 about: "Admin Submission Queue base address"),
        Register(name: "acq", offset: Int(RegisterOffset.acq), size: 8, writable: true,
                 about: "Admin Completion Queue base address"),
        Register(name: "cmbloc", offset: Int(RegisterOffset.cmbloc), size: 4, writable: false,
                 about: "Controller Memory Buffer Location (read-only)"),
        Register(name: "cmbsz", offset: Int(RegisterOffset.cmbsz), size: 4, writable: false,
                 about: "Controller Memory Buffer Size (read-only)"),
        Register(name: "cmbmsc", offset: Int(RegisterOffset.cmbmsc), size: 8, writable: true,
                 about: "CMB Memory Space Control: CRE bit 0 shows cmbloc/cmbsz, CMSE bit 1 places the CMB at CBA (63:12)"),
        Register(name: "cmbsts", offset: Int(RegisterOffset.cmbsts), size: 4, writable: false,
                 about: "CMB Status: CBAI bit 0 = the last CBA was unusable (read-only)"),
    ]

    static func directory(_ d: DeviceContext) -> Node {
        var children = registers.map { register(d, $0) }
        children.append(.file("decoded", about: "every register decoded field by field (like nvme show-regs -H)",
                              GeneratedFile(mode: 0o444, text: {
                                  RegisterDecoder.render { d.controller.mmioRead(offset: $0, size: $1) }
                              })))
        return .directory("regs", about: "one text file per register: reads 0x + fixed-width hex, "
                            + "writes 0x hex or decimal (EINVAL malformed, ERANGE too large, EACCES read-only)",
                          children)
    }

    static func register(_ d: DeviceContext, _ r: Register) -> Node {
        let digits = 2 * r.size
        let maxValue: UInt64 = r.size == 8 ? .max : UInt64(UInt32.max)
        let path = "regs/" + r.name
        var store: (@Sendable (String) throws(FileError) -> Void)?
        if r.writable {
            store = { (text: String) throws(FileError) -> Void in
                let value = try parseWrite(d, path, text, max: maxValue)
                d.controller.mmioWrite(offset: r.offset, value: value, size: r.size)
            }
        }
        return .file(r.name, about: r.about,
                     GeneratedFile(mode: r.writable ? 0o644 : 0o444, text: {
                         Text.hex(d.controller.mmioRead(offset: r.offset, size: r.size), digits: digits) + "\n"
                     }, store: store))
    }

    /// A register or doorbell write's value; a refusal is logged and traced.
    static func parseWrite(_ d: DeviceContext, _ path: String, _ text: String, max: UInt64) throws(FileError) -> UInt64 {
        do {
            return try Text.parseValue(text, max: max)
        } catch {
            let reason = error == .outOfRange ? "value \(Text.trim(Substring(text))) does not fit in the register"
                                              : "not a 0x hex or decimal number"
            throw d.refuse(path, error, reason)
        }
    }

    /// `bar0`: reads of any size and offset (no side effects); writes of
    /// exactly 4 or 8 bytes at an aligned offset are one MMIO write.
    static func bar0(_ d: DeviceContext) -> Node {
        let size = d.controller.bar0Size
        return .file("bar0", about: "binary register space (registers 0x0-0xfff, doorbells from 0x1000): any read; "
                        + "aligned 4- or 8-byte writes are MMIO writes, others EINVAL",
                     BinaryFile(mode: 0o644, size: { UInt64(size) }, read: { buffer, offset in
                         guard offset < UInt64(size) else { return 0 }
                         let bytes = d.controller.readBAR(offset: Int(offset), count: buffer.count)
                         buffer.copyBytes(from: bytes)
                         return bytes.count
                     }, write: { data, offset throws(FileError) in
                         guard data.count == 4 || data.count == 8, offset % UInt64(data.count) == 0 else {
                             throw d.refuse("bar0", .invalid, "\(data.count)-byte write at \(Text.hex(offset)): "
                                             + "only aligned 4- or 8-byte writes are MMIO writes")
                         }
                         guard offset + UInt64(data.count) <= UInt64(size) else {
                             throw d.refuse("bar0", .invalid, "write at \(Text.hex(offset)) past the end of BAR0")
                         }
                         let o = Int(offset)
                         if o >= 0x1000 {
                             // 8 bytes at an 8-aligned offset cover one SQ/CQ pair.
                             let qid = (o - 0x1000) / 8
                             if d.hostOwns(qid: qid) {
                                 throw d.refuse("bar0", .busy, "doorbell of queue \(qid) belongs to the built-in host")
                             }
                         }
                         var value: UInt64 = 0
                         for i in 0..<data.count { value |= UInt64(data[i]) << (8 * UInt64(i)) }
                         d.controller.mmioWrite(offset: o, value: value, size: data.count)
                         return data.count
                     }))
    }

    /// `doorbells/sqN_tail` and `cqN_head` for N = 0...--queues.
    static func doorbells(_ d: DeviceContext) -> Node {
        var children: [Node] = []
        for qid in 0...d.configuration.queues {
            for completion in [false, true] {
                let name = completion ? "cq\(qid)_head" : "sq\(qid)_tail"
                let offset = Int(completion ? RegisterOffset.cqHeadDoorbell(UInt16(qid))
                                            : RegisterOffset.sqTailDoorbell(UInt16(qid)))
                children.append(.file(name, GeneratedFile(mode: 0o644, text: {
                    Text.hex(d.controller.doorbellValue(qid: qid, completion: completion) ?? 0, digits: 8) + "\n"
                }, store: { text throws(FileError) in
                    let path = "doorbells/" + name
                    let value = try parseWrite(d, path, text, max: UInt64(UInt32.max))
                    if d.hostOwns(qid: qid) {
                        throw d.refuse(path, .busy, "queue \(qid) belongs to the built-in host")
                    }
                    d.controller.mmioWrite(offset: offset, value: value, size: 4)
                })))
            }
        }
        return .directory("doorbells", about: "sqN_tail and cqN_head: write a number to ring (one MMIO write), "
                            + "read the last value written; the built-in host's queues refuse writes (EBUSY)",
                          children)
    }
}
