import NVMeSpec

/// Text formatting and parsing shared by the device's files: fixed-width
/// hex, the number syntax of register and doorbell writes, xxd-style dumps.
enum Text {
    /// "0x" + `digits` lowercase hex digits (more if the value needs them).
    static func hex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
        let s = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
    }

    /// "0x" + minimal hex.
    static func hex<T: BinaryInteger>(_ value: T) -> String { NVMeSpec.hex(value) }

    /// Why a number could not be taken.
    enum NumberError: Error { case malformed, tooLarge }

    /// Parses "0x" hex (also "0X") or decimal digits into a UInt64.
    /// - Throws: `.malformed` for anything else (empty, signs, junk),
    ///   `.tooLarge` for a well-formed number above `UInt64.max`.
    static func parseNumber(_ text: Substring) throws(NumberError) -> UInt64 {
        var digits = text
        var radix: UInt64 = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            digits = digits.dropFirst(2)
            radix = 16
        }
        guard !digits.isEmpty else { throw .malformed }
        var value: UInt64 = 0
        var overflow = false, sawDigit = false
        for c in digits.utf8 {
            let d: UInt64
            switch c {
            case 0x30...0x39: d = UInt64(c - 0x30)
            case 0x61...0x66 where radix == 16: d = UInt64(c - 0x61 + 10)
            case 0x41...0x46 where radix == 16: d = UInt64(c - 0x41 + 10)
            case 0x5F: continue  // "_" separators, as in 0x0046_0001
            default: throw .malformed
            }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { overflow = true }
            value = a
            sawDigit = true
        }
        guard sawDigit else { throw .malformed }  // "_" alone is not a number
        if overflow { throw .tooLarge }
        return value
    }

    /// The value of one register/doorbell write: a number with optional
    /// surrounding blanks and trailing newline, at most `max`.
    /// - Throws: EINVAL when malformed, ERANGE when above `max`.
    static func parseValue(_ text: String, max: UInt64) throws(FileError) -> UInt64 {
        let trimmed = trim(Substring(text))
        let value: UInt64
        do throws(NumberError) {
            value = try parseNumber(trimmed)
        } catch .tooLarge {
            throw .outOfRange
        } catch {
            throw .invalid
        }
        guard value <= max else { throw .outOfRange }
        return value
    }

    /// `text` without leading and trailing spaces, tabs, CR and LF.
    static func trim(_ text: Substring) -> Substring {
        // "\r\n" is one Character (grapheme cluster), equal to neither "\r" nor "\n".
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = text.firstIndex(where: { !blank($0) }),
              let last = text.lastIndex(where: { !blank($0) }) else { return "" }
        return text[first...last]
    }

    /// An xxd-compatible dump (`xxd -r` turns it back into the bytes):
    /// "00000000: 4865 6c6c ...  Hello...", 16 bytes a line.
    static func xxd(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 16 * 68 + 68)
        var offset = 0
        while offset < bytes.count {
            let line = bytes[offset..<min(bytes.count, offset + 16)]
            for shift in stride(from: 28, through: 0, by: -4) { out.append(digits[(offset >> shift) & 0xF]) }
            out.append(0x3A); out.append(0x20)
            var width = 0
            for (i, b) in line.enumerated() {
                out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xF)])
                width += 2
                if i % 2 == 1 && i != 15 { out.append(0x20); width += 1 }
            }
            out.append(contentsOf: [UInt8](repeating: 0x20, count: 39 - width + 2))
            for b in line { out.append(b >= 0x20 && b < 0x7F ? b : 0x2E) }
            out.append(0x0A)
            offset += 16
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Seconds with microseconds, as tracefs prints timestamps.
    static func timestamp(nanoseconds: UInt64) -> String {
        let micro = (nanoseconds / 1000) % 1_000_000
        let m = String(micro)
        return String(nanoseconds / 1_000_000_000) + "." + String(repeating: "0", count: 6 - m.count) + m
    }

    /// "yes"/"no".
    static func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }
}

/// Field-by-field decoding of the controller registers (like `nvme show-regs -H`).
enum RegisterDecoder {
    /// The whole register set as text. `read(offset, size)` reads one register.
    static func render(read: (Int, Int) -> UInt64) -> String {
        let cap = ControllerCapabilities(raw: read(Int(RegisterOffset.cap), 8))
        let vs = Version(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.vs), 4)))
        let intms = UInt32(truncatingIfNeeded: read(Int(RegisterOffset.intms), 4))
        let cc = ControllerConfiguration(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.cc), 4)))
        let csts = ControllerStatus(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.csts), 4)))
        let aqa = AdminQueueAttributes(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.aqa), 4)))
        let asq = read(Int(RegisterOffset.asq), 8)
        let acq = read(Int(RegisterOffset.acq), 8)
        let cmbloc = CMBLocation(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.cmbloc), 4)))
        let cmbsz = CMBSize(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.cmbsz), 4)))
        let cmbmsc = CMBMemorySpaceControl(raw: read(Int(RegisterOffset.cmbmsc), 8))
        let cmbsts = CMBStatus(raw: UInt32(truncatingIfNeeded: read(Int(RegisterOffset.cmbsts), 4)))
        var o = ""
        func reg(_ name: String, _ value: String) { o += name.padding(6) + ": " + value + "\n" }
        func field(_ name: String, _ value: String) { o += "\t" + name.padding(44) + ": " + value + "\n" }

        reg("cap", Text.hex(cap.raw, digits: 16))
        field("Controller Memory Buffer Supported (CMBS)", cap.cmbs ? "supported" : "not supported")
        field("Persistent Memory Region Supported (PMRS)", cap.pmrs ? "supported" : "not supported")
        field("Memory Page Size Maximum (MPSMAX)", "\(4096 << Int(cap.mpsmax)) bytes")
        field("Memory Page Size Minimum (MPSMIN)", "\(4096 << Int(cap.mpsmin)) bytes")
        field("Boot Partition Support (BPS)", Text.yesNo(cap.bps))
        field("Command Sets Supported (CSS)", "NVM command set " + (cap.css & 1 != 0 ? "supported" : "not supported")
              + " (" + Text.hex(cap.css) + ")")
        field("NVM Subsystem Reset Supported (NSSRS)", Text.yesNo(cap.nssrs))
        field("Doorbell Stride (DSTRD)", "\(4 << Int(cap.dstrd)) bytes")
        field("Timeout (TO)", "\(Int(cap.to) * 500) ms")
        field("Arbitration Mechanism Supported (AMS)",
              "weighted round robin with urgent " + (cap.ams & 1 != 0 ? "supported" : "not supported")
              + ", vendor specific " + (cap.ams & 2 != 0 ? "supported" : "not supported"))
        field("Contiguous Queues Required (CQR)", Text.yesNo(cap.cqr))
        field("Maximum Queue Entries Supported (MQES)", "\(Int(cap.mqes) + 1)")

        reg("vs", Text.hex(vs.raw, digits: 8))
        field("NVMe specification version (VER)", "\(vs.major).\(vs.minor).\(vs.tertiary)")

        reg("intms", Text.hex(intms, digits: 8))
        field("Interrupt Vector Mask Set (IVMS)", Text.hex(intms, digits: 8))
        reg("intmc", Text.hex(intms, digits: 8))
        field("Interrupt Vector Mask Clear (IVMC)", Text.hex(intms, digits: 8))

        reg("cc", Text.hex(cc.raw, digits: 8))
        field("I/O Completion Queue Entry Size (IOCQES)", "\(1 << Int(cc.iocqes)) bytes")
        field("I/O Submission Queue Entry Size (IOSQES)", "\(1 << Int(cc.iosqes)) bytes")
        let shn = ["no notification", "normal shutdown", "abrupt shutdown", "reserved"][Int(cc.shn)]
        field("Shutdown Notification (SHN)", shn)
        let ams = cc.ams == 0 ? "round robin" : cc.ams == 1 ? "weighted round robin with urgent" :
            cc.ams == 7 ? "vendor specific" : "reserved (\(cc.ams))"
        field("Arbitration Mechanism Selected (AMS)", ams)
        field("Memory Page Size (MPS)", "\(4096 << Int(cc.mps)) bytes")
        field("I/O Command Set Selected (CSS)", cc.css == 0 ? "NVM command set" : "reserved (\(cc.css))")
        field("Enable (EN)", Text.yesNo(cc.en))

        reg("csts", Text.hex(csts.raw, digits: 8))
        field("Processing Paused (PP)", Text.yesNo(csts.pp))
        field("NVM Subsystem Reset Occurred (NSSRO)", Text.yesNo(csts.nssro))
        let shst = ["normal operation", "shutdown processing occurring", "shutdown processing complete",
                    "reserved"][Int(csts.shst)]
        field("Shutdown Status (SHST)", shst)
        field("Controller Fatal Status (CFS)", Text.yesNo(csts.cfs))
        field("Ready (RDY)", Text.yesNo(csts.rdy))

        reg("nssr", Text.hex(0, digits: 8))
        field("NVM Subsystem Reset Control (NSSRC)", "write 0x4e564d65 (\"NVMe\") to reset; reads as 0")

        reg("aqa", Text.hex(aqa.raw, digits: 8))
        field("Admin Completion Queue Size (ACQS)", "\(Int(aqa.acqs) + 1)")
        field("Admin Submission Queue Size (ASQS)", "\(Int(aqa.asqs) + 1)")

        reg("asq", Text.hex(asq, digits: 16))
        field("Admin Submission Queue Base (ASQB)", Text.hex(asq & ~0xFFF, digits: 16))
        reg("acq", Text.hex(acq, digits: 16))
        field("Admin Completion Queue Base (ACQB)", Text.hex(acq & ~0xFFF, digits: 16))

        reg("cmbloc", Text.hex(cmbloc.raw, digits: 8))
        field("Offset (OFST)", Text.hex(cmbloc.ofst))
        field("Base Indicator Register (BIR)", "\(cmbloc.bir)")
        reg("cmbsz", Text.hex(cmbsz.raw, digits: 8))
        if cmbsz.raw == 0 {
            field("Controller Memory Buffer", cap.cmbs ? "not described (set cmbmsc CRE, bit 0)" : "not supported")
        } else {
            field("Size (SZ)", "\(cmbsz.sz) units")
            field("Size Units (SZU)", "\(4096 << (4 * Int(cmbsz.szu))) bytes")
            field("Total size", "\(cmbsz.bytes) bytes")
            field("Write Data Support (WDS)", Text.yesNo(cmbsz.wds))
            field("Read Data Support (RDS)", Text.yesNo(cmbsz.rds))
            field("PRP SGL List Support (LISTS)", Text.yesNo(cmbsz.lists))
            field("Completion Queue Support (CQS)", Text.yesNo(cmbsz.cqs))
            field("Submission Queue Support (SQS)", Text.yesNo(cmbsz.sqs))
        }
        reg("cmbmsc", Text.hex(cmbmsc.raw, digits: 16))
        field("Controller Base Address (CBA)", Text.hex(cmbmsc.cba, digits: 16))
        field("Controller Memory Space Enable (CMSE)", Text.yesNo(cmbmsc.cmse))
        field("Capabilities Registers Enabled (CRE)", Text.yesNo(cmbmsc.cre))
        reg("cmbsts", Text.hex(cmbsts.raw, digits: 8))
        field("Controller Base Address Invalid (CBAI)", Text.yesNo(cmbsts.cbai))
        return o
    }
}

extension String {
    /// Pads with spaces on the right to `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
