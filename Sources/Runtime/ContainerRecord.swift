// What the runtime records about one container: the state.json schema.

import CNI
import FoundationEssentials
import NetTypes

/// How a container gets its network namespace (Docker's network modes).
public enum NetworkMode: Equatable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Its own netns with only `lo` (the attacher may bring `lo` up).
    case none
    /// The host's netns (the machine's, or a simulated host's): no netns of its own.
    case host
    /// Another running container's netns (the pod "pause" pattern).
    case container(String)
    /// Its own netns attached to the named network by the `NetworkAttacher` (CNI).
    case network(String)

    public init(parsing text: String) throws {
        switch text {
        case "", "none": self = .none
        case "host": self = .host
        default:
            if text.hasPrefix("container:") {
                let other = String(text.dropFirst("container:".count))
                guard !other.isEmpty else { throw RuntimeError.invalidArgument("--network container:NAME needs a container name") }
                self = .container(other)
            } else {
                self = .network(text)
            }
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .host: return "host"
        case .container(let n): return "container:" + n
        case .network(let n): return n
        }
    }

    /// True when the container gets a netns of its own (attacher called for it).
    public var ownsNetworkNamespace: Bool {
        switch self {
        case .none, .network: return true
        case .host, .container: return false
        }
    }

    public init(from decoder: any Decoder) throws {
        self = try NetworkMode(parsing: try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// One `-p [hostIP:]hostPort:containerPort[/tcp|udp|sctp]`; field names follow the CNI
/// `portMappings` capability so the record can be handed to the portmap plugin as is.
public struct PortMapping: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var `protocol`: String
    /// Empty: every host address.
    public var hostIP: String

    public init(hostPort: UInt16, containerPort: UInt16, protocol: String = "tcp", hostIP: String = "") {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }

    /// Parses `[hostIP:]hostPort:containerPort[/tcp|udp|sctp]`; an IPv6 hostIP is written in brackets.
    public init(parsing text: String) throws {
        let bad = RuntimeError.invalidArgument(
            "invalid port mapping \"\(text)\": expected [hostIP:]hostPort:containerPort[/tcp|udp|sctp]")
        var spec = Substring(text)
        var proto = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            proto = spec[spec.index(after: slash)...].lowercased()
            spec = spec[..<slash]
            guard proto == "tcp" || proto == "udp" || proto == "sctp" else { throw bad }
        }
        var hostIP = ""
        if spec.hasPrefix("[") {
            guard let close = spec.firstIndex(of: "]") else { throw bad }
            hostIP = String(spec[spec.index(after: spec.startIndex)..<close])
            spec = spec[spec.index(after: close)...]
            guard spec.hasPrefix(":") else { throw bad }
            spec = spec.dropFirst()
        }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        let hostPortText: Substring, containerPortText: Substring
        switch parts.count {
        case 2: (hostPortText, containerPortText) = (parts[0], parts[1])
        case 3 where hostIP.isEmpty:
            hostIP = String(parts[0]); (hostPortText, containerPortText) = (parts[1], parts[2])
        default: throw bad
        }
        guard let hp = UInt16(hostPortText), hp > 0, let cp = UInt16(containerPortText), cp > 0 else { throw bad }
        if !hostIP.isEmpty, IPAddress(hostIP) == nil {
            throw RuntimeError.invalidArgument("invalid host IP \"\(hostIP)\" in port mapping \"\(text)\"")
        }
        self.init(hostPort: hp, containerPort: cp, protocol: proto, hostIP: hostIP)
    }

    /// Whether `other` asks for the same host port: same protocol and port, on the same host
    /// address (an empty one, `0.0.0.0` and `::` all meaning every address).
    public func clashes(with other: PortMapping) -> Bool {
        func anyAddress(_ ip: String) -> String { ip == "0.0.0.0" || ip == "::" ? "" : ip }
        return hostPort == other.hostPort && self.protocol == other.protocol && anyAddress(hostIP) == anyAddress(other.hostIP)
    }

    public var description: String {
        let ip = hostIP.isEmpty ? "" : (hostIP.contains(":") ? "[\(hostIP)]:" : hostIP + ":")
        return "\(ip)\(hostPort)->\(containerPort)/\(self.protocol)"
    }
}

public enum ContainerStatus: String, Codable, Sendable {
    /// Being set up (namespaces made, command not yet started): a crash leaves this behind.
    case created
    case running
    case exited
}

/// `containers/<name>/state.json`.
public struct ContainerRecord: Codable, Equatable, Sendable {
    /// 64 random hex digits, like Docker's.
    public var id: String
    public var name: String
    /// The init's pid in the runtime's pid namespace.
    public var pid: Int32?
    /// Field 22 of /proc/<pid>/stat when it started, so a recycled pid is never mistaken for it.
    public var pidStartTime: UInt64?
    /// Empty: the built-in pause init.
    public var command: [String]
    public var created: Date
    public var started: Date?
    public var finished: Date?
    public var status: ContainerStatus
    public var exitCode: Int32?
    public var networkMode: NetworkMode
    /// Network name -> that network's result (a CNI result), as returned by the attacher.
    public var networks: [String: JSONValue]
    public var ports: [PortMapping]
    /// Requested address and MAC (`--ip`, `--mac`): CNI `ips`/`mac` capabilities later.
    public var ip: String?
    public var mac: String?
    public var hostname: String
    public var rootfs: String?
    /// The netns the container lives in: its bind mount `containers/<name>/netns`, or for host
    /// mode the host's netns path (nil on the machine itself).
    public var netnsPath: String?
    public var logPath: String?
    public var detached: Bool
    public var autoRemove: Bool
    /// The simulated host this container belongs to (`--host`), nil for the machine itself.
    public var host: String?
    /// `-e KEY=VALUE` as given to `run` (nil in states written before it was recorded), so
    /// that `start` runs the command again with the same environment.
    public var environment: [String]? = nil

    public var shortID: String { String(id.prefix(12)) }
}

extension ContainerRecord {
    static func generateID() -> String {
        var g = SystemRandomNumberGenerator()
        var s = ""
        for _ in 0..<4 {
            let v = g.next() as UInt64
            let hex = String(v, radix: 16)
            s += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return s
    }

    /// Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, and short enough for paths.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 64 else { return false }
        func ok(_ c: Unicode.Scalar, _ extra: Bool) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
                || (extra && (c == "_" || c == "." || c == "-"))
        }
        return ok(first, false) && name.unicodeScalars.allSatisfy { ok($0, true) }
    }
}

extension ContainerRecord {
    /// The record as pretty JSON (what `inspect` and `ps --format json` print).
    public static func json<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.dateEncodingStrategy = .iso8601
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}

/// Whether `text` is an IPv4 or IPv6 address (for `--ip`).
public func ipIsValid(_ text: String) -> Bool { IPAddress(text) != nil }

/// Whether `text` is a MAC address (for `--mac`).
public func macIsValid(_ text: String) -> Bool { MACAddress(text) != nil }
