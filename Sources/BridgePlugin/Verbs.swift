// DEL, CHECK, STATUS and GC of the bridge plugin.

import CNI
import NFTables
import NetTypes
import Netlink
import PluginKit
import SystemKit
#if canImport(Glibc)
import Glibc
#endif

extension Bridge {
    /// DEL: IPAM released, masquerade and macspoofchk elements found by owner and removed
    /// (also when the netns is gone), the veth deleted. Nothing left to undo is success. The bridge stays.
    public func del(_ r: CNIRequest) throws {
        let conf = try BridgeConfig(r)
        // Three independent steps, run at once: the kernel's waits (netdev unregister, nft
        // commit) overlap instead of adding up.
        var steps: [@Sendable () throws -> Void] = []
        if !netnsIsGone(r.netns), let netns = r.netns {
            let ifName = r.ifName
            steps.append {
                do {
                    let ctr = try RouteSocket(namespace: netns)
                    if let l = try ctr.link(named: ifName) {
                        do { try ctr.deleteLink(l.index) } catch let e as NetlinkError where e.isNotFound {}
                    }
                } catch let e as NetlinkError where e.isNotFound && e.operation.hasSuffix("netns") {
                } catch {
                    throw CNIError(code: .internal, msg: "delete \(ifName) in \(netns): \(error)")
                }
            }
        }
        if conf.ipMasq {
            let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
            steps.append {
                do { try Masquerade.removeOwned(by: owner, NFTSocket()) } catch {
                    throw CNIError(code: .internal, msg: "remove masquerade elements: \(error)")
                }
            }
        }
        if conf.macSpoofCheck {
            let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
            steps.append {
                do { try SpoofCheck.removeOwned(by: owner, NFTSocket()) } catch {
                    throw CNIError(code: .internal, msg: "remove macspoofchk elements: \(error)")
                }
            }
        }
        if conf.hasIPAM {
            steps.append {
                try IPAM.del(r)
            }
        }
        let failures = Threads.runConcurrently(steps)
        if failures.count == 1 { throw (failures[0] as? CNIError) ?? CNIError.wrapping(failures[0]) }
        if !failures.isEmpty {
            throw CNIError(code: .internal, msg: "bridge DEL: " + failures.map { ($0 as? CNIError)?.msg ?? "\($0)" }.joined(separator: "; "))
        }
    }

    /// CHECK: the container interface, its addresses and routes, the host veth on the bridge,
    /// the macspoofchk and masquerade elements are all as `prevResult` says.
    public func check(_ r: CNIRequest) throws {
        let conf = try BridgeConfig(r)
        let prev = try r.requirePrevResult()
        let netns = try r.requireNetns()
        if conf.hasIPAM { try IPAM.check(r) }
        try netlinkStep("bridge CHECK") {
            let host = try RouteSocket()
            let ctr = try RouteSocket(namespace: netns)
            guard let ctrIdx = prev.interfaces.firstIndex(where: { $0.name == r.ifName && $0.sandbox != nil }) else {
                throw CNIError(code: .internal, msg: "bridge CHECK: prevResult has no interface \(r.ifName) in a sandbox")
            }
            let want = prev.interfaces[ctrIdx]
            guard let link = try ctr.link(named: r.ifName) else {
                throw CNIError(code: .internal, msg: "bridge CHECK: container interface \(r.ifName) not found in \(netns)")
            }
            guard link.kind == "veth" else {
                throw CNIError(code: .internal, msg: "bridge CHECK: \(r.ifName) in \(netns) is \(link.kind ?? "not a veth"), expected veth")
            }
            if let m = want.macAddress, link.mac != m {
                throw CNIError(code: .internal, msg: "bridge CHECK: \(r.ifName) has MAC \(link.mac.map { "\($0)" } ?? "none"), expected \(m)")
            }
            guard let br = try host.link(named: conf.bridge), br.kind == "bridge" else {
                throw CNIError(code: .internal, msg: "bridge CHECK: bridge \(conf.bridge) not found")
            }
            // The host end: the veth peer, on the bridge.
            if let hostIf = prev.interfaces.first(where: { $0.sandbox == nil && $0.name != conf.bridge }) {
                guard let h = try host.link(named: hostIf.name) else {
                    throw CNIError(code: .internal, msg: "bridge CHECK: host veth \(hostIf.name) not found")
                }
                guard h.masterIndex == br.index else {
                    throw CNIError(code: .internal, msg: "bridge CHECK: host veth \(hostIf.name) is not attached to \(conf.bridge)")
                }
            }
            if conf.macSpoofCheck {
                let hostVeth = prev.interfaces.first { $0.sandbox == nil && $0.name != conf.bridge }?.name
                try checkSpoofElements(conf, r, hostVeth: hostVeth, mac: link.mac)
            }
            if !conf.disableContainerInterface {
                let have = Set(try ctr.addresses(index: link.index).map(\.address))
                for ip in prev.ips where ip.interface == nil || ip.interface == ctrIdx {
                    guard have.contains(ip.address) else {
                        throw CNIError(code: .internal, msg: "bridge CHECK: address \(ip.address) missing on \(r.ifName)")
                    }
                }
                let routes = try ctr.routes()
                for rt in prev.routes {
                    let gw = rt.gw ?? prev.ips.first { $0.address.family == rt.dst.family }?.gateway
                    guard routes.contains(where: { $0.destination == rt.dst && (gw == nil || $0.gateway == gw) }) else {
                        throw CNIError(code: .internal, msg: "bridge CHECK: route \(rt.dst)\(gw.map { " via \($0)" } ?? "") missing in \(netns)")
                    }
                }
            }
        }
        if conf.ipMasq {
            let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
            let nft = try NFTSocket()
            let chains = Set(((try? nft.chains(table: Masquerade.table)) ?? []).map(\.name))
            for c in [Masquerade.postrouting.name, Masquerade.chain(bridge: conf.bridge).name] where !chains.contains(c) {
                throw CNIError(code: .internal, msg: "bridge CHECK: nftables chain \(Masquerade.table) \(c) missing")
            }
            let owned = try Masquerade.owned.find(nft) { owner.owns($0) }
            for ip in prev.ips {
                let found = owned.contains { (_, e) in e.key == [.address(ip.address.address)] }
                if !found {
                    throw CNIError(code: .internal, msg: "bridge CHECK: masquerade element for \(ip.address.address) (owner \(owner)) missing")
                }
            }
        }
    }

    /// STATUS: ready when the IPAM plugin is; a missing IPAM binary is code 50.
    public func status(_ r: CNIRequest) throws {
        let conf = try BridgeConfig(r)
        guard conf.hasIPAM, let t = r.config.ipamType else { return }
        let result: Result<Void, any Error> = Result { try IPAM.status(r) }
        guard case .failure(let err) = result else { return }
        let e = (err as? CNIError) ?? CNIError.wrapping(err)
        if e.code == .notAvailable || e.code == .notAvailableLimitedConnectivity { throw e }
        throw CNIError(code: .notAvailable, msg: "bridge STATUS: IPAM plugin \(t) not available: \(e.msg)", details: e.details)
    }

    /// GC: IPAM's GC, then masquerade and macspoofchk elements of this network whose owner
    /// is not a valid attachment.
    public func gc(_ r: CNIRequest) throws {
        let conf = try BridgeConfig(r)
        var failures: [String] = []
        if conf.hasIPAM {
            do { try IPAM.gc(r) } catch { failures.append("IPAM GC: \(error)") }
        }
        let valid = Set(r.validAttachments.map { "\($0.containerID) \($0.ifname)" })
        let isStale = { (c: String?) -> Bool in
            guard ElementOwner.comment(c, belongsTo: conf.network), let p = ElementOwner.parse(c) else { return false }
            return !valid.contains("\(p.containerID) \(p.ifName)")
        }
        // Whatever `macspoofchk` says now: elements written while it was on are collected too.
        do {
            let sock = try NFTSocket()
            for (what, set) in [("masquerade", Masquerade.owned), ("macspoofchk", SpoofCheck.owned)] {
                do { try OwnedElements.remove(sock, set.find(sock, where: isStale)) } catch {
                    failures.append("\(what) GC: \(error)")
                }
            }
        } catch {
            failures.append("nftables GC: \(error)")
        }
        if !failures.isEmpty { throw CNIError(code: .internal, msg: "bridge GC: " + failures.joined(separator: "; ")) }
    }
}

extension Bridge {
    /// CHECK for macspoofchk: the chain and its rule exist, the host veth is under check and
    /// exactly the container's MAC is allowed on it, both elements owned by this attachment.
    func checkSpoofElements(_ conf: BridgeConfig, _ r: CNIRequest, hostVeth: String?, mac: MACAddress?) throws {
        let owner = ElementOwner(network: conf.network, containerID: r.containerID, ifName: r.ifName)
        let nft = try NFTSocket()
        guard try SpoofCheck.hasRule(nft) else {
            throw CNIError(code: .internal, msg: "bridge CHECK: nftables chain \(SpoofCheck.table) \(SpoofCheck.chain.name) or its rule missing")
        }
        let owned = try SpoofCheck.owned.find(nft) { owner.owns($0) }
        let ports = owned.filter { $0.0 == SpoofCheck.ports }.map(\.1.key)
        let allowed = owned.filter { $0.0 == SpoofCheck.allowed }.map(\.1.key)
        guard let veth = hostVeth ?? ports.first.flatMap({ if case .ifname(let n)? = $0.first { n } else { nil } }) else {
            throw CNIError(code: .internal, msg: "bridge CHECK: macspoofchk element for the host veth (owner \(owner)) missing")
        }
        guard ports.contains([.ifname(veth)]) else {
            throw CNIError(code: .internal, msg: "bridge CHECK: macspoofchk element \"\(veth)\" (owner \(owner)) missing in \(SpoofCheck.ports.name)")
        }
        guard let mac, allowed == [[.ifname(veth), .mac(mac)]] else {
            let have = allowed.map { $0.map(\.description).joined(separator: " . ") }.joined(separator: ", ")
            throw CNIError(code: .internal,
                           msg: "bridge CHECK: macspoofchk allows [\(have)] for owner \(owner), expected \"\(veth)\" . \(mac.map { "\($0)" } ?? "none")")
        }
    }
}
