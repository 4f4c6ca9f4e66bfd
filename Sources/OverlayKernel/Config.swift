// What the kernel side of the overlay is told: one VTEP's configuration (flannel's vxlan
// backend settings plus this host's lease) and the peers it must reach.

import NetTypes
import SystemKit

/// One VXLAN tunnel endpoint of a flannel-style L3 overlay: the device `flannel.<VNI>` (IPv4
/// overlay) or `flannel-v6.<VNI>` (IPv6 overlay) in one network namespace. A dual-stack host
/// has two, one per family, each with the peers of its family.
public struct VTEPConfig: Sendable, Hashable {
    /// The VXLAN network identifier (flannel's `Backend.VNI`).
    public var vni: UInt32
    /// UDP destination port (flannel's `Backend.Port`; 0 there means this default).
    public var port: UInt16
    /// The underlay interface's name (flannel's `--iface`).
    public var underlay: String
    /// This host's address on the underlay, the source of encapsulated packets (the lease's
    /// `PublicIP`, or `PublicIPv6` for an IPv6 underlay).
    public var publicIP: IPAddress
    /// This host's leased subnet: the device carries its network address as /32 (/128).
    public var subnet: CIDR
    /// The cluster network the subnets are leased from (flannel's `Network`/`IPv6Network`).
    /// Routes and neighbour entries inside it are the ones reconcile manages.
    public var network: CIDR
    /// The device's MAC, stable across restarts and re-creation (the daemon derives it).
    public var mac: MACAddress
    /// The device MTU; nil: the underlay's MTU minus the encapsulation overhead.
    public var mtu: UInt32?
    /// VXLAN source-address learning; flannel's default is off.
    public var learning: Bool
    /// The VXLAN Group-Based Policy extension.
    public var gbp: Bool
    /// A peer whose public IP lies on a subnet directly connected to the underlay device is
    /// reached by a plain route via that IP, without encapsulation (flannel's DirectRouting).
    public var directRouting: Bool
    /// The device name, flannel's unless given.
    public var name: String

    /// The Linux VXLAN default port, and flannel's.
    public static let defaultPort: UInt16 = 8472
    /// The largest 24-bit VXLAN network identifier.
    public static let maxVNI: UInt32 = (1 << 24) - 1
    /// The metric the kernel gives an IPv6 route added without one (IP6_RT_PRIO_USER); IPv4
    /// routes keep 0.
    static let ipv6DefaultMetric: UInt32 = 1024
    /// IFNAMSIZ minus the terminating NUL.
    static let maxNameLength = 15

    public init(vni: UInt32 = 1, port: UInt16 = VTEPConfig.defaultPort, underlay: String, publicIP: IPAddress,
                subnet: CIDR, network: CIDR, mac: MACAddress, mtu: UInt32? = nil, learning: Bool = false,
                gbp: Bool = false, directRouting: Bool = false, name: String? = nil) {
        self.vni = vni; self.port = port; self.underlay = underlay; self.publicIP = publicIP
        self.subnet = subnet.network; self.network = network.network; self.mac = mac; self.mtu = mtu
        self.learning = learning; self.gbp = gbp; self.directRouting = directRouting
        self.name = name ?? Self.flannelName(vni: vni, family: subnet.family)
    }

    /// The overlay's address family (of the subnets, not of the underlay).
    public var family: IPAddress.Family { subnet.family }

    /// The address the device carries: the subnet's network address as a host prefix.
    public var deviceAddress: CIDR {
        CIDR(address: subnet.networkAddress, prefixLength: family.bitWidth)!
    }

    /// flannel's device names: `flannel.<VNI>` and `flannel-v6.<VNI>`.
    public static func flannelName(vni: UInt32, family: IPAddress.Family) -> String {
        family == .v4 ? "flannel.\(vni)" : "flannel-v6.\(vni)"
    }

    /// Bytes VXLAN adds around an inner frame: outer IP header (20, or 40 for IPv6), UDP (8),
    /// VXLAN (8) and the inner Ethernet header (14).
    public static func encapsulationOverhead(underlay: IPAddress.Family) -> UInt32 {
        let outerIP: UInt32 = underlay == .v4 ? 20 : 40
        return outerIP + 8 + 8 + 14
    }

    /// The device MTU for an underlay link MTU (flannel's `Backend.MTU` is such a link MTU).
    public static func deviceMTU(linkMTU: UInt32, underlay: IPAddress.Family) -> UInt32 {
        let overhead = encapsulationOverhead(underlay: underlay)
        return linkMTU > overhead ? linkMTU - overhead : 0
    }

    /// Refuses what the kernel would refuse later, or what makes no overlay, naming the field.
    public func validate() throws {
        func refuse(_ field: String, _ why: String) -> SystemError {
            SystemError(operation: "configure vtep", object: name, errno: .invalidArgument, message: "\(field): \(why)")
        }
        guard vni <= Self.maxVNI else { throw refuse("VNI", "\(vni) exceeds \(Self.maxVNI)") }
        guard port != 0 else { throw refuse("Port", "must not be 0") }
        guard !name.isEmpty, name.utf8.count <= Self.maxNameLength, !name.contains("/") else {
            throw refuse("name", "\"\(name)\" is not a valid interface name (at most \(Self.maxNameLength) bytes)")
        }
        guard !underlay.isEmpty else { throw refuse("underlay", "no interface named") }
        guard network.family == subnet.family, network.contains(subnet) else {
            throw refuse("subnet", "\(subnet) is not inside the network \(network)")
        }
        guard !publicIP.isUnspecified else { throw refuse("PublicIP", "\(publicIP) is not a usable address") }
        guard !mac.isMulticast, !mac.isZero else { throw refuse("VtepMAC", "\(mac) is not a unicast address") }
        if let mtu, mtu < Self.minimumMTU(family) { throw refuse("MTU", "\(mtu) is below \(Self.minimumMTU(family))") }
    }

    /// IPv4's minimum datagram size and IPv6's minimum link MTU.
    static func minimumMTU(_ family: IPAddress.Family) -> UInt32 { family == .v4 ? 68 : 1280 }

    /// The metric of the routes this overlay installs (what the kernel reports back).
    var routeMetric: UInt32 { family == .v4 ? 0 : Self.ipv6DefaultMetric }
}

/// Another host of the overlay, from its lease: its subnet, its public (underlay) address
/// and its VTEP's MAC (`BackendData.VtepMAC`).
public struct OverlayPeer: Sendable, Hashable, CustomStringConvertible {
    public var subnet: CIDR
    public var publicIP: IPAddress
    public var vtepMAC: MACAddress

    public init(subnet: CIDR, publicIP: IPAddress, vtepMAC: MACAddress) {
        self.subnet = subnet.network; self.publicIP = publicIP; self.vtepMAC = vtepMAC
    }

    public var description: String { "\(subnet) at \(publicIP) (\(vtepMAC))" }
}

/// The routing protocol number (RTPROT_*) stamped on every route the overlay installs, so
/// that its routes on the underlay device (DirectRouting) are told apart from anyone
/// else's; unassigned in iproute2's rt_protos. `ip route show proto 77` lists them.
public enum OverlayRouteProtocol {
    public static let number: UInt8 = 77
    /// RTPROT_KERNEL: routes the kernel made itself (link-local prefixes); never managed.
    static let kernel: UInt8 = 2
}
