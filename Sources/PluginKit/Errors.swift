// What every plugin needs when a kernel call fails: the error turned into the CNI error a
// runtime can act on, and "the container's netns is gone" recognised as such.

import CNI
import Netlink
#if canImport(Glibc)
import Glibc
#endif

extension CNIError {
    /// A netlink failure as a CNI error: the operation, the object and the errno in `msg`,
    /// the kernel's own words in `details`. A missing netns is code 3 (unknown container),
    /// EAGAIN/EBUSY are 11 (try again later), anything else 999 with the full description.
    public init(_ e: NetlinkError, context: String? = nil) {
        let prefix = context.map { "\($0): " } ?? ""
        let text = "\(prefix)\(e.operation) \(e.object): \(e.errnoName) (\(String(cString: strerror(e.errno))))"
        let code: CNIError.Code
        if e.operation.hasSuffix("netns") && e.errno == ENOENT {
            code = .unknownContainer
        } else if e.errno == EAGAIN || e.errno == EBUSY {
            code = .tryAgainLater
        } else {
            code = .internal
        }
        self.init(code: code, msg: text, details: e.message ?? "")
    }
}

/// Runs `body` and converts a NetlinkError it throws into a CNIError.
public func netlinkStep<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as NetlinkError {
        throw CNIError(e, context: context)
    }
}

/// True when the netns file at `path` no longer exists or no longer holds a namespace (the
/// bind mount is gone and an empty file is left): DEL treats that as "nothing left to undo".
public func netnsIsGone(_ path: String?) -> Bool {
    guard let path, !path.isEmpty else { return true }
    return !NetworkNamespace.isLive(path: path)
}
