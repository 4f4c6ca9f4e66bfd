// Link attributes the tuning plugin reads and changes besides MTU, MAC, name and promiscuous
// mode: the all-multicast flag and the transmit queue length.

import CNetlink
import Glibc

/// IFF_ALLMULTI (linux/if.h): receive all multicast packets.
let allMulticastFlag: UInt32 = 0x200

extension Link {
    /// IFF_ALLMULTI is set.
    public var isAllMulticast: Bool { flags & allMulticastFlag != 0 }
}

extension RouteSocket {
    /// The transmit queue length (IFLA_TXQLEN) of the link with ifindex `index`; ENODEV
    /// when there is none.
    public func txQueueLength(_ index: Int32) throws -> UInt32 {
        var out: OpaquePointer?
        try perform("get link", "ifindex \(index)") { rtnl_link_get_kernel(sock, index, nil, &out) }
        guard let out else { throw NetlinkError(operation: "get link", object: "ifindex \(index)", errno: ENODEV) }
        defer { rtnl_link_put(out) }
        return rtnl_link_get_txqlen(out)
    }

    /// Sets the transmit queue length (IFLA_TXQLEN).
    public func setTxQueueLength(_ index: Int32, _ length: UInt32) throws {
        try change(index, "set txqueuelen \(length)") { rtnl_link_set_txqlen($0, length) }
    }

    /// Turns the all-multicast flag (IFF_ALLMULTI) on or off.
    public func setAllMulticast(_ index: Int32, _ on: Bool) throws {
        try change(index, "set allmulticast \(on ? "on" : "off")") {
            if on { rtnl_link_set_flags($0, allMulticastFlag) } else { rtnl_link_unset_flags($0, allMulticastFlag) }
        }
    }

    /// One attribute change through libnl's change request (RTM_NEWLINK on the ifindex, which
    /// libnl retries as RTM_SETLINK where the kernel wants that).
    private func change(_ index: Int32, _ operation: String, _ set: (OpaquePointer) -> Void) throws {
        guard let orig = rtnl_link_alloc() else { throw NetlinkError(operation: operation, object: "ifindex \(index)", errno: ENOMEM) }
        defer { rtnl_link_put(orig) }
        guard let changes = rtnl_link_alloc() else { throw NetlinkError(operation: operation, object: "ifindex \(index)", errno: ENOMEM) }
        defer { rtnl_link_put(changes) }
        rtnl_link_set_ifindex(orig, index)
        set(changes)
        try perform(operation, "ifindex \(index)") { rtnl_link_change(sock, orig, changes, 0) }
    }
}
