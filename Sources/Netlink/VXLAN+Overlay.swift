// VXLAN devices as an overlay daemon needs them: read back with their VXLAN attributes, so a daemon can tell a device that matches its configuration from one
// that must be re-created.

import CNetlink
import NetTypes
import SystemKit
import Glibc

/// A VXLAN device's attributes as the kernel reports them (IFLA_VXLAN_*).
public struct VXLANAttributes: Sendable, Hashable {
    public var vni: UInt32
    /// UDP destination port (IFLA_VXLAN_PORT); nil when the kernel reported none.
    public var port: UInt16?
    /// Source address of the encapsulated packets (IFLA_VXLAN_LOCAL/LOCAL6).
    public var local: IPAddress?
    /// Multicast group or single remote (IFLA_VXLAN_GROUP/GROUP6).
    public var group: IPAddress?
    /// Underlay device (IFLA_VXLAN_LINK).
    public var underlayIndex: Int32?
    public var learning: Bool
    /// The Group-Based Policy extension (IFLA_VXLAN_GBP).
    public var gbp: Bool

    public init(vni: UInt32, port: UInt16? = nil, local: IPAddress? = nil, group: IPAddress? = nil,
                underlayIndex: Int32? = nil, learning: Bool = false, gbp: Bool = false) {
        self.vni = vni; self.port = port; self.local = local; self.group = group
        self.underlayIndex = underlayIndex; self.learning = learning; self.gbp = gbp
    }
}

extension RouteSocket {
    /// The link called `name` with its VXLAN attributes (nil when the link is no VXLAN
    /// device), or nil when there is no such link. One RTM_GETLINK.
    public func vxlanLink(named name: String) throws -> (link: Link, vxlan: VXLANAttributes?)? {
        var out: OpaquePointer?
        guard try performIfPresent("get link", name, { rtnl_link_get_kernel(sock, 0, name, &out) }) else { return nil }
        guard let out else { return nil }
        defer { rtnl_link_put(out) }
        return (Link(out), rtnl_link_is_vxlan(out) != 0 ? VXLANAttributes(out) : nil)
    }
}

extension VXLANAttributes {
    /// Reads the VXLAN info of a libnl link (not retained); libnl's getters return a
    /// negative code for attributes the kernel did not report.
    init(_ l: OpaquePointer) {
        var id: UInt32 = 0
        _ = rtnl_link_vxlan_get_id(l, &id)
        self.init(vni: id)
        var port: UInt32 = 0
        if rtnl_link_vxlan_get_port(l, &port) == 0 { self.port = UInt16(truncatingIfNeeded: port) }
        var dev: UInt32 = 0
        if rtnl_link_vxlan_get_link(l, &dev) == 0, dev > 0 { underlayIndex = Int32(bitPattern: dev) }
        local = Self.address(l, rtnl_link_vxlan_get_local)
        group = Self.address(l, rtnl_link_vxlan_get_group)
        learning = rtnl_link_vxlan_get_learning(l) > 0
        var flags: UInt32 = 0
        if rtnl_link_vxlan_get_flags(l, &flags) == 0 {
            gbp = flags & UInt32(RTNL_LINK_VXLAN_F_GBP) != 0
        }
    }

    /// An address getter's result; the getter hands out a new reference the caller puts.
    private static func address(_ l: OpaquePointer,
                                _ get: (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>?) -> Int32) -> IPAddress? {
        var a: OpaquePointer?
        guard get(l, &a) == 0, let a else { return nil }
        defer { nl_addr_put(a) }
        let ip = ipAddress(a)
        return ip?.isUnspecified == true ? nil : ip
    }
}
