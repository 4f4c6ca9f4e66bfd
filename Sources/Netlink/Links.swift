// Links: look-up, listing, creation (veth with the peer placed directly in another netns,
// bridge, VXLAN), attribute changes, bridge-port flags and VLANs, deletion.

import CNetlink
import NetTypes
import SystemKit
import Glibc

/// A network interface as the kernel reports it.
public struct Link: Sendable, Hashable {
    public var index: Int32
    public var name: String
    /// IFLA_INFO_KIND: "veth", "bridge", "vxlan", ...; nil for plain devices such as `lo`.
    public var kind: String?
    public var mtu: UInt32
    public var mac: MACAddress?
    /// IFF_* flags.
    public var flags: UInt32
    /// The master's ifindex (bridge this link is enslaved to), nil when none.
    public var masterIndex: Int32?
    /// IFLA_LINK: for a veth, its peer's ifindex (in the peer's namespace); nil when unset.
    public var linkIndex: Int32?
    /// RFC 2863 operational state ("up", "down", "lowerlayerdown", "unknown", ...).
    public var operState: String
    /// IFLA_IFALIAS: a free-form label (`ip link set X alias TEXT`); nil when unset.
    public var alias: String?

    public var isUp: Bool { flags & InterfaceFlag.up != 0 }
    public var isPromiscuous: Bool { flags & InterfaceFlag.promiscuous != 0 }
    /// For a veth, the ifindex of its peer (IFLA_LINK).
    public var peerIndex: Int32? { kind == "veth" ? linkIndex : nil }
}

/// A VXLAN device to create.
public struct VXLANSpec: Sendable {
    public var name: String
    public var vni: UInt32
    public var local: IPAddress?
    /// Multicast group or single remote (IFLA_VXLAN_GROUP); nil for FDB-driven peers.
    public var remote: IPAddress?
    /// Underlay device ifindex (IFLA_VXLAN_LINK).
    public var underlayIndex: Int32?
    public var port: UInt16
    public var learning: Bool
    public var ttl: UInt8?
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// The Group-Based Policy extension (the kernel takes it only at creation).
    public var gbp: Bool

    public init(name: String, vni: UInt32, local: IPAddress? = nil, remote: IPAddress? = nil,
                underlayIndex: Int32? = nil, port: UInt16 = 4789, learning: Bool = false,
                ttl: UInt8? = nil, mtu: UInt32? = nil, mac: MACAddress? = nil, gbp: Bool = false) {
        self.name = name; self.vni = vni; self.local = local; self.remote = remote
        self.underlayIndex = underlayIndex; self.port = port; self.learning = learning
        self.ttl = ttl; self.mtu = mtu; self.mac = mac; self.gbp = gbp
    }
}

extension RouteSocket {
    // MARK: look-up

    /// The link called `name`, or nil when there is none (a targeted RTM_GETLINK).
    public func link(named name: String) throws -> Link? {
        try getLink(index: 0, name: name)
    }

    public func link(index: Int32) throws -> Link? {
        try getLink(index: index, name: nil)
    }

    /// The link called `name`; throws ENODEV when it is missing.
    public func requireLink(named name: String) throws -> Link {
        guard let l = try link(named: name) else {
            throw NetlinkError(operation: "get link", object: name, errno: .noSuchDevice)
        }
        return l
    }

    private func getLink(index: Int32, name: String?) throws -> Link? {
        var out: OpaquePointer?
        let found = try performIfPresent("get link", name ?? "ifindex \(index)") {
            rtnl_link_get_kernel(sock, index, name, &out)
        }
        guard found, let out else { return nil }
        defer { rtnl_link_put(out) }
        return Link(out)
    }

    /// Every link of the socket's namespace.
    public func links() throws -> [Link] {
        try list(.links, family: AF_UNSPEC) { Link($0) }
    }

    // MARK: creation

    /// Creates a veth pair `name` <-> `peerName`. With `peerNamespace` the peer is created
    /// directly inside that namespace under its final name (IFLA_NET_NS_FD in the request),
    /// so no interface ever appears, or is renamed, in this namespace.
    public func addVethPair(name: String, peerName: String, peerNamespace: NetworkNamespace? = nil,
                            mtu: UInt32? = nil, mac: MACAddress? = nil, peerMAC: MACAddress? = nil) throws {
        guard let link = rtnl_link_veth_alloc() else { throw NetlinkError(operation: "add veth", object: name, errno: .noMemory) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        guard let peer = rtnl_link_veth_get_peer(link) else { throw NetlinkError(operation: "add veth", object: name, errno: .noMemory) }
        defer { rtnl_link_put(peer) }
        rtnl_link_set_name(peer, peerName)
        if let mtu { rtnl_link_set_mtu(link, mtu); rtnl_link_set_mtu(peer, mtu) }
        if let mac { try NLAddr(mac).pass { rtnl_link_set_addr(link, $0) } }
        if let peerMAC { try NLAddr(peerMAC).pass { rtnl_link_set_addr(peer, $0) } }
        if let ns = peerNamespace { rtnl_link_set_ns_fd(peer, ns.fd) }
        try withExtendedLifetime(peerNamespace) { () throws(SystemError) -> Void in
            try perform("add veth", "\(name) peer \(peerName)") {
                rtnl_link_add(sock, link, RTM.create | RTM.excl)
            }
        }
    }

    /// Creates a bridge, optionally with VLAN filtering, MTU and MAC.
    public func addBridge(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, vlanFiltering: Bool = false) throws {
        try send("add bridge", name, Self.bridgeRequest(name: name, mtu: mtu, mac: mac, vlanFiltering: vlanFiltering))
    }

    /// RTM_NEWLINK for a bridge: IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS,
    /// IFLA_LINKINFO { KIND "bridge", DATA { IFLA_BR_VLAN_FILTERING } }.
    static func bridgeRequest(name: String, mtu: UInt32?, mac: MACAddress?,
                              vlanFiltering: Bool) throws -> NetlinkMessage {
        let m = try NetlinkMessage(type: RTM.newLink, flags: RTM.create | RTM.excl)
        try m.append(ifinfomsg())
        try m.put(IFLA.ifname, string: name)
        if let mtu { try m.put(IFLA.mtu, u32: mtu) }
        if let mac { try m.put(IFLA.address, bytes: mac.bytes) }
        try m.nest(IFLA.linkinfo) {
            try m.put(IFLA.infoKind, string: "bridge")
            if vlanFiltering { try m.nest(IFLA.infoData) { try m.put(IFLA.brVlanFiltering, u8: 1) } }
        }
        return m
    }

    /// Creates a VXLAN device; learning as given, L2miss/L3miss notifications off.
    public func addVXLAN(_ spec: VXLANSpec) throws {
        let op = "add vxlan", object = "\(spec.name) vni \(spec.vni)"
        guard let link = rtnl_link_vxlan_alloc() else { throw NetlinkError(operation: op, object: spec.name, errno: .noMemory) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, spec.name)
        try checkSetter(op, object, "vni") { rtnl_link_vxlan_set_id(link, spec.vni) }
        if let local = spec.local {
            let a = try NLAddr(local)
            try checkSetter(op, object, "local") { a.pass { rtnl_link_vxlan_set_local(link, $0) } }
        }
        if let remote = spec.remote {
            let a = try NLAddr(remote)
            try checkSetter(op, object, "group") { a.pass { rtnl_link_vxlan_set_group(link, $0) } }
        }
        if let dev = spec.underlayIndex { try checkSetter(op, object, "link") { rtnl_link_vxlan_set_link(link, UInt32(dev)) } }
        try checkSetter(op, object, "port") { rtnl_link_vxlan_set_port(link, UInt32(spec.port)) }
        try checkSetter(op, object, "learning") { rtnl_link_vxlan_set_learning(link, spec.learning ? 1 : 0) }
        try checkSetter(op, object, "l2miss") { rtnl_link_vxlan_set_l2miss(link, 0) }
        try checkSetter(op, object, "l3miss") { rtnl_link_vxlan_set_l3miss(link, 0) }
        if spec.gbp {
            try checkSetter(op, object, "gbp") { rtnl_link_vxlan_set_flags(link, UInt32(RTNL_LINK_VXLAN_F_GBP), 1) }
        }
        if let ttl = spec.ttl { try checkSetter(op, object, "ttl") { rtnl_link_vxlan_set_ttl(link, ttl) } }
        if let mtu = spec.mtu { rtnl_link_set_mtu(link, mtu) }
        if let mac = spec.mac { try NLAddr(mac).pass { rtnl_link_set_addr(link, $0) } }
        try perform(op, object) { rtnl_link_add(sock, link, RTM.create | RTM.excl) }
    }

    // MARK: changes

    public func setUp(_ index: Int32) throws { try setFlags(index, InterfaceFlag.up, on: true, "set up") }
    public func setDown(_ index: Int32) throws { try setFlags(index, InterfaceFlag.up, on: false, "set down") }
    public func setPromiscuous(_ index: Int32, _ on: Bool) throws {
        try setFlags(index, InterfaceFlag.promiscuous, on: on, "set promisc")
    }

    public func setMTU(_ index: Int32, _ mtu: UInt32) throws {
        try setLink(index, "set mtu \(mtu)") { try $0.put(IFLA.mtu, u32: mtu) }
    }
    public func setMAC(_ index: Int32, _ mac: MACAddress) throws {
        try setLink(index, "set address \(mac)") { try $0.put(IFLA.address, bytes: mac.bytes) }
    }
    /// Sets the link's alias (IFLA_IFALIAS, at most 255 bytes); "" removes it.
    public func setAlias(_ index: Int32, _ alias: String) throws {
        try setLink(index, "set alias \"\(alias)\"") { try $0.put(IFLA.ifalias, string: alias) }
    }
    public func rename(_ index: Int32, to name: String) throws {
        try setLink(index, "rename to \(name)") { try $0.put(IFLA.ifname, string: name) }
    }
    /// Enslaves the link to `master` (a bridge ifindex), or releases it with nil.
    public func setMaster(_ index: Int32, master: Int32?) throws {
        try setLink(index, master.map { "set master \($0)" } ?? "set nomaster") { try $0.put(IFLA.master, u32: UInt32(master ?? 0)) }
    }
    /// Moves the link into another network namespace.
    public func moveToNamespace(_ index: Int32, _ namespace: NetworkNamespace) throws {
        try withExtendedLifetime(namespace) { () throws -> Void in
            try setLink(index, "move to netns \(namespace.path)") { try $0.put(IFLA.netNSFD, u32: UInt32(namespace.fd)) }
        }
    }

    /// Bridge-port hairpin mode (IFLA_BRPORT_MODE) on a link enslaved to a bridge.
    public func setHairpin(_ index: Int32, _ on: Bool) throws {
        try setBridgePort(index, "set hairpin \(on ? "on" : "off")") { try $0.put(IFLA.brportMode, u8: on ? 1 : 0) }
    }
    /// Bridge-port isolation (IFLA_BRPORT_ISOLATED).
    public func setIsolated(_ index: Int32, _ on: Bool) throws {
        try setBridgePort(index, "set isolated \(on ? "on" : "off")") { try $0.put(IFLA.brportIsolated, u8: on ? 1 : 0) }
    }

    /// Adds VLAN `vid` to a bridge port (like `bridge vlan add dev X vid N [pvid] [untagged]`).
    public func addBridgeVLAN(_ index: Int32, vid: UInt16, pvid: Bool = false, untagged: Bool = false) throws {
        try bridgeVLAN(RTM.setLink, index, vid: vid, pvid: pvid, untagged: untagged, "add vlan \(vid)")
    }
    public func deleteBridgeVLAN(_ index: Int32, vid: UInt16) throws {
        try bridgeVLAN(RTM.delLink, index, vid: vid, pvid: false, untagged: false, "delete vlan \(vid)")
    }

    private func bridgeVLAN(_ type: Int32, _ index: Int32, vid: UInt16, pvid: Bool, untagged: Bool, _ op: String) throws {
        try send(op, "ifindex \(index)", Self.bridgeVLANRequest(type, index, vid: vid, pvid: pvid, untagged: untagged))
    }

    /// RTM_SETLINK/DELLINK, family AF_BRIDGE, IFLA_AF_SPEC { IFLA_BRIDGE_VLAN_INFO {flags, vid} }.
    static func bridgeVLANRequest(_ type: Int32, _ index: Int32, vid: UInt16, pvid: Bool,
                                  untagged: Bool) throws -> NetlinkMessage {
        let m = try NetlinkMessage(type: type, flags: 0)
        try m.append(ifinfomsg(ifi_family: UInt8(AF_BRIDGE), __ifi_pad: 0, ifi_type: 0, ifi_index: index, ifi_flags: 0, ifi_change: 0))
        try m.nest(IFLA.afSpec) {
            let flags: UInt16 = (pvid ? BridgeVLANFlag.pvid : 0) | (untagged ? BridgeVLANFlag.untagged : 0)
            try m.put(IFLA.bridgeVlanInfo, bytes: withUnsafeBytes(of: (flags, vid)) { Array($0) })
        }
        return m
    }

    private func setFlags(_ index: Int32, _ flag: UInt32, on: Bool, _ op: String) throws {
        let m = try NetlinkMessage(type: RTM.setLink, flags: 0)
        try m.append(ifinfomsg(ifi_family: 0, __ifi_pad: 0, ifi_type: 0, ifi_index: index, ifi_flags: on ? flag : 0, ifi_change: flag))
        try send(op, "ifindex \(index)", m)
    }

    private func setLink(_ index: Int32, _ op: String,
                         _ attrs: (NetlinkMessage) throws -> Void) throws {
        let m = try NetlinkMessage(type: RTM.setLink, flags: 0)
        try m.append(ifinfomsg(ifi_family: 0, __ifi_pad: 0, ifi_type: 0, ifi_index: index, ifi_flags: 0, ifi_change: 0))
        try attrs(m)
        try send(op, "ifindex \(index)", m)
    }

    private func setBridgePort(_ index: Int32, _ op: String,
                               _ attrs: (NetlinkMessage) throws -> Void) throws {
        try send(op, "ifindex \(index)", Self.bridgePortRequest(index, attrs))
    }

    /// RTM_SETLINK, family AF_BRIDGE, IFLA_PROTINFO { IFLA_BRPORT_* }.
    static func bridgePortRequest(_ index: Int32,
                                  _ attrs: (NetlinkMessage) throws -> Void) throws -> NetlinkMessage {
        let m = try NetlinkMessage(type: RTM.setLink, flags: 0)
        try m.append(ifinfomsg(ifi_family: UInt8(AF_BRIDGE), __ifi_pad: 0, ifi_type: 0, ifi_index: index, ifi_flags: 0, ifi_change: 0))
        try m.nest(IFLA.protinfo) { try attrs(m) }
        return m
    }

    // MARK: deletion

    public func deleteLink(_ index: Int32) throws {
        let m = try NetlinkMessage(type: RTM.delLink, flags: 0)
        try m.append(ifinfomsg(ifi_family: 0, __ifi_pad: 0, ifi_type: 0, ifi_index: index, ifi_flags: 0, ifi_change: 0))
        try send("delete link", "ifindex \(index)", m)
    }

    public func deleteLink(named name: String) throws {
        let m = try NetlinkMessage(type: RTM.delLink, flags: 0)
        try m.append(ifinfomsg())
        try m.put(IFLA.ifname, string: name)
        try send("delete link", name, m)
    }
}

extension Link {
    /// Reads a libnl rtnl_link (not retained).
    init(_ l: OpaquePointer) {
        index = rtnl_link_get_ifindex(l)
        name = rtnl_link_get_name(l).map { String(cString: $0) } ?? ""
        kind = rtnl_link_get_type(l).map { String(cString: $0) }
        mtu = rtnl_link_get_mtu(l)
        mac = macAddress(rtnl_link_get_addr(l))
        flags = rtnl_link_get_flags(l)
        let master = rtnl_link_get_master(l)
        masterIndex = master > 0 ? master : nil
        let li = rtnl_link_get_link(l)
        linkIndex = li > 0 ? li : nil
        var buf = [CChar](repeating: 0, count: 32)
        operState = String(cString: rtnl_link_operstate2str(rtnl_link_get_operstate(l), &buf, buf.count))
        alias = rtnl_link_get_ifalias(l).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
