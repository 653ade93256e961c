import Glibc

/// The checks and preparations that touch the file system.
extension DeviceConfiguration {
    /// `$XDG_DATA_HOME/nvmefs/default.img`, else `~/.local/share/nvmefs/default.img`.
    public static func defaultImagePath() throws(ConfigurationError) -> String {
        try dataDirectory(for: "the default image (set HOME or use --namespace)") + "/default.img"
    }

    /// `$XDG_DATA_HOME/nvmefs/firmware`, else `~/.local/share/nvmefs/firmware`:
    /// the firmware slots beside the default image (docs/FIRMWARE.md).
    public static func defaultFirmwareDirectory() throws(ConfigurationError) -> String {
        try dataDirectory(for: "the firmware slots (set HOME or use --firmware-dir)") + "/firmware"
    }

    /// `$XDG_DATA_HOME/nvmefs`, else `~/.local/share/nvmefs`.
    static func dataDirectory(for what: String) throws(ConfigurationError) -> String {
        if let xdg = environment("XDG_DATA_HOME"), xdg.hasPrefix("/") { return xdg + "/nvmefs" }
        guard let home = homeDirectory() else { throw ConfigurationError("cannot find the home directory for \(what)") }
        return home + "/.local/share/nvmefs"
    }

    /// The suffix of the default namespace directory.
    public static let namespaceDirectorySuffix = ".nvmefs-ns"

    /// The namespace directory in use: `--ns-dir`, else `IMAGE.nvmefs-ns`
    /// beside the first namespace's image (for the default image, in the
    /// data directory). Mounts of different devices never share it.
    /// For an NBD export, the directory is named after its URI in the data
    /// directory (the current directory when there is no home).
    public var namespaceDirectory: String {
        if let nsDir { return nsDir }
        guard namespaces[0].isNBD else { return namespaces[0].path + Self.namespaceDirectorySuffix }
        let name = String(namespaces[0].path.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
        let base = (try? Self.dataDirectory(for: "")) ?? "."
        return base + "/" + name + Self.namespaceDirectorySuffix
    }

    /// Makes every image path and `--ns-dir` absolute: relative to the
    /// current directory, through the real path of the parent directory when
    /// that exists.
    public mutating func resolvePaths() throws(ConfigurationError) {
        for i in namespaces.indices where !namespaces[i].isNBD {
            namespaces[i].path = try Self.absolutePath(namespaces[i].path)
        }
        if let dir = nsDir { nsDir = try Self.absolutePath(dir) }
        firmwareDirectory = try firmwareDirectoryIsDefault ? Self.defaultFirmwareDirectory()
            : Self.absolutePath(firmwareDirectory ?? ".")
    }

    /// Checks the images against the file system without changing anything:
    /// an existing image must be a regular file (a symbolic link to one is
    /// followed), accessible, of a size that is a multiple of its LBA size;
    /// a missing one needs an existing parent directory (except the default
    /// image, whose directory is created) and is not created through a
    /// dangling symbolic link (docs/PERMISSIONS.md).
    public func checkFiles() throws(ConfigurationError) {
        if let dir = nsDir {
            // A given namespace directory exists, or its parent does (it is then created).
            var st = stat()
            if stat(dir, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else { throw ConfigurationError("--ns-dir \(dir) is not a directory") }
                guard access(dir, R_OK | W_OK | X_OK) == 0 else { throw ConfigurationError("--ns-dir \(dir): \(Self.errorText())") }
            } else {
                guard errno == ENOENT else { throw ConfigurationError("--ns-dir \(dir): \(Self.errorText())") }
                let parent = Self.parentDirectory(dir)
                var pst = stat()
                guard stat(parent, &pst) == 0, pst.st_mode & S_IFMT == S_IFDIR else {
                    throw ConfigurationError("directory \(parent) of --ns-dir \(dir) does not exist")
                }
            }
        }
        // The firmware directory: a directory, or created (with its parents
        // when it is the default one; else its parent must exist).
        var fst = stat()
        if let dir = firmwareDirectory, stat(dir, &fst) == 0 {
            guard fst.st_mode & S_IFMT == S_IFDIR else {
                throw ConfigurationError("firmware directory \(dir) is not a directory")
            }
        } else if let dir = firmwareDirectory, !firmwareDirectoryIsDefault {
            var pst = stat()
            let parent = Self.parentDirectory(dir)
            guard stat(parent, &pst) == 0, pst.st_mode & S_IFMT == S_IFDIR else {
                throw ConfigurationError("directory \(parent) of firmware directory \(dir) does not exist")
            }
        }
        // An NBD export is checked when it is opened (`NBDNamespace`).
        for ns in namespaces where !ns.isNBD {
            var st = stat()
            if stat(ns.path, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFREG else {
                    throw ConfigurationError("image \(ns.path) is \(Self.fileKind(st.st_mode)), not a regular file")
                }
                let size = UInt64(st.st_size)
                guard size > 0 else { throw ConfigurationError("image \(ns.path) is empty") }
                guard size % ns.lbaSize == 0 else {
                    throw ConfigurationError("image \(ns.path): size \(size) is not a multiple of the LBA size \(ns.lbaSize)")
                }
                guard !ns.sizeGiven || ns.size == size else {
                    throw ConfigurationError("image \(ns.path) exists with size \(size), not the \(ns.size) given")
                }
                guard access(ns.path, ns.readOnly ? R_OK : R_OK | W_OK) == 0 else {
                    throw ConfigurationError("image \(ns.path): \(Self.errorText())")
                }
                continue
            }
            guard errno == ENOENT else { throw ConfigurationError("image \(ns.path): \(Self.errorText())") }
            if let target = Self.danglingLinkTarget(ns.path) {
                throw ConfigurationError("image \(ns.path) is a symbolic link to \(target), which does not exist "
                                         + "(create the target, or give its path)")
            }
            if ns.isDefaultImage { continue }
            let parent = Self.parentDirectory(ns.path)
            var pst = stat()
            guard stat(parent, &pst) == 0 else {
                throw ConfigurationError("directory \(parent) of image \(ns.path) does not exist")
            }
            guard pst.st_mode & S_IFMT == S_IFDIR else {
                throw ConfigurationError("\(parent) (parent of image \(ns.path)) is not a directory")
            }
            guard access(parent, W_OK) == 0 else {
                throw ConfigurationError("cannot create image \(ns.path): \(Self.errorText())")
            }
        }
    }

    /// Creates the default image's directory and every missing image
    /// (sparse, of its `size`), and records the size of existing images.
    public mutating func prepare() throws(ConfigurationError) {
        if firmwareDirectoryIsDefault, let dir = firmwareDirectory { try Self.makeDirectories(dir) }
        for i in namespaces.indices where !namespaces[i].isNBD {
            let path = namespaces[i].path
            if namespaces[i].isDefaultImage { try Self.makeDirectories(Self.parentDirectory(path)) }
            var st = stat()
            if stat(path, &st) == 0 {
                namespaces[i].size = UInt64(st.st_size)
                continue
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, imageMode)
            guard fd >= 0 else { throw ConfigurationError("cannot create image \(path): \(Self.errorText())") }
            defer { close(fd) }
            guard ftruncate(fd, off_t(namespaces[i].size)) == 0 else {
                let text = Self.errorText()
                unlink(path)
                throw ConfigurationError("cannot create image \(path): \(text)")
            }
        }
        try checkFiles()
    }

    // MARK: helpers

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let s = String(cString: value)
        return s.isEmpty ? nil : s
    }

    static func homeDirectory() -> String? {
        if let home = environment("HOME") { return home }
        guard let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }

    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// "a directory", "a block device" …: what a file that is not a regular
    /// file is, for an error message.
    static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFBLK: "a block device"
        case S_IFCHR: "a character device"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "of an unknown file type"
        }
    }

    /// The target of `path` when it is a symbolic link whose target does
    /// not exist (stat fails with ENOENT where lstat succeeds); else nil.
    static func danglingLinkTarget(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFLNK else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(path, &buffer, buffer.count - 1)
        guard length >= 0 else { return "?" }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The absolute form of `path`, with its parent directory's real path
    /// when that directory exists.
    static func absolutePath(_ path: String) throws(ConfigurationError) -> String {
        var absolute = path
        if !path.hasPrefix("/") {
            guard let cwd = getcwd(nil, 0) else { throw ConfigurationError("cannot get the current directory") }
            defer { free(cwd) }
            absolute = String(cString: cwd) + "/" + path
        }
        while absolute.count > 1 && absolute.hasSuffix("/") { absolute.removeLast() }
        let parent = parentDirectory(absolute)
        let name = String(absolute[absolute.index(after: absolute.lastIndex(of: "/")!)...])
        if name == "." || name == ".." { return realPath(absolute) ?? absolute }
        guard let realParent = realPath(parent) else { return absolute }
        return realParent == "/" ? "/" + name : realParent + "/" + name
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func makeDirectories(_ path: String) throws(ConfigurationError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw ConfigurationError("\(path) is not a directory") }
            return
        }
        let parent = parentDirectory(path)
        if parent != path { try makeDirectories(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw ConfigurationError("cannot create directory \(path): \(errorText())")
        }
    }
}

/// The mountpoint checks of CONTRACT §2.
public enum Mountpoint {
    /// Checks that `path` is an existing, empty directory; returns its real path.
    public static func validate(_ path: String) throws(ConfigurationError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw ConfigurationError("mountpoint \(path) does not exist") }
            throw ConfigurationError("mountpoint \(path): \(DeviceConfiguration.errorText())")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw ConfigurationError("mountpoint \(path) is not a directory") }
        guard let dir = opendir(path) else {
            throw ConfigurationError("mountpoint \(path): \(DeviceConfiguration.errorText())")
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { throw ConfigurationError("mountpoint \(path) is not empty") }
        }
        guard let real = DeviceConfiguration.realPath(path) else {
            throw ConfigurationError("mountpoint \(path): \(DeviceConfiguration.errorText())")
        }
        return real
    }
}
