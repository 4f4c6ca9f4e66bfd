// The bridge plugin: a veth pair from the container netns to a Linux bridge, addresses from
// an IPAM plugin, the gateway address on the bridge, and ipMasq as nftables elements.
//
// ADD works with two rtnetlink sockets: one in the host netns (the one the plugin runs in)
// and one opened once inside the container netns; the veth's container end is created
// directly there. Each change registers its undo, so a failed ADD leaves nothing behind.
// The bridge itself comes from a `BridgeSegment` (Segment.swift): the plugin's own keeps one
// bridge; the vxlan plugin runs this same ADD with a segment of its own.

import CNI
import NFTables
import NetTypes
import Netlink
import PluginKit
import SystemKit

public struct Bridge: CNIPlugin {
    public init() {}

    public func add(_ r: CNIRequest) throws -> CNIResult {
        try add(r, r.pluginConfig(BridgeConfig.self), segment: PlainBridge())
    }

    /// ADD with the configuration read already, on `segment`'s bridge: the bridge plugin's
    /// own ADD, and the attachment of a plugin built on it (vxlan).
    public func add(_ r: CNIRequest, _ conf: BridgeConfig, segment: some BridgeSegment) throws -> CNIResult {
        let netnsPath = try r.requireNetns()
        // Refused before the bridge or a veth exists: the later IPAM call would fail the same way.
        try IPAMDelegate.requirePlugin(r)
        var undo = Rollback()
        do {
            let result = try attach(AddContext(r, conf, netnsPath: netnsPath, plugin: segment.plugin), segment, &undo)
            undo.commit()
            return result
        } catch {
            undo.run()
            throw CNIError.wrapping(error, context: "\(segment.plugin) ADD")
        }
    }

    /// ADD's steps, in order; each change registers its undo.
    private func attach(_ c: AddContext, _ segment: some BridgeSegment, _ undo: inout Rollback) throws -> CNIResult {
        let br = try segment.prepare(c.host, c.conf, &undo)
        let (hostLink, ctrLink) = try createVeth(c, &undo)
        if c.conf.macSpoofCheck { try addSpoofCheck(c, hostVeth: hostLink.name, ctrLink: ctrLink, &undo) }
        try plugIntoBridge(c, hostLink.index, bridge: br.index)
        try segment.portAdded(hostLink, owner: c.owner, on: c.host)
        var result = try addresses(c, &undo)
        result.interfaces = [
            // The `mtu` fields are written for 1.1.0 results only (older versions drop them).
            .init(name: br.name, mac: br.mac, mtu: Int(br.mtu)),
            .init(name: hostLink.name, mac: hostLink.mac, mtu: Int(hostLink.mtu)),
            .init(name: c.request.ifName, mac: ctrLink.mac, mtu: Int(ctrLink.mtu), sandbox: c.netnsPath),
        ]
        if c.conf.isGateway {
            try addGatewayAddresses(c, br.index, port: hostLink.index, result.ips, &undo)
            try enableForwarding(result.ips)
        }
        if !c.conf.disableContainerInterface { try configureContainer(c, ctrLink.index, result, bridgeMAC: br.mac) }
        if c.conf.ipMasq, !result.ips.isEmpty {
            // One nftables batch (elements only once the bridge's chain exists).
            let nft = try c.nft()
            try Masquerade.add(nft, bridge: c.conf.bridge, addresses: result.ips.map(\.address.address), owner: c.owner)
            undo.register("delete masquerade elements") { [owner = c.owner] in try Masquerade.removeOwned(by: owner, nft) }
        }
        try segment.attached(result, owner: c.owner, &undo)
        return result
    }

    /// The veth pair, the container end created directly inside the container netns under its
    /// final name. Returns the host end and the container end.
    private func createVeth(_ c: AddContext, _ undo: inout Rollback) throws -> (host: Link, container: Link) {
        let hostName = Self.hostVethName()
        let ifName = c.request.ifName
        do {
            try c.host.addVethPair(name: hostName, peerName: ifName, peerNamespace: c.namespace,
                                   mtu: c.conf.mtu, peerMAC: c.conf.mac)
        } catch let e as NetlinkError where e.isAlreadyExists {
            if try c.container.link(named: ifName) != nil {
                throw CNIError(code: .internal, msg: "\(c.plugin) ADD: container interface \"\(ifName)\" already exists in \(c.netnsPath)")
            }
            throw e
        }
        undo.register("delete veth \(hostName)") { [host = c.host] in try host.deleteLink(named: hostName) }
        return (try c.host.requireLink(named: hostName), try c.container.requireLink(named: ifName))
    }

    /// macspoofchk: the veth's elements in place before its host end comes up, so no frame
    /// with another source MAC ever reaches the bridge from it.
    private func addSpoofCheck(_ c: AddContext, hostVeth: String, ctrLink: Link, _ undo: inout Rollback) throws {
        guard let mac = ctrLink.mac else {
            throw CNIError(code: .internal, msg: "\(c.plugin) ADD: macspoofchk: container interface \(ctrLink.name) has no MAC address")
        }
        let nft = try c.nft()
        try SpoofCheck.add(nft, hostVeth: hostVeth, mac: mac, owner: c.owner)
        undo.register("delete spoofchk elements") { [owner = c.owner] in try SpoofCheck.removeOwned(by: owner, nft) }
    }

    /// The host end on the bridge: port options, VLANs, up.
    private func plugIntoBridge(_ c: AddContext, _ port: Int32, bridge: Int32) throws {
        try c.host.setMaster(port, master: bridge)
        if c.conf.hairpinMode { try c.host.setHairpin(port, true) }
        if c.conf.portIsolation { try c.host.setIsolated(port, true) }
        if c.conf.wantsVLAN { try configureVLANs(c.host, port, c.conf) }
        try c.host.setUp(port)
    }

    /// Addresses, routes and DNS from the IPAM plugin, completed for gateway mode: a gateway
    /// for every address (the subnet's first address when IPAM gave none) and, with
    /// `isDefaultGateway`, a default route per family through it.
    private func addresses(_ c: AddContext, _ undo: inout Rollback) throws -> CNIResult {
        var result = CNIResult(cniVersion: c.request.cniVersion)
        if c.conf.hasIPAM {
            let ipam = try IPAMDelegate.allocate(c.request, &undo, plugin: c.plugin)
            result.ips = ipam.ips
            result.routes = ipam.routes
            result.dns = ipam.dns
        }
        for i in result.ips.indices {
            result.ips[i].interface = Self.containerInterfaceIndex
            if c.conf.isGateway, result.ips[i].gateway == nil {
                result.ips[i].gateway = result.ips[i].address.networkAddress.next
            }
        }
        if c.conf.isDefaultGateway {
            for ip in result.ips {
                guard let gw = ip.gateway else { continue }
                let def = CIDR.defaultRoute(ip.address.family)
                if !result.routes.contains(where: { $0.dst == def }) { result.routes.append(.init(dst: def, gw: gw)) }
            }
        }
        return result
    }

    /// The container side: addresses, up, routes, the gateway's MAC.
    private func configureContainer(_ c: AddContext, _ index: Int32, _ result: CNIResult, bridgeMAC: MACAddress?) throws {
        try ContainerInterface.configure(index, with: result, on: c.container, noDAD: !c.conf.enableDAD)
        guard c.conf.isGateway, let bridgeMAC else { return }
        // Known at once, so the first packet to the gateway is not held for ARP/NDP.
        for ip in result.ips {
            guard let gw = ip.gateway else { continue }
            let n = Neighbour(index: index, family: gw.isV4 ? .v4 : .v6, ip: gw, mac: bridgeMAC, state: Neighbour.reachable)
            // Only saves the first ARP/NDP exchange: without the entry the kernel resolves the gateway itself.
            try? c.container.addNeighbour(n, mode: .replace)
        }
    }

    /// The gateways on the bridge (one per address that has one). A gateway address this ADD
    /// put there is taken off again if the ADD fails while `port` (its veth) is the bridge's
    /// only port; once another container is on the bridge, the address is theirs too.
    private func addGatewayAddresses(_ c: AddContext, _ bridge: Int32, port: Int32, _ ips: [CNIResult.IPConfig],
                                     _ undo: inout Rollback) throws {
        for ip in ips {
            guard let gw = ip.gateway, let gwCIDR = CIDR(address: gw, prefixLength: ip.address.prefixLength) else { continue }
            guard try ensureGatewayAddress(c.host, bridge, gwCIDR, c.conf, plugin: c.plugin) else { continue }
            undo.register("delete gateway \(gwCIDR) added by this ADD") { [host = c.host] in
                guard try !host.links().contains(where: { $0.masterIndex == bridge && $0.index != port }) else { return }
                try host.deleteAddress(bridge, gwCIDR)
            }
        }
    }

    /// The bridge, created (up, with a fixed MAC so neighbours learned for it stay valid)
    /// when missing. Another ADD creating it at the same moment is fine. `plugin` names the
    /// verb in messages.
    public func ensureBridge(_ host: RouteSocket, _ conf: BridgeConfig, plugin: String = "bridge") throws -> Link {
        if let l = try host.link(named: conf.bridge) {
            guard l.kind == "bridge" else {
                throw CNIError(code: .internal, msg: "\(plugin) ADD: \(conf.bridge) already exists but is not a bridge (kind \(l.kind ?? "none"))")
            }
            return try finishBridge(host, l, conf)
        }
        do {
            try host.addBridge(name: conf.bridge, mtu: conf.mtu, mac: Self.randomMAC(), vlanFiltering: conf.wantsVLAN)
        } catch let e as NetlinkError where e.isAlreadyExists {
        } catch let e as NetlinkError where conf.wantsVLAN && (e.errno == .notSupported || e.errno == .invalidArgument) {
            throw CNIError(e, context: "\(plugin) ADD: the kernel refused a VLAN-filtering bridge \(conf.bridge) "
                + "(vlan/vlanTrunk need bridge VLAN filtering)")
        }
        return try finishBridge(host, host.requireLink(named: conf.bridge), conf)
    }

    private func finishBridge(_ host: RouteSocket, _ l: Link, _ conf: BridgeConfig) throws -> Link {
        if !l.isUp { try host.setUp(l.index) }
        if conf.promiscMode && !l.isPromiscuous { try host.setPromiscuous(l.index, true) }
        return l
    }

    func configureVLANs(_ host: RouteSocket, _ index: Int32, _ conf: BridgeConfig) throws {
        do {
            if !conf.preserveDefaultVlan {
                do { try host.deleteBridgeVLAN(index, vid: Self.defaultVLAN) } catch let e as NetlinkError where e.isNotFound {}
            }
            if conf.vlan != 0 { try host.addBridgeVLAN(index, vid: conf.vlan, pvid: true, untagged: true) }
            for vid in conf.vlanTrunk { try host.addBridgeVLAN(index, vid: vid) }
        } catch let e as NetlinkError {
            throw CNIError(e, context: "bridge ADD: the kernel refused VLAN configuration on \(conf.bridge)")
        }
    }

    /// Puts `gw` on the bridge; true when this call added it. Already there (another ADD) is
    /// success. A different address of the same subnet on the bridge is an error, or replaced
    /// with `forceAddress`.
    @discardableResult
    func ensureGatewayAddress(_ host: RouteSocket, _ bridge: Int32, _ gw: CIDR, _ conf: BridgeConfig,
                              plugin: String) throws -> Bool {
        do {
            try host.addAddress(bridge, gw, broadcast: gw.broadcastAddress, noDAD: true)
        } catch let e as NetlinkError where e.isAlreadyExists {
            return false
        }
        // Newly added: look for an older address of the same subnet (only on this path).
        let others = try host.addresses(index: bridge, family: gw.family).filter {
            $0.address.address != gw.address && gw.network.contains($0.address.address) && !$0.address.address.isLinkLocal
        }
        guard !others.isEmpty else { return true }
        if !conf.forceAddress {
            // Best-effort undo of the address just added; the conflict is the error to report.
            try? host.deleteAddress(bridge, gw)
            throw CNIError(code: .internal,
                           msg: "\(plugin) ADD: \(conf.bridge) already has an IP address \(others[0].address) in the subnet of gateway \(gw) (set forceAddress to replace it)")
        }
        for o in others {
            do { try host.deleteAddress(bridge, o.address) } catch let e as NetlinkError where e.isNotFound {}
        }
        // Deleting a primary address takes its secondaries (ours) with it: put ours back.
        do {
            try host.addAddress(bridge, gw, broadcast: gw.broadcastAddress, noDAD: true)
        } catch let e as NetlinkError where e.isAlreadyExists {}
        return true
    }

    func enableForwarding(_ ips: [CNIResult.IPConfig]) throws {
        if ips.contains(where: { $0.address.family == .v4 }) { try setIfNeeded("net/ipv4/ip_forward") }
        if ips.contains(where: { $0.address.family == .v6 }) { try setIfNeeded("net/ipv6/conf/all/forwarding") }
    }

    private func setIfNeeded(_ key: String) throws {
        // Reading only saves a write: when it fails, the write below is tried (and reports).
        if (try? Sysctl.get(key)) == "1" { return }
        try Sysctl.set(key, "1")
    }

    static func hostVethName() -> String {
        "veth" + String(format8Hex: UInt32.random(in: 0...UInt32.max))
    }

    static func randomMAC() -> MACAddress {
        var b = (0..<6).map { _ in UInt8.random(in: 0...255) }
        b[0] = (b[0] & ~Self.macMulticastBit) | Self.macLocallyAdministeredBit  // unicast, locally administered
        return MACAddress(bytes: b)!
    }

    /// The container interface's index in the result's `interfaces` (bridge, host veth, container).
    public static let containerInterfaceIndex = 2
    /// The VLAN every bridge port starts in (removed with `preserveDefaultVlan: false`).
    static let defaultVLAN: UInt16 = 1
    /// The first octet's I/G bit (multicast) and U/L bit (locally administered).
    static let macMulticastBit: UInt8 = 0x01
    static let macLocallyAdministeredBit: UInt8 = 0x02
}

/// What one ADD works with: the request and its config, the container's netns, one rtnetlink
/// socket in the host netns and one opened once inside the container's (a single namespace
/// switch), and one nftables socket opened on first use.
final class AddContext {
    let request: CNIRequest
    let conf: BridgeConfig
    let netnsPath: String
    let namespace: NetworkNamespace
    let host: RouteSocket
    let container: RouteSocket
    let owner: ElementOwner
    /// The plugin, as messages name it.
    let plugin: String
    private var nftSocket: NFTSocket?

    init(_ r: CNIRequest, _ conf: BridgeConfig, netnsPath: String, plugin: String) throws {
        request = r
        self.conf = conf
        self.plugin = plugin
        self.netnsPath = netnsPath
        namespace = try NetworkNamespace.open(path: netnsPath)
        host = try RouteSocket()
        container = try RouteSocket(namespace: namespace)
        owner = ElementOwner(r)
    }

    func nft() throws -> NFTSocket {
        if let s = nftSocket { return s }
        let s = try NFTSocket()
        nftSocket = s
        return s
    }
}

extension String {
    init(format8Hex v: UInt32) {
        let h = String(v, radix: 16)
        self = String(repeating: "0", count: 8 - h.count) + h
    }
}

extension Bridge {
    /// What `bridge` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab bridge plugin: veth pairs on a Linux bridge, IPAM, gateway and ipMasq (nftables)" }
}
