// What every plugin asks when a container's netns may be gone: a typed question, never a
// guess from an error's text. Kernel errors become CNI errors through the one mapping,
// `CNIError(_:context:)` / `CNIError.mapping` in the CNI module.

import SystemKit

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
