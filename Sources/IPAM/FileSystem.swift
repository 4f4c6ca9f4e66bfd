// The few file-system calls the disk store and resolv.conf reading need, each one
// throwing IPAMError.io with the operation, the path and the errno. EINTR is retried here.

import Glibc

enum FileSystem {
    /// Runs a system call until it does not fail with EINTR; returns its result or throws.
    @discardableResult
    static func retrying(_ op: String, _ path: String, _ call: () -> Int32) throws -> Int32 {
        while true {
            let r = call()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            throw IPAMError.io(operation: op, path: path, errno: e)
        }
    }

    /// Creates `path` and its missing parents with mode 0755.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 {
                let e = errno
                if e == EEXIST { continue }
                throw IPAMError.io(operation: "mkdir", path: prefix, errno: e)
            }
        }
    }

    /// The whole file as text, or nil when it does not exist.
    static func read(_ path: String) throws -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw IPAMError.io(operation: "open", path: path, errno: e)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IPAMError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func writeAll(_ fd: Int32, _ text: String, path: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IPAMError.io(operation: "write", path: path, errno: errno)
            }
            offset += n
        }
    }

    /// Creates `path` with O_EXCL and writes `text`. Returns false when the file exists.
    /// A failed write removes the half-written file.
    static func createExclusive(_ path: String, _ text: String) throws -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let e = errno
            if e == EEXIST { return false }
            throw IPAMError.io(operation: "create", path: path, errno: e)
        }
        do {
            try writeAll(fd, text, path: path)
            try retrying("fsync", path) { fsync(fd) }
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        if close(fd) != 0 && errno != EINTR {
            let e = errno
            unlink(path)
            throw IPAMError.io(operation: "close", path: path, errno: e)
        }
        return true
    }

    /// Replaces `path` with `text` atomically (temporary file + rename).
    static func replace(_ path: String, _ text: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw IPAMError.io(operation: "create", path: tmp, errno: errno) }
        do {
            try writeAll(fd, text, path: tmp)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw IPAMError.io(operation: "rename", path: path, errno: e)
        }
    }

    /// Removes `path`; a missing file is not an error.
    static func remove(_ path: String) throws {
        if unlink(path) != 0 {
            let e = errno
            if e == ENOENT { return }
            throw IPAMError.io(operation: "unlink", path: path, errno: e)
        }
    }

    /// Names in a directory, without "." and "..".
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw IPAMError.io(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Opens (creating) `path` and takes an exclusive flock on it; the returned descriptor
    /// holds the lock until closed. Each call opens its own file description, so two
    /// threads of one process exclude each other as two processes do.
    static func lockExclusive(_ path: String) throws -> Int32 {
        let fd = try retrying("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        do {
            try retrying("flock(LOCK_EX)", path) { flock(fd, LOCK_EX) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }
}
