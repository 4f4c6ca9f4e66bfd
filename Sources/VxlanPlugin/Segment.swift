// A vxlan network on one host: the bridge, the VXLAN device enslaved to it and its flood
// list, made by the network's first ADD and removed when its last container is gone (DEL,
// a failed ADD's undo, GC).
//
// One file lock per network and host netns (`<dataDir>/<bridge>.<netns inode>.lock`) is held
// from before the bridge is made ready until the container's veth is a port of it, and while
// DEL and GC decide that the bridge is unused and remove it. So concurrent ADDs on a fresh
// host create the segment once, and a DEL removing the bridge never races an ADD plugging a
// veth into it. The inode keeps simulated hosts (netns sharing one /run) apart.
//
// Each container's host veth carries its owner (`<network> <containerID> <ifname>`) as its
// interface alias, so DEL finds it also when the container's netns is gone and the kernel
// has not destroyed the pair yet, and GC finds the veths of attachments that are no longer
// valid.

import BridgePlugin
import CNI
import Netlink
import NetTypes
import PluginKit
import SystemKit

final class Segment: BridgeSegment {
    let conf: VxlanConfig
    let underlay: Underlay
    let backends: Backends
    /// The lock, from `prepare` until `portAdded` or the end of a failed ADD's undo.
    private var held: FileLock?

    var plugin: String { "vxlan" }

    init(_ conf: VxlanConfig, _ underlay: Underlay, _ backends: Backends) {
        self.conf = conf
        self.underlay = underlay
        self.backends = backends
    }

    // MARK: ADD

    func prepare(_ host: RouteSocket, _ bconf: BridgeConfig, _ undo: inout Rollback) throws -> Link {
        held = try Self.lock(conf)
        undo.register("remove \(bconf.bridge) if no container uses it") { [self] in
            defer { held = nil }
            let lock = try held ?? Self.lock(conf)
            try withExtendedLifetime(lock) { try Self.removeIfUnused(conf, on: host) }
        }
        let bridge = try Bridge().ensureBridge(host, bconf, plugin: plugin)
        let device = try VxlanDevice.ensure(conf, underlay, bridge: bridge, on: host)
        try VxlanDevice.syncFloodList(device.index, to: underlay.floodList(backends.peers.peers()), on: host)
        return bridge
    }

    func portAdded(_ port: Link, owner: ElementOwner, on host: RouteSocket) throws {
        try host.setAlias(port.index, owner.comment)
        held = nil
    }

    func attached(_ result: CNIResult, owner: ElementOwner, _ undo: inout Rollback) throws {
        guard let mac = result.interfaces.first(where: { $0.sandbox != nil })?.macAddress else { return }
        let endpoint = Endpoint(owner: owner, addresses: result.ips.map(\.address.address), mac: mac)
        try backends.publisher.publish(endpoint)
        undo.register("withdraw the endpoint of \(owner)") { [publisher = backends.publisher] in try publisher.withdraw(owner) }
    }

    // MARK: DEL and GC

    /// DEL's part, after the container's own steps: its host veth deleted if it is still
    /// there (found by its alias), then the segment removed if no container is left.
    static func detach(_ owner: ElementOwner, _ conf: VxlanConfig) throws {
        try removeVeths(conf) { $0 == owner.comment }
    }

    /// GC's part: the host veths of this network whose attachment is not in `valid`, then the
    /// segment if no container is left.
    static func collect(_ conf: VxlanConfig, valid: [Attachment]) throws {
        let isStale = ElementOwner.isStale(network: conf.network, valid: valid)
        try removeVeths(conf, where: isStale)
    }

    /// Under the lock: deletes the veth ports of the bridge whose alias satisfies `match`,
    /// then the segment when it is unused.
    private static func removeVeths(_ conf: VxlanConfig, where match: (String?) -> Bool) throws {
        let host = try RouteSocket()
        // Without the bridge there is nothing of this network to remove (and no lock to make).
        guard try host.link(named: conf.bridge.bridge) != nil else { return }
        let lock = try Self.lock(conf)
        defer { lock.unlock() }
        guard let bridge = try host.link(named: conf.bridge.bridge), bridge.kind == "bridge" else { return }
        for port in try host.links() where port.masterIndex == bridge.index && port.kind == "veth" && match(port.alias) {
            do { try host.deleteLink(port.index) } catch let e as NetlinkError where e.isNotFound {}
        }
        try removeIfUnused(conf, on: host)
    }

    /// Deletes the VXLAN device(s) and the bridge when no other port is on the bridge. The
    /// caller holds the lock.
    static func removeIfUnused(_ conf: VxlanConfig, on host: RouteSocket) throws {
        guard let bridge = try host.link(named: conf.bridge.bridge), bridge.kind == "bridge" else { return }
        let ports = try host.links().filter { $0.masterIndex == bridge.index }
        guard ports.allSatisfy({ $0.kind == "vxlan" }) else { return }
        for port in ports {
            do { try host.deleteLink(port.index) } catch let e as NetlinkError where e.isNotFound {}
        }
        do { try host.deleteLink(bridge.index) } catch let e as NetlinkError where e.isNotFound {}
    }

    /// True when a port other than a VXLAN device is on `bridge`.
    static func hasContainers(_ bridge: Link, on host: RouteSocket) throws -> Bool {
        try host.links().contains { $0.masterIndex == bridge.index && $0.kind != "vxlan" }
    }

    // MARK: the lock

    static func lockPath(_ conf: VxlanConfig) throws -> String {
        let inode = try NetworkNamespace.current.inode
        return "\(conf.dataDir)/\(conf.bridge.bridge).\(inode).lock"
    }

    static func lock(_ conf: VxlanConfig) throws -> FileLock {
        try Files.makeDirectories(conf.dataDir)
        return try FileLock(path: lockPath(conf))
    }
}
