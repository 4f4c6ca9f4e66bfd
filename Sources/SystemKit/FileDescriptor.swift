// Typed file descriptors: a plain value for descriptors someone else owns, and an owner that
// closes its descriptor when it goes away.

import CNetlabShims
import Glibc

/// A file descriptor number. Copyable; closing it is the caller's job (see `closeAfter`, or
/// hold it in an `OwnedDescriptor`).
public struct FileDescriptor: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let standardInput = FileDescriptor(rawValue: 0)
    public static let standardOutput = FileDescriptor(rawValue: 1)
    public static let standardError = FileDescriptor(rawValue: 2)

    /// How `open` creates and opens; the usual O_* flags by name. Close-on-exec is always set.
    public struct Options: OptionSet, Sendable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = Options([])
        public static let writeOnly = Options(rawValue: O_WRONLY)
        public static let readWrite = Options(rawValue: O_RDWR)
        public static let create = Options(rawValue: O_CREAT)
        public static let exclusive = Options(rawValue: O_EXCL)
        public static let truncate = Options(rawValue: O_TRUNC)
        public static let append = Options(rawValue: O_APPEND)
        public static let directory = Options(rawValue: O_DIRECTORY)
        /// Refuse to follow a symlink in the last component (ELOOP).
        public static let noFollow = Options(rawValue: O_NOFOLLOW)
        public static let nonBlocking = Options(rawValue: O_NONBLOCK)
    }

    /// Opens `path` (close-on-exec).
    public static func open(_ path: String, _ options: Options = .readOnly,
                            permissions: mode_t = 0o600) throws(SystemError) -> FileDescriptor {
        let fd = try syscall("open", path) { Glibc.open(path, options.rawValue | O_CLOEXEC, permissions) }
        return FileDescriptor(rawValue: fd)
    }

    /// Closes the descriptor. EINTR is not retried: on Linux the descriptor is gone anyway.
    public func close() throws(SystemError) {
        try syscall("close", "fd \(rawValue)", retryOnInterrupt: false) { Glibc.close(rawValue) }
    }

    /// Runs `body`, then closes the descriptor, also when `body` throws.
    @discardableResult
    public func closeAfter<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        defer { ignoringFailure { Glibc.close(rawValue) } }
        return try body()
    }

    /// Reads up to `count` bytes (fewer at the end of the file; empty at its end).
    public func read(upTo count: Int, context: @autoclosure () -> String = "") throws(SystemError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        let n = try syscall("read", context()) {
            buf.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) }
        }
        buf.removeLast(count - n)
        return buf
    }

    /// Reads until the end of the file.
    public func readAll(context: @autoclosure () -> String = "") throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let chunk = try read(upTo: 65536, context: context())
            if chunk.isEmpty { return out }
            out += chunk
        }
    }

    /// Writes every byte (short writes are continued).
    public func writeAll(_ bytes: some Collection<UInt8>, context: @autoclosure () -> String = "") throws(SystemError) {
        let data = Array(bytes)
        var offset = 0
        while offset < data.count {
            let n = try syscall("write", context()) {
                data.withUnsafeBytes { Glibc.write(rawValue, $0.baseAddress! + offset, $0.count - offset) }
            }
            offset += n
        }
    }

    /// Flushes the file's data and metadata to disk.
    public func sync(context: @autoclosure () -> String = "") throws(SystemError) {
        try syscall("fsync", context()) { fsync(rawValue) }
    }

    /// fstat(2).
    public func status(context: @autoclosure () -> String = "") throws(SystemError) -> stat {
        var st = stat()
        try syscall("fstat", context()) { fstat(rawValue, &st) }
        return st
    }

    /// Sets or clears O_NONBLOCK.
    public func setNonBlocking(_ on: Bool) throws(SystemError) {
        let flags = try syscall("fcntl(F_GETFL)", "fd \(rawValue)") { fcntl(rawValue, F_GETFL) }
        let new = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        try syscall("fcntl(F_SETFL)", "fd \(rawValue)") { fcntl(rawValue, F_SETFL, new) }
    }

    /// A pipe, both ends close-on-exec.
    public static func pipe() throws(SystemError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        try syscall("pipe2", "") { netlab_pipe_cloexec(&fds) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }
}

/// Owns a descriptor and closes it in deinit. For descriptors kept in long-lived objects.
public final class OwnedDescriptor: @unchecked Sendable {
    public let descriptor: FileDescriptor
    public var rawValue: Int32 { descriptor.rawValue }
    public init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }
    public convenience init(rawValue: Int32) { self.init(FileDescriptor(rawValue: rawValue)) }
    deinit { ignoringFailure { Glibc.close(descriptor.rawValue) } }
}
