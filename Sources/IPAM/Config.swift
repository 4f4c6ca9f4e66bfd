// The host-local `ipam` configuration: what the network config says (Codable, field names
// as in the reference plugin) and the validated form the allocator works with.

import NetTypes

/// One range as written in the config: `{subnet, rangeStart, rangeEnd, gateway}`.
/// Fields stay text here so that validation can say which range and field is wrong.
public struct RangeConfig: Codable, Hashable, Sendable {
    public var subnet: String?
    public var rangeStart: String?
    public var rangeEnd: String?
    public var gateway: String?

    public init(subnet: String?, rangeStart: String? = nil, rangeEnd: String? = nil, gateway: String? = nil) {
        self.subnet = subnet
        self.rangeStart = rangeStart
        self.rangeEnd = rangeEnd
        self.gateway = gateway
    }
}

/// A route handed to the container: `{dst, gw}`; without `gw` the runtime uses the gateway.
public struct RouteConfig: Codable, Hashable, Sendable {
    public var dst: CIDR
    public var gw: IPAddress?

    public init(dst: CIDR, gw: IPAddress? = nil) {
        self.dst = dst
        self.gw = gw
    }
}

/// The `ipam` object of a network config, as decoded. Unknown keys are ignored.
public struct IPAMConfig: Codable, Hashable, Sendable {
    public var type: String?
    /// Range sets; each yields one address. A set holds ranges of one family.
    public var ranges: [[RangeConfig]]?
    /// Legacy single-range form: becomes the first range set.
    public var subnet: String?
    public var rangeStart: String?
    public var rangeEnd: String?
    public var gateway: String?
    public var routes: [RouteConfig]?
    public var dataDir: String?
    public var resolvConf: String?

    public init(type: String? = "host-local", ranges: [[RangeConfig]]? = nil, subnet: String? = nil,
                rangeStart: String? = nil, rangeEnd: String? = nil, gateway: String? = nil,
                routes: [RouteConfig]? = nil, dataDir: String? = nil, resolvConf: String? = nil) {
        self.type = type
        self.ranges = ranges
        self.subnet = subnet
        self.rangeStart = rangeStart
        self.rangeEnd = rangeEnd
        self.gateway = gateway
        self.routes = routes
        self.dataDir = dataDir
        self.resolvConf = resolvConf
    }

    /// The data directory when the config names none.
    public static let defaultDataDir = "/var/lib/cni/networks"
}

/// A validated range: a subnet (network form) and the inclusive span handed out of it.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    public let subnet: CIDR
    public let rangeStart: IPAddress
    public let rangeEnd: IPAddress
    public let gateway: IPAddress

    public var family: IPAddress.Family { subnet.family }

    /// Fills the defaults and checks the range the way the reference plugin does:
    /// rangeStart = network+1, rangeEnd = broadcast-1 (IPv4) or the last address (IPv6),
    /// gateway = network+1; start and end inside the subnet; the subnet has room for hosts.
    /// `label` names the range in error messages ("range set 0, range 1").
    public init(_ c: RangeConfig, label: String) throws {
        guard let subnetText = c.subnet, !subnetText.isEmpty else {
            throw IPAMError.invalidConfig("\(label): \"subnet\" is missing (want e.g. \"10.22.0.0/16\")")
        }
        guard let cidr = CIDR(subnetText) else {
            throw IPAMError.invalidConfig("\(label): subnet \"\(subnetText)\" is not a CIDR (want address/prefix, e.g. \"10.22.0.0/16\")")
        }
        let bits = cidr.family.bitWidth
        guard cidr.prefixLength <= bits - 2 else {
            throw IPAMError.invalidConfig("\(label): subnet \(cidr) is too small to allocate from "
                + "(use a prefix of at most /\(bits - 2))")
        }
        guard cidr.isNetwork else {
            throw IPAMError.invalidConfig("\(label): subnet \(cidr) has host bits set; for /\(cidr.prefixLength) "
                + "the network address is \(cidr.networkAddress) (write \(cidr.network))")
        }
        subnet = cidr
        let network = cidr.networkAddress
        func parse(_ text: String?, _ field: String) throws -> IPAddress? {
            guard let text, !text.isEmpty else { return nil }
            guard let ip = IPAddress(text) else {
                throw IPAMError.invalidConfig("\(label): \(field) \"\(text)\" is not an IP address")
            }
            guard ip.family == cidr.family else {
                throw IPAMError.invalidConfig("\(label): \(field) \(ip) is not of the family of subnet \(cidr)")
            }
            return ip
        }
        gateway = try parse(c.gateway, "gateway") ?? network.next!
        let start = try parse(c.rangeStart, "rangeStart") ?? network.next!
        guard cidr.contains(start) else {
            throw IPAMError.invalidConfig("\(label): rangeStart \(start) is not in subnet \(cidr)")
        }
        let last = cidr.lastAddress
        let end = try parse(c.rangeEnd, "rangeEnd") ?? (cidr.broadcastAddress?.previous ?? last)
        guard cidr.contains(end) else {
            throw IPAMError.invalidConfig("\(label): rangeEnd \(end) is not in subnet \(cidr)")
        }
        guard start <= end else {
            throw IPAMError.invalidConfig("\(label): rangeStart \(start) is after rangeEnd \(end)")
        }
        rangeStart = start
        rangeEnd = end
    }

    /// True when `ip` lies in rangeStart...rangeEnd.
    public func contains(_ ip: IPAddress) -> Bool {
        ip.family == family && rangeStart <= ip && ip <= rangeEnd
    }

    public func overlaps(_ other: AddressRange) -> Bool {
        family == other.family && rangeStart <= other.rangeEnd && other.rangeStart <= rangeEnd
    }

    /// Addresses the allocator never hands out: the network address, the IPv4 broadcast
    /// address and the gateway.
    public func isReserved(_ ip: IPAddress) -> Bool {
        ip == gateway || ip == subnet.networkAddress || ip == subnet.broadcastAddress
    }

    /// How many addresses this range can hand out (saturating at Int64.max).
    public var allocatableCount: Int64 {
        guard let d = rangeStart.distance(to: rangeEnd), d < Int64.max else { return Int64.max }
        var n = d + 1
        var excluded: Set<IPAddress> = [gateway, subnet.networkAddress]
        if let broadcast = subnet.broadcastAddress { excluded.insert(broadcast) }
        for ip in excluded where contains(ip) { n -= 1 }
        return n
    }

    /// "start-end", as the reference plugin prints a range.
    public var description: String { "\(rangeStart)-\(rangeEnd)" }
}

/// A validated range set: one or more non-overlapping ranges of one family. The
/// allocator hands out one address per range set.
public struct RangeSet: Hashable, Sendable, CustomStringConvertible {
    public let ranges: [AddressRange]

    public init(_ configs: [RangeConfig], index: Int) throws {
        guard !configs.isEmpty else {
            throw IPAMError.invalidConfig("range set \(index) is empty: give it at least one {\"subnet\": ...}")
        }
        var out: [AddressRange] = []
        for (j, c) in configs.enumerated() {
            let r = try AddressRange(c, label: "range set \(index), range \(j)")
            if let first = out.first, first.family != r.family {
                throw IPAMError.invalidConfig("range set \(index) mixes IPv4 and IPv6 (\(first.subnet) and \(r.subnet)); "
                    + "put each family in its own range set")
            }
            if let clash = out.first(where: { $0.overlaps(r) }) {
                throw IPAMError.invalidConfig("range set \(index): ranges \(clash) and \(r) overlap")
            }
            out.append(r)
        }
        ranges = out
    }

    public var family: IPAddress.Family { ranges[0].family }

    /// The range holding `ip`, if any.
    public func range(for ip: IPAddress) -> AddressRange? { ranges.first { $0.contains(ip) } }
    public func contains(_ ip: IPAddress) -> Bool { range(for: ip) != nil }

    public func overlaps(_ other: RangeSet) -> Bool {
        ranges.contains { r in other.ranges.contains { r.overlaps($0) } }
    }

    /// Total allocatable addresses (saturating).
    public var allocatableCount: Int64 {
        ranges.reduce(Int64(0)) { acc, r in
            let (s, o) = acc.addingReportingOverflow(r.allocatableCount)
            return o ? Int64.max : s
        }
    }

    /// "start-end,start-end", as the reference plugin prints a set.
    public var description: String { ranges.map(\.description).joined(separator: ",") }
}

/// The configuration the allocator runs on: validated range sets with defaults filled in.
public struct IPAMSettings: Hashable, Sendable {
    public let rangeSets: [RangeSet]
    public let routes: [RouteConfig]
    public let dataDir: String
    public let resolvConf: String?

    /// Validates `config`. The legacy top-level range comes first, then `ranges`;
    /// `runtimeIPRanges` (the `ipRanges` capability) are put before both, as the reference does.
    public init(_ config: IPAMConfig, runtimeIPRanges: [[RangeConfig]] = []) throws {
        var sets: [[RangeConfig]] = config.ranges ?? []
        if let subnet = config.subnet, !subnet.isEmpty {
            sets.insert([RangeConfig(subnet: subnet, rangeStart: config.rangeStart,
                                     rangeEnd: config.rangeEnd, gateway: config.gateway)], at: 0)
        } else if config.rangeStart != nil || config.rangeEnd != nil {
            throw IPAMError.invalidConfig("ipam has rangeStart/rangeEnd but no \"subnet\"; add the subnet they belong to")
        }
        sets = runtimeIPRanges + sets
        guard !sets.isEmpty else {
            throw IPAMError.invalidConfig("no IP ranges specified: set ipam.ranges "
                + "(e.g. [[{\"subnet\": \"10.22.0.0/16\"}]]) or ipam.subnet")
        }
        var validated: [RangeSet] = []
        for (i, s) in sets.enumerated() {
            let set = try RangeSet(s, index: i)
            if let j = validated.firstIndex(where: { $0.overlaps(set) }) {
                throw IPAMError.invalidConfig("range set \(j) (\(validated[j])) overlaps with range set \(i) (\(set)); "
                    + "range sets must not share addresses")
            }
            validated.append(set)
        }
        rangeSets = validated
        routes = config.routes ?? []
        if let d = config.dataDir, !d.isEmpty { dataDir = d } else { dataDir = IPAMConfig.defaultDataDir }
        resolvConf = (config.resolvConf?.isEmpty ?? true) ? nil : config.resolvConf
    }

    /// The index of the range set holding `ip`, if any.
    public func rangeSetIndex(for ip: IPAddress) -> Int? { rangeSets.firstIndex { $0.contains(ip) } }
}
