@testable import FUSEBridge
import Foundation
import Glibc
import Logging
import Testing

/// The owner-only rule (docs/PERMISSIONS.md): the modes every file of the
/// tree shows, `--allow-other-write`, and the checks on image paths.
@Suite("Permissions and image paths")
struct PermissionTests {
    /// A fresh directory under the temporary directory, removed by `cleanUp`.
    private static func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "nvmefs-perm-\(getpid())-\(UUID().uuidString)"
        _ = mkdir(dir, 0o700)
        return dir
    }

    private static func cleanUp(_ dir: String) { try? FileManager.default.removeItem(atPath: dir) }

    private static func configuration(image: String, size: UInt64? = 1 << 20) -> DeviceConfiguration {
        var ns = DeviceConfiguration.Namespace(path: image)
        if let size { ns.size = size; ns.sizeGiven = true }
        var c = DeviceConfiguration(namespaces: [ns])
        c.nsDir = image + ".ns"
        c.firmwareDirectory = nil
        c.firmwareDirectoryIsDefault = false
        return c
    }

    // MARK: file modes

    @Test(arguments: [(UInt16(0o444), UInt16(0o444)), (0o644, 0o644), (0o200, 0o200), (0o555, 0o555)])
    func ownerOnlyByDefault(_ mode: UInt16, _ shown: UInt16) {
        #expect(FileSystem.fileMode(mode, othersMayWrite: false) == mode_t(shown))
    }

    @Test(arguments: [(UInt16(0o444), UInt16(0o444)), (0o644, 0o666), (0o200, 0o222)])
    func allowOtherWriteOpensWritableFiles(_ mode: UInt16, _ shown: UInt16) {
        #expect(FileSystem.fileMode(mode, othersMayWrite: true) == mode_t(shown))
    }

    /// No file of the real tree is writable by anyone but the owner: the
    /// handlers' modes carry no group or other write bit, so every file
    /// added later (writable or not) falls under the rule too.
    @Test func noFileOfTheTreeIsWritableByOthers() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        var c = Self.configuration(image: dir + "/a.img")
        try c.validate()
        try c.prepare()
        let provider = makeDeviceProvider(selfTest: true)
        let root = try provider.makeTree(configuration: c, logger: Logger(label: "test"))
        defer { provider.shutdown() }
        var files = 0, writable = 0
        func walk(_ node: Node, _ path: String) {
            if let directory = node.directory {
                #expect(directory.mode & 0o222 == 0, "directory \(path) is writable")
                for child in directory.children { walk(child, path + "/" + child.name) }
            } else if let handler = node.fileHandler {
                files += 1
                #expect(handler.mode & 0o022 == 0, "\(path) has mode \(String(handler.mode, radix: 8))")
                if handler.mode & 0o200 != 0 { writable += 1 }
            }
        }
        walk(root, "")
        #expect(files > 50)
        #expect(writable > 10)
    }

    @Test func allowOtherWriteNeedsAllowOther() throws {
        var c = DeviceConfiguration(namespaces: [DeviceConfiguration.Namespace(path: "/tmp/x.img")])
        c.allowOtherWrite = true
        let error = #expect(throws: ConfigurationError.self) { try c.validate() }
        #expect(error?.message == "--allow-other-write needs --allow-other")
        c.allowOther = true
        try c.validate()
    }

    // MARK: image paths

    @Test func imagesAreCreatedOwnerOnlyUnlessOthersMayRead() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let old = umask(0o022)
        defer { umask(old) }
        for (allowOther, expected) in [(false, mode_t(0o600)), (true, mode_t(0o644))] {
            var c = Self.configuration(image: dir + "/\(allowOther).img")
            c.allowOther = allowOther
            try c.checkFiles()
            try c.prepare()
            var st = stat()
            #expect(stat(c.namespaces[0].path, &st) == 0)
            #expect(st.st_mode & 0o777 == expected)
        }
    }

    @Test func danglingSymlinkIsRefusedWithItsTarget() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        #expect(symlink(dir + "/missing.img", dir + "/link.img") == 0)
        let c = Self.configuration(image: dir + "/link.img")
        let error = #expect(throws: ConfigurationError.self) { try c.checkFiles() }
        #expect(error?.message == "image \(dir)/link.img is a symbolic link to \(dir)/missing.img, which does not exist "
                + "(create the target, or give its path)")
        var st = stat()
        #expect(stat(dir + "/missing.img", &st) != 0, "nothing is created")
    }

    @Test func symlinkToAnImageIsFollowed() throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        var real = Self.configuration(image: dir + "/real.img")
        try real.prepare()
        #expect(symlink(dir + "/real.img", dir + "/link.img") == 0)
        var c = Self.configuration(image: dir + "/link.img")
        try c.checkFiles()
        try c.prepare()
        #expect(c.namespaces[0].size == 1 << 20)
    }

    @Test(arguments: [("dir", "a directory"), ("/dev/null", "a character device"), ("fifo", "a FIFO")])
    func specialFilesAreRefused(_ name: String, _ kind: String) throws {
        let dir = Self.temporaryDirectory()
        defer { Self.cleanUp(dir) }
        let path = name.hasPrefix("/") ? name : dir + "/" + name
        if name == "dir" { #expect(mkdir(path, 0o700) == 0) }
        if name == "fifo" { #expect(mkfifo(path, 0o600) == 0) }
        let c = Self.configuration(image: path, size: nil)
        let error = #expect(throws: ConfigurationError.self) { try c.checkFiles() }
        #expect(error?.message == "image \(path) is \(kind), not a regular file")
    }

    @Test func fileKinds() {
        #expect(DeviceConfiguration.fileKind(S_IFBLK | 0o660) == "a block device")
        #expect(DeviceConfiguration.fileKind(S_IFSOCK) == "a socket")
        #expect(DeviceConfiguration.fileKind(S_IFREG) == "a regular file")
    }
}
