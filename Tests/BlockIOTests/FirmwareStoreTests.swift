import BlockIO
import Foundation
import Testing

/// The firmware image header and the firmware state directory (docs/FIRMWARE.md).
@Suite("Firmware store")
struct FirmwareStoreTests {
    @Test("Image header: round trip, and every way an image is not one")
    func imageHeader() {
        let image = FirmwareImage(revision: "2.5", activation: .subsystemReset, activationTime: 0x1234)
        let header = image.header
        #expect(header.count == FirmwareImage.headerSize)
        #expect(Array(header[0..<16]) == Array("NVMEFSFW2.5     ".utf8) && header[16] == 3 && header[18] == 0x34 && header[19] == 0x12)
        #expect(FirmwareImage(bytes: header + [1, 2, 3]) == image)
        #expect(FirmwareImage(bytes: Array(header.prefix(19))) == nil)       // short
        var bad = header; bad[0] = 0x6E
        #expect(FirmwareImage(bytes: bad) == nil)                            // magic
        bad = header; bad[9] = 0x07
        #expect(FirmwareImage(bytes: bad) == nil)                            // not printable
        bad = header; bad.replaceSubrange(8..<16, with: [UInt8](repeating: 0x20, count: 8))
        #expect(FirmwareImage(bytes: bad) == nil)                            // blank revision
        bad = header; bad[16] = 5
        #expect(FirmwareImage(bytes: bad) == nil)                            // activation
    }

    @Test("A directory is created, slots and state round trip, a pending image is activated at load")
    func loadAndSave() throws {
        let dir = temporaryPath("fw")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FirmwareStore(directory: dir)
        #expect(try store.load() == FirmwareSlots())
        let image = FirmwareImage(revision: "R2").header + [9, 9, 9, 9]
        #expect(store.saveSlot(2, image: image) == 0)
        var slots = FirmwareSlots()
        slots.images[2] = FirmwareImage(revision: "R2")
        slots.pending = (2, .subsystemReset)
        #expect(store.saveState(slots) == 0)
        #expect(FirmwareStore.render(slots) == "nvmefs-firmware 1\nactive 1\npending 2 subsystem-reset\n")
        let loaded = try store.load()
        #expect(loaded.active == 2 && loaded.pending == nil && loaded.images == [2: FirmwareImage(revision: "R2")])
        #expect(fileBytes(store.statePath) == Array("nvmefs-firmware 1\nactive 2\n".utf8))
        #expect(fileBytes(store.slotPath(2)) == image)
    }

    @Test("Load refuses a file in the way, a bad slot image, and bad state lines, with one-line reasons")
    func loadErrors() throws {
        let file = makeFile([1])
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(throws: FirmwareStoreError("firmware directory \(file) is not a directory")) { try FirmwareStore(directory: file).load() }
        let dir = temporaryPath("fw")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FirmwareStore(directory: dir)
        _ = try store.load()
        #expect(store.saveSlot(3, image: [1, 2, 3]) == 0)
        #expect(throws: FirmwareStoreError("\(store.slotPath(3)) is not an nvmefs firmware image")) { try store.load() }
        #expect(store.saveSlot(3, image: FirmwareImage(revision: "R3").header) == 0)
        for (text, reason) in [("something\n", "not an nvmefs firmware state file"),
                               ("nvmefs-firmware 1\nactive 4\n", "slot '4' holds no image"),
                               ("nvmefs-firmware 1\nactive 9\n", "slot '9' holds no image"),
                               ("nvmefs-firmware 1\npending 3 immediate\n", "unknown activation 'immediate'"),
                               ("nvmefs-firmware 1\nactive\n", "unexpected line 'active'")] {
            #expect(FileManager.default.createFile(atPath: store.statePath, contents: Data(text.utf8)))
            #expect(throws: FirmwareStoreError("\(store.statePath): \(reason)")) { try store.load() }
        }
        #expect(FileManager.default.createFile(atPath: store.statePath, contents: Data("nvmefs-firmware 1\nactive 3\n".utf8)))
        #expect(try store.load().active == 3)
    }
}
