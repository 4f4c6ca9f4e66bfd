// A host's subnet lease as flannel stores it: the key `<prefix>/subnets/10.5.1.0-24` (dual
// stack: `10.5.1.0-24&fc00:0:0:1::-64`) and the value
// `{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"..."}}`,
// byte for byte what flanneld writes (pkg/subnet MakeSubnetKey, pkg/lease LeaseAttrs), so
// flanneld and overlayd read each other's leases.

import NetTypes

/// flannel's default store prefix.
public let defaultStorePrefix = "/coreos.com/network"

/// The keys of one flannel network in a store.
public struct StoreLayout: Sendable, Hashable {
    /// The prefix, without a trailing slash ("/coreos.com/network").
    public var prefix: String

    public init(prefix: String = defaultStorePrefix) {
        var p = prefix
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.prefix = p
    }

    /// `<prefix>/config`: the network config.
    public var configKey: String { prefix + "/config" }
    /// `<prefix>/subnets/`: every lease key starts with this.
    public var subnetsPrefix: String { prefix + "/subnets/" }
    /// `<prefix>/subnets/<subnet key>`.
    public func leaseKey(_ subnets: SubnetKey) -> String { subnetsPrefix + subnets.text }
    /// The subnets named by a lease key, nil for a key that is not a lease of this network.
    public func subnets(ofKey key: String) -> SubnetKey? {
        guard key.hasPrefix(subnetsPrefix) else { return nil }
        return SubnetKey(text: key.dropFirst(subnetsPrefix.count))
    }
}

/// The subnets a lease holds: IPv4, and IPv6 when the network is dual-stack.
public struct SubnetKey: Sendable, Hashable, CustomStringConvertible {
    public var ipv4: CIDR?
    public var ipv6: CIDR?

    public init(ipv4: CIDR?, ipv6: CIDR? = nil) {
        self.ipv4 = ipv4?.network
        self.ipv6 = ipv6?.network
    }

    /// flannel's key text: "10.5.1.0-24", or "10.5.1.0-24&fc00:0:0:1::-64". An IPv6-only lease
    /// has flannel's empty IPv4 part, "0.0.0.0-0".
    public var text: String {
        let v4 = ipv4.map { "\($0.address)-\($0.prefixLength)" } ?? "0.0.0.0-0"
        guard let ipv6 else { return v4 }
        return v4 + "&\(ipv6.address)-\(ipv6.prefixLength)"
    }

    public var description: String { text }

    /// Parses key text (the part after `subnets/`).
    public init?(text: some StringProtocol) {
        let parts = String(text).split(separator: "&", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let v4 = Self.prefix(parts[0], .v4) else { return nil }
        ipv4 = v4.prefixLength == 0 && v4.address == IPAddress.v4Any ? nil : v4
        ipv6 = nil
        if parts.count == 2 {
            guard let v6 = Self.prefix(parts[1], .v6) else { return nil }
            ipv6 = v6
        }
        if ipv4 == nil && ipv6 == nil { return nil }
    }

    private static func prefix(_ s: Substring, _ family: IPAddress.Family) -> CIDR? {
        guard let dash = s.lastIndex(of: "-"), let ip = IPAddress(s[..<dash]), ip.family == family,
              let len = Int(s[s.index(after: dash)...]), let cidr = CIDR(address: ip, prefixLength: len),
              cidr.isNetwork else { return nil }
        return cidr
    }

    /// Whether the two leases share any address.
    public func overlaps(_ other: SubnetKey) -> Bool {
        if let a = ipv4, let b = other.ipv4, a.overlaps(b) { return true }
        if let a = ipv6, let b = other.ipv6, a.overlaps(b) { return true }
        return false
    }
}

/// The vxlan backend's part of a lease (flannel's vxlanLeaseAttrs).
public struct VXLANLeaseData: Sendable, Hashable {
    public var vni: UInt32
    public var vtepMAC: MACAddress

    public init(vni: UInt32, vtepMAC: MACAddress) {
        self.vni = vni
        self.vtepMAC = vtepMAC
    }

    /// `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}`.
    var json: String {
        var w = GoJSONWriter()
        w.integer("VNI", vni)
        w.string("VtepMAC", vtepMAC.description)
        return w.text
    }

    init(_ value: GoJSON, document: String, field: String) throws(FormatError) {
        let f = try GoJSONFields(value, document: document, path: field + ".")
        guard let vni = try f.integer("VNI"), vni >= 0, vni <= Int64(VXLANBackend.maxVNI) else {
            throw f.error("VNI", "must be a VNI between 0 and \(VXLANBackend.maxVNI)")
        }
        guard let text = try f.string("VtepMAC"), let mac = MACAddress(text) else {
            throw f.error("VtepMAC", "must be a MAC address")
        }
        self.init(vni: UInt32(vni), vtepMAC: mac)
    }
}

/// A lease's value (flannel's LeaseAttrs).
public struct LeaseAttributes: Sendable, Hashable {
    /// The host's IPv4 underlay address; flannel writes "0.0.0.0" when there is none.
    public var publicIP: IPAddress?
    /// The host's IPv6 underlay address, null when there is none.
    public var publicIPv6: IPAddress?
    public var backendType: String
    /// The vxlan data for the IPv4 device, present with a public IPv4 address.
    public var backendData: VXLANLeaseData?
    /// The vxlan data for the IPv6 device, present with a public IPv6 address.
    public var backendV6Data: VXLANLeaseData?

    public init(publicIP: IPAddress?, publicIPv6: IPAddress? = nil, backendType: String = VXLANBackend.type,
                backendData: VXLANLeaseData?, backendV6Data: VXLANLeaseData? = nil) {
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
        self.backendType = backendType
        self.backendData = backendData
        self.backendV6Data = backendV6Data
    }

    /// The value text, fields in flannel's order; BackendType and the backend data are left
    /// out when empty, as Go's `omitempty` does, PublicIP and PublicIPv6 never are.
    public var json: String {
        var w = GoJSONWriter()
        w.string("PublicIP", (publicIP ?? .v4Any).description)
        if let publicIPv6 { w.string("PublicIPv6", publicIPv6.description) } else { w.null("PublicIPv6") }
        if !backendType.isEmpty { w.string("BackendType", backendType) }
        if let backendData { w.raw("BackendData", backendData.json) }
        if let backendV6Data { w.raw("BackendV6Data", backendV6Data.json) }
        return w.text
    }

    /// Parses a value. `document` names it in errors ("lease 10.5.1.0-24").
    public init(json: some Collection<UInt8>, document: String = "lease") throws(FormatError) {
        let f = try GoJSONFields(try GoJSON.parse(json, document: document), document: document)
        publicIP = try Self.address(f, "PublicIP", .v4)
        if publicIP == .v4Any { publicIP = nil }
        publicIPv6 = try Self.address(f, "PublicIPv6", .v6)
        backendType = try f.string("BackendType") ?? ""
        // Another backend's data is not ours to interpret; only vxlan's is read.
        let isVXLAN = backendType == VXLANBackend.type
        backendData = try isVXLAN ? f.value("BackendData").map { v throws(FormatError) in
            try VXLANLeaseData(v, document: document, field: "BackendData")
        } : nil
        backendV6Data = try isVXLAN ? f.value("BackendV6Data").map { v throws(FormatError) in
            try VXLANLeaseData(v, document: document, field: "BackendV6Data")
        } : nil
    }

    public init(json: String, document: String = "lease") throws(FormatError) {
        try self.init(json: Array(json.utf8), document: document)
    }

    private static func address(_ f: GoJSONFields, _ field: String,
                                _ family: IPAddress.Family) throws(FormatError) -> IPAddress? {
        guard let text = try f.string(field) else { return nil }
        guard let ip = IPAddress(text), ip.family == family else {
            throw f.error(field, "\"\(text)\" is not an IP\(family == .v4 ? "v4" : "v6") address")
        }
        return ip
    }
}

/// One lease read from a store: its subnets, its value, and the store's bookkeeping.
public struct Lease: Sendable, Hashable {
    public var subnets: SubnetKey
    public var attributes: LeaseAttributes
    /// The store revision that created the key; among leases that overlap (possible only with
    /// dual-stack keys, where one IPv4 subnet can appear under two keys) the lowest one holds.
    public var createRevision: Int64
    public var modRevision: Int64

    public init(subnets: SubnetKey, attributes: LeaseAttributes, createRevision: Int64 = 0, modRevision: Int64 = 0) {
        self.subnets = subnets
        self.attributes = attributes
        self.createRevision = createRevision
        self.modRevision = modRevision
    }

    /// The lease in a store entry; nil for a key that is not a lease of `layout`'s network.
    /// A lease key whose value cannot be read throws.
    public init?(_ entry: StoreEntry, layout: StoreLayout) throws(FormatError) {
        guard let subnets = layout.subnets(ofKey: entry.key) else { return nil }
        self.subnets = subnets
        attributes = try LeaseAttributes(json: entry.value, document: "lease \(subnets.text)")
        createRevision = entry.createRevision
        modRevision = entry.modRevision
    }
}
