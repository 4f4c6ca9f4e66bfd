// The VXLAN device of a network on this host, enslaved to the network's bridge, and its
// flood list: one all-zero FDB entry per peer VTEP (`bridge fdb append 00:00:00:00:00:00
// dev nlvxN dst PEER`). The kernel sends every broadcast, multicast and unknown unicast frame
// to each destination of that entry (head-end replication), so ARP, DHCP and multicast cross
// hosts without multicast on the underlay.

import CNI
import Netlink
import NetTypes
import SystemKit

enum VxlanDevice {
    /// The device as `conf` and `underlay` say, a port of `bridge`, up. A device of that name
    /// with other VXLAN settings is re-created while no container is on the bridge, and
    /// refused otherwise (settings change once the network's last container on this host is
    /// gone).
    static func ensure(_ conf: VxlanConfig, _ underlay: Underlay, bridge: Link, on host: RouteSocket) throws -> Link {
        let spec = spec(conf, underlay)
        var link: Link
        if let found = try host.vxlanLink(named: spec.name) {
            if let difference = difference(found, spec) {
                guard found.link.masterIndex == nil || found.link.masterIndex == bridge.index,
                      try !Segment.hasContainers(bridge, on: host) else {
                    throw CNIError(code: .internal, msg: "vxlan ADD: \(spec.name) exists with \(difference) while containers use it; "
                        + "a network's VXLAN settings change once its last container on this host is gone")
                }
                try host.deleteLink(found.link.index)
                link = try create(spec, on: host)
            } else {
                link = found.link
            }
        } else {
            link = try create(spec, on: host)
        }
        if link.masterIndex != bridge.index { try host.setMaster(link.index, master: bridge.index) }
        if link.mtu != underlay.overlayMTU { try host.setMTU(link.index, underlay.overlayMTU) }
        if !link.isUp { try host.setUp(link.index) }
        return link
    }

    static func spec(_ conf: VxlanConfig, _ underlay: Underlay) -> VXLANSpec {
        VXLANSpec(name: conf.deviceName ?? "", vni: conf.vni ?? 0, local: conf.local, underlayIndex: underlay.bindIndex,
                  port: conf.port, learning: conf.learning, mtu: underlay.overlayMTU)
    }

    private static func create(_ spec: VXLANSpec, on host: RouteSocket) throws -> Link {
        do {
            try host.addVXLAN(spec)
        } catch let e as NetlinkError where e.isAlreadyExists {
            // Not the name (looked up before, under the lock): another device has this VNI and port.
            let other = try host.links().first { $0.kind == "vxlan" && $0.name != spec.name }
            throw CNIError(e, context: "vxlan ADD: VNI \(spec.vni) on port \(spec.port) is taken by another VXLAN device"
                + (other.map { " (perhaps \($0.name))" } ?? ""))
        }
        return try host.requireLink(named: spec.name)
    }

    /// What differs between an existing device and `spec`, or nil when it matches.
    static func difference(_ found: (link: Link, vxlan: VXLANAttributes?), _ spec: VXLANSpec) -> String? {
        guard let a = found.vxlan else { return "kind \(found.link.kind ?? "none") instead of vxlan" }
        if a.vni != spec.vni { return "VNI \(a.vni) (configured \(spec.vni))" }
        if (a.port ?? VxlanConfig.defaultPort) != spec.port { return "port \(a.port.map { "\($0)" } ?? "none") (configured \(spec.port))" }
        if a.local != spec.local { return "local \(a.local.map { "\($0)" } ?? "none") (configured \(spec.local.map { "\($0)" } ?? "none"))" }
        if a.underlayIndex != spec.underlayIndex {
            return "underlay ifindex \(a.underlayIndex.map { "\($0)" } ?? "none") (configured \(spec.underlayIndex.map { "\($0)" } ?? "none"))"
        }
        if a.learning != spec.learning { return "learning \(a.learning) (configured \(spec.learning))" }
        return nil
    }

    // MARK: the flood list

    /// The destinations of the device's all-zero FDB entry.
    static func floodList(_ device: Int32, on host: RouteSocket) throws -> Set<IPAddress> {
        Set(try host.neighbours(family: .bridge, index: device).filter { $0.mac?.isZero == true }.compactMap(\.ip))
    }

    /// Makes the flood list exactly `peers`: appends the missing destinations, deletes the
    /// ones no longer listed, leaves the rest untouched.
    static func syncFloodList(_ device: Int32, to peers: Set<IPAddress>, on host: RouteSocket) throws {
        let have = try floodList(device, on: host)
        for peer in peers.subtracting(have).sorted() {
            try host.addNeighbour(.fdb(index: device, mac: .zero, dst: peer), mode: .append)
        }
        for gone in have.subtracting(peers).sorted() {
            do {
                try host.deleteNeighbour(.fdb(index: device, mac: .zero, dst: gone))
            } catch let e as NetlinkError where e.isNotFound {}
        }
    }
}
