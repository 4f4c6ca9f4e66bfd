// DEL, CHECK, STATUS and GC of the bridge plugin.

import CNI
import NFTables
import NetTypes
import Netlink
import PluginKit
import SystemKit

extension Bridge {
    /// DEL: IPAM released, masquerade and macspoofchk elements found by owner and removed
    /// (also when the netns is gone), the veth deleted. Nothing left to undo is success. The
    /// bridge stays. Every step runs even when another fails; the failures are reported
    /// together, each with its own code (see `CNIError.combining`).
    public func del(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(BridgeConfig.self)
        // The steps are independent and run at once: the kernel's waits (netdev unregister,
        // nft commit) overlap instead of adding up.
        let failures = Threads.runConcurrently(delSteps(r, conf))
        if let e = CNIError.combining(failures, context: "bridge DEL") { throw e }
    }

    /// DEL's steps: the container's veth, its masquerade and macspoofchk elements, its lease.
    /// Independent of each other; a plugin built on bridge runs them, then its own.
    public func delSteps(_ r: CNIRequest, _ conf: BridgeConfig) -> [@Sendable () throws -> Void] {
        var steps: [@Sendable () throws -> Void] = []
        if !netnsIsGone(r.netns), let netns = r.netns {
            let ifName = r.ifName
            steps.append { try ContainerInterface.delete(ifName, in: netns) }
        }
        let owner = ElementOwner(r)
        if conf.ipMasq {
            steps.append {
                try CNIError.mapping("remove masquerade elements") { try Masquerade.removeOwned(by: owner, NFTSocket()) }
            }
        }
        if conf.macSpoofCheck {
            steps.append {
                try CNIError.mapping("remove macspoofchk elements") { try SpoofCheck.removeOwned(by: owner, NFTSocket()) }
            }
        }
        if conf.hasIPAM { steps.append { try IPAMDelegate.del(r) } }
        return steps
    }

    /// CHECK: the container interface, its addresses and routes, the host veth on the bridge,
    /// the macspoofchk and masquerade elements are all as `prevResult` says.
    public func check(_ r: CNIRequest) throws {
        try check(r, r.pluginConfig(BridgeConfig.self), plugin: "bridge")
    }

    /// CHECK with the configuration read already; `plugin` names the verb in messages.
    public func check(_ r: CNIRequest, _ conf: BridgeConfig, plugin: String) throws {
        let prev = try r.requirePrevResult()
        let netns = try r.requireNetns()
        if conf.hasIPAM { try IPAMDelegate.check(r) }
        let context = "\(plugin) CHECK"
        try CNIError.mapping(context) {
            let host = try RouteSocket()
            let ctr = try RouteSocket(namespace: netns)
            let (link, ctrIdx) = try ContainerInterface.expect(r.ifName, of: "veth", in: prev, on: ctr, netns: netns,
                                                               context: context)
            let hostVeth = try checkHostVeth(conf, prev, host, context: context)
            if conf.macSpoofCheck { try checkSpoofElements(conf, r, hostVeth: hostVeth, mac: link.mac, context: context) }
            if !conf.disableContainerInterface {
                try ContainerInterface.verifyAddressesAndRoutes(prev, resultIndex: ctrIdx, link: link, on: ctr,
                                                                netns: netns, context: context)
            }
            if conf.ipMasq { try checkMasquerade(conf, r, prev, context: context) }
        }
    }

    /// The bridge exists and the host veth of `prevResult` (when it names one) is on it.
    /// Returns the host veth's name.
    private func checkHostVeth(_ conf: BridgeConfig, _ prev: CNIResult, _ host: RouteSocket, context: String) throws -> String? {
        guard let br = try host.link(named: conf.bridge), br.kind == "bridge" else {
            throw CNIError(code: .internal, msg: "\(context): bridge \(conf.bridge) not found")
        }
        guard let hostIf = prev.interfaces.first(where: { $0.sandbox == nil && $0.name != conf.bridge }) else { return nil }
        guard let h = try host.link(named: hostIf.name) else {
            throw CNIError(code: .internal, msg: "\(context): host veth \(hostIf.name) not found")
        }
        guard h.masterIndex == br.index else {
            throw CNIError(code: .internal, msg: "\(context): host veth \(hostIf.name) is not attached to \(conf.bridge)")
        }
        return hostIf.name
    }

    /// The masquerade chains exist and every address of `prevResult` has its owned element.
    private func checkMasquerade(_ conf: BridgeConfig, _ r: CNIRequest, _ prev: CNIResult, context: String) throws {
        let owner = ElementOwner(r)
        let nft = try NFTSocket()
        let chains: [Chain]
        do { chains = try nft.chains(table: Masquerade.table) } catch let e as NFTError where e.isNotFound { chains = [] }
        let names = Set(chains.map(\.name))
        for c in [Masquerade.postrouting.name, Masquerade.chain(bridge: conf.bridge).name] where !names.contains(c) {
            throw CNIError(code: .internal, msg: "\(context): nftables chain \(Masquerade.table) \(c) missing")
        }
        let owned = try Masquerade.owned.find(nft) { owner.owns($0) }
        for ip in prev.ips where !owned.contains(where: { $0.1.key == [.address(ip.address.address)] }) {
            throw CNIError(code: .internal, msg: "\(context): masquerade element for \(ip.address.address) (owner \(owner)) missing")
        }
    }

    /// STATUS: ready when the IPAM plugin is; a missing IPAM binary is code 50.
    public func status(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(BridgeConfig.self)
        try IPAMDelegate.requireReady(r, plugin: "bridge")
    }

    /// GC: IPAM's GC, then masquerade and macspoofchk elements of this network whose owner
    /// is not a valid attachment. Every step runs; the failures are reported together.
    public func gc(_ r: CNIRequest) throws {
        try gc(r, r.pluginConfig(BridgeConfig.self), plugin: "bridge")
    }

    /// GC with the configuration read already; `plugin` names the verb in messages.
    public func gc(_ r: CNIRequest, _ conf: BridgeConfig, plugin: String) throws {
        var failures: [any Error] = []
        if conf.hasIPAM {
            do { try IPAMDelegate.gc(r) } catch { failures.append(error) }
        }
        let isStale = ElementOwner.isStale(network: conf.network, valid: r.validAttachments)
        // Whatever `macspoofchk` says now: elements written while it was on are collected too.
        do {
            let sock = try NFTSocket()
            for (what, set) in [("masquerade", Masquerade.owned), ("macspoofchk", SpoofCheck.owned)] {
                do {
                    try CNIError.mapping("\(what) GC") { try OwnedElements.remove(sock, set.find(sock, where: isStale)) }
                } catch {
                    failures.append(error)
                }
            }
        } catch {
            failures.append(CNIError.wrapping(error, context: "nftables GC"))
        }
        if let e = CNIError.combining(failures, context: "\(plugin) GC") { throw e }
    }
}

extension Bridge {
    /// CHECK for macspoofchk: the chain and its rule exist, the host veth is under check and
    /// exactly the container's MAC is allowed on it, both elements owned by this attachment.
    func checkSpoofElements(_ conf: BridgeConfig, _ r: CNIRequest, hostVeth: String?, mac: MACAddress?,
                            context: String) throws {
        let owner = ElementOwner(r)
        let nft = try NFTSocket()
        guard try SpoofCheck.hasRule(nft) else {
            throw CNIError(code: .internal, msg: "\(context): nftables chain \(SpoofCheck.table) \(SpoofCheck.chain.name) or its rule missing")
        }
        let owned = try SpoofCheck.owned.find(nft) { owner.owns($0) }
        let ports = owned.filter { $0.0 == SpoofCheck.ports }.map(\.1.key)
        let allowed = owned.filter { $0.0 == SpoofCheck.allowed }.map(\.1.key)
        guard let veth = hostVeth ?? ports.first.flatMap({ if case .ifname(let n)? = $0.first { n } else { nil } }) else {
            throw CNIError(code: .internal, msg: "\(context): macspoofchk element for the host veth (owner \(owner)) missing")
        }
        guard ports.contains([.ifname(veth)]) else {
            throw CNIError(code: .internal, msg: "\(context): macspoofchk element \"\(veth)\" (owner \(owner)) missing in \(SpoofCheck.ports.name)")
        }
        guard let mac, allowed == [[.ifname(veth), .mac(mac)]] else {
            let have = allowed.map { $0.map(\.description).joined(separator: " . ") }.joined(separator: ", ")
            throw CNIError(code: .internal,
                           msg: "\(context): macspoofchk allows [\(have)] for owner \(owner), expected \"\(veth)\" . \(mac.map { "\($0)" } ?? "none")")
        }
    }
}
