// The container side that every attaching plugin shares (bridge, macvlan, ipvlan): the
// IPAM result's addresses and routes put on the container interface, checked against
// `prevResult` for CHECK, and the interface deleted on DEL.

import CNI
import Glibc
import Netlink
import NetTypes
import SystemKit

public enum ContainerInterface {
    /// Puts `result`'s addresses on the link `index` (IPv4 with the subnet's broadcast address,
    /// IPv6 without DAD when `noDAD`), brings it up, then adds `result`'s routes through it. A
    /// route without a gateway goes via the first address's gateway of its family; an identical
    /// route that is already there is success.
    public static func configure(_ index: Int32, with result: CNIResult, on ctr: RouteSocket, noDAD: Bool) throws {
        for ip in result.ips {
            try ctr.addAddress(index, ip.address, broadcast: ip.address.broadcastAddress, noDAD: noDAD)
        }
        try ctr.setUp(index)
        for route in result.routes {
            let rt = Route(destination: route.dst, gateway: gateway(of: route, in: result), outputIndex: index,
                           metric: route.priority.map { UInt32($0) })
            do { try ctr.addRoute(rt) } catch let e as NetlinkError where e.isAlreadyExists {}
        }
    }

    /// The gateway a result's route goes through: its own, or the first address's of its family.
    static func gateway(of route: CNIResult.Route, in result: CNIResult) -> IPAddress? {
        route.gw ?? result.ips.first { $0.address.family == route.dst.family }?.gateway
    }

    /// Waits until duplicate address detection has finished for the IPv6 `addresses` on the
    /// link `index`, so the container can use them when ADD returns. An address another node
    /// already uses is an error naming it; DAD still running after `timeout` is code 11.
    public static func waitForDAD(_ addresses: [CIDR], on index: Int32, _ ctr: RouteSocket, ifName: String,
                                  context: String, timeout: Duration = dadTimeout) throws {
        let wanted = Set(addresses.filter { $0.family == .v6 })
        guard !wanted.isEmpty else { return }
        let deadline = ContinuousClock.now + timeout
        while true {
            let v6 = try ctr.addresses(index: index, family: .v6).filter { wanted.contains($0.address) }
            if let failed = v6.first(where: \.hasFailedDAD) {
                throw CNIError(code: .internal, msg: "\(context): address \(failed.address) on \(ifName) is already in use on the network (IPv6 duplicate address detection failed)")
            }
            guard let pending = v6.first(where: \.isTentative) else { return }
            guard ContinuousClock.now < deadline else {
                throw CNIError(code: .tryAgainLater, msg: "\(context): address \(pending.address) on \(ifName) still tentative after \(timeout) of duplicate address detection")
            }
            usleep(dadPollInterval)
        }
    }

    /// How long ADD waits for IPv6 duplicate address detection (the kernel's takes about a
    /// second per probe), and how often it looks.
    public static let dadTimeout: Duration = .seconds(5)
    static let dadPollInterval: useconds_t = 20_000

    // MARK: CHECK

    /// The interface `ifName` of `prev` that lives in a sandbox (`sandbox` exactly, when given):
    /// it exists in the container netns, is of `kind`, and has the MAC `prev` records. Returns
    /// the link and its index in `prev.interfaces`.
    public static func expect(_ ifName: String, of kind: String, in prev: CNIResult, sandbox: String? = nil,
                              on ctr: RouteSocket, netns: String, context: String) throws -> (Link, Int) {
        guard let at = prev.interfaces.firstIndex(where: {
            $0.name == ifName && $0.sandbox != nil && (sandbox == nil || $0.sandbox == sandbox)
        }) else {
            let place = sandbox.map { "in sandbox \($0)" } ?? "in a sandbox"
            throw CNIError(code: .internal, msg: "\(context): prevResult has no interface \(ifName) \(place)")
        }
        guard let link = try ctr.link(named: ifName) else {
            throw CNIError(code: .internal, msg: "\(context): container interface \(ifName) not found in \(netns)")
        }
        guard link.kind == kind else {
            throw CNIError(code: .internal, msg: "\(context): \(ifName) in \(netns) is \(link.kind ?? "not a \(kind)"), expected \(kind)")
        }
        if let m = prev.interfaces[at].macAddress, link.mac != m {
            throw CNIError(code: .internal, msg: "\(context): \(ifName) has MAC \(link.mac.map { "\($0)" } ?? "none"), expected \(m)")
        }
        return (link, at)
    }

    /// Every address of `prev` meant for interface `resultIndex` (or for no interface in
    /// particular) is on `link`; every route of `prev` is in the netns.
    public static func verifyAddressesAndRoutes(_ prev: CNIResult, resultIndex: Int, link: Link, on ctr: RouteSocket,
                                                netns: String, context: String) throws {
        let have = Set(try ctr.addresses(index: link.index).map(\.address))
        for ip in prev.ips where ip.interface == nil || ip.interface == resultIndex {
            guard have.contains(ip.address) else {
                throw CNIError(code: .internal, msg: "\(context): address \(ip.address) missing on \(link.name)")
            }
        }
        let routes = try ctr.routes()
        for rt in prev.routes {
            let gw = gateway(of: rt, in: prev)
            guard routes.contains(where: { $0.destination == rt.dst && (gw == nil || $0.gateway == gw) }) else {
                throw CNIError(code: .internal, msg: "\(context): route \(rt.dst)\(gw.map { " via \($0)" } ?? "") missing in \(netns)")
            }
        }
    }

    // MARK: DEL

    /// Deletes the interface `ifName` in the netns at `netns` (a veth's peer goes with it). A
    /// netns or interface that is already gone is success.
    public static func delete(_ ifName: String, in netns: String) throws {
        do {
            let ctr = try RouteSocket(namespace: netns)
            guard let link = try ctr.link(named: ifName) else { return }
            try ctr.deleteLink(link.index)
        } catch let e as SystemError where e.isNamespaceGone || e.isNotFound {
            return
        } catch let e as SystemError {
            throw CNIError(e, context: "delete \(ifName) in \(netns)")
        }
    }
}
