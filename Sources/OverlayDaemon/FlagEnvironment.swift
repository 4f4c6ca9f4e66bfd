// flanneld's command-line conventions on top of swift-argument-parser:
//   - every flag can also come from the environment as FLANNELD_<FLAG> (uppercase, dashes
//     turned into underscores); a flag given on the command line wins, as in flanneld;
//   - Go's flag syntax: one dash or two (`-etcd-endpoints=URL`, `--ip-masq`), and boolean
//     flags with a value (`--ip-masq=true`, `-ip-masq=false`).
// The arguments are rewritten into the parser's form before it sees them.

/// One flag the daemon or its subcommands accept.
public struct FlagSpec: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Takes a value (given several times where the flag repeats).
        case option
        /// Takes a value and may be given several times; from the environment, a
        /// comma-separated list (interface names and addresses hold no comma; regular
        /// expressions may, so `iface-regex` is an `option`).
        case list
        /// On or off; from the environment or `--flag=VALUE`, a Go boolean.
        case flag
    }

    public var name: String
    public var kind: Kind

    public init(_ name: String, _ kind: Kind = .option) {
        self.name = name
        self.kind = kind
    }

    /// FLANNELD_ETCD_ENDPOINTS for etcd-endpoints.
    public var environmentName: String {
        FlagEnvironment.prefix + "_" + name.uppercased().replacingDashes
    }
}

/// A flag from the environment that cannot be used.
public struct FlagEnvironmentError: Error, Sendable, Hashable, CustomStringConvertible {
    public var variable: String
    public var value: String
    public var reason: String
    public var description: String { "\(variable)=\(value): \(reason)" }
}

public enum FlagEnvironment {
    public static let prefix = "FLANNELD"

    /// The store flags every command accepts.
    public static let storeFlags: [FlagSpec] = [
        FlagSpec("etcd-endpoints"), FlagSpec("etcd-prefix"), FlagSpec("etcd-keyfile"), FlagSpec("etcd-certfile"),
        FlagSpec("etcd-cafile"), FlagSpec("etcd-username"), FlagSpec("etcd-password"),
        FlagSpec("store"), FlagSpec("store-path"), FlagSpec("log-level"),
    ]

    /// The daemon's own flags besides the store's.
    public static let daemonFlags: [FlagSpec] = [
        FlagSpec("iface", .list), FlagSpec("iface-regex"), FlagSpec("public-ip"),
        FlagSpec("public-ipv6"), FlagSpec("subnet-file"), FlagSpec("ip-masq", .flag),
        FlagSpec("subnet-lease-renew-margin"), FlagSpec("subnet-lease-ttl"), FlagSpec("healthz-ip"),
        FlagSpec("healthz-port"), FlagSpec("state-dir"),
    ]

    /// The flags of the command `arguments` select: a subcommand (its name comes first)
    /// takes the store's, the daemon all.
    static func flags(of arguments: [String]) -> [FlagSpec] {
        switch arguments.first {
        case "config", "leases": storeFlags
        default: storeFlags + daemonFlags
        }
    }

    /// `arguments` (without the program name) in the parser's syntax, with the flags that
    /// the environment sets and the command line does not appended.
    public static func merge(_ arguments: [String], environment: [String: String]) throws(FlagEnvironmentError) -> [String] {
        let flags = flags(of: arguments)
        var out = normalize(arguments, flags: flags)
        let terminator = out.firstIndex(of: "--") ?? out.endIndex
        let given = Set(out[..<terminator].compactMap(longName))
        var added: [String] = []
        for spec in flags where !given.contains(spec.name) {
            guard let value = environment[spec.environmentName], !value.isEmpty else { continue }
            switch spec.kind {
            case .option:
                added += ["--\(spec.name)", value]
            case .list:
                for item in value.split(separator: ",") where !item.isEmpty { added += ["--\(spec.name)", String(item)] }
            case .flag:
                guard let on = goBool(value) else {
                    throw FlagEnvironmentError(variable: spec.environmentName, value: value,
                                               reason: "not a boolean (true, false, 1, 0, t, f)")
                }
                if on { added.append("--\(spec.name)") }
            }
        }
        out.insert(contentsOf: added, at: terminator)
        return out
    }

    /// Go's spellings turned into the parser's: `-name[=v]` → `--name[=v]` for known long
    /// names, `--flag=true` → `--flag`, `--flag=false` → nothing.
    static func normalize(_ arguments: [String], flags: [FlagSpec]) -> [String] {
        let byName = Dictionary(flags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [String] = []
        var passedTerminator = false
        for argument in arguments {
            if passedTerminator || argument == "--" {
                passedTerminator = true
                out.append(argument)
                continue
            }
            var a = argument
            if a.hasPrefix("-"), !a.hasPrefix("--"), let name = longName("-" + a), byName[name] != nil { a = "-" + a }
            if let name = longName(a), byName[name]?.kind == .flag, let eq = a.firstIndex(of: "=") {
                let value = String(a[a.index(after: eq)...])
                // A value that is no boolean is left for the parser to refuse by name.
                guard let on = goBool(value) else { out.append(a); continue }
                if on { out.append("--\(name)") }
                continue
            }
            out.append(a)
        }
        return out
    }

    /// "name" of "--name" or "--name=value"; nil for anything else.
    private static func longName(_ argument: String) -> String? {
        guard argument.hasPrefix("--"), argument.count > 2 else { return nil }
        return String(argument.dropFirst(2).prefix { $0 != "=" })
    }

    /// Go's strconv.ParseBool.
    static func goBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }
}

extension String {
    fileprivate var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }
}
