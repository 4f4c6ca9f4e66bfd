// flannel's network config (the JSON at `<prefix>/config`), read with flannel's defaults and
// checked so that a bad config is refused with the field named, instead of failing later
// with "out of subnets" or a device that cannot be created.
//
// flannel's rules (pkg/subnet/config.go): SubnetLen defaults to 24 when Network is /22 or
// larger, else to the network's prefix + 2; it must be at most 30 and at least prefix + 2
// (the first subnet is never handed out, so two would leave one host). SubnetMin defaults to
// the second subnet, SubnetMax to the last; both must lie in Network on a SubnetLen boundary.
// IPv6 is the same with 64, 62, 126 and 124. Beyond flannel, a SubnetMin after SubnetMax and a
// config with both families off are refused here rather than leaving no subnet to lease.

import NetTypes

/// One address family's part of the config, defaults filled in and checked.
public struct SubnetRange: Sendable, Hashable {
    /// The cluster network (host bits cleared, as flannel parses it).
    public var network: CIDR
    /// The prefix length of each host's subnet.
    public var subnetLength: Int
    /// The first and last subnet start that may be leased.
    public var subnetMin: IPAddress
    public var subnetMax: IPAddress

    public init(network: CIDR, subnetLength: Int, subnetMin: IPAddress, subnetMax: IPAddress) {
        self.network = network
        self.subnetLength = subnetLength
        self.subnetMin = subnetMin
        self.subnetMax = subnetMax
    }

    public var family: IPAddress.Family { network.family }

    /// Whether `subnet` is one this config hands out: of the subnet length and starting within
    /// SubnetMin...SubnetMax (flannel's compatibility test for reusing a lease).
    public func admits(_ subnet: CIDR) -> Bool {
        subnet.family == family && subnet.prefixLength == subnetLength && subnet.isNetwork
            && subnet.address >= subnetMin && subnet.address <= subnetMax
    }

    /// The subnet that starts at `start`.
    public func subnet(at start: IPAddress) -> CIDR { CIDR(address: start, prefixLength: subnetLength)! }

    /// The subnet right after `subnet`, nil past the end of the address space.
    static func next(after subnet: CIDR) -> CIDR? {
        subnet.lastAddress.next.map { CIDR(address: $0, prefixLength: subnet.prefixLength)! }
    }
}

/// The vxlan backend's settings (`Backend` in the config).
public struct VXLANBackend: Sendable, Hashable {
    /// The only backend type overlayd implements.
    public static let type = "vxlan"
    /// Linux's VXLAN port, which flannel means by `Port: 0` (IANA's 4789 is not the default).
    public static let linuxDefaultPort: UInt16 = 8472
    public static let defaultVNI: UInt32 = 1
    /// A VNI is 24 bits.
    public static let maxVNI: UInt32 = (1 << 24) - 1
    /// The smallest MTU IPv4 allows (RFC 791) and the smallest IPv6 allows (RFC 8200).
    public static let minimumMTUv4 = 68
    public static let minimumMTUv6 = 1280
    public static let maximumMTU = 65535

    public var vni: UInt32 = VXLANBackend.defaultVNI
    /// The UDP port, 8472 when the config says 0 or nothing.
    public var port: UInt16 = VXLANBackend.linuxDefaultPort
    /// The device MTU when the config sets one; nil means the underlay MTU minus the overhead.
    public var mtu: Int?
    public var gbp = false
    public var learning = false
    public var directRouting = false

    public init() {}
}

/// The whole network config.
public struct NetworkConfig: Sendable, Hashable {
    /// The IPv4 part, nil when `EnableIPv4` is false.
    public var ipv4: SubnetRange?
    /// The IPv6 part, nil unless `EnableIPv6` is true.
    public var ipv6: SubnetRange?
    /// flannel's experimental switch to nftables masquerading, carried through.
    public var enableNFTables: Bool
    public var backend: VXLANBackend

    static let document = "network config"

    /// Parses and checks the config text.
    public init(json: some Collection<UInt8>) throws(FormatError) {
        let fields = try GoJSONFields(try GoJSON.parse(json, document: Self.document), document: Self.document)
        let enableIPv4 = try fields.bool("EnableIPv4") ?? true
        let enableIPv6 = try fields.bool("EnableIPv6") ?? false
        guard enableIPv4 || enableIPv6 else {
            throw fields.error("EnableIPv4", "EnableIPv4 and EnableIPv6 are both false: the network has no address family")
        }
        ipv4 = enableIPv4 ? try FamilyRules.v4.resolve(fields) : nil
        ipv6 = enableIPv6 ? try FamilyRules.v6.resolve(fields) : nil
        enableNFTables = try fields.bool("EnableNFTables") ?? false
        backend = try Self.backend(fields)
        if let mtu = backend.mtu, enableIPv6, mtu < VXLANBackend.minimumMTUv6 {
            throw FormatError(document: Self.document, field: "Backend.MTU",
                              message: "\(mtu) is below IPv6's minimum of \(VXLANBackend.minimumMTUv6) (EnableIPv6 is true)")
        }
    }

    public init(json: String) throws(FormatError) { try self.init(json: Array(json.utf8)) }

    private static func backend(_ fields: GoJSONFields) throws(FormatError) -> VXLANBackend {
        // flannel's documentation: no Backend means the vxlan backend with its defaults.
        guard let raw = fields.value("Backend") else { return VXLANBackend() }
        let b = try GoJSONFields(raw, document: document, path: "Backend.")
        guard let type = try b.string("Type") else {
            throw b.error("Type", "is required; supported: \(VXLANBackend.type)")
        }
        guard type.lowercased() == VXLANBackend.type else {
            throw b.error("Type", "\"\(type)\" is not supported by overlayd; supported: \(VXLANBackend.type)")
        }
        var backend = VXLANBackend()
        if let vni = try b.integer("VNI") {
            guard vni >= 0, vni <= Int64(VXLANBackend.maxVNI) else {
                throw b.error("VNI", "must be between 0 and \(VXLANBackend.maxVNI), got \(vni)")
            }
            backend.vni = UInt32(vni)
        }
        if let port = try b.integer("Port") {
            guard port >= 0, port <= Int64(UInt16.max) else { throw b.error("Port", "must be between 0 and 65535, got \(port)") }
            backend.port = port == 0 ? VXLANBackend.linuxDefaultPort : UInt16(port)
        }
        if let mtu = try b.integer("MTU"), mtu != 0 {
            guard mtu >= Int64(VXLANBackend.minimumMTUv4), mtu <= Int64(VXLANBackend.maximumMTU) else {
                throw b.error("MTU", "must be between \(VXLANBackend.minimumMTUv4) and \(VXLANBackend.maximumMTU), got \(mtu)")
            }
            backend.mtu = Int(mtu)
        }
        backend.gbp = try b.bool("GBP") ?? false
        backend.learning = try b.bool("Learning") ?? false
        backend.directRouting = try b.bool("DirectRouting") ?? false
        return backend
    }
}

/// flannel's per-family numbers and field names.
private struct FamilyRules {
    var family: IPAddress.Family
    var networkField, lengthField, minField, maxField, enableField: String
    /// Subnets of this length or shorter leave room for a gateway, a device and hosts.
    var longestSubnet: Int
    /// The default subnet length for networks of `largeNetwork` or shorter prefixes.
    var defaultLength: Int
    var largeNetwork: Int
    /// The longest network prefix that still holds four subnets of `longestSubnet`.
    var smallestNetwork: Int

    static let v4 = FamilyRules(family: .v4, networkField: "Network", lengthField: "SubnetLen",
                                minField: "SubnetMin", maxField: "SubnetMax", enableField: "EnableIPv4",
                                longestSubnet: 30, defaultLength: 24, largeNetwork: 22, smallestNetwork: 28)
    static let v6 = FamilyRules(family: .v6, networkField: "IPv6Network", lengthField: "IPv6SubnetLen",
                                minField: "IPv6SubnetMin", maxField: "IPv6SubnetMax", enableField: "EnableIPv6",
                                longestSubnet: 126, defaultLength: 64, largeNetwork: 62, smallestNetwork: 124)

    var familyName: String { family == .v4 ? "IPv4" : "IPv6" }

    func resolve(_ fields: GoJSONFields) throws(FormatError) -> SubnetRange {
        let network = try self.network(fields)
        let length = try subnetLength(fields, network: network)
        let first = CIDR(address: network.networkAddress, prefixLength: length)!
        let defaultMin = SubnetRange.next(after: first)!.address
        let defaultMax = network.lastAddress.masked(length)
        let min = try bound(fields, minField, in: network, length: length) ?? defaultMin
        let max = try bound(fields, maxField, in: network, length: length) ?? defaultMax
        guard min <= max else {
            throw fields.error(minField, "\(min) is after \(maxField) \(max): no subnet to lease")
        }
        return SubnetRange(network: network, subnetLength: length, subnetMin: min, subnetMax: max)
    }

    private func network(_ fields: GoJSONFields) throws(FormatError) -> CIDR {
        guard let text = try fields.string(networkField) else {
            throw fields.error(networkField, "is required when \(enableField) is true")
        }
        guard let cidr = CIDR(text), cidr.family == family else {
            throw fields.error(networkField, "\"\(text)\" is not an \(familyName) prefix (address/length)")
        }
        return cidr.network
    }

    private func subnetLength(_ fields: GoJSONFields, network: CIDR) throws(FormatError) -> Int {
        let given = try fields.integer(lengthField) ?? 0
        guard given >= 0 else { throw fields.error(lengthField, "must not be negative, got \(given)") }
        if given == 0 {
            guard network.prefixLength <= smallestNetwork else {
                throw fields.error(networkField, "\(network) is too small: four subnets of at most /\(longestSubnet) "
                                   + "need a /\(smallestNetwork) or larger")
            }
            return network.prefixLength <= largeNetwork ? defaultLength : network.prefixLength + 2
        }
        guard given <= Int64(longestSubnet) else {
            throw fields.error(lengthField, "must be at most \(longestSubnet), got \(given)")
        }
        guard given >= Int64(network.prefixLength + 2) else {
            throw fields.error(lengthField, "must be at least \(network.prefixLength + 2), got \(given): "
                               + "\(network) must hold at least four subnets")
        }
        return Int(given)
    }

    private func bound(_ fields: GoJSONFields, _ field: String, in network: CIDR,
                       length: Int) throws(FormatError) -> IPAddress? {
        guard let text = try fields.string(field) else { return nil }
        guard let address = IPAddress(text), address.family == family else {
            throw fields.error(field, "\"\(text)\" is not an \(familyName) address")
        }
        guard network.contains(address) else {
            throw fields.error(field, "\(address) is outside \(networkField) \(network)")
        }
        guard address.masked(length) == address else {
            throw fields.error(field, "\(address) is not on a /\(length) boundary: that subnet would overlap "
                               + "\(address.masked(length))/\(length)")
        }
        return address
    }
}
