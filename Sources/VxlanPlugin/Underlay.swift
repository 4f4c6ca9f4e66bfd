// The underlay of a vxlan network on this host: the interface its encapsulated frames leave
// by, the address family they travel in, this host's own addresses (a peer list may name
// them), and the MTU left for the overlay.

import CNI
import Netlink
import NetTypes
import PluginKit

struct Underlay {
    /// The interface: `underlayInterface`, the one holding `local`, or the default route's.
    var link: Link
    /// The VXLAN device's IFLA_VXLAN_LINK: set unless only `local` is configured (then the
    /// routing table picks the way to each peer).
    var bindIndex: Int32?
    var family: IPAddress.Family
    /// Every address of this host (any interface).
    var ownAddresses: Set<IPAddress>
    /// The MTU of the VXLAN device, the bridge and the veths.
    var overlayMTU: UInt32

    static let place = "the host netns"

    /// Finds the underlay for `conf` in the host netns. A missing interface, a `local` that is
    /// not this host's, or an `mtu` that does not fit is code 7 naming the field.
    static func resolve(_ conf: VxlanConfig, on host: RouteSocket) throws -> Underlay {
        let own = Set(try host.addresses().map(\.address.address))
        if let local = conf.local, !own.contains(local) {
            throw CNIError.invalidConfig("local: \(local) is not an address of this host")
        }
        let link: Link
        if conf.underlayInterface == nil, let local = conf.local {
            link = try holder(of: local, on: host)
        } else {
            link = try Master.find(conf.underlayInterface, on: host, place: place, field: "underlayInterface")
        }
        let family = conf.local?.family ?? .v4
        let overhead = VxlanConfig.overhead(family)
        guard link.mtu > overhead else {
            throw CNIError.invalidConfig("underlayInterface: \(link.name) has MTU \(link.mtu), too small to carry VXLAN")
        }
        let room = link.mtu - overhead
        if let m = conf.mtu, m > room {
            throw CNIError.invalidConfig("mtu: \(m) is above \(room), the MTU of \(link.name) (\(link.mtu)) minus \(overhead) bytes of VXLAN encapsulation")
        }
        let bind = conf.underlayInterface != nil || conf.local == nil ? link.index : nil
        return Underlay(link: link, bindIndex: bind, family: family, ownAddresses: own, overlayMTU: conf.mtu ?? room)
    }

    /// The interface holding `address` (known to be this host's).
    private static func holder(of address: IPAddress, on host: RouteSocket) throws -> Link {
        let entry = try host.addresses(family: address.family).first { $0.address.address == address }
        guard let index = entry?.index, let link = try host.link(index: index) else {
            throw CNIError.invalidConfig("local: \(address) is not an address of this host")
        }
        return link
    }

    /// The peers to flood to: `peers` without this host's own addresses.
    func floodList(_ peers: [IPAddress]) -> Set<IPAddress> {
        Set(peers).subtracting(ownAddresses)
    }
}
