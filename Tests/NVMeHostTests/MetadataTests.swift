import BlockIO
import NVMeController
@testable import NVMeHost
import NVMeSpec
import Testing

import Glibc

/// The built-in host on every LBA format: `data` stays data only, and the
/// controller stores valid PI (PRACT) for what the host writes.
@Suite struct MetadataTests {
    /// 512 and 4096 × ms 0/8/16/64 × extended/separate × PI 0-3 × PIL.
    static let formats: [NamespaceFormat] = {
        var out: [NamespaceFormat] = []
        for lbads: UInt8 in [9, 12] {
            out.append(NamespaceFormat(lbads: lbads))
            for ms: UInt16 in [8, 16, 64] {
                for extended in [false, true] {
                    out.append(NamespaceFormat(lbads: lbads, ms: ms, extended: extended))
                    for pi in [ProtectionType.type1, .type2, .type3] {
                        for piFirst in [false, true] {
                            out.append(NamespaceFormat(lbads: lbads, ms: ms, extended: extended, pi: pi, piFirst: piFirst))
                        }
                    }
                }
            }
        }
        return out
    }()

    static let blocks: UInt64 = 400

    /// A rig with one namespace of `format`; its metadata backend starts
    /// deallocated (PI all FFh), as the metadata file does.
    static func rig(_ format: NamespaceFormat, parameters: ControllerParameters = ControllerParameters())
        throws -> (Rig, TestBackend, TestBackend) {
        let data = TestBackend(size: blocks << UInt64(format.lbads))
        var md = [UInt8](repeating: 0, count: 4096 + Int(blocks) * Int(format.ms))
        md.withUnsafeMutableBytes { format.deallocatedMetadata(into: UnsafeMutableRawBufferPointer(rebasing: $0[4096...])) }
        let metadata = TestBackend(contents: md)
        let ns = Namespace(nsid: 1, backend: data, format: format, metadata: format.hasMetadata ? metadata : nil,
                           metadataBase: 4096)
        return (try Rig(namespaces: [ns], parameters: parameters), data, metadata)
    }

    @Test(arguments: formats)
    func roundTripsAndStoresValidPI(format: NamespaceFormat) throws {
        try roundTrip(format, parameters: ControllerParameters())
    }

    /// MDTS of 8 KiB: many commands per transfer, each with its slice of
    /// the metadata buffer (and, extended, of the SGL descriptors).
    @Test(arguments: [NamespaceFormat(lbads: 9, ms: 8, extended: true), NamespaceFormat(lbads: 9, ms: 64, extended: true, pi: .type2),
                      NamespaceFormat(lbads: 9, ms: 16), NamespaceFormat(lbads: 12, ms: 16, extended: true, pi: .type1, piFirst: true)])
    func roundTripsWithSmallMDTS(format: NamespaceFormat) throws {
        var p = ControllerParameters()
        p.mdts = 1
        try roundTrip(format, parameters: p)
    }

    func roundTrip(_ format: NamespaceFormat, parameters: ControllerParameters) throws {
        let (rig, data, _) = try Self.rig(format, parameters: parameters)
        let info = try #require(rig.host.namespaceInfo(1))
        #expect(info.format == format)
        let bs = format.lbaSize
        #expect(info.capacity == Self.blocks * UInt64(bs))
        var model = [UInt8](repeating: 0, count: Int(Self.blocks) * bs)
        var written = Set<Int>()
        // Edges (read-modify-write), whole blocks, and a transfer of many commands.
        let cases: [(UInt64, Int)] = [(0, bs), (7, 5), (UInt64(bs) - 1, 2), (3, bs * 5 - 7), (UInt64(bs * 9), bs * 300)]
        for (i, (offset, length)) in cases.enumerated() {
            let bytes = pattern(length, seed: UInt64(i) &+ UInt64(format.hashValue & 0xFFFF))
            #expect(rig.write(1, offset, bytes).value == length, "\(format) case \(i)")
            model.replaceSubrange(Int(offset)..<Int(offset) + length, with: bytes)
            for lba in Int(offset) / bs...(Int(offset) + length - 1) / bs { written.insert(lba) }
            #expect(rig.read(1, offset, length).value == bytes, "\(format) case \(i)")
        }
        #expect(rig.read(1, 0, model.count).value == model, "\(format)")
        #expect(data.contents == model, "\(format): the image holds the data only")

        // The stored metadata, through the `metadata` file's API.
        let ms = Int(format.ms)
        var stored = [UInt8](repeating: 0xEE, count: Int(Self.blocks) * ms + 100)
        let n = try stored.withUnsafeMutableBytes { try rig.controller.readMetadata(nsid: 1, offset: 0, into: $0) }
        #expect(n == Int(Self.blocks) * ms)
        guard format.hasMetadata else { return }
        for lba in written.sorted() {
            let m = Array(stored[lba * ms..<(lba + 1) * ms])
            guard format.pi != .none else {
                #expect(m == [UInt8](repeating: 0, count: ms), "\(format) LBA \(lba): written metadata is zeros")
                continue
            }
            let pi = m.withUnsafeBytes { ProtectionInformation(at: $0.baseAddress! + format.piOffset) }
            var crc = model[lba * bs..<(lba + 1) * bs].withUnsafeBytes { CRC16T10DIF.checksum($0) }
            crc = m[0..<format.piOffset].withUnsafeBytes { CRC16T10DIF.update(crc, $0) }
            #expect(pi.guardTag == crc, "\(format) LBA \(lba)")
            #expect(pi.applicationTag == 0, "\(format) LBA \(lba)")
            #expect(pi.referenceTag == (format.pi == .type3 ? 0 : UInt32(lba)), "\(format) LBA \(lba)")
            let rest = m.enumerated().filter { !(format.piOffset..<format.piOffset + 8).contains($0.offset) }
            #expect(rest.allSatisfy { $0.element == 0 }, "\(format) LBA \(lba): non-PI metadata is zeros")
        }
    }

    /// Write Zeroes and deallocate keep PI formats readable (PRACT writes
    /// the PI of zeroed blocks; deallocated blocks escape the checks).
    @Test(arguments: [NamespaceFormat(lbads: 12, ms: 8, pi: .type1), NamespaceFormat(lbads: 9, ms: 16, extended: true, pi: .type2)])
    func zeroesAndDeallocationStayReadable(format: NamespaceFormat) throws {
        let (rig, _, _) = try Self.rig(format)
        let bs = UInt64(format.lbaSize)
        #expect(rig.write(1, 0, pattern(Int(bs) * 40, seed: 3)).value == Int(bs) * 40)
        #expect(rig.host.writeZeroes(nsid: 1, offset: bs * 2, length: bs * 10 + 5).error == nil)
        #expect(rig.host.deallocate(nsid: 1, offset: bs * 20, length: bs * 10).error == nil)
        let back = try #require(rig.read(1, 0, Int(bs) * 40).value)
        #expect(back[Int(bs) * 2..<Int(bs) * 12 + 5].allSatisfy { $0 == 0 })
        #expect(back[Int(bs) * 20..<Int(bs) * 30].allSatisfy { $0 == 0 })
    }

    /// A corrupted guard on the medium: the host's read fails with EIO (PRCHK).
    @Test func corruptedGuardIsAnIOError() throws {
        let format = NamespaceFormat(lbads: 12, ms: 8, pi: .type1)
        let (rig, _, metadata) = try Self.rig(format)
        #expect(rig.write(1, 0, pattern(8192, seed: 1)).value == 8192)
        let good = metadata.read(offset: 4096 + 8, count: 8)
        metadata.write([good[0] ^ 0xFF] + good[1...], at: 4096 + 8)
        let e = rig.read(1, 4096, 4096).error
        #expect(e?.errno == EIO)
        #expect(e?.status?.kind == NVMeStatus.endToEndGuardCheckError)
        #expect(rig.read(1, 0, 4096).value == Array(pattern(8192, seed: 1)[0..<4096]))
    }

    /// A Namespace Attribute Changed notice's log (Changed Namespace List)
    /// makes the host identify the namespaces it names again (FFFFFFFFh: all).
    @Test func aChangedNamespaceListReidentifies() throws {
        let (rig, _, _) = try Self.rig(NamespaceFormat(lbads: 12, ms: 8, pi: .type1))
        let real = try #require(rig.host.namespaceInfo(1))
        let stale = NamespaceInfo(nsid: 1, nsze: 1, format: NamespaceFormat())
        for (entries, restored) in [([UInt32](), false), ([7, 1], true), ([NamespaceList.overflowMarker], true)] {
            rig.host.stateLock.withLock { rig.host.namespaceTable[1] = stale }
            var log = [UInt8](repeating: 0, count: NamespaceList.size)
            log.withUnsafeMutableBytes { NamespaceList(entries).encode(into: $0) }
            rig.host.namespacesChanged(log: log)
            #expect(rig.host.namespaceInfo(1) == (restored ? real : stale), "\(entries)")
        }
        #expect(rig.host.namespaceInfo(7) == nil)
    }

    @Test func statusesOfProtectionAndFormatMapToErrnos() {
        #expect(errnoForStatus(.formatInProgress) == EBUSY)
        #expect(errnoForStatus(.endToEndGuardCheckError) == EIO)
        #expect(errnoForStatus(.endToEndApplicationTagCheckError) == EIO)
        #expect(errnoForStatus(.endToEndReferenceTagCheckError) == EIO)
        #expect(errnoForStatus(NVMeStatus.invalidProtectionInformation.withDNR) == EINVAL)
        #expect(errnoForStatus(NVMeStatus.invalidFormat.withDNR) == EINVAL)
    }
}
