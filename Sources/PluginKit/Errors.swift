// What every plugin needs when a kernel call fails: the error turned into the CNI error a
// runtime can act on (CNIError.init(_:context:), the one mapping), and "the container's netns
// is gone" asked as a typed question.

import CNI
import SystemKit

/// Runs `body` and converts a SystemError (netlink, nftables, files) it throws into a CNIError.
public func netlinkStep<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
    try CNIError.mapping(context, body)
}

/// True when the netns file at `path` no longer exists or no longer holds a namespace (the
/// bind mount is gone and an empty file is left): DEL treats that as "nothing left to undo".
public func netnsIsGone(_ path: String?) -> Bool {
    guard let path, !path.isEmpty else { return true }
    return !Namespaces.isNamespaceFile(path)
}

extension SystemError {
    /// Whether this failure means the container's network namespace is gone.
    public var isNamespaceGone: Bool { kind == .namespaceGone }
}
