// Neighbours: permanent ARP/NDP entries and bridge FDB entries (AF_BRIDGE), through libnl's
// rtnl_neigh.

import CNetlink
import NetTypes
import SystemKit
import Glibc

public struct Neighbour: Sendable, Hashable {
    public enum Family: Sendable, Hashable {
        case v4, v6
        /// A bridge forwarding-database entry (`bridge fdb`).
        case bridge
        var af: Int32 { switch self { case .v4: AF_INET; case .v6: AF_INET6; case .bridge: AF_BRIDGE } }
    }
    public var index: Int32
    public var family: Family
    /// The neighbour's IP (ARP/NDP), or for a VXLAN FDB entry the remote VTEP (`dst`).
    public var ip: IPAddress?
    public var mac: MACAddress?
    /// NUD_* state (`permanent` by default, `reachable`).
    public var state: UInt16
    /// NTF_* flags: `flagSelf` for the device's own FDB, `flagMaster` for its bridge's.
    public var flags: UInt8
    /// The bridge a FDB entry belongs to (NDA_MASTER), when reported.
    public var masterIndex: Int32?

    public static let permanent: UInt16 = 0x80      // NUD_PERMANENT
    public static let reachable: UInt16 = 0x02      // NUD_REACHABLE: valid until it ages out
    public static let flagSelf: UInt8 = 0x02        // NTF_SELF
    public static let flagMaster: UInt8 = 0x04      // NTF_MASTER

    public init(index: Int32, family: Family, ip: IPAddress? = nil, mac: MACAddress? = nil,
                state: UInt16 = Neighbour.permanent, flags: UInt8 = 0, masterIndex: Int32? = nil) {
        self.index = index; self.family = family; self.ip = ip; self.mac = mac
        self.state = state; self.flags = flags; self.masterIndex = masterIndex
    }

    /// A permanent ARP (IPv4) or NDP (IPv6) entry.
    public static func permanent(index: Int32, ip: IPAddress, mac: MACAddress) -> Neighbour {
        Neighbour(index: index, family: ip.isV4 ? .v4 : .v6, ip: ip, mac: mac)
    }
    /// A permanent FDB entry on a bridge port or VXLAN device (`bridge fdb add MAC dev X self dst IP`).
    public static func fdb(index: Int32, mac: MACAddress, dst: IPAddress? = nil, self isSelf: Bool = true,
                           master: Bool = false) -> Neighbour {
        Neighbour(index: index, family: .bridge, ip: dst, mac: mac,
                  flags: (isSelf ? flagSelf : 0) | (master ? flagMaster : 0))
    }
}

extension RouteSocket {
    public enum NeighbourMode: Sendable { case exclusive, replace, append }

    /// Adds a neighbour. `.append` adds one more destination for the same MAC (VXLAN head-end
    /// replication with the all-zero MAC); `.replace` creates or updates.
    public func addNeighbour(_ n: Neighbour, mode: NeighbourMode = .exclusive) throws {
        let flags: Int32 = switch mode {
        case .exclusive: RTM.create | RTM.excl
        case .replace: RTM.create | RTM.replace
        case .append: RTM.create | RTM.append
        }
        try changeNeighbour(n, "add neighbour", flags: flags)
    }

    public func deleteNeighbour(_ n: Neighbour) throws {
        try changeNeighbour(n, "delete neighbour", flags: nil)
    }

    private func changeNeighbour(_ n: Neighbour, _ op: String, flags: Int32?) throws {
        let object = describe(n)
        guard let neigh = rtnl_neigh_alloc() else { throw NetlinkError(operation: op, object: object, errno: .noMemory) }
        defer { rtnl_neigh_put(neigh) }
        rtnl_neigh_set_ifindex(neigh, n.index)
        // libnl refuses a dst whose family differs from the neighbour's (a VXLAN FDB entry's
        // dst is an IP on an AF_BRIDGE entry): set the dst first, then the family.
        if let ip = n.ip {
            let dst = try NLAddr(ip)
            try checkSetter(op, object, "dst") { dst.pass { rtnl_neigh_set_dst(neigh, $0) } }
        }
        rtnl_neigh_set_family(neigh, n.family.af)
        if let mac = n.mac { try NLAddr(mac).pass { rtnl_neigh_set_lladdr(neigh, $0) } }
        rtnl_neigh_set_state(neigh, Int32(n.state))
        if n.flags != 0 { rtnl_neigh_set_flags(neigh, UInt32(n.flags)) }
        if let m = n.masterIndex { rtnl_neigh_set_master(neigh, m) }
        if let flags {
            try perform(op, object) { rtnl_neigh_add(sock, neigh, flags) }
        } else {
            try perform(op, object) { rtnl_neigh_delete(sock, neigh, 0) }
        }
    }

    /// Neighbours of one family (ARP/NDP, or the bridge FDB with `.bridge`), optionally of one link.
    public func neighbours(family: Neighbour.Family, index: Int32? = nil) throws -> [Neighbour] {
        // Asked per family: an AF_UNSPEC dump leaves the bridge FDB out.
        try list(.neighbours, family: family.af) { o in
            guard rtnl_neigh_get_family(o) == family.af else { return nil }
            let idx = rtnl_neigh_get_ifindex(o)
            if let index, idx != index { return nil }
            let master = rtnl_neigh_get_master(o)
            return Neighbour(index: idx, family: family, ip: ipAddress(rtnl_neigh_get_dst(o)),
                             mac: macAddress(rtnl_neigh_get_lladdr(o)),
                             state: UInt16(truncatingIfNeeded: rtnl_neigh_get_state(o)),
                             flags: UInt8(truncatingIfNeeded: rtnl_neigh_get_flags(o)),
                             masterIndex: master > 0 ? master : nil)
        }
    }

    private func describe(_ n: Neighbour) -> String {
        var parts: [String] = []
        if let ip = n.ip { parts.append(n.family == .bridge ? "dst \(ip)" : "\(ip)") }
        if let mac = n.mac { parts.append("lladdr \(mac)") }
        parts.append("dev ifindex \(n.index)")
        return (n.family == .bridge ? "fdb " : "") + parts.joined(separator: " ")
    }
}
