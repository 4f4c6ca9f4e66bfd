// subnet.env, the contract between the daemon and the flannel CNI plugin:
//
//   FLANNEL_NETWORK=10.5.0.0/16
//   FLANNEL_SUBNET=10.5.1.1/24
//   FLANNEL_IPV6_NETWORK=fc00::/48        (only when IPv6 is enabled)
//   FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=true
//
// FLANNEL_SUBNET is the subnet's first host address with the subnet's prefix, as flanneld
// writes it. The file is replaced atomically, so the plugin never reads half of it. The reader
// accepts what flanneld and dotenv files allow (comments, `export`, quoted values), ignores
// keys it does not know, and names the line and key of anything it cannot read.

import NetTypes
import SystemKit

public struct SubnetEnv: Sendable, Hashable {
    public var network: CIDR?
    /// The subnet's first host address with the subnet's prefix ("10.5.1.1/24");
    /// `subnet?.network` is the leased subnet.
    public var subnet: CIDR?
    public var ipv6Network: CIDR?
    public var ipv6Subnet: CIDR?
    public var mtu: Int?
    public var ipMasq: Bool?

    public static let networkKey = "FLANNEL_NETWORK"
    public static let subnetKey = "FLANNEL_SUBNET"
    public static let ipv6NetworkKey = "FLANNEL_IPV6_NETWORK"
    public static let ipv6SubnetKey = "FLANNEL_IPV6_SUBNET"
    public static let mtuKey = "FLANNEL_MTU"
    public static let ipMasqKey = "FLANNEL_IPMASQ"
    /// Where flanneld writes it, and the flannel plugin reads it, by default.
    public static let defaultPath = "/run/flannel/subnet.env"

    public init(network: CIDR? = nil, subnet: CIDR? = nil, ipv6Network: CIDR? = nil, ipv6Subnet: CIDR? = nil,
                mtu: Int? = nil, ipMasq: Bool? = nil) {
        self.network = network
        self.subnet = subnet
        self.ipv6Network = ipv6Network
        self.ipv6Subnet = ipv6Subnet
        self.mtu = mtu
        self.ipMasq = ipMasq
    }

    /// The file for a host that leased `subnets` in `config`.
    public init(config: NetworkConfig, subnets: SubnetKey, mtu: Int, ipMasq: Bool) {
        self.init(mtu: mtu, ipMasq: ipMasq)
        if let v4 = config.ipv4, let sn = subnets.ipv4 {
            network = v4.network
            subnet = Self.firstHost(of: sn)
        }
        if let v6 = config.ipv6, let sn = subnets.ipv6 {
            ipv6Network = v6.network
            ipv6Subnet = Self.firstHost(of: sn)
        }
    }

    private static func firstHost(of subnet: CIDR) -> CIDR {
        CIDR(address: subnet.networkAddress.next ?? subnet.networkAddress, prefixLength: subnet.prefixLength)!
    }

    /// The file's text, keys in flanneld's order.
    public var text: String {
        var lines: [String] = []
        if let network, let subnet {
            lines += ["\(Self.networkKey)=\(network)", "\(Self.subnetKey)=\(subnet)"]
        }
        if let ipv6Network, let ipv6Subnet {
            lines += ["\(Self.ipv6NetworkKey)=\(ipv6Network)", "\(Self.ipv6SubnetKey)=\(ipv6Subnet)"]
        }
        if let mtu { lines.append("\(Self.mtuKey)=\(mtu)") }
        if let ipMasq { lines.append("\(Self.ipMasqKey)=\(ipMasq)") }
        return lines.map { $0 + "\n" }.joined()
    }

    /// Replaces the file at `path` atomically (mode 0644), creating its directory.
    public func write(to path: String) throws(SystemError) {
        try Files.makeDirectories(Files.directoryName(path))
        try Files.writeAtomically(path, Array(text.utf8), permissions: 0o644)
    }

    /// The keys the flannel CNI plugin needs that this file lacks: a network and a subnet of
    /// either family, the MTU and IPMASQ.
    public var missingKeys: [String] {
        var missing: [String] = []
        if network == nil && ipv6Network == nil { missing += [Self.networkKey, Self.ipv6NetworkKey] }
        if subnet == nil && ipv6Subnet == nil { missing += [Self.subnetKey, Self.ipv6SubnetKey] }
        if mtu == nil { missing.append(Self.mtuKey) }
        if ipMasq == nil { missing.append(Self.ipMasqKey) }
        return missing
    }
}

// MARK: reading

extension SubnetEnv {
    /// Parses the text of a subnet.env; `document` names it in errors.
    public init(text: String, document: String = "subnet.env") throws(FormatError) {
        self.init()
        var seen: [String: Int] = [:]
        for (index, rawLine) in Self.lines(text).enumerated() {
            let lineNumber = index + 1
            guard let (key, value) = try Self.assignment(rawLine, line: lineNumber, document: document) else { continue }
            guard Self.knownKeys.contains(key) else { continue }  // a newer daemon's key: not ours to judge
            if let first = seen[key] {
                throw FormatError(document: document, field: key, line: lineNumber,
                                  message: "set a second time (first on line \(first))")
            }
            seen[key] = lineNumber
            try set(key, value, line: lineNumber, document: document)
        }
    }

    /// Reads the file at `path`; nil when there is none. A file that cannot be read throws
    /// SystemError, one that cannot be parsed FormatError.
    public static func read(_ path: String) throws -> SubnetEnv? {
        guard let text = try Files.readText(path) else { return nil }
        return try SubnetEnv(text: text, document: "subnet.env \(path)")
    }

    /// The lines of `text`; a CRLF ending is one Character in Swift, so both are split on.
    private static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    }

    private static let knownKeys: Set<String> = [networkKey, subnetKey, ipv6NetworkKey, ipv6SubnetKey, mtuKey, ipMasqKey]

    /// KEY and VALUE of one line; nil for a blank or comment line.
    private static func assignment(_ raw: Substring, line: Int,
                                   document: String) throws(FormatError) -> (String, String)? {
        var s = raw.drop { $0 == " " || $0 == "\t" }
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        if s.isEmpty || s.hasPrefix("#") { return nil }
        if s.hasPrefix("export ") { s = s.dropFirst("export ".count).drop { $0 == " " } }
        guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
            throw FormatError(document: document, line: line, message: "expected KEY=VALUE, got \"\(s)\"")
        }
        let key = String(s[..<eq]).trimmingSpaces
        var value = String(s[s.index(after: eq)...]).trimmingSpaces
        if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
            value = String(value.dropFirst().dropLast())
        }
        return (key, value)
    }

    private mutating func set(_ key: String, _ value: String, line: Int, document: String) throws(FormatError) {
        func bad(_ what: String) -> FormatError {
            FormatError(document: document, field: key, line: line, message: "\"\(value)\" is not \(what)")
        }
        func prefix(_ family: IPAddress.Family) throws(FormatError) -> CIDR {
            guard let c = CIDR(value), c.family == family else {
                throw bad(family == .v4 ? "an IPv4 address/prefix" : "an IPv6 address/prefix")
            }
            return c
        }
        switch key {
        case Self.networkKey: network = try prefix(.v4)
        case Self.subnetKey: subnet = try prefix(.v4)
        case Self.ipv6NetworkKey: ipv6Network = try prefix(.v6)
        case Self.ipv6SubnetKey: ipv6Subnet = try prefix(.v6)
        case Self.mtuKey:
            guard let m = Int(value), m > 0, m <= VXLANBackend.maximumMTU else { throw bad("an MTU (1-65535)") }
            mtu = m
        case Self.ipMasqKey:
            guard value == "true" || value == "false" else { throw bad("true or false") }
            ipMasq = value == "true"
        default: break
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
