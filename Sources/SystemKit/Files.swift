// Whole-file reads, atomic replacement (fsync of the file and of its directory), exclusive
// creation, directories, listing and removal. Every failure is a SystemError with the path.

import Glibc

public enum Files {
    /// The whole file.
    public static func read(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = try FileDescriptor.open(path)
        return try fd.closeAfter { () throws(SystemError) in try fd.readAll(context: path) }
    }

    /// The whole file, or nil when it does not exist.
    public static func readIfPresent(_ path: String) throws(SystemError) -> [UInt8]? {
        do {
            return try read(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// The whole file as UTF-8 text, or nil when it does not exist.
    public static func readText(_ path: String) throws(SystemError) -> String? {
        try readIfPresent(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The whole file, or nil when it does not exist. With `followSymlink: false` a symlink in
    /// the file's place is refused (ELOOP) instead of read through.
    public static func readIfPresent(_ path: String, followSymlink: Bool) throws(SystemError) -> [UInt8]? {
        let options: FileDescriptor.Options = followSymlink ? .readOnly : [.readOnly, .noFollow]
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, options)
        } catch where error.errno == .noSuchFileOrDirectory {
            return nil
        }
        return try fd.closeAfter { () throws(SystemError) in try fd.readAll(context: path) }
    }

    /// Test hook: runs between writing the temporary file and renaming it over `path`.
    nonisolated(unsafe) package static var beforeRename: ((String) throws -> Void)?

    /// Replaces `path` with `bytes` so that readers, and the file after a crash, show either
    /// the old or the new content: write a temporary file beside it, fsync it, rename it over
    /// `path`, fsync the directory. A symlink at `path` is replaced, never followed.
    public static func writeAtomically(_ path: String, _ bytes: some Collection<UInt8>,
                                       permissions: mode_t = 0o644) throws(SystemError) {
        let tmp = "\(path).tmp.\(getpid()).\(Threads.currentID)"
        let fd = try FileDescriptor.open(tmp, [.writeOnly, .create, .exclusive, .noFollow],
                                         permissions: permissions)
        do {
            try fd.closeAfter { () throws(SystemError) in
                try fd.writeAll(bytes, context: tmp)
                // The creation mode is filtered by the umask; the file gets exactly `permissions`.
                try syscall("fchmod", tmp) { fchmod(fd.rawValue, permissions) }
                try fd.sync(context: tmp)
            }
            try runBeforeRenameHook(tmp)
            try syscall("rename to", path) { rename(tmp, path) }
        } catch {
            ignoringFailure { unlink(tmp) }
            throw error
        }
        try syncDirectory(of: path)
    }

    private static func runBeforeRenameHook(_ tmp: String) throws(SystemError) {
        guard let hook = beforeRename else { return }
        do { try hook(tmp) } catch {
            throw SystemError(operation: "write", object: tmp, errno: .ioError, message: "\(error)")
        }
    }

    /// Creates `path` with `bytes` only if it does not exist (O_EXCL, never through a
    /// symlink), fsynced. Returns false when it exists. A failed write removes the file.
    public static func createExclusive(_ path: String, _ bytes: some Collection<UInt8>,
                                       permissions: mode_t = 0o644) throws(SystemError) -> Bool {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, [.writeOnly, .create, .exclusive, .noFollow], permissions: permissions)
        } catch where error.errno == .exists {
            return false
        }
        do {
            try fd.writeAll(bytes, context: path)
            try fd.sync(context: path)
            try fd.close()
        } catch {
            ignoringFailure { unlink(path) }
            throw error
        }
        return true
    }

    /// fsyncs the directory holding `path`, so a rename or creation in it survives a crash.
    public static func syncDirectory(of path: String) throws(SystemError) {
        let dir = directoryName(path)
        let fd = try FileDescriptor.open(dir, [.directory])
        try fd.closeAfter { () throws(SystemError) in try fd.sync(context: dir) }
    }

    /// The directory part of `path` ("." for a bare name).
    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// mkdir -p with `permissions` for the directories it creates.
    public static func makeDirectories(_ path: String, permissions: mode_t = 0o755) throws(SystemError) {
        var current = path.hasPrefix("/") ? "" : "."
        let parts = path.split(separator: "/")
        for (i, part) in parts.enumerated() {
            current += "/" + part
            do {
                try makeDirectory(current, permissions: permissions, existingIsFine: true)
            } catch where error.errno == .exists && i < parts.count - 1 {
                // As `mkdir -p` says it: a file where a parent should be is "not a directory".
                throw SystemError(operation: "mkdir", object: current, errno: .notDirectory)
            }
        }
    }

    /// mkdir; with `existingIsFine` an existing directory (or a symlink to one) is no error,
    /// while a file of another kind in its place still is (EEXIST).
    public static func makeDirectory(_ path: String, permissions: mode_t = 0o755,
                                     existingIsFine: Bool = true) throws(SystemError) {
        do {
            try syscall("mkdir", path) { mkdir(path, permissions) }
        } catch where error.errno == .exists && existingIsFine {
            guard isDirectory(path) else { throw error }
        }
    }

    /// Removes a file; a missing file is fine.
    public static func remove(_ path: String) throws(SystemError) {
        do {
            try syscall("unlink", path) { unlink(path) }
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
    }

    /// The names in a directory, sorted, without "." and "..". A missing directory throws
    /// (`.notFound`); use `listIfPresent` where absence means empty.
    public static func list(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else {
            throw SystemError(operation: "opendir", object: path, errno: .current)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            Glibc.errno = 0
            guard let entry = readdir(dir) else {
                if Glibc.errno != 0 { throw SystemError(operation: "readdir", object: path, errno: .current) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The names in a directory, or [] when the directory does not exist.
    public static func listIfPresent(_ path: String) throws(SystemError) -> [String] {
        do {
            return try list(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return []
        }
    }

    /// Removes a directory tree without following symlinks. A file still mounted on (a netns
    /// bind mount) makes it fail with EBUSY. A directory refilled while it is being removed
    /// (another process writing into it) is retried a few times.
    public static func removeTree(_ path: String) throws(SystemError) {
        guard let st = try linkStatus(path) else { return }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return try remove(path) }
        for attempt in 0..<5 {
            for name in try listIfPresent(path) { try removeTree(path + "/" + name) }
            do {
                try syscall("rmdir", path) { rmdir(path) }
                return
            } catch where error.errno == .noSuchFileOrDirectory {
                return
            } catch where error.errno == .notEmpty && attempt < 4 {
                continue
            }
        }
    }

    /// lstat(2), or nil when nothing is there.
    public static func linkStatus(_ path: String) throws(SystemError) -> stat? {
        var st = stat()
        do {
            try syscall("lstat", path) { lstat(path, &st) }
        } catch where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        return st
    }

    /// stat(2) (following symlinks), or nil when nothing is there.
    public static func status(_ path: String) throws(SystemError) -> stat? {
        var st = stat()
        do {
            try syscall("stat", path) { stat(path, &st) }
        } catch where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        return st
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        guard let st = try? status(path) else { return false }  // unreadable counts as absent
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// A regular file the caller may execute.
    public static func isExecutableFile(_ path: String) -> Bool {
        guard let st = try? status(path), (st.st_mode & S_IFMT) == S_IFREG else { return false }  // absent or unreadable: not runnable
        return access(path, X_OK) == 0
    }
}
