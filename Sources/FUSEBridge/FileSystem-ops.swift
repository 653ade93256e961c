import CFuse3
import Glibc

// The libfuse low-level callbacks for names, attributes and directories.
// Each is a global function (never a closure in main.swift: see
// docs/ARCHITECTURE.md, "Swift on libfuse3"), finds its FileSystem through
// the session userdata and replies exactly once.

/// The operation table of the bridge; no `poll` (it would slow every read).
func makeLowLevelOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = fuseInit
    ops.lookup = fuseLookup
    ops.forget = fuseForget
    ops.forget_multi = fuseForgetMulti
    ops.getattr = fuseGetattr
    ops.setattr = fuseSetattr
    ops.opendir = fuseOpendir
    ops.readdir = fuseReaddir
    ops.readdirplus = fuseReaddirplus
    ops.releasedir = fuseReleasedir
    ops.fsyncdir = fuseFsyncdir
    ops.statfs = fuseStatfs
    ops.open = fuseOpen
    ops.read = fuseRead
    ops.write = fuseWrite
    ops.flush = fuseFlush
    ops.release = fuseRelease
    ops.fsync = fuseFsync
    ops.fallocate = fuseFallocate
    ops.create = fuseCreate
    ops.mknod = fuseMknod
    ops.mkdir = fuseMkdir
    ops.unlink = fuseUnlink
    ops.rmdir = fuseRmdir
    ops.rename = fuseRename
    ops.symlink = fuseSymlink
    ops.link = fuseLink
    return ops
}

/// The FileSystem behind a request.
@inline(__always)
func fileSystem(_ req: fuse_req_t) -> FileSystem {
    Unmanaged<FileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

func fuseInit(_ userdata: UnsafeMutableRawPointer?, _ conn: UnsafeMutablePointer<fuse_conn_info>?) {
    guard let conn else { return }
    // O_TRUNC reaches open() instead of a separate setattr, so files that
    // ignore it (block-device-like data, sysfs-like attributes) can.
    if conn.pointee.capable & UInt32(FUSE_CAP_ATOMIC_O_TRUNC) != 0 {
        conn.pointee.want |= UInt32(FUSE_CAP_ATOMIC_O_TRUNC)
    }
    // Asynchronous direct I/O (io_uring, libaio) is sent as background
    // requests; the kernel's default of 12 in flight would cap the queue depth.
    conn.pointee.max_background = 64
    conn.pointee.congestion_threshold = 48
    conn.pointee.time_gran = 1
}

func fuseLookup(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    guard let req, let name else { return }
    let fs = fileSystem(req)
    guard let dirNode = fs.node(parent) else { fuse_reply_err(req, ENOENT); return }
    guard let directory = dirNode.directory else { fuse_reply_err(req, ENOTDIR); return }
    guard let child = directory.child(named: String(cString: name)) else { fuse_reply_err(req, ENOENT); return }
    let ino = fs.remember(child)
    var e = fs.entry(for: child, ino: ino)
    if fuse_reply_entry(req, &e) != 0 {
        fs.forget(fuse_ino_t(ino), count: 1)   // the kernel did not take the lookup
    }
}

func fuseForget(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ nlookup: UInt64) {
    guard let req else { return }
    fileSystem(req).forget(ino, count: nlookup)
    fuse_reply_none(req)
}

func fuseForgetMulti(_ req: fuse_req_t?, _ count: Int, _ forgets: UnsafeMutablePointer<fuse_forget_data>?) {
    guard let req else { return }
    let fs = fileSystem(req)
    if let forgets {
        for i in 0..<count { fs.forget(fuse_ino_t(forgets[i].ino), count: forgets[i].nlookup) }
    }
    fuse_reply_none(req)
}

func fuseGetattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    let fs = fileSystem(req)
    guard let node = fs.node(ino) else { fuse_reply_err(req, ENOENT); return }
    var st = fs.attributes(of: node, ino: UInt64(ino))
    fuse_reply_attr(req, &st, 0)
}

func fuseSetattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ attr: UnsafeMutablePointer<stat>?, _ toSet: Int32,
                 _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req, let attr else { return }
    let fs = fileSystem(req)
    guard let node = fs.node(ino) else { fuse_reply_err(req, ENOENT); return }
    // Pseudo files keep their mode and owner; times are accepted and ignored
    // (so `touch` works).
    if toSet & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0 {
        fuse_reply_err(req, EPERM); return
    }
    if toSet & FUSE_SET_ATTR_SIZE != 0 {
        guard let handler = node.fileHandler else { fuse_reply_err(req, EISDIR); return }
        let file = fi.flatMap { openFile($0) }
        do throws(FileError) {
            try handler.truncate(to: UInt64(max(0, attr.pointee.st_size)), file: file)
        } catch {
            fuse_reply_err(req, error.code); return
        }
    }
    var st = fs.attributes(of: node, ino: UInt64(ino))
    fuse_reply_attr(req, &st, 0)
}

func fuseStatfs(_ req: fuse_req_t?, _ ino: fuse_ino_t) {
    guard let req else { return }
    var st = statvfs()
    st.f_bsize = 4096
    st.f_frsize = 4096
    st.f_namemax = 255
    fuse_reply_statfs(req, &st)
}

// MARK: directories

/// An open directory: a snapshot of its entries, so offsets stay meaningful
/// across readdir calls.
final class DirectoryHandle: Sendable {
    let ino: UInt64
    let entries: [Node]
    init(ino: UInt64, entries: [Node]) { self.ino = ino; self.entries = entries }
}

func fuseOpendir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req, let fi else { return }
    let fs = fileSystem(req)
    guard let node = fs.node(ino) else { fuse_reply_err(req, ENOENT); return }
    guard let directory = node.directory else { fuse_reply_err(req, ENOTDIR); return }
    let handle = Unmanaged.passRetained(DirectoryHandle(ino: UInt64(ino), entries: directory.children))
    fi.pointee.fh = UInt64(UInt(bitPattern: handle.toOpaque()))
    if fuse_reply_open(req, fi) != 0 { handle.release() }
}

func fuseReleasedir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    if let fi, let pointer = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) {
        Unmanaged<DirectoryHandle>.fromOpaque(pointer).release()
    }
    fuse_reply_err(req, 0)
}

func fuseFsyncdir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    fuse_reply_err(req, 0)
}

func fuseReaddir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t,
                 _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    readDirectory(req, size: size, offset: off, fi: fi, plus: false)
}

func fuseReaddirplus(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t,
                     _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    readDirectory(req, size: size, offset: off, fi: fi, plus: true)
}

/// Fills one readdir(plus) reply. Offsets: 0 ".", 1 "..", 2+k the k-th entry;
/// each entry carries the offset of the next one.
private func readDirectory(_ req: fuse_req_t?, size: Int, offset: off_t,
                           fi: UnsafeMutablePointer<fuse_file_info>?, plus: Bool) {
    guard let req else { return }
    guard let fi, let pointer = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) else {
        fuse_reply_err(req, EBADF); return
    }
    let fs = fileSystem(req)
    let handle = Unmanaged<DirectoryHandle>.fromOpaque(pointer).takeUnretainedValue()
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(size, 1))
    defer { buffer.deallocate() }
    var used = 0
    var index = max(0, Int(offset))
    let total = handle.entries.count + 2
    while index < total {
        let name: String
        let node: Node?
        switch index {
        case 0: name = "."; node = nil
        case 1: name = ".."; node = nil
        default: node = handle.entries[index - 2]; name = node!.name
        }
        let ino = node.map { fs.inodeNumber(of: $0) } ?? handle.ino
        let remaining = size - used
        let needed: Int
        if plus {
            var e: fuse_entry_param
            if let node {
                e = fs.entry(for: node, ino: ino)
            } else {
                e = fuse_entry_param()
                e.attr.st_ino = __ino_t(ino)
                e.attr.st_mode = S_IFDIR
            }
            needed = fuse_add_direntry_plus(req, buffer + used, remaining, name, &e, off_t(index + 1))
            if needed > remaining { break }
            // The kernel takes a lookup of every entry but "." and "..".
            if let node { _ = fs.remember(node) }
        } else {
            var st = stat()
            st.st_ino = __ino_t(ino)
            if let node { st.st_mode = node.directory != nil ? S_IFDIR : S_IFREG } else { st.st_mode = S_IFDIR }
            needed = fuse_add_direntry(req, buffer + used, remaining, name, &st, off_t(index + 1))
            if needed > remaining { break }
        }
        used += needed
        index += 1
    }
    fuse_reply_buf(req, buffer, used)
}

// MARK: the tree is fixed for users: no creation, removal or renaming

func fuseCreate(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t,
                _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseMknod(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t, _ rdev: dev_t) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseMkdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseUnlink(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseRmdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseRename(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ newParent: fuse_ino_t,
                _ newName: UnsafePointer<CChar>?, _ flags: UInt32) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseSymlink(_ req: fuse_req_t?, _ link: UnsafePointer<CChar>?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    if let req { fuse_reply_err(req, EACCES) }
}

func fuseLink(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ newParent: fuse_ino_t, _ newName: UnsafePointer<CChar>?) {
    if let req { fuse_reply_err(req, EACCES) }
}
