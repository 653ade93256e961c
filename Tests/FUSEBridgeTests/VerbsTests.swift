@testable import FUSEBridge
import NVMeSpec
import Testing

/// `nvmefs cqe`, `show-regs`, `list`'s sizes.
@Suite struct VerbsTests {
    @Test func completionsDecodeOneLineEach() throws {
        let a = CompletionQueueEntry(dw0: 1, sqhd: 5, sqid: 0, cid: 7, phase: true, status: NVMeStatus.invalidOpcode.withDNR)
        let b = CompletionQueueEntry(dw0: 0xFFFF_FFFF, dw1: 2, sqhd: 1, sqid: 3, cid: 0xFFFF, phase: false, status: .success)
        let text = try Verbs.decodeCompletions(a.bytes + b.bytes)
        #expect(text == "cid=7 sqid=0 sqhd=5 phase=1 status=INVALID_OPCODE (0x4001) dw0=0x1 dw1=0x0\n"
                    + "cid=65535 sqid=3 sqhd=1 phase=0 status=SUCCESS (0x0000) dw0=0xffffffff dw1=0x2\n")
        #expect(try Verbs.decodeCompletions([]) == "")
        for n in [1, 15, 17, 31] {
            #expect(throws: ConfigurationError.self) { try Verbs.decodeCompletions([UInt8](repeating: 0, count: n)) }
        }
    }

    @Test func registersWithNvmeCliNames() {
        var bar0 = [UInt8](repeating: 0, count: 4096)
        bar0.withUnsafeMutableBytes { b in
            b.put64(0x0040_0030_0F01_07FF, at: 0x00)  // CAP
            b.put32(0x0001_0400, at: 0x08)            // VS
            b.put32(0x0046_0001, at: 0x14)            // CC
            b.put32(0x1, at: 0x1C)                    // CSTS
            b.put32(0x003F_003F, at: 0x24)            // AQA
            b.put64(0x1_2345_6000, at: 0x28)          // ASQ
            b.put64(0x4000, at: 0x30)                 // ACQ
        }
        let text = Verbs.showRegisters(bar0: bar0, human: false)
        #expect(text.split(separator: "\n").map { String($0.prefix(8)) }
                    == ["cap     ", "version ", "intms   ", "intmc   ", "cc      ", "csts    ", "nssr    ", "aqa     ",
                        "asq     ", "acq     ", "cmbloc  ", "cmbsz   ", "cmbmsc  ", "cmbsts  "])
        #expect(text.contains("cap     : 4000300f0107ff\n") && text.contains("version : 10400\n"))
        #expect(text.contains("cc      : 460001\n") && text.contains("asq     : 123456000\n"))
        let human = Verbs.showRegisters(bar0: bar0, human: true)
        #expect(human.contains("Ready (RDY)") && human.contains("Maximum Queue Entries Supported (MQES)"))
        // A short bar0 reads as zeros rather than past its end.
        #expect(Verbs.showRegisters(bar0: [], human: false).hasPrefix("cap     : 0\n"))
    }

    @Test func sizesInDecimalUnits() {
        #expect(Verbs.decimal(0) == "0.00 B")
        #expect(Verbs.decimal(1_048_576) == "1.05 MB")
        #expect(Verbs.decimal(1 << 30) == "1.07 GB")
        #expect(Verbs.decimal(999) == "999.00 B")
        #expect(Verbs.parseNumber("0x10") == 16 && Verbs.parseNumber("17") == 17 && Verbs.parseNumber("x") == nil)
    }
}
