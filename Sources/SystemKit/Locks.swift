// The two locks of the package: a mutex between threads of one process, and an exclusive
// file lock between processes (and between threads, each holding its own open file).

import Glibc

/// A pthread mutex. `withLock` is the only way to use it, so it is always released.
public final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    public init() { pthread_mutex_init(mutex, nil) }
    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }

    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// An exclusive `flock` on a file, held until `unlock` or deinit. Each instance opens the
/// file anew, so two threads of one process exclude each other as two processes do.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: FileDescriptor?

    /// Opens (creating, mode 0644, never through a symlink) `path` and waits for the lock.
    public init(path: String) throws(SystemError) {
        self.path = path
        let fd = try FileDescriptor.open(path, [.readWrite, .create, .noFollow], permissions: 0o644)
        do {
            try syscall("flock(LOCK_EX)", path) { flock(fd.rawValue, LOCK_EX) }
        } catch {
            ignoringFailure { Glibc.close(fd.rawValue) }
            throw error
        }
        self.fd = fd
    }

    private init(path: String, fd: FileDescriptor) {
        self.path = path
        self.fd = fd
    }

    /// The lock if nobody holds it now (also not this process through another `FileLock`),
    /// else nil; never waits. Opens `path` as `init` does.
    public static func attempt(path: String) throws(SystemError) -> FileLock? {
        let fd = try FileDescriptor.open(path, [.readWrite, .create, .noFollow], permissions: 0o644)
        if flock(fd.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let e = Errno.current
            ignoringFailure { Glibc.close(fd.rawValue) }
            if e == .tryAgain { return nil }  // EWOULDBLOCK is EAGAIN on Linux
            throw SystemError(operation: "flock(LOCK_EX|LOCK_NB)", object: path, errno: e)
        }
        return FileLock(path: path, fd: fd)
    }

    /// Releases the lock (closing the descriptor releases it).
    public func unlock() {
        if let fd { ignoringFailure { Glibc.close(fd.rawValue) } }
        fd = nil
    }

    deinit { unlock() }

    /// Runs `body` holding the lock on `path`.
    public static func withLock<R>(_ path: String, _ body: () throws -> R) throws -> R {
        let lock = try FileLock(path: path)
        defer { lock.unlock() }
        return try body()
    }
}
