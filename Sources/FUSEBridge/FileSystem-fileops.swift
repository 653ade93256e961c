import CFuse3
import Glibc

// The libfuse low-level callbacks for regular files: open, read, write,
// flush, release, fsync, fallocate. The handle (fi->fh) is a retained
// OpenFile, released in `release`.

/// The OpenFile stored in a file info's fh.
@inline(__always)
func openFile(_ fi: UnsafeMutablePointer<fuse_file_info>) -> OpenFile? {
    guard let pointer = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) else { return nil }
    return Unmanaged<OpenFile>.fromOpaque(pointer).takeUnretainedValue()
}

func fuseOpen(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req, let fi else { return }
    let fs = fileSystem(req)
    guard let node = fs.node(ino) else { fuse_reply_err(req, ENOENT); return }
    guard let handler = node.fileHandler else { fuse_reply_err(req, EISDIR); return }
    let flags = fi.pointee.flags
    let access = flags & O_ACCMODE
    // The mode bits are the file's contract, also for root (who passes the
    // kernel's default_permissions check).
    if access != O_WRONLY && handler.mode & 0o444 == 0 { fuse_reply_err(req, EACCES); return }
    if access != O_RDONLY && handler.mode & 0o222 == 0 { fuse_reply_err(req, EACCES); return }
    let file: OpenFile
    do throws(FileError) {
        file = OpenFile(node: node, handler: handler, flags: flags, state: try handler.open(flags: flags))
    } catch {
        fuse_reply_err(req, error.code); return
    }
    if flags & O_TRUNC != 0 && access != O_RDONLY && !handler.ignoresTruncateOnOpen {
        do throws(FileError) {
            try handler.truncate(to: 0, file: file)
        } catch {
            handler.release(file: file)
            fuse_reply_err(req, error.code); return
        }
    }
    let retained = Unmanaged.passRetained(file)
    let fh = UInt64(UInt(bitPattern: retained.toOpaque()))
    fi.pointee.fh = fh
    if nvmefs_reply_open(req, fh, openReplyFlags(handler)) != 0 {
        // The opener was interrupted: no release will come for this handle.
        handler.release(file: file)
        retained.release()
    }
}

/// The FOPEN_* bits of the reply to an open of `handler`'s file.
func openReplyFlags(_ handler: any FileHandler) -> UInt32 {
    var flags: UInt32 = 0
    if handler.directIO { flags |= NVMEFS_FOPEN_DIRECT_IO }
    if handler.keepCache { flags |= NVMEFS_FOPEN_KEEP_CACHE }
    if handler.nonSeekable { flags |= NVMEFS_FOPEN_NONSEEKABLE }
    // Only with direct I/O: the kernel takes the inode lock anyway for a
    // file whose data goes through its page cache.
    if handler.directIO && handler.parallelDirectWrites { flags |= NVMEFS_FOPEN_PARALLEL_DIRECT_WRITES }
    return flags
}

func fuseRead(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t,
              _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    guard let fi, let file = openFile(fi) else { fuse_reply_err(req, EBADF); return }
    // Answered in this callback when the handler can (`readNow`): the
    // reply needs no gate, as the session outlives its workers' callbacks.
    if size > 0, size <= ReadBuffer.largestKept {
        do throws(FileError) {
            if let bytes = try file.handler.readNow(at: UInt64(max(0, off)), size: size, buffer: ReadBuffer.forThread()) {
                fuse_reply_buf(req, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), min(bytes.count, size))
                return
            }
        } catch {
            fuse_reply_err(req, error.code)
            return
        }
    }
    let request = ReadRequest(request: req, offset: UInt64(max(0, off)), size: size, file: file,
                              fileSystem: fileSystem(req))
    file.handler.read(request)
}

func fuseWrite(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ buf: UnsafePointer<CChar>?, _ size: Int, _ off: off_t,
               _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    guard let fi, let file = openFile(fi) else { fuse_reply_err(req, EBADF); return }
    do throws(FileError) {
        let data = UnsafeRawBufferPointer(start: buf, count: buf == nil ? 0 : size)
        // The kernel marks a write of an O_DSYNC file, or one made with
        // RWF_DSYNC, with O_DSYNC in its flags (O_SYNC includes it): its
        // data must be on stable storage when it returns (`namespaces/N/data`
        // sends it with FUA; docs/WRITE-CACHE.md).
        let count = fi.pointee.flags & O_DSYNC != 0
            ? try file.handler.writeDurably(data, at: UInt64(max(0, off)), file: file)
            : try file.handler.write(data, at: UInt64(max(0, off)), file: file)
        fuse_reply_write(req, max(0, min(count, size)))
    } catch {
        fuse_reply_err(req, error.code)
    }
}

func fuseFlush(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    guard let fi, let file = openFile(fi) else { fuse_reply_err(req, EBADF); return }
    do throws(FileError) {
        try file.handler.flush(file: file)
        fuse_reply_err(req, 0)
    } catch {
        fuse_reply_err(req, error.code)
    }
}

func fuseRelease(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    if let fi, let pointer = UnsafeMutableRawPointer(bitPattern: UInt(fi.pointee.fh)) {
        let file = Unmanaged<OpenFile>.fromOpaque(pointer).takeRetainedValue()
        file.handler.release(file: file)
    }
    fuse_reply_err(req, 0)
}

func fuseFsync(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    guard let fi, let file = openFile(fi) else { fuse_reply_err(req, EBADF); return }
    do throws(FileError) {
        try file.handler.fsync(file: file, dataOnly: datasync != 0)
        fuse_reply_err(req, 0)
    } catch {
        fuse_reply_err(req, error.code)
    }
}

func fuseFallocate(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ mode: Int32, _ offset: off_t, _ length: off_t,
                   _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    guard let req else { return }
    guard let fi, let file = openFile(fi) else { fuse_reply_err(req, EBADF); return }
    guard offset >= 0, length > 0 else { fuse_reply_err(req, EINVAL); return }
    do throws(FileError) {
        try file.handler.fallocate(mode: mode, offset: UInt64(offset), length: UInt64(length), file: file)
        fuse_reply_err(req, 0)
    } catch {
        fuse_reply_err(req, error.code)
    }
}
