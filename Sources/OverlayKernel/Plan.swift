// The kernel entries that make peers reachable, flannel's way, and the changes that turn the
// kernel's current entries into them. Pure values, so the diff is tested without a kernel.
//
// Per peer, through the tunnel:
//     ip neigh replace <peer subnet address> lladdr <peer VTEP MAC> dev flannel.N nud permanent
//     bridge fdb replace <peer VTEP MAC> dev flannel.N self permanent dst <peer public IP>
//     ip route replace <peer subnet> via <peer subnet address> dev flannel.N onlink
// or, with DirectRouting and a peer on a subnet of the underlay device, only
//     ip route replace <peer subnet> via <peer public IP> dev <underlay>

import Netlink
import NetTypes

/// One change to the kernel's neighbour table, forwarding database or routes.
public enum KernelChange: Sendable, Hashable, CustomStringConvertible {
    /// Creates or replaces a permanent neighbour entry.
    case setNeighbour(Neighbour)
    case removeNeighbour(Neighbour)
    /// Creates or replaces a permanent FDB entry of the VTEP (`self`).
    case setFDB(Neighbour)
    case removeFDB(Neighbour)
    /// Creates or replaces a route.
    case setRoute(Route)
    case removeRoute(Route)

    /// In the words of `ip`/`bridge` (devices by ifindex).
    public var description: String {
        switch self {
        case .setNeighbour(let n): "neigh replace \(Self.words(n))"
        case .removeNeighbour(let n): "neigh del \(Self.words(n))"
        case .setFDB(let n): "fdb replace \(Self.words(n))"
        case .removeFDB(let n): "fdb del \(Self.words(n))"
        case .setRoute(let r): "route replace \(Self.words(r))"
        case .removeRoute(let r): "route del \(Self.words(r))"
        }
    }

    private static func words(_ n: Neighbour) -> String {
        let mac = n.mac.map { "\($0)" } ?? "-"
        let ip = n.ip.map { "\($0)" } ?? "-"
        let dst = n.ip.map { " dst \($0)" } ?? ""
        return n.family == .bridge ? "\(mac)\(dst) dev #\(n.index) self" : "\(ip) lladdr \(mac) dev #\(n.index)"
    }

    private static func words(_ r: Route) -> String {
        var s = "\(r.destination)"
        if let g = r.gateway { s += " via \(g)" }
        if let i = r.outputIndex { s += " dev #\(i)" }
        if r.onLink { s += " onlink" }
        return s
    }
}

/// A peer left out of the kernel, and why (its lease contradicts the configuration or an
/// earlier peer).
public struct PeerConflict: Sendable, Hashable, CustomStringConvertible {
    public var peer: OverlayPeer
    public var reason: String
    public var description: String { "\(peer): \(reason)" }
}

/// The devices the overlay's entries live on.
struct OverlayLinks: Sendable, Hashable {
    var vtep: Int32
    var underlay: Int32
    /// The prefixes of the underlay device's own addresses of the public IP's family: a peer
    /// inside one is directly connected.
    var underlaySubnets: [CIDR]
}

/// The kernel entries of one peer.
struct PeerEntries: Sendable, Hashable {
    var peer: OverlayPeer
    /// nil for a peer reached by a direct route.
    var neighbour: Neighbour?
    var fdb: Neighbour?
    var route: Route
}

extension PeerEntries {
    /// Neighbour, FDB entry, then route: the kernel never resolves the gateway itself.
    var additions: [KernelChange] {
        [neighbour.map(KernelChange.setNeighbour), fdb.map(KernelChange.setFDB)].compactMap { $0 } + [.setRoute(route)]
    }
    /// Route first, then neighbour and FDB entry.
    var removals: [KernelChange] {
        [.removeRoute(route)] + [neighbour.map(KernelChange.removeNeighbour), fdb.map(KernelChange.removeFDB)].compactMap { $0 }
    }
}

/// The managed entries the kernel holds now (already limited to the VTEP's device and family
/// where the dump allows it).
struct KernelEntries: Sendable, Hashable {
    var neighbours: [Neighbour] = []
    var fdb: [Neighbour] = []
    var routes: [Route] = []
}

/// Desired entries and diff for one VTEP.
struct Plan: Sendable {
    let config: VTEPConfig
    let links: OverlayLinks

    /// A peer is reached directly with DirectRouting when its public IP is on a subnet of
    /// the underlay device.
    func entries(for peer: OverlayPeer) -> PeerEntries {
        let direct = config.directRouting && links.underlaySubnets.contains { $0.contains(peer.publicIP) }
        return entries(for: peer, direct: direct)
    }

    func entries(for peer: OverlayPeer, direct: Bool) -> PeerEntries {
        let metric = config.routeMetric
        let proto = OverlayRouteProtocol.number
        if direct {
            let route = Route(destination: peer.subnet, gateway: peer.publicIP, outputIndex: links.underlay,
                              scope: .universe, metric: metric, proto: proto)
            return PeerEntries(peer: peer, route: route)
        }
        let address = peer.subnet.networkAddress
        let route = Route(destination: peer.subnet, gateway: address, outputIndex: links.vtep, scope: .universe,
                          onLink: true, metric: metric, proto: proto)
        return PeerEntries(peer: peer,
                           neighbour: .permanent(index: links.vtep, ip: address, mac: peer.vtepMAC),
                           fdb: .fdb(index: links.vtep, mac: peer.vtepMAC, dst: peer.publicIP),
                           route: route)
    }

    /// The entries of every acceptable peer, in subnet order, and the peers left out. A peer
    /// holding this host's own subnet at this host's own address is this host and skipped.
    func desired(_ peers: [OverlayPeer]) -> (entries: [PeerEntries], conflicts: [PeerConflict]) {
        var entries: [PeerEntries] = []
        var conflicts: [PeerConflict] = []
        // In address order a subnet overlaps an accepted one exactly when it starts before
        // the furthest end of those: one comparison per peer.
        var furthestEnd: IPAddress?
        var macs = Set<MACAddress>()
        for peer in peers.sorted(by: { ($0.subnet.address, $0.subnet.prefixLength) < ($1.subnet.address, $1.subnet.prefixLength) }) {
            if peer.subnet == config.subnet && peer.publicIP == config.publicIP { continue }
            if let reason = refusal(peer, furthestEnd: furthestEnd, macs: macs) {
                conflicts.append(PeerConflict(peer: peer, reason: reason))
                continue
            }
            furthestEnd = max(furthestEnd ?? peer.subnet.lastAddress, peer.subnet.lastAddress)
            macs.insert(peer.vtepMAC)
            entries.append(self.entries(for: peer))
        }
        return (entries, conflicts)
    }

    private func refusal(_ peer: OverlayPeer, furthestEnd: IPAddress?, macs: Set<MACAddress>) -> String? {
        if peer.subnet.family != config.family { return "subnet is not of the overlay's family" }
        if peer.publicIP.family != config.publicIP.family { return "public IP is not of the underlay's family" }
        if peer.publicIP.isUnspecified || peer.publicIP.isLoopback || peer.publicIP == config.publicIP {
            return "public IP \(peer.publicIP) is not another host's address"
        }
        if !config.network.contains(peer.subnet) { return "subnet is outside the network \(config.network)" }
        if peer.subnet.overlaps(config.subnet) { return "subnet overlaps this host's \(config.subnet)" }
        if let end = furthestEnd, peer.subnet.networkAddress <= end { return "subnet overlaps another peer's" }
        if macs.contains(peer.vtepMAC) || peer.vtepMAC == config.mac { return "VTEP MAC is used by another host" }
        if peer.vtepMAC.isMulticast || peer.vtepMAC.isZero { return "VTEP MAC is not a unicast address" }
        return nil
    }

    // MARK: what is ours

    /// Routes inside the cluster network, in the main table, that sit on the VTEP or carry
    /// the overlay's protocol number (direct routes on the underlay). Kernel-made routes never.
    func isManaged(_ r: Route) -> Bool {
        r.table == Route.mainTable && r.family == config.family && r.proto != OverlayRouteProtocol.kernel
            && config.network.contains(r.destination)
            && (r.outputIndex == links.vtep || r.proto == OverlayRouteProtocol.number)
    }

    /// Permanent neighbour entries on the VTEP for addresses inside the cluster network;
    /// entries the kernel resolved itself are left to it.
    func isManagedNeighbour(_ n: Neighbour) -> Bool {
        n.index == links.vtep && isPermanent(n) && n.ip.map(config.network.contains) == true
    }

    /// Permanent FDB entries of the VTEP; learned ones (with `learning` on) are the kernel's.
    func isManagedFDB(_ n: Neighbour) -> Bool {
        n.index == links.vtep && n.family == .bridge && isPermanent(n)
    }

    private func isPermanent(_ n: Neighbour) -> Bool { n.state & Neighbour.permanent != 0 }

    // MARK: diff

    /// The changes, in the order they must be applied: stale routes go first (nothing is
    /// routed to a departed peer meanwhile), then neighbour and FDB entries, then routes (so
    /// the kernel never resolves a gateway itself), then stale neighbour and FDB entries.
    func changes(from current: KernelEntries, to desired: [PeerEntries]) -> [KernelChange] {
        let routes = current.routes.filter(isManaged)
        let neighbours = current.neighbours.filter(isManagedNeighbour)
        let fdb = current.fdb.filter(isManagedFDB)
        let wantedRoutes = Dictionary(desired.map { ($0.route.destination, $0.route) }, uniquingKeysWith: { a, _ in a })
        let wantedNeighbours = Set(desired.compactMap { $0.neighbour?.ip })
        let wantedMACs = Set(desired.compactMap { $0.fdb?.mac })
        let neighboursByIP = Dictionary(grouping: neighbours, by: \.ip)
        let fdbByMAC = Dictionary(grouping: fdb, by: \.mac)
        let routesByDestination = Dictionary(grouping: routes, by: \.destination)

        var out: [KernelChange] = []
        // A route whose metric differs would survive a replace next to ours: it goes too.
        out += routes.filter { r in wantedRoutes[r.destination].map { $0.metric != r.metric } ?? true }.map { .removeRoute($0) }
        for want in desired.compactMap(\.neighbour) where neighboursByIP[want.ip]?.contains(where: { $0.mac == want.mac }) != true {
            out.append(.setNeighbour(want))
        }
        // A unicast MAC has one destination in a VXLAN FDB: a wrong one is replaced in place.
        for want in desired.compactMap(\.fdb) where fdbByMAC[want.mac]?.contains(where: { $0.ip == want.ip }) != true {
            out.append(.setFDB(want))
        }
        for want in desired.map(\.route) where routesByDestination[want.destination]?.contains(where: { sameRoute($0, want) }) != true {
            out.append(.setRoute(want))
        }
        out += neighbours.filter { $0.ip.map(wantedNeighbours.contains) != true }.map { .removeNeighbour($0) }
        // Removed by MAC alone: the kernel then drops every destination of the entry in one
        // request (an all-zero or multicast MAC can have several).
        var staleMACs: [MACAddress] = []
        for mac in fdb.compactMap(\.mac) where !wantedMACs.contains(mac) && !staleMACs.contains(mac) {
            staleMACs.append(mac)
        }
        out += staleMACs.map { .removeFDB(.fdb(index: links.vtep, mac: $0)) }
        return out
    }

    private func sameRoute(_ have: Route, _ want: Route) -> Bool {
        have.gateway == want.gateway
            && have.outputIndex == want.outputIndex && have.onLink == want.onLink
            && have.metric == want.metric && have.proto == want.proto && have.scope == want.scope
    }
}
