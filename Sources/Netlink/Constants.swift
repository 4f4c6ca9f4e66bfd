// rtnetlink constants used by the module, by their kernel names (linux/rtnetlink.h,
// linux/if_link.h, linux/if.h, linux/if_addr.h, linux/neighbour.h, linux/if_bridge.h).
// Generic netlink flags come from SystemKit's NetlinkWire.

import SystemKit

/// Message types and NEW-request modifiers.
enum RTM {
    static let newLink: Int32 = 16, delLink: Int32 = 17, setLink: Int32 = 19
    static let getLink: Int32 = 18, getAddress: Int32 = 22, getRoute: Int32 = 26, getNeighbour: Int32 = 30
    static let create = Int32(NetlinkWire.flagCreate), excl = Int32(NetlinkWire.flagExclusive)
    static let replace = Int32(NetlinkWire.flagReplace), append = Int32(NetlinkWire.flagAppend)
    static let dump = Int32(NetlinkWire.flagDump)
}

/// Link attributes (IFLA_*), their nested LINKINFO/bridge-port attributes.
enum IFLA {
    static let address: Int32 = 1, ifname: Int32 = 3, mtu: Int32 = 4, master: Int32 = 10
    static let protinfo: Int32 = 12, ifalias: Int32 = 20, linkinfo: Int32 = 18, afSpec: Int32 = 26, netNSFD: Int32 = 28
    static let infoKind: Int32 = 1, infoData: Int32 = 2
    static let brVlanFiltering: Int32 = 7
    static let brportMode: Int32 = 4, brportIsolated: Int32 = 33
    static let bridgeVlanInfo: Int32 = 2
}

/// Interface flags (IFF_*).
enum InterfaceFlag {
    static let up: UInt32 = 0x1             // IFF_UP
    static let promiscuous: UInt32 = 0x100  // IFF_PROMISC
}

/// Flags of struct bridge_vlan_info.
enum BridgeVLANFlag {
    static let pvid: UInt16 = 0x2       // BRIDGE_VLAN_INFO_PVID
    static let untagged: UInt16 = 0x4   // BRIDGE_VLAN_INFO_UNTAGGED
}

/// Address flags (IFA_F_*).
enum AddressFlag {
    static let noDAD: UInt32 = 0x02      // IFA_F_NODAD
}

/// Route constants.
enum RouteConstant {
    static let protocolStatic: UInt8 = 4    // RTPROT_STATIC, what `ip route add` writes
    static let metricMTU: Int32 = 2         // RTAX_MTU
    static let nextHopOnLink: UInt32 = 0x4   // RTNH_F_ONLINK
}
