// Prefixes ("10.1.2.3/24") and MAC addresses as values.

/// An address with a prefix length. `address` keeps its host bits, as an interface
/// address does ("10.22.0.5/16"); `network` gives the masked prefix.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.family.bitWidth else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses "a.b.c.d/n" or "x::y/n". A bare address without "/n" is rejected.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPAddress(parts[0]),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), !parts[1].isEmpty, parts[1].count <= 3,
              let p = Int(parts[1]) else { return nil }
        self.init(address: a, prefixLength: p)
    }

    public var family: IPAddress.Family { address.family }
    /// The prefix with host bits cleared.
    public var network: CIDR { CIDR(address: address.masked(prefixLength), prefixLength: prefixLength)! }
    public var networkAddress: IPAddress { address.masked(prefixLength) }
    /// The last address of the prefix.
    public var lastAddress: IPAddress { address.filled(prefixLength) }
    /// The IPv4 broadcast address (the last address of the prefix); nil for IPv6, which has
    /// none, and for /31 and /32, whose addresses are all hosts (RFC 3021).
    public var broadcastAddress: IPAddress? {
        family == .v4 && prefixLength < IPAddress.Family.v4.bitWidth - 1 ? lastAddress : nil
    }
    public var isNetwork: Bool { address == networkAddress }

    public func contains(_ ip: IPAddress) -> Bool {
        ip.family == family && ip.masked(prefixLength) == networkAddress
    }
    /// True when `other` lies wholly inside this prefix.
    public func contains(_ other: CIDR) -> Bool {
        other.family == family && other.prefixLength >= prefixLength && contains(other.networkAddress)
    }
    public func overlaps(_ other: CIDR) -> Bool {
        contains(other.networkAddress) || other.contains(networkAddress)
    }

    /// Number of addresses in the prefix, saturating at Int64.max.
    public var size: Int64 {
        let hostBits = family.bitWidth - prefixLength
        return hostBits >= 63 ? Int64.max : Int64(1) << Int64(hostBits)
    }

    /// The IPv4 netmask as an address (255.255.255.0 for /24), or the IPv6 mask.
    public var netmask: IPAddress {
        family == .v4 ? IPAddress.v4(UInt32.max).masked(prefixLength) : IPAddress.v6(.max, .max).masked(prefixLength)
    }

    /// The default route prefix of a family (0.0.0.0/0 or ::/0).
    public static func defaultRoute(_ family: IPAddress.Family) -> CIDR {
        CIDR(address: family == .v4 ? .v4Any : .v6Any, prefixLength: 0)!
    }
    public var isDefaultRoute: Bool { prefixLength == 0 }

    public var description: String { "\(address)/\(prefixLength)" }
}

extension CIDR: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = CIDR(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid CIDR \"\(s)\" (want address/prefix)")
        }
        self = v
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A 48-bit Ethernet MAC address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 6 else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses "aa:bb:cc:dd:ee:ff" (also with '-' separators), case-insensitive.
    public init?(_ text: some StringProtocol) {
        let sep: Character = text.contains("-") ? "-" : ":"
        let parts = text.split(separator: sep, omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            out.append(b)
        }
        bytes = out
    }

    public var isMulticast: Bool { bytes[0] & 1 == 1 }
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    public static let zero = MACAddress(bytes: [0, 0, 0, 0, 0, 0])!
    public static let broadcast = MACAddress(bytes: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])!

    /// A locally administered unicast MAC derived from an IPv4 address (0a:58:a.b.c.d),
    /// the convention the reference bridge plugin and Kubernetes use for pod interfaces.
    public static func derived(from ip: IPAddress) -> MACAddress? {
        guard case .v4 = ip else { return nil }
        return MACAddress(bytes: [0x0a, 0x58] + ip.bytes)
    }

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = MACAddress(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid MAC address \"\(s)\"")
        }
        self = v
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
