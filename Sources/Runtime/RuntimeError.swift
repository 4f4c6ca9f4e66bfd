// Errors a person can act on: each says what failed, on which object, and why. A failed system
// call is a SystemKit SystemError (operation, object, errno and its kind), not one of these.

public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case notRoot(operation: String)
    case nameInUse(String)
    case invalidName(String)
    case noSuchContainer(String)
    case containerRunning(String)
    case containerNotRunning(String)
    case invalidArgument(String)
    case networkUnavailable(network: String, reason: String)
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
        case .state(let m): return m
        }
    }
}
