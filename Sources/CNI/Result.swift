// The ADD result (spec 1.1.0 shape, a superset of every older one) and its conversion to and
// from the wire format of 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0.
//
// What differs between versions:
//   0.3.x, 0.4.0: each IP carries "version": "4" | "6"; interfaces have name, mac, sandbox;
//                 routes have dst, gw.
//   1.0.0:        the IP "version" field is gone.
//   1.1.0:        interfaces gain mtu, socketPath, pciID; routes gain mtu, advmss, priority,
//                 table, scope.
// Decoding accepts every field of every version (and ignores unknown ones); encoding writes
// exactly the fields the target version defines.

import NetTypes

public struct CNIResult: Hashable, Sendable {
    public var cniVersion: String
    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNS

    public init(cniVersion: String = CNIVersion.current, interfaces: [Interface] = [], ips: [IPConfig] = [],
                routes: [Route] = [], dns: DNS = DNS()) {
        self.cniVersion = cniVersion
        self.interfaces = interfaces
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }

    public struct Interface: Hashable, Sendable {
        public var name: String
        /// Hardware address as text (Ethernet "aa:bb:..", or longer for InfiniBand).
        public var mac: String?
        /// 1.1.0 and later.
        public var mtu: Int?
        /// The netns path for container interfaces; nil for host interfaces.
        public var sandbox: String?
        /// 1.1.0 and later.
        public var socketPath: String?
        /// 1.1.0 and later.
        public var pciID: String?

        public init(name: String, mac: String? = nil, mtu: Int? = nil, sandbox: String? = nil,
                    socketPath: String? = nil, pciID: String? = nil) {
            self.name = name; self.mac = mac; self.mtu = mtu; self.sandbox = sandbox
            self.socketPath = socketPath; self.pciID = pciID
        }
        public init(name: String, mac: MACAddress?, mtu: Int? = nil, sandbox: String? = nil) {
            self.init(name: name, mac: mac?.description, mtu: mtu, sandbox: sandbox)
        }
        public var macAddress: MACAddress? { mac.flatMap { MACAddress($0) } }
    }

    public struct IPConfig: Hashable, Sendable {
        /// The address with its prefix length ("10.1.0.5/16").
        public var address: CIDR
        public var gateway: IPAddress?
        /// Index into `interfaces`.
        public var interface: Int?

        public init(address: CIDR, gateway: IPAddress? = nil, interface: Int? = nil) {
            self.address = address; self.gateway = gateway; self.interface = interface
        }
        /// "4" or "6": the field 0.3.x and 0.4.0 results carry.
        public var version: String { address.family == .v4 ? "4" : "6" }
    }

    public struct Route: Hashable, Sendable {
        public var dst: CIDR
        public var gw: IPAddress?
        /// 1.1.0 and later (mtu, advmss, priority, table, scope).
        public var mtu: Int?
        public var advmss: Int?
        public var priority: Int?
        public var table: Int?
        public var scope: Int?

        public init(dst: CIDR, gw: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
                    priority: Int? = nil, table: Int? = nil, scope: Int? = nil) {
            self.dst = dst; self.gw = gw; self.mtu = mtu; self.advmss = advmss
            self.priority = priority; self.table = table; self.scope = scope
        }
    }

    public struct DNS: Hashable, Sendable, Codable {
        public var nameservers: [String]
        public var domain: String?
        public var search: [String]
        public var options: [String]

        public init(nameservers: [String] = [], domain: String? = nil, search: [String] = [], options: [String] = []) {
            self.nameservers = nameservers; self.domain = domain; self.search = search; self.options = options
        }
        public var isEmpty: Bool { nameservers.isEmpty && domain == nil && search.isEmpty && options.isEmpty }

        enum CodingKeys: String, CodingKey { case nameservers, domain, search, options }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            nameservers = try c.decodeIfPresent([String].self, forKey: .nameservers) ?? []
            domain = try c.decodeIfPresent(String.self, forKey: .domain)
            search = try c.decodeIfPresent([String].self, forKey: .search) ?? []
            options = try c.decodeIfPresent([String].self, forKey: .options) ?? []
        }
        public func encode(to encoder: any Encoder) throws {
            try json.encode(to: encoder)
        }
        public var json: JSONValue {
            var o: [String: JSONValue] = [:]
            if !nameservers.isEmpty { o["nameservers"] = .array(nameservers.map { .string($0) }) }
            if let domain { o["domain"] = .string(domain) }
            if !search.isEmpty { o["search"] = .array(search.map { .string($0) }) }
            if !options.isEmpty { o["options"] = .array(options.map { .string($0) }) }
            return .object(o)
        }
    }
}

// MARK: encoding for a version

extension CNIResult {
    /// The result as the JSON object of spec `version` (code 1 for a version we do not speak).
    public func json(version: String) throws(CNIError) -> JSONValue {
        try CNIVersion.require(version, what: "result version")
        let legacy = !CNIVersion.atLeast(version, .v1_0_0)     // 0.3.0, 0.3.1, 0.4.0
        let v11 = CNIVersion.atLeast(version, .v1_1_0)
        func int(_ i: Int) -> JSONValue { .number(Double(i)) }
        var o: [String: JSONValue] = ["cniVersion": .string(version)]
        if !interfaces.isEmpty {
            o["interfaces"] = .array(interfaces.map { i in
                var x: [String: JSONValue] = ["name": .string(i.name)]
                if let m = i.mac { x["mac"] = .string(m) }
                if let s = i.sandbox { x["sandbox"] = .string(s) }
                if v11 {
                    if let m = i.mtu { x["mtu"] = int(m) }
                    if let s = i.socketPath { x["socketPath"] = .string(s) }
                    if let p = i.pciID { x["pciID"] = .string(p) }
                }
                return .object(x)
            })
        }
        if !ips.isEmpty {
            o["ips"] = .array(ips.map { ip in
                var x: [String: JSONValue] = ["address": .string(ip.address.description)]
                if legacy { x["version"] = .string(ip.version) }
                if let g = ip.gateway { x["gateway"] = .string(g.description) }
                if let i = ip.interface { x["interface"] = int(i) }
                return .object(x)
            })
        }
        if !routes.isEmpty {
            o["routes"] = .array(routes.map { r in
                var x: [String: JSONValue] = ["dst": .string(r.dst.description)]
                if let g = r.gw { x["gw"] = .string(g.description) }
                if v11 {
                    if let v = r.mtu { x["mtu"] = int(v) }
                    if let v = r.advmss { x["advmss"] = int(v) }
                    if let v = r.priority { x["priority"] = int(v) }
                    if let v = r.table { x["table"] = int(v) }
                    if let v = r.scope { x["scope"] = int(v) }
                }
                return .object(x)
            })
        }
        if !dns.isEmpty { o["dns"] = dns.json }
        return .object(o)
    }

    /// The result's bytes in spec `version` (default: its own `cniVersion`).
    public func encoded(version: String? = nil) throws(CNIError) -> [UInt8] {
        try json(version: version ?? cniVersion).serialized()
    }

    /// The same result relabelled for `version`; fields the version lacks are dropped when
    /// it is encoded, so nothing is lost in memory.
    public func converted(to version: String) throws(CNIError) -> CNIResult {
        try CNIVersion.require(version, what: "result version")
        var r = self
        r.cniVersion = version
        return r
    }
}

// MARK: decoding any version

extension CNIResult: Codable {
    enum Keys: String, CodingKey { case cniVersion, interfaces, ips, routes, dns }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        cniVersion = try c.decodeIfPresent(String.self, forKey: .cniVersion) ?? ""
        interfaces = try c.decodeIfPresent([Interface].self, forKey: .interfaces) ?? []
        ips = try c.decodeIfPresent([IPConfig].self, forKey: .ips) ?? []
        routes = try c.decodeIfPresent([Route].self, forKey: .routes) ?? []
        dns = try c.decodeIfPresent(DNS.self, forKey: .dns) ?? DNS()
    }

    /// Encodes in the result's own `cniVersion` (1.1.0 when that is empty or unknown).
    public func encode(to encoder: any Encoder) throws {
        let v = CNIVersion.supported.contains(cniVersion) ? cniVersion : CNIVersion.current
        try json(version: v).encode(to: encoder)
    }

    /// Decodes a result. With `version`, the result must say that version (or nothing), which
    /// is then what it is labelled with. Unknown versions are code 1, bad JSON code 6.
    public static func decode(_ bytes: [UInt8], version: String? = nil) throws(CNIError) -> CNIResult {
        var r = try CNIJSON.decode(CNIResult.self, from: bytes, what: "result")
        try r.finishDecoding(expected: version)
        return r
    }

    /// Decodes a result held as untyped JSON (a `prevResult`, a cached result).
    public static func decode(_ value: JSONValue, version: String? = nil) throws(CNIError) -> CNIResult {
        var r = try value.decode(CNIResult.self, what: "result")
        try r.finishDecoding(expected: version)
        return r
    }

    mutating func finishDecoding(expected: String?) throws(CNIError) {
        if cniVersion.isEmpty, let expected { cniVersion = expected }
        try CNIVersion.require(cniVersion, what: "result version")
        for (n, ip) in ips.enumerated() {
            if let i = ip.interface, i < 0 || i >= interfaces.count {
                throw CNIError.invalidConfig("result: ips[\(n)].interface \(i) is not an index into interfaces")
            }
        }
    }
}

extension CNIResult.Interface: Codable {
    enum Keys: String, CodingKey { case name, mac, mtu, sandbox, socketPath, pciID }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        name = try c.decode(String.self, forKey: .name)
        mac = try c.decodeIfPresent(String.self, forKey: .mac)
        mtu = try c.decodeIfPresent(Int.self, forKey: .mtu)
        sandbox = try c.decodeIfPresent(String.self, forKey: .sandbox)
        socketPath = try c.decodeIfPresent(String.self, forKey: .socketPath)
        pciID = try c.decodeIfPresent(String.self, forKey: .pciID)
        if mac == "" { mac = nil }
        if sandbox == "" { sandbox = nil }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(mac, forKey: .mac)
        try c.encodeIfPresent(mtu, forKey: .mtu)
        try c.encodeIfPresent(sandbox, forKey: .sandbox)
        try c.encodeIfPresent(socketPath, forKey: .socketPath)
        try c.encodeIfPresent(pciID, forKey: .pciID)
    }
}

extension CNIResult.IPConfig: Codable {
    enum Keys: String, CodingKey { case address, gateway, interface, version }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        address = try c.decode(CIDR.self, forKey: .address)
        gateway = try c.decodeIfPresent(IPAddress.self, forKey: .gateway)
        interface = try c.decodeIfPresent(Int.self, forKey: .interface)
        // 0.3.x/0.4.0 carry "version"; accept it, and insist it agrees with the address.
        if let v = try c.decodeIfPresent(String.self, forKey: .version), v != version {
            throw DecodingError.dataCorruptedError(forKey: .version, in: c,
                debugDescription: "IP version \"\(v)\" does not match address \(address)")
        }
        if let gateway, gateway.family != address.family {
            throw DecodingError.dataCorruptedError(forKey: .gateway, in: c,
                debugDescription: "gateway \(gateway) is not of the family of \(address)")
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(address, forKey: .address)
        try c.encodeIfPresent(gateway, forKey: .gateway)
        try c.encodeIfPresent(interface, forKey: .interface)
    }
}

extension CNIResult.Route: Codable {
    enum Keys: String, CodingKey { case dst, gw, mtu, advmss, priority, table, scope }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        dst = try c.decode(CIDR.self, forKey: .dst)
        gw = try c.decodeIfPresent(IPAddress.self, forKey: .gw)
        mtu = try c.decodeIfPresent(Int.self, forKey: .mtu)
        advmss = try c.decodeIfPresent(Int.self, forKey: .advmss)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority)
        table = try c.decodeIfPresent(Int.self, forKey: .table)
        scope = try c.decodeIfPresent(Int.self, forKey: .scope)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(dst, forKey: .dst)
        try c.encodeIfPresent(gw, forKey: .gw)
        try c.encodeIfPresent(mtu, forKey: .mtu)
        try c.encodeIfPresent(advmss, forKey: .advmss)
        try c.encodeIfPresent(priority, forKey: .priority)
        try c.encodeIfPresent(table, forKey: .table)
        try c.encodeIfPresent(scope, forKey: .scope)
    }
}
