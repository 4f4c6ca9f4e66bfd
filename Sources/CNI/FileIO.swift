// Small file helpers over Glibc (no Foundation): whole-file read, atomic write, mkdir -p,
// directory listing, unlink; and base64, which libcni's cache uses for the config bytes.

#if canImport(Glibc)
import Glibc
#endif

enum FileIO {
    static func read(_ path: String) throws(CNIError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CNIError.ioFailure("open", path, errno: errno) }
        defer { close(fd) }
        return try readAll(fd, what: path)
    }

    static func readAll(_ fd: Int32, what: String) throws(CNIError) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CNIError.ioFailure("read", what, errno: errno)
            }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws(CNIError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CNIError.ioFailure("write", what, errno: errno)
            }
            off += n
        }
    }

    /// Writes via a temporary file and rename, so readers see the old or the new content.
    static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(CNIError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CNIError.ioFailure("create", tmp, errno: errno) }
        do throws(CNIError) {
            try writeAll(fd, bytes, what: tmp)
            if fsync(fd) != 0 { throw CNIError.ioFailure("fsync", tmp, errno: errno) }
        } catch {
            close(fd); unlink(tmp)
            throw error
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw CNIError.ioFailure("rename to", path, errno: e)
        }
    }

    static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(CNIError) {
        var cur = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            cur += "/" + part
            if mkdir(cur, mode) != 0 && errno != EEXIST {
                throw CNIError.ioFailure("mkdir", cur, errno: errno)
            }
        }
    }

    /// Removes a file; a missing file is fine.
    static func remove(_ path: String) throws(CNIError) {
        if unlink(path) != 0 && errno != ENOENT { throw CNIError.ioFailure("unlink", path, errno: errno) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    /// Names in a directory (without "." and ".."); a missing directory is empty.
    static func list(_ path: String) throws(CNIError) -> [String] {
        guard let d = opendir(path) else {
            if errno == ENOENT { return [] }
            throw CNIError.ioFailure("opendir", path, errno: errno)
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            for s in [18, 12, 6, 0] { out.append(alphabet[Int((n >> UInt32(s)) & 63)]) }
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(rest == 2 ? alphabet[Int((n >> 6) & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var table = [Int16](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int16(i) }
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { break }
            let v = table[Int(c)]
            guard v >= 0 else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }
}
