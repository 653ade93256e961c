@testable import FUSEBridge
import NVMeSpec
import Testing

/// Golden vectors for the register decode and the queue entry lines.
@Suite("Register and queue entry rendering")
struct RenderingTests {
    /// A register set as the built-in host leaves it, by offset.
    static let running: [Int: UInt64] = [
        Int(RegisterOffset.cap): 0x7FF | 1 << 16 | 0x0F << 24 | 1 << 36 | 1 << 37 | 4 << 52 | 1 << 57,
        Int(RegisterOffset.vs): 0x0001_0400,
        Int(RegisterOffset.cc): 0x0046_0001,
        Int(RegisterOffset.csts): 0x1,
        Int(RegisterOffset.aqa): 0x001F_000F,
        Int(RegisterOffset.asq): 0x1000,
        Int(RegisterOffset.acq): 0x2ABC,
    ]

    static func render(_ registers: [Int: UInt64]) -> String {
        RegisterDecoder.render { offset, _ in registers[offset] ?? 0 }
    }

    /// Checked by hand against NVMe 1.4 §3.1 (CAP.TO 15 × 500 ms, MQES 0's
    /// based, CC.IOCQES 4 = 16 bytes, AQA sizes 0's based, ACQB 4 KiB aligned).
    static let runningGolden = [
        "cap   : 0x024000300f0107ff\n",
        "\tController Memory Buffer Supported (CMBS)   : supported\n",
        "\tPersistent Memory Region Supported (PMRS)   : not supported\n",
        "\tMemory Page Size Maximum (MPSMAX)           : 65536 bytes\n",
        "\tMemory Page Size Minimum (MPSMIN)           : 4096 bytes\n",
        "\tBoot Partition Support (BPS)                : no\n",
        "\tCommand Sets Supported (CSS)                : NVM command set supported (0x1)\n",
        "\tNVM Subsystem Reset Supported (NSSRS)       : yes\n",
        "\tDoorbell Stride (DSTRD)                     : 4 bytes\n",
        "\tTimeout (TO)                                : 7500 ms\n",
        "\tArbitration Mechanism Supported (AMS)       : weighted round robin with urgent not supported, vendor specific not supported\n",
        "\tContiguous Queues Required (CQR)            : yes\n",
        "\tMaximum Queue Entries Supported (MQES)      : 2048\n",
        "vs    : 0x00010400\n",
        "\tNVMe specification version (VER)            : 1.4.0\n",
        "intms : 0x00000000\n",
        "\tInterrupt Vector Mask Set (IVMS)            : 0x00000000\n",
        "intmc : 0x00000000\n",
        "\tInterrupt Vector Mask Clear (IVMC)          : 0x00000000\n",
        "cc    : 0x00460001\n",
        "\tI/O Completion Queue Entry Size (IOCQES)    : 16 bytes\n",
        "\tI/O Submission Queue Entry Size (IOSQES)    : 64 bytes\n",
        "\tShutdown Notification (SHN)                 : no notification\n",
        "\tArbitration Mechanism Selected (AMS)        : round robin\n",
        "\tMemory Page Size (MPS)                      : 4096 bytes\n",
        "\tI/O Command Set Selected (CSS)              : NVM command set\n",
        "\tEnable (EN)                                 : yes\n",
        "csts  : 0x00000001\n",
        "\tProcessing Paused (PP)                      : no\n",
        "\tNVM Subsystem Reset Occurred (NSSRO)        : no\n",
        "\tShutdown Status (SHST)                      : normal operation\n",
        "\tController Fatal Status (CFS)               : no\n",
        "\tReady (RDY)                                 : yes\n",
        "nssr  : 0x00000000\n",
        "\tNVM Subsystem Reset Control (NSSRC)         : write 0x4e564d65 (\"NVMe\") to reset; reads as 0\n",
        "aqa   : 0x001f000f\n",
        "\tAdmin Completion Queue Size (ACQS)          : 32\n",
        "\tAdmin Submission Queue Size (ASQS)          : 16\n",
        "asq   : 0x0000000000001000\n",
        "\tAdmin Submission Queue Base (ASQB)          : 0x0000000000001000\n",
        "acq   : 0x0000000000002abc\n",
        "\tAdmin Completion Queue Base (ACQB)          : 0x0000000000002000\n",
        "cmbloc: 0x00000000\n",
        "\tOffset (OFST)                               : 0x0\n",
        "\tBase Indicator Register (BIR)               : 0\n",
        "cmbsz : 0x00000000\n",
        "\tController Memory Buffer                    : not described (set cmbmsc CRE, bit 0)\n",
        "cmbmsc: 0x0000000000000000\n",
        "\tController Base Address (CBA)               : 0x0000000000000000\n",
        "\tController Memory Space Enable (CMSE)       : no\n",
        "\tCapabilities Registers Enabled (CRE)        : no\n",
        "cmbsts: 0x00000000\n",
        "\tController Base Address Invalid (CBAI)      : no\n",
    ].joined()

    @Test func runningControllerGolden() {
        #expect(Self.render(Self.running) == Self.runningGolden)
    }

    /// Every other branch: CMB present, shutdown, reserved values, all flags set.
    static let unusual: [Int: UInt64] = [
        Int(RegisterOffset.cap): 0xFFFF | 3 << 17 | 1 << 32 | 1 << 37 | 0x40 << 37 | 1 << 45 | 1 << 56,
        Int(RegisterOffset.intms): 0x5,
        Int(RegisterOffset.cc): 0x8000 | 3 << 11 | 4 << 7 | 1 << 4 | 1,
        Int(RegisterOffset.csts): 0x3B,
        Int(RegisterOffset.cmbloc): 0x8002,
        Int(RegisterOffset.cmbsz): 16 << 12 | 1 << 8 | 0x1F,
        Int(RegisterOffset.cmbmsc): 0xD000_0003,
        Int(RegisterOffset.cmbsts): 1,
    ]

    @Test func unusualRegisterValues() {
        let out = Self.render(Self.unusual)
        func field(_ name: String, _ value: String) -> String { "\t" + name.padding(44) + ": " + value + "\n" }
        for line in [
            field("Controller Memory Buffer Supported (CMBS)", "not supported"),
            field("Persistent Memory Region Supported (PMRS)", "supported"),
            field("Boot Partition Support (BPS)", "yes"),
            field("Command Sets Supported (CSS)", "NVM command set supported (0x41)"),
            field("Doorbell Stride (DSTRD)", "8 bytes"),
            field("Arbitration Mechanism Supported (AMS)", "weighted round robin with urgent supported, vendor specific supported"),
            field("Maximum Queue Entries Supported (MQES)", "65536"),
            "intms : 0x00000005\n", "intmc : 0x00000005\n",
            field("Shutdown Notification (SHN)", "abrupt shutdown"),
            field("Arbitration Mechanism Selected (AMS)", "reserved (3)"),
            field("Memory Page Size (MPS)", "65536 bytes"),
            field("I/O Command Set Selected (CSS)", "reserved (1)"),
            field("Processing Paused (PP)", "yes"),
            field("NVM Subsystem Reset Occurred (NSSRO)", "yes"),
            field("Shutdown Status (SHST)", "shutdown processing complete"),
            field("Controller Fatal Status (CFS)", "yes"),
            "cmbloc: 0x00008002\n",
            field("Base Indicator Register (BIR)", "2"),
            "cmbsz : 0x0001011f\n",
            field("Size (SZ)", "16 units"),
            field("Size Units (SZU)", "65536 bytes"),
            field("Total size", "1048576 bytes"),
            field("Write Data Support (WDS)", "yes"),
            field("Read Data Support (RDS)", "yes"),
            field("PRP SGL List Support (LISTS)", "yes"),
            field("Completion Queue Support (CQS)", "yes"),
            field("Submission Queue Support (SQS)", "yes"),
            "cmbmsc: 0x00000000d0000003\n",
            field("Controller Base Address (CBA)", "0x00000000d0000000"),
            field("Controller Memory Space Enable (CMSE)", "yes"),
            field("Capabilities Registers Enabled (CRE)", "yes"),
            "cmbsts: 0x00000001\n",
            field("Controller Base Address Invalid (CBAI)", "yes"),
        ] {
            #expect(out.contains(line), "missing: \(line)")
        }
        #expect(!out.contains("Controller Memory Buffer                    : not supported"))
    }

    @Test(arguments: [(0, "round robin"), (1, "weighted round robin with urgent"), (2, "reserved (2)"), (6, "reserved (6)"),
                      (7, "vendor specific")] as [(UInt64, String)])
    func arbitrationSelected(_ ams: UInt64, _ name: String) {
        let out = Self.render([Int(RegisterOffset.cc): ams << 11])
        #expect(out.contains("\t" + "Arbitration Mechanism Selected (AMS)".padding(44) + ": " + name + "\n"))
    }

    // MARK: queue entry lines

    @Test func submissionLineWithPRPs() {
        var e = SubmissionQueueEntry(opcode: 0x06, cid: 7, nsid: 0, prp1: 0x5000, prp2: 0)
        e.cdw10 = 1
        #expect(QueueFiles.sqeLine(e.bytes, admin: true)
                == "opcode=0x06 \(AdminOpcode(0x06).name) cid=7 nsid=0 prp1=0x5000 prp2=0x0"
                    + " cdw10=0x1 cdw11=0x0 cdw12=0x0 cdw13=0x0 cdw14=0x0 cdw15=0x0")
    }

    @Test func submissionLineWithFuseMptrAndSGL() {
        var e = SubmissionQueueEntry(opcode: 0x02, cid: 65535, nsid: 1, prp1: 0x8000, prp2: 0)
        e.fuse = 1
        e.psdt = 1
        e.mptr = 0xABC
        e.slba = 0x1_0000_0002
        e.nlb = 7
        #expect(QueueFiles.sqeLine(e.bytes, admin: false)
                == "opcode=0x02 \(NVMOpcode(0x02).name) cid=65535 nsid=1 fuse=1 psdt=1 sgl=data block addr=0x8000 len=0"
                    + " mptr=0xabc cdw10=0x2 cdw11=0x1 cdw12=0x7 cdw13=0x0 cdw14=0x0 cdw15=0x0")
    }

    @Test func shortEntries() {
        #expect(QueueFiles.sqeLine([UInt8](repeating: 0, count: 63), admin: true) == "(short entry)")
        #expect(QueueFiles.cqeLine([UInt8](repeating: 0, count: 15)) == "(short entry)")
    }

    @Test func completionLine() {
        let e = CompletionQueueEntry(dw0: 0x1F001F, dw1: 0, sqhd: 3, sqid: 0, cid: 9, phase: true, status: .success)
        #expect(QueueFiles.cqeLine(e.bytes) == "cid=9 sqid=0 sqhd=3 phase=1 status=\(NVMeStatus.success.name) (0x0000) dw0=0x1f001f dw1=0x0")
    }
}
