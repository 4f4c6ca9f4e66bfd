// Macvlan links: virtual interfaces with their own MAC address on a parent device, so a
// container sits on the parent's Ethernet segment as a host of its own.

import CNetlink
import NetTypes

/// A macvlan's mode (MACVLAN_MODE_*): how frames between macvlans of one parent travel.
public enum MacvlanMode: UInt32, Sendable, CaseIterable {
    /// No traffic between macvlans of the parent, even through an outside switch.
    case `private` = 1
    /// Every frame goes out through the parent; a hairpinning switch brings it back.
    case vepa = 2
    /// Macvlans of the parent reach each other directly inside the kernel.
    case bridge = 4
    /// The one macvlan takes over the parent (only one per parent).
    case passthru = 8
    /// Frames chosen by source MAC lists (read back only; not created here).
    case source = 16

    /// The mode's name as `ip link` writes it.
    public var name: String {
        switch self {
        case .private: "private"
        case .vepa: "vepa"
        case .bridge: "bridge"
        case .passthru: "passthru"
        case .source: "source"
        }
    }

    public init?(name: String) {
        guard let m = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = m
    }
}

/// A macvlan link to create.
public struct MacvlanSpec: Sendable {
    public var name: String
    /// The parent's ifindex, in the netns of the socket that sends the request.
    public var parentIndex: Int32
    public var mode: MacvlanMode
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// IFLA_MACVLAN_BC_QUEUE_LEN: frames queued for delivery of broadcast/multicast to the
    /// macvlans of the parent (the kernel's default when nil).
    public var broadcastQueueLength: UInt32?

    public init(name: String, parentIndex: Int32, mode: MacvlanMode, mtu: UInt32? = nil, mac: MACAddress? = nil,
                broadcastQueueLength: UInt32? = nil) {
        self.name = name; self.parentIndex = parentIndex; self.mode = mode; self.mtu = mtu; self.mac = mac
        self.broadcastQueueLength = broadcastQueueLength
    }
}

/// IFLA_MACVLAN_* (linux/if_link.h).
enum MacvlanAttribute {
    static let mode: Int32 = 1
    static let broadcastQueueLength: Int32 = 7
}

extension RouteSocket {
    /// Creates a macvlan on its parent; with `namespace` it is created directly inside that
    /// netns under its final name (the parent stays where it is).
    public func addMacvlan(_ spec: MacvlanSpec, namespace: NetworkNamespace? = nil) throws {
        try addChildLink("add macvlan", "\(spec.name) on ifindex \(spec.parentIndex)", namespace: namespace) {
            try Self.macvlanRequest(spec, namespaceFD: $0)
        }
    }

    static func macvlanRequest(_ spec: MacvlanSpec, namespaceFD: Int32?) throws -> NetlinkMessage {
        try childLinkRequest(kind: "macvlan", name: spec.name, parentIndex: spec.parentIndex, mtu: spec.mtu, mac: spec.mac,
                         namespaceFD: namespaceFD) { m in
            try m.put(MacvlanAttribute.mode, u32: spec.mode.rawValue)
            if let q = spec.broadcastQueueLength { try m.put(MacvlanAttribute.broadcastQueueLength, u32: q) }
        }
    }

    /// The mode of the macvlan `name`; nil when there is no such link or it is no macvlan.
    public func macvlanMode(named name: String) throws -> MacvlanMode? {
        try withKernelLink(named: name) { l -> MacvlanMode? in
            // libnl asserts (aborts) when asked for the mode of a link of another kind.
            guard rtnl_link_is_macvlan(l) != 0 else { return nil }
            return MacvlanMode(rawValue: rtnl_link_macvlan_get_mode(l))
        } ?? nil
    }
}
