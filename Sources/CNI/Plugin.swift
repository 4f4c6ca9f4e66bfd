// The plugin side: a plugin is one type whose methods are the spec's verbs; `PluginMain`
// reads the CNI environment and stdin, validates them per verb, dispatches, and writes the
// result or the spec's error JSON.

import Glibc
import SystemKit

/// A CNI plugin. Only `add` and `del` are required.
public protocol CNIPlugin {
    /// ADD: attach the container; return what was done.
    func add(_ request: CNIRequest) throws -> CNIResult
    /// DEL: undo ADD. Must succeed when there is nothing to undo.
    func del(_ request: CNIRequest) throws
    /// CHECK (0.4.0+): throw when the attachment is not as `request.prevResult` says. Default: no-op.
    func check(_ request: CNIRequest) throws
    /// STATUS (1.1.0+): throw code 50/51 when not ready. Default: ready.
    func status(_ request: CNIRequest) throws
    /// GC (1.1.0+): release resources of attachments not in `request.validAttachments`. Default: no-op.
    func gc(_ request: CNIRequest) throws
    /// Spec versions the plugin accepts. Default: all five the library speaks.
    var supportedVersions: [String] { get }
}

extension CNIPlugin {
    public func check(_ request: CNIRequest) throws {}
    public func status(_ request: CNIRequest) throws {}
    public func gc(_ request: CNIRequest) throws {}
    public var supportedVersions: [String] { CNIVersion.supported }
}

/// The CNI verbs.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", version = "VERSION", gc = "GC"
}

/// One invocation: the environment and the config, parsed and validated.
public struct CNIRequest: Sendable {
    public var command: CNICommand
    /// CNI_CONTAINERID ("" for STATUS and GC).
    public var containerID: String
    /// CNI_NETNS (nil for DEL without a netns, STATUS, GC).
    public var netns: String?
    /// CNI_IFNAME ("" for STATUS and GC).
    public var ifName: String
    /// CNI_ARGS parsed ("K=V;K2=V2"), in order.
    public var args: [(String, String)]
    /// CNI_PATH split on ":".
    public var path: [String]
    /// Stdin as received.
    public var configBytes: [UInt8]
    public var config: NetworkConfig
    /// The process environment (delegates inherit it).
    public var environment: [String: String]

    public init(command: CNICommand, containerID: String = "", netns: String? = nil, ifName: String = "",
                args: [(String, String)] = [], path: [String] = [], configBytes: [UInt8], config: NetworkConfig,
                environment: [String: String] = [:]) {
        self.command = command; self.containerID = containerID; self.netns = netns; self.ifName = ifName
        self.args = args; self.path = path; self.configBytes = configBytes; self.config = config
        self.environment = environment
    }

    /// The value of one CNI_ARGS key (e.g. "K8S_POD_NAME", "IP").
    public func arg(_ key: String) -> String? { args.last { $0.0 == key }?.1 }
    public var prevResult: CNIResult? { config.prevResult }
    /// The spec version of the config; results are written in it.
    public var cniVersion: String { config.cniVersion }
    public var validAttachments: [Attachment] { config.validAttachments ?? [] }

    /// `prevResult`, or code 7 when the config has none (chained plugins, CHECK).
    public func requirePrevResult() throws(CNIError) -> CNIResult {
        guard let p = config.prevResult else {
            throw CNIError.invalidConfig("missing required field \"prevResult\"")
        }
        return p
    }

    /// CNI_NETNS, or code 4 when it is unset.
    public func requireNetns() throws(CNIError) -> String {
        guard let n = netns, !n.isEmpty else { throw CNIError.invalidEnvironment("required env variables [CNI_NETNS] missing") }
        return n
    }

    /// Decodes the config into the plugin's own type (code 6 wrong type, code 7 missing or
    /// invalid field; the message names the field path).
    public func decodeConfig<T: Decodable>(_ type: T.Type) throws(CNIError) -> T {
        try config.decode(T.self)
    }

    /// The plugin's configuration, decoded and validated the one way every plugin does it
    /// (see `PluginConfiguration`).
    public func pluginConfig<C: PluginConfiguration>(_ type: C.Type) throws(CNIError) -> C {
        try C(decodeConfig(C.Options.self), request: self)
    }

    /// Parses CNI_ARGS: pairs separated by ";", each "KEY=VALUE". A pair without "=" is code 4.
    public static func parseArgs(_ text: String) throws(CNIError) -> [(String, String)] {
        var out: [(String, String)] = []
        for pair in text.split(separator: ";") where !pair.isEmpty {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw CNIError.invalidEnvironment("invalid CNI_ARGS pair \"\(pair)\"")
            }
            out.append((String(pair[..<eq]), String(pair[pair.index(after: eq)...])))
        }
        return out
    }
}

/// A plugin's own configuration, read the same way by every plugin in two steps: `Options`,
/// the keys as written (every one optional, decoded from the whole network config: code 6 for
/// a wrong type, the field path in the message), then `init(_:request:)`, which checks each
/// value, fills in the defaults and keeps typed values (code 7 naming the field when a value
/// is invalid). Verbs get it with `request.pluginConfig(MyConfig.self)`.
public protocol PluginConfiguration {
    associatedtype Options: Decodable
    init(_ options: Options, request: CNIRequest) throws(CNIError)
}

public enum PluginMain {
    /// Runs the plugin on this process's environment and stdin, writes stdout, exits.
    public static func run(_ plugin: some CNIPlugin, about: String) -> Never {
        let env = Environment.current
        if (env["CNI_COMMAND"] ?? "").isEmpty && !about.isEmpty {
            let text = about + "\nCNI protocol versions supported: " + plugin.supportedVersions.joined(separator: ", ") + "\n"
            // Nowhere to report a failed write to stderr; the exit code stays 0 (help was asked for).
            _ = try? FileDescriptor.standardError.writeAll(Array(text.utf8), context: "stderr")
            exit(0)
        }
        let needsStdin = env["CNI_COMMAND"] != CNICommand.version.rawValue || isatty(0) == 0
        let out: [UInt8], code: Int32
        do {
            let stdin = needsStdin ? try FileDescriptor.standardInput.readAll(context: "stdin") : []
            (out, code) = execute(plugin, environment: env, stdin: stdin)
        } catch {
            // An unreadable stdin is an I/O failure, not an empty config.
            (out, code) = (CNIError(error, context: "read the network configuration").json(version: CNIVersion.current).serialized(), 1)
        }
        // A failed write of the answer leaves only the exit code to speak; it is kept.
        if !out.isEmpty { _ = try? FileDescriptor.standardOutput.writeAll(out, context: "stdout") }
        exit(code)
    }

    /// The whole protocol without the process: returns what goes on stdout and the exit code.
    public static func execute(_ plugin: some CNIPlugin, environment env: [String: String],
                               stdin: [UInt8]) -> (stdout: [UInt8], exitCode: Int32) {
        do throws(CNIError) {
            let supported = plugin.supportedVersions.filter { CNIVersion.supported.contains($0) }
            let cmd = try command(env)
            if cmd == .version {
                let info: JSONValue = ["cniVersion": .string(CNIVersion.current),
                                       "supportedVersions": .array(supported.map { .string($0) })]
                return (info.serialized(), 0)
            }
            let request = try request(cmd, environment: env, stdin: stdin, supportedVersions: supported)
            return (try dispatch(plugin, request), 0)
        } catch {
            return (error.json(version: errorVersion(stdin)).serialized(), 1)
        }
    }

    /// The version errors are written in: the config's when it names one we speak, even when
    /// the error is found before the config is parsed (e.g. a missing variable).
    static func errorVersion(_ stdin: [UInt8]) -> String {
        // A config that does not parse names no version: the error is written in ours.
        if let v = (try? JSONValue.parse(stdin))?["cniVersion"]?.stringValue, CNIVersion.supported.contains(v) {
            return v
        }
        return CNIVersion.current
    }

    /// CNI_COMMAND as a verb (code 4 when it is missing or unknown).
    static func command(_ env: [String: String]) throws(CNIError) -> CNICommand {
        guard let text = env["CNI_COMMAND"], !text.isEmpty else {
            throw CNIError.invalidEnvironment("required env variables [CNI_COMMAND] missing")
        }
        guard let cmd = CNICommand(rawValue: text) else {
            throw CNIError.invalidEnvironment("unknown CNI_COMMAND: \(text)")
        }
        return cmd
    }

    /// Everything a verb runs on, checked in this order: the verb's variables (code 4), the
    /// config (6, 7, 1), the verb against the config's version (1), the network name (7),
    /// the container ID and interface name (4, 7).
    static func request(_ cmd: CNICommand, environment env: [String: String], stdin: [UInt8],
                        supportedVersions: [String]) throws(CNIError) -> CNIRequest {
        try requireEnvironment(env, for: cmd)
        let json = try JSONValue.parse(stdin, what: "network config")
        let config = try NetworkConfig(json: json, supportedVersions: supportedVersions)
        try requireVersion(config.cniVersion, allows: cmd)
        try validateNetworkName(config.name)
        if cmd == .add || cmd == .del || cmd == .check {
            try validateContainerID(env["CNI_CONTAINERID"] ?? "")
            try validateInterfaceName(env["CNI_IFNAME"] ?? "")
        }
        return CNIRequest(
            command: cmd, containerID: env["CNI_CONTAINERID"] ?? "",
            netns: env["CNI_NETNS"].flatMap { $0.isEmpty ? nil : $0 },
            ifName: env["CNI_IFNAME"] ?? "", args: try CNIRequest.parseArgs(env["CNI_ARGS"] ?? ""),
            path: (env["CNI_PATH"] ?? "").split(separator: ":").map(String.init),
            configBytes: stdin, config: config, environment: env)
    }

    /// CHECK needs a 0.4.0 config, STATUS and GC a 1.1.0 one (code 1 otherwise).
    static func requireVersion(_ version: String, allows cmd: CNICommand) throws(CNIError) {
        switch cmd {
        case .check where !CNIVersion.atLeast(version, .v0_4_0):
            throw CNIError.incompatibleVersion("config version \(version) does not allow CHECK",
                                               details: "CHECK needs 0.4.0 or later")
        case .status where !CNIVersion.atLeast(version, .v1_1_0),
             .gc where !CNIVersion.atLeast(version, .v1_1_0):
            throw CNIError.incompatibleVersion("config version \(version) does not allow \(cmd.rawValue)",
                                               details: "\(cmd.rawValue) needs 1.1.0 or later")
        default: return
        }
    }

    /// Runs the verb and returns what goes on stdout. Whatever the plugin throws becomes a
    /// CNIError by the one mapping (`CNIError.wrapping`): a SystemError keeps its kind's code
    /// and the kernel's text.
    static func dispatch(_ plugin: some CNIPlugin, _ r: CNIRequest) throws(CNIError) -> [UInt8] {
        do {
            switch r.command {
            case .add: return try plugin.add(r).encoded(version: r.cniVersion)
            case .del: try plugin.del(r)
            case .check: try plugin.check(r)
            case .status: try plugin.status(r)
            case .gc: try plugin.gc(r)
            case .version: break
            }
        } catch {
            throw CNIError.wrapping(error)
        }
        return []
    }

    /// The variables each verb needs (as the reference skel): CNI_COMMAND always; ADD and CHECK
    /// need container ID, netns, ifname, path; DEL needs no netns; STATUS and GC only the path.
    static func requireEnvironment(_ env: [String: String], for cmd: CNICommand) throws(CNIError) {
        let needed: [String]
        switch cmd {
        case .add, .check: needed = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
        case .del: needed = ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]
        case .status, .gc: needed = ["CNI_PATH"]
        case .version: needed = []
        }
        let missing = needed.filter { (env[$0] ?? "").isEmpty }
        if !missing.isEmpty {
            throw CNIError.invalidEnvironment("required env variables [\(missing.joined(separator: ","))] missing")
        }
    }
}
