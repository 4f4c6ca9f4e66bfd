// Errors a person can act on: each says what failed, on which object, and why. A failed system
// call is a SystemKit SystemError (operation, object, errno and its kind), not one of these.
// A hint that suggests a command carries the command written out in full, with the global
// options the user gave (`CommandHint`), so that following it literally acts on the same host.

public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case notRoot(operation: String)
    /// The name, and the command that removes the container holding it.
    case nameInUse(String, remove: String)
    case invalidName(String)
    case noSuchContainer(String)
    /// The name, and the command that stops it.
    case containerRunning(String, stop: String)
    case containerNotRunning(String)
    case invalidArgument(String)
    case networkUnavailable(network: String, reason: String)
    case state(String)

    public var description: String {
        switch self {
        case .notRoot(let op):
            return "\(op) needs root (namespaces and mounts need CAP_SYS_ADMIN): run it with sudo"
        case .nameInUse(let n, let remove):
            return "the container name \"\(n)\" is already in use: remove it first (\(remove)) or choose another --name"
        case .invalidName(let n):
            return "invalid container name \"\(n)\": use letters, digits, '_', '.', '-' (at most 64, not starting with '.' or '-')"
        case .noSuchContainer(let n): return "no such container: \(n)"
        case .containerRunning(let n, let stop):
            return "container \(n) is running: stop it first (\(stop)) or use rm -f"
        case .containerNotRunning(let n): return "container \(n) is not running"
        case .invalidArgument(let m): return m
        case .networkUnavailable(let net, let reason): return "network \(net): \(reason)"
        case .state(let m): return m
        }
    }
}

/// A netlab command as a hint writes it: `netlab VERB OPTIONS ARGS…`, where OPTIONS are the
/// global options the user gave (`--run-dir`, `--host`, `--cni-path`), so that the suggested
/// command works on the same (simulated) host as the one that failed.
public struct CommandHint: Sendable, Equatable {
    public var globalOptions: [String]

    public init(globalOptions: [String] = []) { self.globalOptions = globalOptions }

    /// `verb` may have several words (`"network create"`); the options follow it.
    public func callAsFunction(_ verb: String, _ arguments: String...) -> String {
        (["netlab", verb] + globalOptions + arguments).joined(separator: " ")
    }

    /// The same options without `--host` (for `host add`/`host rm`, which name the host).
    public var withoutHost: CommandHint {
        var out: [String] = []
        var i = 0
        while i < globalOptions.count {
            if globalOptions[i] == "--host" { i += 2; continue }
            out.append(globalOptions[i])
            i += 1
        }
        return CommandHint(globalOptions: out)
    }
}
