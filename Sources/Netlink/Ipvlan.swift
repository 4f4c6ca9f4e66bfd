// Ipvlan links: virtual interfaces that share their parent's MAC address and are told apart
// by IP address, for segments that admit one MAC per port.

import CNetlink

/// An ipvlan's mode (IPVLAN_MODE_*): where the parent hands packets to the ipvlan.
public enum IpvlanMode: UInt16, Sendable, CaseIterable {
    /// Switching by the parent at L2: ARP and broadcast reach the ipvlans.
    case l2 = 0
    /// Routing by the parent at L3: no broadcast or multicast; the container's routes go out
    /// through the parent's netns.
    case l3 = 1
    /// L3 with the parent netns's netfilter seeing the traffic (conntrack, L3-symmetric).
    case l3s = 2

    /// The mode's name as `ip link` writes it.
    public var name: String {
        switch self {
        case .l2: "l2"
        case .l3: "l3"
        case .l3s: "l3s"
        }
    }

    public init?(name: String) {
        guard let m = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = m
    }
}

/// An ipvlan link to create.
public struct IpvlanSpec: Sendable {
    public var name: String
    /// The parent's ifindex, in the netns of the socket that sends the request.
    public var parentIndex: Int32
    public var mode: IpvlanMode
    public var mtu: UInt32?

    public init(name: String, parentIndex: Int32, mode: IpvlanMode, mtu: UInt32? = nil) {
        self.name = name; self.parentIndex = parentIndex; self.mode = mode; self.mtu = mtu
    }
}

/// IFLA_IPVLAN_* (linux/if_link.h).
enum IpvlanAttribute {
    static let mode: Int32 = 1
}

extension RouteSocket {
    /// Creates an ipvlan on its parent; with `namespace` it is created directly inside that
    /// netns under its final name. A kernel without ipvlan answers EOPNOTSUPP.
    public func addIpvlan(_ spec: IpvlanSpec, namespace: NetworkNamespace? = nil) throws {
        try addChildLink("add ipvlan", "\(spec.name) on ifindex \(spec.parentIndex)", namespace: namespace) {
            try Self.ipvlanRequest(spec, namespaceFD: $0)
        }
    }

    static func ipvlanRequest(_ spec: IpvlanSpec, namespaceFD: Int32?) throws -> NetlinkMessage {
        try childLinkRequest(kind: "ipvlan", name: spec.name, parentIndex: spec.parentIndex, mtu: spec.mtu, mac: nil,
                         namespaceFD: namespaceFD) { m in
            try m.put(IpvlanAttribute.mode, u16: spec.mode.rawValue)
        }
    }

    /// The mode of the ipvlan `name`; nil when there is no such link or it is no ipvlan.
    public func ipvlanMode(named name: String) throws -> IpvlanMode? {
        try withKernelLink(named: name) { l -> IpvlanMode? in
            // libnl asserts (aborts) when asked for the mode of a link of another kind.
            guard rtnl_link_is_ipvlan(l) != 0 else { return nil }
            var mode: UInt16 = 0
            guard rtnl_link_ipvlan_get_mode(l, &mode) == 0 else { return nil }
            return IpvlanMode(rawValue: mode)
        } ?? nil
    }
}
