// The vxlan plugin: one L2 segment across hosts. On each host the network is a bridge with a
// VXLAN device enslaved (Segment.swift, Device.swift); containers attach to that bridge
// exactly as the bridge plugin attaches them — it is the bridge plugin's own code, run with
// this plugin's segment — and take their addresses from any IPAM plugin.

import BridgePlugin
import CNI
import Netlink
import NetTypes
import PluginKit
import SystemKit

public struct Vxlan: CNIPlugin {
    public init() {}

    /// ADD: the underlay found and the overlay MTU chosen first (the veths get it too), then
    /// the bridge plugin's ADD on this network's segment.
    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(VxlanConfig.self)
        let backends = try Backends.make(conf, for: .add)
        let (segment, bridgeConf) = try CNIError.mapping("vxlan ADD") { () throws -> (Segment, BridgeConfig) in
            let underlay = try Underlay.resolve(conf, on: RouteSocket())
            var bridgeConf = conf.bridge
            bridgeConf.mtu = underlay.overlayMTU
            return (Segment(conf, underlay, backends), bridgeConf)
        }
        return try Bridge().add(backends.slice.request(for: r), bridgeConf, segment: segment)
    }

    /// DEL: the bridge plugin's steps (veth, masquerade and macspoofchk elements, lease) at
    /// once; then the endpoint withdrawn, the host veth deleted if the kernel still has it,
    /// and the segment removed when it was the network's last container here. Nothing left
    /// to undo is success; every step runs, the failures are reported together.
    public func del(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(VxlanConfig.self)
        let backends = try Backends.make(conf, for: .del)
        var failures = Threads.runConcurrently(Bridge().delSteps(try backends.slice.request(for: r), conf.bridge))
        let owner = ElementOwner(r)
        do { try backends.publisher.withdraw(owner) } catch { failures.append(error) }
        do {
            try CNIError.mapping("remove the network's bridge \(conf.bridge.bridge)") { try Segment.detach(owner, conf) }
        } catch {
            failures.append(error)
        }
        if let e = CNIError.combining(failures, context: "vxlan DEL") { throw e }
    }

    /// CHECK: the bridge plugin's CHECK, then the VXLAN device (settings, on the bridge, up),
    /// a flood entry for every peer, and no other node holding the container's addresses.
    public func check(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(VxlanConfig.self)
        let backends = try Backends.make(conf, for: .check)
        try Bridge().check(backends.slice.request(for: r), conf.bridge, plugin: "vxlan")
        let prev = try r.requirePrevResult()
        let netns = try r.requireNetns()
        try CNIError.mapping("vxlan CHECK") {
            let host = try RouteSocket()
            let underlay = try Underlay.resolve(conf, on: host)
            try checkDevice(conf, underlay, peers: underlay.floodList(backends.peers.peers()), on: host)
            try checkDuplicates(r.ifName, prev, netns: netns)
        }
    }

    private func checkDevice(_ conf: VxlanConfig, _ underlay: Underlay, peers: Set<IPAddress>, on host: RouteSocket) throws {
        let spec = VxlanDevice.spec(conf, underlay)
        guard let found = try host.vxlanLink(named: spec.name) else {
            throw CNIError(code: .internal, msg: "vxlan CHECK: VXLAN device \(spec.name) not found")
        }
        if let difference = VxlanDevice.difference(found, spec) {
            throw CNIError(code: .internal, msg: "vxlan CHECK: \(spec.name) has \(difference)")
        }
        let bridge = try host.link(named: conf.bridge.bridge)
        guard let bridge, found.link.masterIndex == bridge.index else {
            throw CNIError(code: .internal, msg: "vxlan CHECK: \(spec.name) is not a port of bridge \(conf.bridge.bridge)")
        }
        guard found.link.isUp else { throw CNIError(code: .internal, msg: "vxlan CHECK: \(spec.name) is down") }
        let flooded = try VxlanDevice.floodList(found.link.index, on: host)
        if let missing = peers.subtracting(flooded).sorted().first {
            throw CNIError(code: .internal, msg: "vxlan CHECK: \(spec.name) floods no frames to peer VTEP \(missing) "
                + "(no FDB entry 00:00:00:00:00:00 dst \(missing))")
        }
    }

    /// Duplicate addresses: an ARP probe for each IPv4 address of the container (another
    /// host's container answering means two hosts allocate from overlapping ranges), and the
    /// kernel's verdict on IPv6 duplicate address detection.
    private func checkDuplicates(_ ifName: String, _ prev: CNIResult, netns: String) throws {
        let ctr = try RouteSocket(namespace: netns)
        let link = try ctr.requireLink(named: ifName)
        let mine = prev.ips.filter { $0.interface == nil || $0.interface == Bridge.containerInterfaceIndex }.map(\.address)
        var found: [String] = []
        if let mac = link.mac {
            found += try AddressConflict.probe(mine.map(\.address), interface: link.index, mac: mac, netns: netns).map(\.description)
        }
        let failed = try ctr.addresses(index: link.index, family: .v6).filter { $0.hasFailedDAD && mine.contains($0.address) }
        found += failed.map { "\($0.address.address) failed IPv6 duplicate address detection" }
        guard found.isEmpty else {
            throw CNIError(code: .internal, msg: "vxlan CHECK: duplicate address on the network: \(found.joined(separator: "; ")) "
                + "(hosts sharing a vxlan network need disjoint address ranges, e.g. their own rangeStart/rangeEnd)")
        }
    }

    /// STATUS: ready when the IPAM plugin is and the underlay is there (the interface, the
    /// `local` address); code 50 otherwise.
    public func status(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(VxlanConfig.self)
        _ = try Backends.make(conf, for: .status)
        try IPAMDelegate.requireReady(r, plugin: "vxlan")
        do {
            _ = try CNIError.mapping("vxlan STATUS") { try Underlay.resolve(conf, on: RouteSocket()) }
        } catch let e as CNIError where e.code == .invalidNetworkConfig {
            throw CNIError(code: .notAvailable, msg: "vxlan STATUS: \(e.msg)")
        }
    }

    /// GC: the bridge plugin's GC (leases, masquerade and macspoofchk elements), then the
    /// host veths of attachments that are no longer valid, and the segment when unused.
    public func gc(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(VxlanConfig.self)
        let backends = try Backends.make(conf, for: .gc)
        var failures: [any Error] = []
        do { try Bridge().gc(backends.slice.request(for: r), conf.bridge, plugin: "vxlan") } catch { failures.append(error) }
        do {
            try CNIError.mapping("remove stale veths of \(conf.bridge.bridge)") { try Segment.collect(conf, valid: r.validAttachments) }
        } catch {
            failures.append(error)
        }
        if let e = CNIError.combining(failures, context: "vxlan GC") { throw e }
    }
}
