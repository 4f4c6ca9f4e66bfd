// Network configuration (what a plugin reads on stdin) and the network configuration list
// (a `.conflist` file a runtime executes), spec 1.1.0, with the well-known runtimeConfig
// capabilities typed.

import SystemKit

import NetTypes

/// One plugin's configuration: the common fields typed, every field kept in `raw`.
public struct NetworkConfig: Sendable {
    public var cniVersion: String
    public var name: String
    public var type: String
    /// Capabilities the plugin declares (`"portMappings": true`), used by the runtime.
    public var capabilities: [String: Bool]
    /// The IPAM section; `ipam.type` names the IPAM plugin to delegate to.
    public var ipam: JSONValue?
    /// The DNS settings the config asks for (spec "dns": nameservers, domain, search, options).
    public var dns: CNIResult.DNS?
    /// The `args` object (conventions: `args.cni.*`).
    public var args: JSONValue?
    public var runtimeConfig: RuntimeConfig
    /// Parsed `prevResult` (chained plugins; DEL/CHECK with the cached result).
    public var prevResult: CNIResult?
    /// GC (spec 1.1): the attachments the runtime still uses.
    public var validAttachments: [Attachment]?
    /// The whole config as received.
    public var raw: JSONValue

    /// The IPAM plugin name (`ipam.type`), if any.
    public var ipamType: String? { ipam?["type"]?.stringValue }

    /// Reads a plugin's config. Bad JSON is code 6, a missing or invalid field code 7, an
    /// unknown version code 1 (the version check uses `supportedVersions`).
    public init(bytes: [UInt8], supportedVersions: [String] = CNIVersion.supported) throws(CNIError) {
        try self.init(json: JSONValue.parse(bytes, what: "network config"), supportedVersions: supportedVersions)
    }

    public init(json: JSONValue, supportedVersions: [String] = CNIVersion.supported) throws(CNIError) {
        guard case .object(let o) = json else { throw CNIError.decodingFailure("network config is not a JSON object") }
        raw = json
        guard let v = o["cniVersion"] else { throw CNIError.incompatibleVersion("network config has no cniVersion") }
        guard let vs = v.stringValue else { throw CNIError.decodingFailure("cniVersion must be a string") }
        cniVersion = vs
        try CNIVersion.require(vs, in: supportedVersions, what: "config version")
        name = try Self.string(o, "name", required: false) ?? ""
        type = try Self.string(o, "type", required: false) ?? ""
        capabilities = try o["capabilities"].map { v throws(CNIError) in try v.decode([String: Bool].self, what: "capabilities") } ?? [:]
        ipam = o["ipam"]
        if let i = ipam, !i.isNull, i.objectValue == nil { throw CNIError.decodingFailure("ipam must be an object") }
        dns = try o["dns"].flatMap { v throws(CNIError) in v.isNull ? nil : try v.decode(CNIResult.DNS.self, what: "dns") }
        args = o["args"]
        runtimeConfig = try o["runtimeConfig"].map { v throws(CNIError) in
            try v.isNull ? RuntimeConfig() : v.decode(RuntimeConfig.self, what: "runtimeConfig")
        } ?? RuntimeConfig()
        if let p = o["prevResult"], !p.isNull {
            // Held in the config's version, as the reference plugins convert it.
            var prev: CNIResult
            do throws(CNIError) {
                prev = try CNIResult.decode(p, version: vs)
            } catch {
                // The decoder names the field inside the result; say which result it was.
                throw CNIError(code: error.code, msg: "prevResult: " + error.msg, details: error.details)
            }
            prev.cniVersion = vs
            prevResult = prev
        }
        let va = o["cni.dev/valid-attachments"] ?? o["cni.dev/attachments"]
        validAttachments = try va.map { v throws(CNIError) in try v.decode([Attachment].self, what: "cni.dev/valid-attachments") }
    }

    private static func string(_ o: [String: JSONValue], _ k: String, required: Bool) throws(CNIError) -> String? {
        guard let v = o[k], !v.isNull else {
            if required { throw CNIError.invalidConfig("missing required field \"\(k)\"") }
            return nil
        }
        guard let s = v.stringValue else { throw CNIError.decodingFailure("field \"\(k)\" must be a string") }
        return s
    }

    /// Decodes the whole config into a plugin's own type (code 6 for a wrong type, code 7
    /// for a missing field or an invalid value; the message names the field path).
    public func decode<T: Decodable>(_ type: T.Type) throws(CNIError) -> T {
        try raw.decode(T.self, what: "network config")
    }
}

/// A container attachment: (container ID, interface name). GC's unit of validity.
public struct Attachment: Hashable, Sendable, Codable {
    public var containerID: String
    public var ifname: String
    public init(containerID: String, ifname: String) { self.containerID = containerID; self.ifname = ifname }
}

// MARK: runtimeConfig

/// `runtimeConfig` with the capabilities of the CNI conventions typed; others in `other`.
public struct RuntimeConfig: Hashable, Sendable, Codable {
    public var portMappings: [PortMapping]?
    public var ipRanges: [[IPRange]]?
    public var bandwidth: Bandwidth?
    public var dns: DNSCapability?
    /// Static addresses requested by the runtime ("10.10.0.1/24").
    public var ips: [String]?
    public var mac: String?
    /// Network name -> DNS aliases for the container.
    public var aliases: [String: [String]]?
    /// Every other runtimeConfig key.
    public var other: [String: JSONValue]

    public init(portMappings: [PortMapping]? = nil, ipRanges: [[IPRange]]? = nil, bandwidth: Bandwidth? = nil,
                dns: DNSCapability? = nil, ips: [String]? = nil, mac: String? = nil,
                aliases: [String: [String]]? = nil, other: [String: JSONValue] = [:]) {
        self.portMappings = portMappings; self.ipRanges = ipRanges; self.bandwidth = bandwidth
        self.dns = dns; self.ips = ips; self.mac = mac; self.aliases = aliases; self.other = other
    }

    static let known: Set<String> = ["portMappings", "ipRanges", "bandwidth", "dns", "ips", "mac", "aliases"]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        portMappings = try c.decodeIfPresent([PortMapping].self, forKey: AnyKey("portMappings"))
        ipRanges = try c.decodeIfPresent([[IPRange]].self, forKey: AnyKey("ipRanges"))
        bandwidth = try c.decodeIfPresent(Bandwidth.self, forKey: AnyKey("bandwidth"))
        dns = try c.decodeIfPresent(DNSCapability.self, forKey: AnyKey("dns"))
        ips = try c.decodeIfPresent([String].self, forKey: AnyKey("ips"))
        mac = try c.decodeIfPresent(String.self, forKey: AnyKey("mac"))
        aliases = try c.decodeIfPresent([String: [String]].self, forKey: AnyKey("aliases"))
        other = [:]
        for k in c.allKeys where !Self.known.contains(k.stringValue) {
            other[k.stringValue] = try c.decode(JSONValue.self, forKey: k)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encodeIfPresent(portMappings, forKey: AnyKey("portMappings"))
        try c.encodeIfPresent(ipRanges, forKey: AnyKey("ipRanges"))
        try c.encodeIfPresent(bandwidth, forKey: AnyKey("bandwidth"))
        try c.encodeIfPresent(dns, forKey: AnyKey("dns"))
        try c.encodeIfPresent(ips, forKey: AnyKey("ips"))
        try c.encodeIfPresent(mac, forKey: AnyKey("mac"))
        try c.encodeIfPresent(aliases, forKey: AnyKey("aliases"))
        for (k, v) in other { try c.encode(v, forKey: AnyKey(k)) }
    }
}

/// `portMappings` capability entry.
public struct PortMapping: Hashable, Sendable, Codable {
    public var hostPort: Int
    public var containerPort: Int
    /// "tcp", "udp" or "sctp"; default "tcp".
    public var `protocol`: String
    public var hostIP: String?

    public init(hostPort: Int, containerPort: Int, protocol: String = "tcp", hostIP: String? = nil) {
        self.hostPort = hostPort; self.containerPort = containerPort; self.protocol = `protocol`; self.hostIP = hostIP
    }
    enum CodingKeys: String, CodingKey { case hostPort, containerPort, `protocol`, hostIP }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hostPort = try c.decode(Int.self, forKey: .hostPort)
        containerPort = try c.decode(Int.self, forKey: .containerPort)
        `protocol` = try c.decodeIfPresent(String.self, forKey: .protocol) ?? "tcp"
        hostIP = try c.decodeIfPresent(String.self, forKey: .hostIP)
        if hostIP == "" { hostIP = nil }
    }
}

/// `ipRanges` capability entry (host-local's range syntax).
public struct IPRange: Hashable, Sendable, Codable {
    public var subnet: CIDR
    public var rangeStart: IPAddress?
    public var rangeEnd: IPAddress?
    public var gateway: IPAddress?
    public init(subnet: CIDR, rangeStart: IPAddress? = nil, rangeEnd: IPAddress? = nil, gateway: IPAddress? = nil) {
        self.subnet = subnet; self.rangeStart = rangeStart; self.rangeEnd = rangeEnd; self.gateway = gateway
    }
}

/// `bandwidth` capability (bits per second, burst in bits).
public struct Bandwidth: Hashable, Sendable, Codable {
    public var ingressRate: Int?
    public var ingressBurst: Int?
    public var egressRate: Int?
    public var egressBurst: Int?
    public init(ingressRate: Int? = nil, ingressBurst: Int? = nil, egressRate: Int? = nil, egressBurst: Int? = nil) {
        self.ingressRate = ingressRate; self.ingressBurst = ingressBurst
        self.egressRate = egressRate; self.egressBurst = egressBurst
    }
}

/// `dns` capability (conventions: servers, searches, options).
public struct DNSCapability: Hashable, Sendable, Codable {
    public var servers: [String]?
    public var searches: [String]?
    public var options: [String]?
    public init(servers: [String]? = nil, searches: [String]? = nil, options: [String]? = nil) {
        self.servers = servers; self.searches = searches; self.options = options
    }
}

// MARK: configuration list

/// A network configuration list (`.conflist`).
public struct NetworkConfigList: Sendable {
    /// The version the list is executed with: the newest of `cniVersions` we support, else `cniVersion`.
    public var cniVersion: String
    public var cniVersions: [String]?
    public var name: String
    public var disableCheck: Bool
    public var disableGC: Bool
    /// Each plugin's config object as written (without name/cniVersion, which are injected).
    public var plugins: [JSONValue]
    /// The file's bytes (stored in the result cache, like libcni).
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CNIError) {
        let v = try JSONValue.parse(bytes, what: "network config list")
        guard case .object(let o) = v else { throw CNIError.decodingFailure("network config list is not a JSON object") }
        self.bytes = bytes
        guard let n = o["name"]?.stringValue, !n.isEmpty else {
            throw CNIError.invalidConfig("network config list: missing required field \"name\"")
        }
        name = n
        try validateNetworkName(n)
        cniVersions = try o["cniVersions"].map { v throws(CNIError) in try v.decode([String].self, what: "cniVersions") }
        let declared = o["cniVersion"]?.stringValue ?? ""
        if let vs = cniVersions, !vs.isEmpty {
            guard let best = CNIVersion.negotiate(vs) else {
                throw CNIError.incompatibleVersion("incompatible CNI versions",
                    details: "cniVersions [\(vs.joined(separator: " "))], supported [\(CNIVersion.supported.joined(separator: " "))]")
            }
            cniVersion = best
        } else {
            cniVersion = declared
            try CNIVersion.require(declared, what: "config list version")
        }
        disableCheck = try Self.flag(o, "disableCheck")
        disableGC = try Self.flag(o, "disableGC")
        guard let ps = o["plugins"]?.arrayValue, !ps.isEmpty else {
            throw CNIError.invalidConfig("network config list: \"plugins\" must be a non-empty array")
        }
        for (i, p) in ps.enumerated() {
            guard p.objectValue != nil, let t = p["type"]?.stringValue, !t.isEmpty else {
                throw CNIError.invalidConfig("network config list: plugins[\(i)] has no \"type\"")
            }
        }
        plugins = ps
    }

    /// libcni accepts `true`/`false` and the strings "true"/"false" for these flags.
    private static func flag(_ o: [String: JSONValue], _ k: String) throws(CNIError) -> Bool {
        switch o[k] {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .string(let s)?:
            if s.lowercased() == "true" { return true }
            if s.lowercased() == "false" { return false }
            throw CNIError.invalidConfig("\(k): \"\(s)\" is not a boolean")
        default: throw CNIError.invalidConfig("\(k) must be a boolean")
        }
    }

    /// Reads a `.conflist` file (code 5 when it cannot be read).
    public static func load(path: String) throws(CNIError) -> NetworkConfigList {
        try NetworkConfigList(bytes: io { () throws(SystemError) in try Files.read(path) })
    }

    /// Wraps a single plugin config (`.conf`) as a list of one, as libcni does.
    public init(single bytes: [UInt8]) throws(CNIError) {
        let v = try JSONValue.parse(bytes, what: "network config")
        guard case .object(var o) = v else { throw CNIError.decodingFailure("network config is not a JSON object") }
        let name = o.removeValue(forKey: "name") ?? .null
        let version = o.removeValue(forKey: "cniVersion") ?? .null
        let list: JSONValue = .object(["name": name, "cniVersion": version, "plugins": .array([.object(o)])])
        try self.init(bytes: list.serialized())
        self.bytes = bytes
    }
}
