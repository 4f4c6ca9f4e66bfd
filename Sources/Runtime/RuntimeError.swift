// Errors a person can act on: each says what failed, on which object, and why.

import Glibc

public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case notRoot(operation: String)
    case nameInUse(String)
    case invalidName(String)
    case noSuchContainer(String)
    case containerRunning(String)
    case containerNotRunning(String)
    case invalidArgument(String)
    case networkUnavailable(network: String, reason: String)
    case system(operation: String, object: String, errno: Int32)
    case state(String)

    public var description: String {
        switch self {
        case .notRoot(let op):
            return "\(op) needs root (namespaces and mounts need CAP_SYS_ADMIN): run it with sudo"
        case .nameInUse(let n):
            return "the container name \"\(n)\" is already in use: remove it first (netlab rm -f \(n)) or choose another --name"
        case .invalidName(let n):
            return "invalid container name \"\(n)\": use letters, digits, '_', '.', '-' (at most 64, not starting with '.' or '-')"
        case .noSuchContainer(let n): return "no such container: \(n)"
        case .containerRunning(let n):
            return "container \(n) is running: stop it first (netlab stop \(n)) or use rm -f"
        case .containerNotRunning(let n): return "container \(n) is not running"
        case .invalidArgument(let m): return m
        case .networkUnavailable(let net, let reason): return "network \(net): \(reason)"
        case .system(let op, let obj, let e):
            return "\(op) \(obj): \(String(cString: strerror(e))) (errno \(e))"
        case .state(let m): return m
        }
    }
}

/// Runs a libc call returning -1 on error, retrying EINTR, and throws `.system` otherwise.
@discardableResult
func sys<T: BinaryInteger>(_ operation: String, _ object: String, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = errno
        if e == EINTR { continue }
        throw RuntimeError.system(operation: operation, object: object, errno: e)
    }
}
