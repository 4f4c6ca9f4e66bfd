// Entering Linux namespaces. setns changes only the calling thread, so every entry happens on
// a dedicated thread (Threads.run) that switches back before it ends, and ends even when it
// cannot: no thread that was inside another namespace is ever reused.

import CNetlabShims
import Glibc

public enum Namespaces {
    public enum Kind: Sendable {
        case network, mount, uts, ipc, pid

        var cloneFlag: Int32 {
            switch self {
            case .network: NETLAB_CLONE_NEWNET
            case .mount: NETLAB_CLONE_NEWNS
            case .uts: NETLAB_CLONE_NEWUTS
            case .ipc: NETLAB_CLONE_NEWIPC
            case .pid: NETLAB_CLONE_NEWPID
            }
        }

        /// The /proc name of this kind ("net", "mnt", ...).
        public var procName: String {
            switch self {
            case .network: "net"
            case .mount: "mnt"
            case .uts: "uts"
            case .ipc: "ipc"
            case .pid: "pid"
            }
        }
    }

    /// Filesystem magic of nsfs, the file system namespace files live on.
    static let nsfsMagic = 0x6e73_6673

    /// True when `path` is a namespace file (a /run/netns bind mount or /proc/PID/ns/net),
    /// not a plain file left after its mount went away or a missing path.
    public static func isNamespaceFile(_ path: String) -> Bool {
        var type = 0
        guard netlab_fs_type(path, &type) == 0 else { return false }
        return type == nsfsMagic
    }

    /// Opens the namespace file at `path`. A path that is missing, or is no namespace file,
    /// throws with kind `.namespaceGone`.
    public static func open(_ path: String) throws(SystemError) -> OwnedDescriptor {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path)
        } catch where error.kind == .notFound {
            throw SystemError(operation: "open netns", object: path, errno: error.errno, kind: .namespaceGone)
        }
        let owned = OwnedDescriptor(fd)
        guard isNamespaceFile(path) else {
            throw SystemError(operation: "open netns", object: path, errno: .invalidArgument, kind: .namespaceGone,
                              message: "not a namespace file (its bind mount is gone?)")
        }
        return owned
    }

    /// Runs `body` inside the namespace open at `target` on a dedicated thread and returns its
    /// result. The caller's own namespaces are never changed.
    public static func run<T>(_ kind: Kind = .network, in target: FileDescriptor, named name: String,
                              _ body: () throws -> T) throws -> T {
        try Threads.run { () throws -> T in
            let original = try FileDescriptor.open("/proc/thread-self/ns/\(kind.procName)")
            return try original.closeAfter { () throws -> T in
                // setns answers EINVAL for a namespace of another kind (CNI_NETNS naming a uts
                // namespace, say): for the caller that is no namespace of this kind at all.
                if netlab_setns(target.rawValue, kind.cloneFlag) != 0 {
                    let code = errno
                    guard code == EINVAL else { throw SystemError(operation: "enter netns", object: name, errno: code) }
                    throw SystemError(operation: "enter netns", object: name, errno: code, kind: .namespaceGone,
                                      message: "not a \(kind.procName) namespace")
                }
                // Switch back before the thread ends; if that fails the thread ends anyway.
                defer { ignoringFailure { netlab_setns(original.rawValue, kind.cloneFlag) } }
                return try body()
            }
        }
    }

    /// Runs `body` inside the network namespace at `path`.
    public static func run<T>(inNetworkNamespaceAt path: String, _ body: () throws -> T) throws -> T {
        let target = try open(path)
        return try withExtendedLifetime(target) {
            try run(.network, in: target.descriptor, named: path, body)
        }
    }

    /// Moves the calling thread into a new network namespace (unshare). Only for threads that
    /// end afterwards (inside `Threads.run`) or processes made for that.
    public static func unshareNetwork() throws(SystemError) {
        try syscall("unshare", "network namespace") { netlab_unshare(NETLAB_CLONE_NEWNET) }
    }
}
