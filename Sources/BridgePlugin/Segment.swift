// The bridge a container's host veth is plugged into, and what surrounds it. The bridge
// plugin's own segment is one bridge that stays; a plugin built on bridge's attachment (vxlan)
// supplies its own: the bridge with a VXLAN device enslaved, both removed with the network's
// last container, and a lock that keeps a concurrent DEL from removing the bridge while an
// ADD plugs a veth into it.

import CNI
import Netlink
import PluginKit

/// How ADD finds the bridge to plug a container into, and what it tells the bridge's owner.
public protocol BridgeSegment {
    /// The plugin, as messages name it ("bridge", "vxlan").
    var plugin: String { get }

    /// ADD's first step: the bridge, ready for one more port (created when missing, with what
    /// surrounds it). What it makes registers its undo with `undo`. A segment whose bridge can
    /// be removed may hold a lock from here until `portAdded`, or until its undo has run.
    func prepare(_ host: RouteSocket, _ conf: BridgeConfig, _ undo: inout Rollback) throws -> Link

    /// ADD: the container's host veth `port` is a port of the bridge now (and up).
    func portAdded(_ port: Link, owner: ElementOwner, on host: RouteSocket) throws

    /// ADD's last step: the container's result is complete (addresses, MAC). What it makes
    /// registers its undo with `undo`.
    func attached(_ result: CNIResult, owner: ElementOwner, _ undo: inout Rollback) throws
}

extension BridgeSegment {
    public func portAdded(_ port: Link, owner: ElementOwner, on host: RouteSocket) throws {}
    public func attached(_ result: CNIResult, owner: ElementOwner, _ undo: inout Rollback) throws {}
}

/// The bridge plugin's segment: the bridge `conf.bridge`, created when missing and kept once
/// a container is on it.
struct PlainBridge: BridgeSegment {
    var plugin: String { "bridge" }

    func prepare(_ host: RouteSocket, _ conf: BridgeConfig, _ undo: inout Rollback) throws -> Link {
        let bridgeExisted = try host.link(named: conf.bridge) != nil
        let br = try Bridge().ensureBridge(host, conf)
        if !bridgeExisted {
            // A failed first ADD (e.g. its IPAM plugin missing from CNI_PATH) leaves no bridge
            // behind; once another container's veth is on it, the bridge is theirs too.
            undo.register("delete bridge \(br.name) created by this ADD") { [index = br.index, name = br.name] in
                guard try !host.links().contains(where: { $0.masterIndex == index }) else { return }
                try host.deleteLink(named: name)
            }
        }
        return br
    }
}
