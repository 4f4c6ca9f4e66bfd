// Network namespaces: open by path or pid, create/delete named ones under /run/netns (as
// `ip netns add/del` does), and run synchronous work inside one on a dedicated thread.

import CNetlabShims
#if canImport(Glibc)
import Glibc
#endif

/// An open network namespace file descriptor, closed in deinit.
public final class NetworkNamespace: @unchecked Sendable {
    public let fd: Int32
    /// The path it was opened from.
    public let path: String

    init(fd: Int32, path: String) { self.fd = fd; self.path = path }
    deinit { close(fd) }

    public static let runDirectory = "/run/netns"

    public static func open(path: String) throws -> NetworkNamespace {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError(operation: "open netns", object: path, errno: errno) }
        return NetworkNamespace(fd: fd, path: path)
    }

    public static func open(pid: Int32) throws -> NetworkNamespace {
        try open(path: "/proc/\(pid)/ns/net")
    }

    /// The calling thread's current network namespace.
    public static var current: NetworkNamespace {
        get throws { try open(path: "/proc/thread-self/ns/net") }
    }

    /// The namespace's inode number (what `ls -i /proc/self/ns/net` shows); equal inodes mean
    /// the same namespace.
    public var inode: UInt64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    /// The path of a named netns ("/run/netns/NAME"); a value with a '/' is taken as a path.
    public static func path(named name: String) -> String {
        name.contains("/") ? name : runDirectory + "/" + name
    }

    /// Creates a named netns like `ip netns add NAME` and returns its path.
    @discardableResult
    public static func create(named name: String) throws -> String {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw NetlinkError(operation: "create netns", object: name, errno: EINVAL, message: "invalid name")
        }
        try makeRunDirectoryShared()
        let path = runDirectory + "/" + name
        let fd = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard fd >= 0 else { throw NetlinkError(operation: "create netns", object: path, errno: errno) }
        close(fd)
        // unshare() moves only this thread; the thread is discarded afterwards.
        let err: Int32 = try runOnDedicatedThread {
            guard netlab_unshare_net() == 0 else { return errno }
            let source = "/proc/self/task/\(netlab_gettid())/ns/net"
            return mount(source, path, "none", UInt(MS_BIND), nil) == 0 ? 0 : errno
        }
        if err != 0 {
            unlink(path)
            throw NetlinkError(operation: "create netns", object: path, errno: err)
        }
        return path
    }

    /// Deletes a named netns like `ip netns del NAME` (lazy unmount, then unlink).
    public static func delete(named name: String) throws {
        let path = self.path(named: name)
        if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINVAL {
            let e = errno
            throw NetlinkError(operation: "delete netns", object: path, errno: e)
        }
        if unlink(path) != 0 {
            throw NetlinkError(operation: "delete netns", object: path, errno: errno)
        }
    }

    /// Makes /run/netns a shared mount point so bind mounts under it propagate to other mount
    /// namespaces, as iproute2 does.
    private static func makeRunDirectoryShared() throws {
        if mkdir(runDirectory, 0o755) != 0 && errno != EEXIST {
            throw NetlinkError(operation: "create netns directory", object: runDirectory, errno: errno)
        }
        let flags = UInt(MS_SHARED) | UInt(MS_REC)
        if mount("", runDirectory, "none", flags, nil) == 0 { return }
        guard errno == EINVAL else {
            throw NetlinkError(operation: "make shared", object: runDirectory, errno: errno)
        }
        // Not a mount point yet: bind it onto itself first.
        guard mount(runDirectory, runDirectory, "none", UInt(MS_BIND) | UInt(MS_REC), nil) == 0,
              mount("", runDirectory, "none", flags, nil) == 0 else {
            throw NetlinkError(operation: "make shared", object: runDirectory, errno: errno)
        }
    }
}

/// Runs `body` inside the network namespace at `path` on a dedicated thread, and returns its
/// result. The thread enters the namespace, runs the body, and switches back; it is never
/// reused (each call gets a fresh thread), so a failed switch back cannot leak anywhere.
/// The calling thread waits; its own namespace is never changed.
public func withNetworkNamespace<T>(_ path: String, _ body: () throws -> T) throws -> T {
    let target = try NetworkNamespace.open(path: NetworkNamespace.path(named: path))
    return try withNetworkNamespace(target, body)
}

public func withNetworkNamespace<T>(_ namespace: NetworkNamespace, _ body: () throws -> T) throws -> T {
    let result: Result<T, any Error> = try withoutActuallyEscaping(body) { body in
        let box = UnsafeTransfer(body)
        return try runOnDedicatedThread {
            guard let original = try? NetworkNamespace.current else {
                return .failure(NetlinkError(operation: "open netns", object: "/proc/thread-self/ns/net", errno: errno))
            }
            guard netlab_setns_net(namespace.fd) == 0 else {
                return .failure(NetlinkError(operation: "enter netns", object: namespace.path, errno: errno))
            }
            let r = Result { try box.value() }
            // Switch back. If that fails the thread ends anyway: it is never reused.
            _ = netlab_setns_net(original.fd)
            return r
        }
    }
    return try result.get()
}

/// Moves a non-Sendable value to a thread the caller waits for.
struct UnsafeTransfer<V>: @unchecked Sendable {
    let value: V
    init(_ value: V) { self.value = value }
}

private final class ThreadJob<R>: @unchecked Sendable {
    let work: () -> R
    var result: R?
    init(_ work: @escaping () -> R) { self.work = work }
}

/// Runs `work` on a new pthread and waits for it; the thread ends when `work` returns.
func runOnDedicatedThread<R>(_ work: () -> R) throws -> R {
    try withoutActuallyEscaping(work) { work in
        let job = ThreadJob(work)
        let ctx = Unmanaged.passRetained(job as AnyObject).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let obj = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue()
            (obj as! any ThreadRunnable).run()
            return nil
        }, ctx)
        if rc != 0 {
            // No thread: never run the work on the caller's thread (it changes namespaces).
            Unmanaged<AnyObject>.fromOpaque(ctx).release()
            throw NetlinkError(operation: "create thread", object: "netns worker", errno: rc)
        }
        pthread_join(thread, nil)
        return job.result!
    }
}

private protocol ThreadRunnable { func run() }
extension ThreadJob: ThreadRunnable {
    func run() { result = work() }
}
