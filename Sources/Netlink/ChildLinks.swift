// Links that hang off a parent ("master") device — macvlan and ipvlan — share one request
// shape: RTM_NEWLINK with the parent's ifindex (IFLA_LINK), optionally created directly in
// another netns (IFLA_NET_NS_FD), and their kind's attributes in IFLA_LINKINFO. Reading their
// mode back goes through the kernel's rtnl_link object, which libnl parses with the kind's
// own attribute table.

import CNetlink
import NetTypes

/// Attributes of a child link's RTM_NEWLINK (linux/if_link.h) not already named in Links.swift.
enum ChildLinkAttribute {
    /// IFLA_LINK: the parent device's ifindex (in the netns the request is sent to).
    static let parent: Int32 = 5
}

extension RouteSocket {
    /// RTM_NEWLINK (create, exclusive) for a link of `kind` on `parentIndex`: IFLA_IFNAME,
    /// IFLA_LINK, IFLA_MTU, IFLA_ADDRESS, IFLA_NET_NS_FD, IFLA_LINKINFO { KIND, DATA { `data` } }.
    static func childLinkRequest(kind: String, name: String, parentIndex: Int32, mtu: UInt32?, mac: MACAddress?,
                                 namespaceFD: Int32?, data: (NetlinkMessage) throws -> Void) throws -> NetlinkMessage {
        let m = try NetlinkMessage(type: RTM.newLink, flags: RTM.create | RTM.excl)
        try m.append(ifinfomsg())
        try m.put(IFLA.ifname, string: name)
        try m.put(ChildLinkAttribute.parent, u32: UInt32(bitPattern: parentIndex))
        if let mtu { try m.put(IFLA.mtu, u32: mtu) }
        if let mac { try m.put(IFLA.address, bytes: mac.bytes) }
        if let namespaceFD { try m.put(IFLA.netNSFD, u32: UInt32(bitPattern: namespaceFD)) }
        try m.nest(IFLA.linkinfo) {
            try m.put(IFLA.infoKind, string: kind)
            try m.nest(IFLA.infoData) { try data(m) }
        }
        return m
    }

    /// Sends a child link's request; with `namespace` the link is created inside it.
    func addChildLink(_ operation: String, _ object: String, namespace: NetworkNamespace?,
                      _ request: (Int32?) throws -> NetlinkMessage) throws {
        try withExtendedLifetime(namespace) {
            try send(operation, "\(object)\(namespace.map { " in \($0.path)" } ?? "")", request(namespace?.fd))
        }
    }

    /// Runs `read` on the kernel's description of the link `name` (a targeted RTM_GETLINK);
    /// nil when there is no such link.
    func withKernelLink<T>(named name: String, _ read: (OpaquePointer) -> T) throws -> T? {
        var out: OpaquePointer?
        let found = try performIfPresent("get link", name) { rtnl_link_get_kernel(sock, 0, name, &out) }
        guard found, let out else { return nil }
        defer { rtnl_link_put(out) }
        return read(out)
    }
}
