// VXLAN devices as an overlay daemon needs them: created with the Group-Based Policy
// extension when asked (the kernel takes GBP only at creation), and read back with their
// VXLAN attributes, so a daemon can tell a device that matches its configuration from one
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
        do {
            try perform("get link", name) { rtnl_link_get_kernel(sock, 0, name, &out) }
        } catch let e as NetlinkError where e.isNotFound {
            return nil
        }
        guard let out else { return nil }
        defer { rtnl_link_put(out) }
        return (Link(out), rtnl_link_is_vxlan(out) != 0 ? VXLANAttributes(out) : nil)
    }

    /// Creates a VXLAN device from `spec`, with the Group-Based Policy extension when `gbp`
    /// is set; learning as the spec says, L2miss/L3miss notifications off.
    public func addVXLAN(_ spec: VXLANSpec, gbp: Bool) throws {
        let object = "\(spec.name) vni \(spec.vni)"
        guard let link = rtnl_link_vxlan_alloc() else {
            throw NetlinkError(operation: "add vxlan", object: object, errno: .noMemory)
        }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, spec.name)
        // The setters copy the addresses into the link object.
        if let local = spec.local, let a = NLAddr(local) { _ = rtnl_link_vxlan_set_local(link, a.ptr) }
        if let remote = spec.remote, let a = NLAddr(remote) { _ = rtnl_link_vxlan_set_group(link, a.ptr) }
        _ = rtnl_link_vxlan_set_id(link, spec.vni)
        if let dev = spec.underlayIndex { _ = rtnl_link_vxlan_set_link(link, UInt32(dev)) }
        _ = rtnl_link_vxlan_set_port(link, UInt32(spec.port))
        _ = rtnl_link_vxlan_set_learning(link, spec.learning ? 1 : 0)
        _ = rtnl_link_vxlan_set_l2miss(link, 0)
        _ = rtnl_link_vxlan_set_l3miss(link, 0)
        if gbp { _ = rtnl_link_vxlan_set_flags(link, UInt32(RTNL_LINK_VXLAN_F_GBP), 1) }
        if let ttl = spec.ttl { _ = rtnl_link_vxlan_set_ttl(link, ttl) }
        if let mtu = spec.mtu { rtnl_link_set_mtu(link, mtu) }
        if let mac = spec.mac, let a = NLAddr(mac) { rtnl_link_set_addr(link, a.ptr) }
        try perform("add vxlan", object) { rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL) }
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
