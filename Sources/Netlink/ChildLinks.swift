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
                                 namespaceFD: Int32?, data: (NetlinkMessage) -> Void) -> NetlinkMessage {
        let m = NetlinkMessage(type: RTM.newLink, flags: RTM.create | RTM.excl)
        m.append(ifinfomsg())
        m.put(IFLA.ifname, string: name)
        m.put(ChildLinkAttribute.parent, u32: UInt32(bitPattern: parentIndex))
        if let mtu { m.put(IFLA.mtu, u32: mtu) }
        if let mac { m.put(IFLA.address, bytes: mac.bytes) }
        if let namespaceFD { m.put(IFLA.netNSFD, u32: UInt32(bitPattern: namespaceFD)) }
        m.nest(IFLA.linkinfo) {
            m.put(IFLA.infoKind, string: kind)
            m.nest(IFLA.infoData) { data(m) }
        }
        return m
    }

    /// Sends a child link's request; with `namespace` the link is created inside it.
    func addChildLink(_ operation: String, _ object: String, namespace: NetworkNamespace?,
                      _ request: (Int32?) -> NetlinkMessage) throws {
        try withExtendedLifetime(namespace) {
            try send(operation, "\(object)\(namespace.map { " in \($0.path)" } ?? "")", request(namespace?.fd))
        }
    }

    /// Runs `read` on the kernel's description of the link `name` (a targeted RTM_GETLINK);
    /// nil when there is no such link.
    func withKernelLink<T>(named name: String, _ read: (OpaquePointer) -> T) throws -> T? {
        var out: OpaquePointer?
        do {
            try perform("get link", name) { rtnl_link_get_kernel(sock, 0, name, &out) }
        } catch let e as NetlinkError where e.isNotFound {
            return nil
        }
        guard let out else { return nil }
        defer { rtnl_link_put(out) }
        return read(out)
    }
}
