// The bridge plugin: a veth pair from the container netns to a Linux bridge, addresses from
// an IPAM plugin, the gateway address on the bridge, and ipMasq as nftables elements.
//
// ADD works with two rtnetlink sockets: one in the host netns (the one the plugin runs in)
// and one opened once inside the container netns; the veth's container end is created
// directly there. Each change registers its undo, so a failed ADD leaves nothing behind.

import CNI
import NFTables
import NetTypes
import Netlink
import PluginKit
import SystemKit
#if canImport(Glibc)
import Glibc
#endif

public struct Bridge: CNIPlugin {
    public init() {}

    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try BridgeConfig(r)
        let netnsPath = try r.requireNetns()
        var undo = Rollback()
        do {
            let result = try attach(r, conf, netnsPath, &undo)
            undo.commit()
            return result
        } catch {
            undo.run()
            throw CNIError.wrapping(error, context: "bridge ADD")
        }
    }

    private func attach(_ r: CNIRequest, _ conf: BridgeConfig, _ netnsPath: String, _ undo: inout Rollback) throws -> CNIResult {
        let ns = try CNIError.mapping("bridge ADD") { try NetworkNamespace.open(path: netnsPath) }
        let host = try RouteSocket()
        let ctr = try RouteSocket(namespace: ns)
        // One nftables socket for the whole ADD, opened only when an option needs it.
        var nftSocket: NFTSocket?
        func nft() throws -> NFTSocket {
            if let s = nftSocket { return s }
            let s = try NFTSocket()
            nftSocket = s
            return s
        }

        // 1. The bridge.
        let br = try ensureBridge(host, conf)

        // 2. The veth pair, the container end created inside the container netns.
        let hostName = Self.hostVethName()
        do {
            try host.addVethPair(name: hostName, peerName: r.ifName, peerNamespace: ns, mtu: conf.mtu, peerMAC: conf.mac)
        } catch let e as NetlinkError where e.isAlreadyExists {
            if try ctr.link(named: r.ifName) != nil {
                throw CNIError(code: .internal, msg: "bridge ADD: container interface \"\(r.ifName)\" already exists in \(netnsPath)")
            }
            throw e
        }
        undo.register("delete veth \(hostName)") { try host.deleteLink(named: hostName) }
        let hostLink = try host.requireLink(named: hostName)
        let ctrLink = try ctr.requireLink(named: r.ifName)

        // 3. macspoofchk: the veth's elements in place before its host end comes up, so no
        //    frame with another source MAC ever reaches the bridge from it.
        if conf.macSpoofCheck {
            guard let mac = ctrLink.mac else {
                throw CNIError(code: .internal, msg: "bridge ADD: macspoofchk: container interface \(r.ifName) has no MAC address")
            }
            let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
            let nft = try nft()
            try SpoofCheck.add(nft, hostVeth: hostName, mac: mac, owner: owner)
            undo.register("delete spoofchk elements") { try SpoofCheck.removeOwned(by: owner, nft) }
        }

        // 4. The host end on the bridge: port options, VLANs, up.
        try host.setMaster(hostLink.index, master: br.index)
        if conf.hairpinMode { try host.setHairpin(hostLink.index, true) }
        if conf.portIsolation { try host.setIsolated(hostLink.index, true) }
        if conf.wantsVLAN { try configureVLANs(host, hostLink.index, conf) }
        try host.setUp(hostLink.index)

        // 5. Addresses from IPAM.
        var result = CNIResult(cniVersion: r.cniVersion)
        if conf.hasIPAM {
            let ipam = try IPAM.add(r)
            undo.register("IPAM DEL") { try IPAM.del(r) }
            guard !ipam.ips.isEmpty else { throw CNIError(code: .internal, msg: "bridge ADD: IPAM plugin returned no IP configuration") }
            result.ips = ipam.ips
            result.routes = ipam.routes
            result.dns = ipam.dns
        }
        // The `mtu` fields are written for 1.1.0 results only (older versions drop them).
        result.interfaces = [
            .init(name: br.name, mac: br.mac, mtu: Int(br.mtu)),
            .init(name: hostName, mac: hostLink.mac, mtu: Int(hostLink.mtu)),
            .init(name: r.ifName, mac: ctrLink.mac, mtu: Int(ctrLink.mtu), sandbox: netnsPath),
        ]
        for i in result.ips.indices {
            result.ips[i].interface = 2
            // Gateway mode needs a gateway: the first address of the subnet when IPAM gave none.
            if conf.isGateway, result.ips[i].gateway == nil {
                result.ips[i].gateway = result.ips[i].address.networkAddress.next
            }
        }
        if conf.isDefaultGateway {
            for ip in result.ips {
                guard let gw = ip.gateway else { continue }
                let def = CIDR.defaultRoute(ip.address.family)
                if !result.routes.contains(where: { $0.dst == def }) { result.routes.append(.init(dst: def, gw: gw)) }
            }
        }

        // 6. The gateway on the bridge, forwarding on.
        if conf.isGateway {
            for ip in result.ips {
                guard let gw = ip.gateway, let gwCIDR = CIDR(address: gw, prefixLength: ip.address.prefixLength) else { continue }
                try ensureGatewayAddress(host, br.index, gwCIDR, conf)
            }
            try enableForwarding(result.ips)
        }

        // 7. The container side: addresses, up, routes, the gateway's MAC.
        if !conf.disableContainerInterface {
            for ip in result.ips {
                try ctr.addAddress(ctrLink.index, ip.address,
                                   broadcast: ip.address.family == .v4 && ip.address.prefixLength < 31 ? ip.address.lastAddress : nil,
                                   noDAD: !conf.enableDAD)
            }
            try ctr.setUp(ctrLink.index)
            for route in result.routes {
                let gw = route.gw ?? result.ips.first { $0.address.family == route.dst.family }?.gateway
                let rt = Route(destination: route.dst, gateway: gw, outputIndex: ctrLink.index,
                               metric: route.priority.map { UInt32($0) })
                do { try ctr.addRoute(rt) } catch let e as NetlinkError where e.isAlreadyExists {}
            }
            if conf.isGateway, let brMAC = br.mac {
                // Known at once, so the first packet to the gateway is not held for ARP/NDP.
                for ip in result.ips {
                    guard let gw = ip.gateway else { continue }
                    let n = Neighbour(index: ctrLink.index, family: gw.isV4 ? .v4 : .v6, ip: gw, mac: brMAC, state: 0x02)
                    try? ctr.addNeighbour(n, mode: .replace)
                }
            }
        }

        // 8. Masquerade: one nftables batch (elements only once the bridge's chain exists).
        if conf.ipMasq, !result.ips.isEmpty {
            let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
            let nft = try nft()
            try Masquerade.add(nft, bridge: conf.bridge, addresses: result.ips.map(\.address.address), owner: owner)
            undo.register("delete masquerade elements") { try Masquerade.removeOwned(by: owner, nft) }
        }
        return result
    }

    /// The bridge, created (up, with a fixed MAC so neighbours learned for it stay valid)
    /// when missing. Another ADD creating it at the same moment is fine.
    func ensureBridge(_ host: RouteSocket, _ conf: BridgeConfig) throws -> Link {
        if let l = try host.link(named: conf.bridge) {
            guard l.kind == "bridge" else {
                throw CNIError(code: .internal, msg: "bridge ADD: \(conf.bridge) already exists but is not a bridge (kind \(l.kind ?? "none"))")
            }
            return try finishBridge(host, l, conf)
        }
        do {
            try host.addBridge(name: conf.bridge, mtu: conf.mtu, mac: Self.randomMAC(), vlanFiltering: conf.wantsVLAN)
        } catch let e as NetlinkError where e.isAlreadyExists {
        } catch let e as NetlinkError where conf.wantsVLAN && (e.errno == .notSupported || e.errno == .invalidArgument) {
            throw CNIError(code: .internal,
                           msg: "bridge ADD: the kernel refused a VLAN-filtering bridge \(conf.bridge) (vlan/vlanTrunk need bridge VLAN filtering): \(e.errno)",
                           details: e.message ?? "")
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
                do { try host.deleteBridgeVLAN(index, vid: 1) } catch let e as NetlinkError where e.isNotFound {}
            }
            if conf.vlan != 0 { try host.addBridgeVLAN(index, vid: conf.vlan, pvid: true, untagged: true) }
            for vid in conf.vlanTrunk { try host.addBridgeVLAN(index, vid: vid) }
        } catch let e as NetlinkError {
            throw CNIError(code: .internal, msg: "bridge ADD: the kernel refused VLAN configuration on \(conf.bridge): \(e.operation) \(e.object): \(e.errno)",
                           details: e.message ?? "")
        }
    }

    /// Puts `gw` on the bridge. Already there (another ADD) is success. A different address
    /// of the same subnet on the bridge is an error, or replaced with `forceAddress`.
    func ensureGatewayAddress(_ host: RouteSocket, _ bridge: Int32, _ gw: CIDR, _ conf: BridgeConfig) throws {
        do {
            try host.addAddress(bridge, gw, broadcast: gw.family == .v4 && gw.prefixLength < 31 ? gw.lastAddress : nil, noDAD: true)
        } catch let e as NetlinkError where e.isAlreadyExists {
            return
        }
        // Newly added: look for an older address of the same subnet (only on this path).
        let others = try host.addresses(index: bridge, family: gw.family).filter {
            $0.address.address != gw.address && gw.network.contains($0.address.address) && !$0.address.address.isLinkLocal
        }
        guard !others.isEmpty else { return }
        if !conf.forceAddress {
            try? host.deleteAddress(bridge, gw)
            throw CNIError(code: .internal,
                           msg: "bridge ADD: \(conf.bridge) already has an IP address \(others[0].address) in the subnet of gateway \(gw) (set forceAddress to replace it)")
        }
        for o in others {
            do { try host.deleteAddress(bridge, o.address) } catch let e as NetlinkError where e.isNotFound {}
        }
        // Deleting a primary address takes its secondaries (ours) with it: put ours back.
        do {
            try host.addAddress(bridge, gw, broadcast: gw.family == .v4 && gw.prefixLength < 31 ? gw.lastAddress : nil, noDAD: true)
        } catch let e as NetlinkError where e.isAlreadyExists {}
    }

    func enableForwarding(_ ips: [CNIResult.IPConfig]) throws {
        if ips.contains(where: { $0.address.family == .v4 }) { try setIfNeeded("net/ipv4/ip_forward") }
        if ips.contains(where: { $0.address.family == .v6 }) { try setIfNeeded("net/ipv6/conf/all/forwarding") }
    }

    private func setIfNeeded(_ key: String) throws {
        if (try? Sysctl.get(key)) == "1" { return }
        try Sysctl.set(key, "1")
    }

    static func hostVethName() -> String {
        "veth" + String(format8Hex: UInt32.random(in: 0...UInt32.max))
    }

    static func randomMAC() -> MACAddress {
        var b = (0..<6).map { _ in UInt8.random(in: 0...255) }
        b[0] = (b[0] & 0xfe) | 0x02        // unicast, locally administered
        return MACAddress(bytes: b)!
    }
}

extension String {
    init(format8Hex v: UInt32) {
        let h = String(v, radix: 16)
        self = String(repeating: "0", count: 8 - h.count) + h
    }
}
