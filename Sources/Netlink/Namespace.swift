// Network namespaces: open by path or pid, create/delete named ones under /run/netns (as
// `ip netns add/del` does), and run synchronous work inside one (on SystemKit's dedicated
// threads).

import SystemKit
import Glibc

/// An open network namespace file descriptor, closed in deinit.
public final class NetworkNamespace: @unchecked Sendable {
    private let owned: OwnedDescriptor
    public var fd: Int32 { owned.rawValue }
    /// The path it was opened from.
    public let path: String

    init(owned: OwnedDescriptor, path: String) { self.owned = owned; self.path = path }

    public static let runDirectory = "/run/netns"

    /// Opens the namespace at `path`; a missing path or one that holds no namespace throws
    /// a SystemError of kind `.namespaceGone`.
    public static func open(path: String) throws -> NetworkNamespace {
        NetworkNamespace(owned: try Namespaces.open(path), path: path)
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
        get throws { UInt64(try owned.descriptor.status(context: path).st_ino) }
    }

    /// The path of a named netns ("/run/netns/NAME"); a value with a '/' is taken as a path.
    public static func path(named name: String) -> String {
        name.contains("/") ? name : runDirectory + "/" + name
    }

    /// True when `path` refers to a live network namespace: an nsfs file, not a plain file
    /// left after its mount went away.
    public static func isLive(path: String) -> Bool { Namespaces.isNamespaceFile(path) }

    /// Creates a named netns like `ip netns add NAME` and returns its path.
    @discardableResult
    public static func create(named name: String) throws -> String {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw SystemError(operation: "create netns", object: name, errno: .invalidArgument, message: "invalid name")
        }
        try makeRunDirectoryShared()
        let path = runDirectory + "/" + name
        let fd = try FileDescriptor.open(path, [.create, .exclusive], permissions: 0)
        try fd.close()
        do {
            // unshare() moves only this thread; the thread ends afterwards.
            try Threads.run {
                try Namespaces.unshareNetwork()
                let source = "/proc/self/task/\(Threads.currentID)/ns/net"
                try syscall("bind mount netns on", path) { mount(source, path, "none", UInt(MS_BIND), nil) }
            }
        } catch {
            try? Files.remove(path)  // the error being thrown says what failed; this only tidies
            throw error
        }
        return path
    }

    /// Deletes a named netns like `ip netns del NAME` (lazy unmount, then unlink).
    public static func delete(named name: String) throws {
        let path = self.path(named: name)
        // EINVAL: not mounted, only the file is left.
        if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINVAL {
            throw SystemError(operation: "unmount netns", object: path, errno: .current)
        }
        try syscall("delete netns", path) { unlink(path) }
    }

    /// Makes /run/netns a shared mount point so bind mounts under it propagate to other mount
    /// namespaces, as iproute2 does.
    private static func makeRunDirectoryShared() throws {
        try Files.makeDirectory(runDirectory)
        let flags = UInt(MS_SHARED) | UInt(MS_REC)
        if mount("", runDirectory, "none", flags, nil) == 0 { return }
        guard errno == EINVAL else {
            throw SystemError(operation: "make shared", object: runDirectory, errno: .current)
        }
        // Not a mount point yet: bind it onto itself first.
        let dir = runDirectory
        try syscall("bind mount", dir) { mount(dir, dir, "none", UInt(MS_BIND) | UInt(MS_REC), nil) }
        try syscall("make shared", dir) { mount("", dir, "none", flags, nil) }
    }
}

/// Runs `body` inside the network namespace at `path` (or named under /run/netns) on a
/// dedicated thread, and returns its result. The calling thread's namespace never changes.
public func withNetworkNamespace<T>(_ path: String, _ body: () throws -> T) throws -> T {
    try Namespaces.run(inNetworkNamespaceAt: NetworkNamespace.path(named: path), body)
}

public func withNetworkNamespace<T>(_ namespace: NetworkNamespace, _ body: () throws -> T) throws -> T {
    try withExtendedLifetime(namespace) {
        try Namespaces.run(.network, in: FileDescriptor(rawValue: namespace.fd), named: namespace.path, body)
    }
}
