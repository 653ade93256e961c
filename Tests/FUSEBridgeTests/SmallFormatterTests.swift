@testable import FUSEBridge
import Glibc
import Testing

/// The small pure helpers: errno names, trace value quoting, mountinfo
/// unescaping, node names, reply buffer size classes, parent directories.
@Suite("Small formatters and parsers")
struct SmallFormatterTests {
    @Test(arguments: [
        (EPERM, "EPERM"), (ENOENT, "ENOENT"), (EINTR, "EINTR"), (EIO, "EIO"), (EAGAIN, "EAGAIN"), (ENOMEM, "ENOMEM"),
        (EACCES, "EACCES"), (EBUSY, "EBUSY"), (ENODEV, "ENODEV"), (EINVAL, "EINVAL"), (ENOSPC, "ENOSPC"),
        (EROFS, "EROFS"), (ERANGE, "ERANGE"), (EILSEQ, "EILSEQ"), (EOPNOTSUPP, "EOPNOTSUPP"), (ETIMEDOUT, "ETIMEDOUT"),
        (0, "errno 0"), (EDQUOT, "errno \(EDQUOT)"), (-1, "errno -1"),
    ] as [(Int32, String)])
    func errnoName(_ code: Int32, _ name: String) {
        #expect(Errno.name(code) == name)
    }

    @Test(arguments: [
        ("abc", "abc"), ("", ""), ("a=b", "a=b"), ("a\"b", "a\"b"),
        ("a b", "\"a b\""), ("a\tb", "\"a\tb\""), ("a\nb", "\"a b\""), ("say \"hi\" now", "\"say 'hi' now\""),
    ])
    func traceValueQuoting(_ value: String, _ expected: String) {
        #expect(TraceRecorder.quoted(value) == expected)
    }

    @Test(arguments: [
        ("/mnt/plain", "/mnt/plain"), ("/mnt/a\\040b", "/mnt/a b"), ("/mnt/t\\011ab", "/mnt/t\tab"),
        ("/mnt/n\\012l", "/mnt/n\nl"), ("/mnt/back\\134slash", "/mnt/back\\slash"), ("\\040\\040", "  "),
        ("end\\", "end\\"), ("short\\04", "short\\04"), ("bad\\09x", "bad\\09x"), ("big\\400", "big\\400"),
    ])
    func mountinfoUnescape(_ field: String, _ expected: String) {
        #expect(MountRegistry.unescapeMountField(Substring(field)) == expected)
    }

    @Test(arguments: [
        ("a", true), ("regs", true), ("sq0_tail", true), ("...", true), (String(repeating: "n", count: 255), true),
        ("", false), (".", false), ("..", false), ("a/b", false), ("/", false), ("a\u{0}b", false),
        (String(repeating: "n", count: 256), false), (String(repeating: "\u{E9}", count: 128), false),
    ])
    func nodeNames(_ name: String, _ valid: Bool) {
        #expect(Node.isValidName(name) == valid)
    }

    @Test(arguments: [
        (0, 12), (1, 12), (4096, 12), (4097, 13), (8192, 13), (65536, 16), (1 << 22, 22),
    ] as [(Int, Int)])
    func replyBufferSizeClass(_ size: Int, _ sizeClass: Int) {
        #expect(ReplyBufferPool.sizeClass(size) == sizeClass)
    }

    @Test func replyBuffersAboveFourMiBAreNotPooled() {
        #expect(ReplyBufferPool.sizeClass((1 << 22) + 1) == nil)
        #expect(ReplyBufferPool.sizeClass(1 << 30) == nil)
    }

    @Test(arguments: [
        ("a", "."), ("/a", "/"), ("/a/b", "/a"), ("a/b", "a"), ("/a/b/c.img", "/a/b"), ("/", "/"),
    ])
    func parentDirectory(_ path: String, _ parent: String) {
        #expect(DeviceConfiguration.parentDirectory(path) == parent)
    }

    @Test func replacingAll() {
        #expect("a\"b\"".replacingAll("\"", with: "'") == "a'b'")
        #expect("abc".replacingAll("x", with: "yy") == "abc")
        #expect("aa".replacingAll("a", with: "") == "")
    }
}
