// The portmap network configuration: the reference plugin's options, validated, and the
// `portMappings` capability turned into the DNAT entries to install.

import CNI
import NetTypes

/// The plugin's own options (besides the common CNI fields), validated.
public struct PortmapConfig: PluginConfiguration, Sendable {
    /// The keys as written.
    public struct Options: Decodable {
        public var snat: Bool?
        public var markMasqBit: Int?
        public var externalSetMarkChain: String?
        public var conditionsV4: [String]?
        public var conditionsV6: [String]?
    }

    /// Masquerade hairpin and localhost traffic to mapped ports (`snat`, default true).
    public var snat: Bool
    /// The packet mark bit that flags hairpin traffic between pm_forward and pm_postrouting
    /// (`markMasqBit`, 0...31, default 13 as in the reference plugin). The reference's
    /// `externalSetMarkChain` (an iptables chain setting that mark) is validated — exclusive
    /// with `markMasqBit` — and not needed here.
    public var masqBit: Int
    /// Extra conditions on the DNAT jump (`conditionsV4`/`conditionsV6`, iptables syntax);
    /// `-s`, `-d`, `-i` (with `!`) are translated to nftables, anything else is refused.
    public var conditionsV4: [Condition]
    public var conditionsV6: [Condition]

    public static let defaultMasqBit = 13
    static let masqBits = 0...31

    public init(_ o: Options, request: CNIRequest) throws(CNIError) {
        if let b = o.markMasqBit, !Self.masqBits.contains(b) {
            throw CNIError.invalidConfig("portmap: markMasqBit must be between 0 and 31, got \(b)")
        }
        if o.markMasqBit != nil && o.externalSetMarkChain != nil {
            throw CNIError.invalidConfig("portmap: markMasqBit and externalSetMarkChain are mutually exclusive")
        }
        snat = o.snat ?? true
        masqBit = o.markMasqBit ?? Self.defaultMasqBit
        conditionsV4 = try Condition.parse(o.conditionsV4 ?? [], family: .v4)
        conditionsV6 = try Condition.parse(o.conditionsV6 ?? [], family: .v6)
    }
}

/// One translated condition (`-s CIDR`, `-d CIDR`, `-i IFNAME`, each optionally negated).
public struct Condition: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case source(CIDR), destination(CIDR), inInterface(String) }
    public var kind: Kind
    public var negated: Bool

    public static func parse(_ tokens: [String], family: IPAddress.Family) throws(CNIError) -> [Condition] {
        var out: [Condition] = []
        var i = 0
        var negate = false
        func cidr(_ s: String) throws(CNIError) -> CIDR {
            let c = CIDR(s) ?? IPAddress(s).flatMap { CIDR(address: $0, prefixLength: $0.family.bitWidth) }
            guard let c, c.family == family else {
                throw CNIError.invalidConfig("portmap: condition address \"\(s)\" is not an IP\(family == .v4 ? "v4" : "v6") address or prefix")
            }
            return c.network
        }
        // Tokens may also come as one string per condition ("-s 10.0.0.0/8").
        let words = tokens.flatMap { $0.split(separator: " ").map(String.init) }
        while i < words.count {
            let w = words[i]
            if w == "!" { negate = true; i += 1; continue }
            guard i + 1 < words.count else { throw CNIError.invalidConfig("portmap: condition \"\(w)\" needs a value") }
            let v = words[i + 1]
            switch w {
            case "-s", "--source": out.append(Condition(kind: .source(try cidr(v)), negated: negate))
            case "-d", "--destination": out.append(Condition(kind: .destination(try cidr(v)), negated: negate))
            case "-i", "--in-interface": out.append(Condition(kind: .inInterface(v), negated: negate))
            default:
                throw CNIError.invalidConfig("portmap: condition \"\(w)\" has no nftables translation here (supported: -s, -d, -i, with !)")
            }
            negate = false
            i += 2
        }
        return out
    }
}

/// A mapping resolved against the container's address: one map element.
public struct Mapping: Sendable, Hashable, CustomStringConvertible {
    public var proto: UInt8
    public var hostPort: UInt16
    public var hostIP: IPAddress?
    public var containerIP: IPAddress
    public var containerPort: UInt16

    /// IP protocol numbers (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP).
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let sctp: UInt8 = 132

    public var family: IPAddress.Family { containerIP.family }
    public var protoName: String { proto == Self.tcp ? "tcp" : proto == Self.udp ? "udp" : "sctp" }
    public var description: String {
        "\(hostIP.map { $0.isV6 ? "[\($0)]" : "\($0)" } ?? "*"):\(hostPort)/\(protoName) -> \(containerIP.isV6 ? "[\(containerIP)]" : "\(containerIP)"):\(containerPort)"
    }

    static func protocolNumber(_ s: String) throws(CNIError) -> UInt8 {
        switch s.lowercased() {
        case "tcp", "": tcp
        case "udp": udp
        case "sctp": sctp
        default: throw CNIError.invalidConfig("portmap: unknown protocol \"\(s)\" (tcp, udp or sctp)")
        }
    }

    /// The mappings for the container's first IPv4 and first IPv6 address. A mapping with a
    /// `hostIP` applies only to the container address of the same family.
    public static func resolve(_ pms: [PortMapping], containerIPs: [IPAddress]) throws(CNIError) -> [Mapping] {
        let v4 = containerIPs.first { $0.isV4 }
        let v6 = containerIPs.first { $0.isV6 }
        var out: [Mapping] = []
        for pm in pms {
            guard (1...65535).contains(pm.hostPort), (1...65535).contains(pm.containerPort) else {
                throw CNIError.invalidConfig("portmap: invalid port mapping \(pm.hostPort):\(pm.containerPort) (ports 1-65535)")
            }
            let proto = try protocolNumber(pm.protocol)
            var hostIP: IPAddress?
            if let h = pm.hostIP {
                guard let a = IPAddress(h) else { throw CNIError.invalidConfig("portmap: invalid hostIP \"\(h)\"") }
                // 0.0.0.0 / :: mean "any address of that family".
                hostIP = (a == .v4Any || a == .v6Any) ? nil : a
                let fam = a.family
                guard let c = fam == .v4 ? v4 : v6 else { continue }
                let m = Mapping(proto: proto, hostPort: UInt16(pm.hostPort), hostIP: hostIP, containerIP: c,
                                containerPort: UInt16(pm.containerPort))
                if !out.contains(m) { out.append(m) }
                continue
            }
            for c in [v4, v6].compactMap({ $0 }) {
                let m = Mapping(proto: proto, hostPort: UInt16(pm.hostPort), hostIP: nil, containerIP: c,
                                containerPort: UInt16(pm.containerPort))
                if !out.contains(m) { out.append(m) }
            }
        }
        try refuseConflicts(out)
        return out
    }

    /// One host port (protocol, host address, family) mapped to two container ports cannot
    /// hold: the map keeps a key once. Refused here, before anything is sent to the kernel.
    static func refuseConflicts(_ mappings: [Mapping]) throws(CNIError) {
        var seen: [String: Mapping] = [:]
        for m in mappings {
            let key = "\(m.proto) \(m.hostPort) \(m.hostIP.map { "\($0)" } ?? "any") \(m.containerIP.isV4)"
            if let other = seen[key], other != m {
                throw CNIError.invalidConfig("portmap: hostPort \(m.hostPort) is mapped twice "
                    + "(to \(other.containerIP) port \(other.containerPort) and \(m.containerIP) port \(m.containerPort))")
            }
            seen[key] = m
        }
    }
}
