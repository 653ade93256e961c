import BlockIO
import Glibc
import NVMeController
import NVMeSpec
import Testing

@Suite("NVM I/O commands and data transfer")
struct IOTests {
    let buf = TestHost.dataBase

    @Test(arguments: [UInt8(9), UInt8(12)])
    func oneBlockRoundTrip(lbads: UInt8) throws {
        let h = try TestHost(blocks: 256, lbads: lbads)
        h.bringUp()
        let bs = 1 << Int(lbads)
        let data = TestHost.pattern(bs, seed: lbads)
        h.poke(buf, data)
        #expect(h.run(TestHost.write(slba: 7, nlb: 1, prp1: buf), qid: 1).status == .success)
        #expect(h.testBackend.read(offset: UInt64(7 * bs), count: bs) == data)
        h.poke(buf + 0x10000, [UInt8](repeating: 0, count: bs))
        #expect(h.run(TestHost.read(slba: 7, nlb: 1, prp1: buf + 0x10000), qid: 1).status == .success)
        #expect(h.peek(buf + 0x10000, bs) == data)
    }

    @Test func twoPagesWithOffsetUsePRP2() throws {
        let h = try TestHost()
        h.bringUp()
        // 8 blocks = 4 KiB starting 0x200 into a page: spans two pages, PRP2 is a page address.
        let data = TestHost.pattern(4096, seed: 3)
        h.poke(buf + 0x200, Array(data[0..<0xE00]))
        h.poke(buf + 0x3000, Array(data[0xE00...]))
        #expect(h.run(TestHost.write(slba: 16, nlb: 8, prp1: buf + 0x200, prp2: buf + 0x3000), qid: 1).status == .success)
        #expect(h.testBackend.read(offset: 16 * 512, count: 4096) == data)
        // PRP2 with an offset is PRP Offset Invalid.
        let bad = h.run(TestHost.read(slba: 16, nlb: 8, prp1: buf + 0x200, prp2: buf + 0x3010), qid: 1)
        #expect(bad.status == NVMeStatus.prpOffsetInvalid.withDNR)
    }

    @Test func prpListAndChainedLists() throws {
        let h = try TestHost()
        h.bringUp()
        // 64 KiB = 16 pages: PRP1 + a list of 15 entries. Data pages scattered in reverse order.
        let pages = 16
        let data = TestHost.pattern(pages * 4096, seed: 9)
        let pageAddr = (0..<pages).map { buf + 0x100000 - UInt64($0) * 0x2000 }
        for (i, a) in pageAddr.enumerated() { h.poke(a, Array(data[(i * 4096)..<((i + 1) * 4096)])) }
        // The list starts 16 bytes before the end of its page: 1 entry there, then a chain pointer
        // would be needed. Place it 24 bytes before the end: entries at -24, -16, and the last slot
        // (-8) chains to the next list page.
        let list1 = buf + 0x200000 + 4096 - 24
        let list2 = buf + 0x208000
        h.poke64(list1, pageAddr[1])
        h.poke64(list1 + 8, pageAddr[2])
        h.poke64(list1 + 16, list2)           // chain
        for i in 3..<pages { h.poke64(list2 + UInt64(i - 3) * 8, pageAddr[i]) }
        #expect(h.run(TestHost.write(slba: 100, nlb: pages * 8, prp1: pageAddr[0], prp2: list1), qid: 1).status == .success)
        #expect(h.testBackend.read(offset: 100 * 512, count: pages * 4096) == data)
        // Read back through a plain list into contiguous memory.
        let dst = buf + 0x300000
        let list3 = buf + 0x20A000
        for i in 1..<pages { h.poke64(list3 + UInt64(i - 1) * 8, dst + UInt64(i) * 4096) }
        #expect(h.run(TestHost.read(slba: 100, nlb: pages * 8, prp1: dst, prp2: list3), qid: 1).status == .success)
        #expect(h.peek(dst, pages * 4096) == data)
        // A list entry with an offset is PRP Offset Invalid.
        h.poke64(list3 + 8, dst + 0x2010)
        #expect(h.run(TestHost.read(slba: 100, nlb: pages * 8, prp1: dst, prp2: list3), qid: 1).status == NVMeStatus.prpOffsetInvalid.withDNR)
        // A list that points outside host memory is a Data Transfer Error.
        h.poke64(list3 + 8, 0x7000_0000)
        #expect(h.run(TestHost.read(slba: 100, nlb: pages * 8, prp1: dst, prp2: list3), qid: 1).status.kind == .dataTransferError)
        // A list pointing at itself terminates with an error instead of looping.
        let loop = buf + 0x20C000 + 4096 - 16
        h.poke64(loop, dst + 4096)
        h.poke64(loop + 8, loop - (4096 - 16) + 4096 - 16)
        let e = h.run(TestHost.read(slba: 100, nlb: pages * 8, prp1: dst, prp2: loop), qid: 1)
        #expect(!e.status.isSuccess)
    }

    @Test func sglDataBlock() throws {
        let h = try TestHost()
        h.bringUp()
        let data = TestHost.pattern(1024, seed: 5)
        h.poke(buf + 0x123, data)
        var e = TestHost.write(slba: 2, nlb: 2, prp1: buf + 0x123)
        e.psdt = 1
        e.prp2 = UInt64(1024)   // SGL1: address, length 1024, type data block (0) in byte 15
        #expect(h.run(e, qid: 1).status == .success)
        #expect(h.testBackend.read(offset: 1024, count: 1024) == data)
        e.prp2 = UInt64(512)    // SGL shorter than the transfer
        #expect(h.run(e, qid: 1).status == NVMeStatus.dataSGLLengthInvalid.withDNR)
    }

    @Test func twoNamespacesAreIndependent() throws {
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 12)])
        h.bringUp()
        let a = TestHost.pattern(4096, seed: 1), b = TestHost.pattern(4096, seed: 2)
        h.poke(buf, a); h.poke(buf + 0x1000, b)
        #expect(h.run(TestHost.write(nsid: 1, slba: 8, nlb: 8, prp1: buf), qid: 1).status == .success)
        #expect(h.run(TestHost.write(nsid: 2, slba: 1, nlb: 1, prp1: buf + 0x1000), qid: 1).status == .success)
        #expect((h.backends[0] as! TestBackend).read(offset: 4096, count: 4096) == a)
        #expect((h.backends[1] as! TestBackend).read(offset: 4096, count: 4096) == b)
        #expect((h.backends[1] as! TestBackend).read(offset: 0, count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func ioErrorStatuses() throws {
        var p = ControllerParameters()
        p.mdts = 1   // 8 KiB
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9), (TestBackend(size: 1 << 20), 9)], parameters: p, readOnly: [2])
        h.bringUp()
        #expect(h.run(TestHost.read(slba: 2047, nlb: 2, prp1: buf), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        #expect(h.run(TestHost.read(slba: UInt64.max, nlb: 2, prp1: buf), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        // NSID 3 is valid (NN = 256) but inactive: Invalid Field; above NN: Invalid Namespace.
        #expect(h.run(TestHost.read(nsid: 3, slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.invalidField.withDNR)
        #expect(h.run(TestHost.read(nsid: 257, slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(h.run(TestHost.read(nsid: 0, slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.invalidNamespace.withDNR)
        #expect(h.run(SubmissionQueueEntry(opcode: 0x7E, nsid: 1), qid: 1).status == NVMeStatus.invalidOpcode.withDNR)
        #expect(h.run(TestHost.read(slba: 0, nlb: 17, prp1: buf, prp2: buf + 0x1000), qid: 1).status == NVMeStatus.invalidField.withDNR)
        #expect(h.run(TestHost.write(nsid: 2, slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.namespaceWriteProtected.withDNR)
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: 0x7000_0000), qid: 1).status.kind == .dataTransferError)
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: 0), qid: 1).status == .success)   // address 0 is host memory
        let stats = h.controller.namespace(1)!.accounting.snapshot()
        #expect(stats[.read].invalid >= 3)
    }

    @Test func flushWriteZeroesAndDatasetManagement() throws {
        let h = try TestHost()
        h.bringUp()
        let tb = h.testBackend
        tb.write([UInt8](repeating: 0xAB, count: 64 * 512), at: 0)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1).status == .success)
        #expect(tb.submitted.last?.operation == .flush)
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1)
        wz.slba = 4; wz.nlb = 3
        #expect(h.run(wz, qid: 1).status == .success)
        #expect(tb.read(offset: 4 * 512, count: 4 * 512).allSatisfy { $0 == 0 })
        #expect(tb.read(offset: 3 * 512, count: 512).allSatisfy { $0 == 0xAB })
        wz.slba = 2046
        #expect(h.run(wz, qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
        // DSM with 3 ranges (one empty) → 2 discard AIOs.
        var ranges: [UInt8] = []
        for r in [DatasetManagementRange(slba: 10, nlb: 2), DatasetManagementRange(slba: 20, nlb: 0), DatasetManagementRange(slba: 30, nlb: 5)] { ranges += r.bytes }
        h.poke(buf, ranges)
        let before = tb.submitted.filter { $0.operation == .discard }.count
        let dsm = SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: buf, cdw10: 2, cdw11: 4)
        #expect(h.run(dsm, qid: 1).status == .success)
        let discards = tb.submitted.filter { $0.operation == .discard }.dropFirst(before)
        #expect(discards.map(\.offset) == [10 * 512, 30 * 512])
        #expect(discards.map(\.length) == [2 * 512, 5 * 512])
        h.poke(buf, DatasetManagementRange(slba: 2040, nlb: 9).bytes)
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.datasetManagement.rawValue, nsid: 1, prp1: buf, cdw10: 0, cdw11: 4), qid: 1).status == NVMeStatus.lbaOutOfRange.withDNR)
    }

    @Test func compare() throws {
        let h = try TestHost()
        h.bringUp()
        let data = TestHost.pattern(2048, seed: 11)
        h.testBackend.write(data, at: 512 * 40)
        h.poke(buf, data)
        var c = TestHost.read(slba: 40, nlb: 4, prp1: buf)
        c.opcode = NVMOpcode.compare.rawValue
        #expect(h.run(c, qid: 1).status == .success)
        var other = data; other[1000] ^= 1
        h.poke(buf, other)
        #expect(h.run(c, qid: 1).status == NVMeStatus.compareFailure)   // DNR clear, as QEMU 7.2
    }

    @Test func backendFailuresMapPerOperation() throws {
        let h = try TestHost()
        h.bringUp()
        let tb = h.testBackend
        _ = tb.addRule(.fail(EIO, operations: [.read], times: 1))
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.unrecoveredReadError)
        _ = tb.addRule(.fail(EIO, operations: [.write], times: 1))
        #expect(h.run(TestHost.write(slba: 0, nlb: 1, prp1: buf), qid: 1).status == NVMeStatus.writeFault)
        _ = tb.addRule(.fail(ENOSPC, operations: [.writeZeroes], times: 1))
        var wz = SubmissionQueueEntry(opcode: NVMOpcode.writeZeroes.rawValue, nsid: 1); wz.nlb = 0
        #expect(h.run(wz, qid: 1).status == NVMeStatus.writeFault)
        _ = tb.addRule(.fail(EIO, operations: [.flush], times: 1))
        #expect(h.run(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 1), qid: 1).status == NVMeStatus.internalError)
        let stats = h.controller.namespace(1)!.accounting.snapshot()
        #expect(stats[.read].failed == 1 && stats[.write].failed == 1 && stats[.flush].failed == 1)
        // After the failures everything works again.
        #expect(h.run(TestHost.read(slba: 0, nlb: 1, prp1: buf), qid: 1).status == .success)
    }

    @Test func broadcastFlushIssuesOneAIOPerNamespace() throws {
        let a = TestBackend(size: 1 << 20), b = TestBackend(size: 1 << 20)
        let h = try TestHost(backends: [(a, 9), (b, 9)])
        h.bringUp()
        _ = b.addRule(.hold(operations: [.flush]))
        let cid = h.place(SubmissionQueueEntry(opcode: NVMOpcode.flush.rawValue, nsid: 0xFFFF_FFFF), qid: 1)
        h.ring(1)
        #expect(b.waitForHeld(count: 1))
        #expect(a.submitted.contains { $0.operation == .flush })
        #expect(h.reap(1, timeout: 0.2) == nil)       // not complete while one AIO is held
        _ = b.releaseAll(errno: EIO)
        let e = try #require(h.reap(1))
        #expect(e.cid == cid && e.status == NVMeStatus.internalError)
    }
}

@Suite("Controller memory buffer")
struct CMBTests {
    static let cba: UInt64 = 0x80_0000_0000

    /// Enables the CMB at `cba` through CMBMSC (NVMe 1.4 §3.1.16).
    static func place(_ h: TestHost, at cba: UInt64 = cba) {
        h.write64(RegisterOffset.cmbmsc, cba | 3)
    }

    @Test func registersFollowTheNVMe14Scheme() throws {
        var p = ControllerParameters()
        p.cmbSize = 2 << 20
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9)], parameters: p)
        #expect(ControllerCapabilities(raw: h.reg64(RegisterOffset.cap)).cmbs)
        // CMBLOC/CMBSZ read 0 until CRE (§3.1.11-12).
        #expect(h.reg32(RegisterOffset.cmbsz) == 0 && h.reg32(RegisterOffset.cmbloc) == 0)
        h.write32(RegisterOffset.cmbmsc, 1)
        let sz = CMBSize(raw: h.reg32(RegisterOffset.cmbsz))
        #expect(sz.sqs && sz.cqs && sz.rds && sz.wds)
        #expect(sz.bytes == 2 << 20)
        #expect(CMBLocation(raw: h.reg32(RegisterOffset.cmbloc)).bir == 2)
        #expect(h.controller.cmbAddress == nil)  // CRE alone does not place it
        // Reserved bits 11:2 read 0; CBA and the two enables read back.
        h.write64(RegisterOffset.cmbmsc, Self.cba | 0xFFF)
        #expect(h.reg64(RegisterOffset.cmbmsc) == Self.cba | 3)
        #expect(h.controller.cmbAddress == Self.cba)
        #expect(h.reg32(RegisterOffset.cmbsts) == 0)
        // Clearing CRE hides the registers and removes the CMB from the address space.
        h.write64(RegisterOffset.cmbmsc, 0)
        #expect(h.reg32(RegisterOffset.cmbsz) == 0 && h.controller.cmbAddress == nil)
    }

    @Test func unusableBaseAddressSetsCBAI() throws {
        var p = ControllerParameters()
        p.cmbSize = 1 << 20
        let h = try TestHost(parameters: p)
        // Over host memory (mem is at 0): refused, CBAI set, nothing placed.
        h.write64(RegisterOffset.cmbmsc, 0x10_0000 | 3)
        #expect(CMBStatus(raw: h.reg32(RegisterOffset.cmbsts)).cbai)
        #expect(h.controller.cmbAddress == nil)
        // Wrapping past 2^64.
        h.write64(RegisterOffset.cmbmsc, 0xFFFF_FFFF_FFF0_0000 | 3)
        #expect(CMBStatus(raw: h.reg32(RegisterOffset.cmbsts)).cbai)
        // A usable address clears it.
        Self.place(h)
        #expect(!CMBStatus(raw: h.reg32(RegisterOffset.cmbsts)).cbai)
        #expect(h.controller.cmbAddress == Self.cba)
        // Without a CMB the register is ignored.
        let plain = try TestHost()
        plain.write64(RegisterOffset.cmbmsc, Self.cba | 3)
        #expect(plain.reg64(RegisterOffset.cmbmsc) == 0)
        #expect(!ControllerCapabilities(raw: plain.reg64(RegisterOffset.cap)).cmbs)
    }

    @Test func queuesAndDataInTheCMB() throws {
        var p = ControllerParameters()
        p.cmbSize = 2 << 20
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9)], parameters: p)
        let cmb = Self.cba
        // Before CMSE the CMB is not an address the controller knows.
        h.enable()
        #expect(h.createCQ(qid: 1, entries: 16, vector: 1, base: cmb) != .success)
        Self.place(h)
        #expect(h.createCQ(qid: 1, entries: 16, vector: 1, base: cmb).isSuccess)
        #expect(h.createSQ(qid: 1, entries: 16, cqid: 1, base: cmb + 0x1000).isSuccess)
        let data = TestHost.pattern(4096, seed: 4)
        h.poke(cmb + 0x10000, data)
        #expect(h.run(TestHost.write(slba: 8, nlb: 8, prp1: cmb + 0x10000), qid: 1).status == .success)
        #expect((h.backends[0] as! TestBackend).read(offset: 4096, count: 4096) == data)
        #expect(h.run(TestHost.read(slba: 8, nlb: 8, prp1: cmb + 0x20000), qid: 1).status == .success)
        #expect(h.peek(cmb + 0x20000, 4096) == data)
        #expect(h.controller.cmbMemory?.size == 2 << 20)
    }

    /// One command's data all in the CMB or all in host memory (QEMU's rule,
    /// NVMe 1.4 §4.7): a mix is Invalid Use of Controller Memory Buffer.
    @Test func dataMixingCMBAndHostMemoryIsRefused() throws {
        var p = ControllerParameters()
        p.cmbSize = 1 << 20
        let h = try TestHost(backends: [(TestBackend(size: 1 << 20), 9)], parameters: p)
        h.bringUp()
        Self.place(h)
        let cmb = Self.cba
        let bad = NVMeStatus.invalidUseOfCMB.withDNR
        // PRP1 in host memory, PRP2 in the CMB, and the reverse.
        #expect(h.run(TestHost.read(slba: 0, nlb: 16, prp1: TestHost.dataBase, prp2: cmb), qid: 1).status == bad)
        #expect(h.run(TestHost.write(slba: 0, nlb: 16, prp1: cmb, prp2: TestHost.dataBase), qid: 1).status == bad)
        // A PRP list (in host memory) whose entries mix the two.
        h.poke64(0x500000, cmb + 0x1000)
        h.poke64(0x500008, TestHost.dataBase)
        #expect(h.run(TestHost.read(slba: 0, nlb: 24, prp1: TestHost.dataBase + 0x1000, prp2: 0x500000), qid: 1).status == bad)
        // An SGL with one data block in each.
        var sgl = [UInt8](repeating: 0, count: 32)
        sgl.withUnsafeMutableBytes { b in
            b.put64(TestHost.dataBase, at: 0); b.put32(4096, at: 8); b[15] = 0
            b.put64(cmb, at: 16); b.put32(4096, at: 24); b[31] = 0
        }
        h.poke(0x510000, sgl)
        var e = TestHost.read(slba: 0, nlb: 16, prp1: 0x510000, prp2: 0)
        e.psdt = 1
        e.prp2 = UInt64(32) | UInt64(0x30) << 56   // Last Segment descriptor, 32 bytes
        #expect(h.run(e, qid: 1).status == bad)
        // All in the CMB, or all in host memory: fine.
        #expect(h.run(TestHost.read(slba: 0, nlb: 16, prp1: cmb, prp2: cmb + 0x1000), qid: 1).status == .success)
        #expect(h.run(TestHost.read(slba: 0, nlb: 16, prp1: TestHost.dataBase, prp2: TestHost.dataBase + 0x1000), qid: 1).status == .success)
    }

    @Test func noCMBByDefault() throws {
        let h = try TestHost()
        #expect(h.reg32(RegisterOffset.cmbsz) == 0 && h.reg32(RegisterOffset.cmbloc) == 0)
        #expect(h.controller.cmbMemory == nil)
    }
}
