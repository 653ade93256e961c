import CFuse3
@testable import FUSEBridge
import Testing

/// The FOPEN_* bits of the reply to FUSE_OPEN (`openReplyFlags`).
@Suite("Open reply flags")
struct OpenReplyTests {
    struct Handler: FileHandler {
        var mode: UInt16 { 0o644 }
        var directIO: Bool
        var keepCache: Bool = false
        var nonSeekable: Bool = false
        var parallelDirectWrites: Bool = false
    }

    @Test func bitsFollowTheHandler() {
        #expect(openReplyFlags(Handler(directIO: true)) == NVMEFS_FOPEN_DIRECT_IO)
        #expect(openReplyFlags(Handler(directIO: false, keepCache: true)) == NVMEFS_FOPEN_KEEP_CACHE)
        #expect(openReplyFlags(Handler(directIO: true, nonSeekable: true)) == NVMEFS_FOPEN_DIRECT_IO | NVMEFS_FOPEN_NONSEEKABLE)
        #expect(openReplyFlags(Handler(directIO: true, parallelDirectWrites: true))
                == NVMEFS_FOPEN_DIRECT_IO | NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES)
        // Never without direct I/O (page-cached writes hold the inode lock anyway).
        #expect(openReplyFlags(Handler(directIO: false, parallelDirectWrites: true)) == 0)
    }

    /// The kernel protocol's values (include/uapi/linux/fuse.h) and reply layout.
    @Test func protocolValues() {
        #expect(NVMEFS_FOPEN_DIRECT_IO == 1 && NVMEFS_FOPEN_KEEP_CACHE == 2 && NVMEFS_FOPEN_NONSEEKABLE == 4)
        #expect(NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES == 64)
        #expect(MemoryLayout<nvmefs_open_out>.size == 16)
        #expect(MemoryLayout<nvmefs_open_out>.offset(of: \.open_flags) == 8)
    }

    /// Data files take parallel direct writes; with `cache` (page cache) they do not.
    @Test func dataFilesAskForParallelWrites() throws {
        let rig = try ReadBufferTests.Rig()
        let direct = DataFile(host: rig.host, nsid: 1, instance: nil, cache: false)
        #expect(openReplyFlags(direct) & NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES != 0)
        let cached = DataFile(host: rig.host, nsid: 1, instance: nil, cache: true)
        #expect(openReplyFlags(cached) & NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES == 0)
    }
}
