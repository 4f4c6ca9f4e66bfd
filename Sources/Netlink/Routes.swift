// Routes (RTM_NEWROUTE/DELROUTE/GETROUTE) through libnl's rtnl_route with one next hop.

import CNetlink
import NetTypes
import SystemKit
import Glibc

public struct Route: Sendable, Hashable {
    /// Destination prefix; `CIDR.defaultRoute(.v4)` for a default route.
    public var destination: CIDR
    public var gateway: IPAddress?
    public var outputIndex: Int32?
    /// nil lets the kernel/libnl choose (link scope for a direct route, universe via a gateway).
    public var scope: Scope?
    /// RTNH_F_ONLINK: the gateway is reachable on the link even without a matching prefix.
    public var onLink: Bool
    /// Priority (the `metric` of `ip route`).
    public var metric: UInt32?
    /// Routing table; 254 is main.
    public var table: UInt32
    public var mtu: UInt32?
    /// RTPROT_*: 4 static (what routes added here get unless told otherwise), 3 boot, 2 kernel.
    public var proto: UInt8?
    /// Preferred source address.
    public var source: IPAddress?

    public static let mainTable: UInt32 = 254

    public init(destination: CIDR, gateway: IPAddress? = nil, outputIndex: Int32? = nil, scope: Scope? = nil,
                onLink: Bool = false, metric: UInt32? = nil, table: UInt32 = Route.mainTable, mtu: UInt32? = nil,
                proto: UInt8? = nil, source: IPAddress? = nil) {
        self.destination = destination; self.gateway = gateway; self.outputIndex = outputIndex
        self.scope = scope; self.onLink = onLink; self.metric = metric; self.table = table
        self.mtu = mtu; self.proto = proto; self.source = source
    }

    /// A default route of the gateway's family.
    public static func defaultRoute(via gateway: IPAddress, device: Int32? = nil, metric: UInt32? = nil) -> Route {
        Route(destination: .defaultRoute(gateway.family), gateway: gateway, outputIndex: device, metric: metric)
    }
    public var family: IPAddress.Family { destination.family }
}

extension RouteSocket {
    public func addRoute(_ route: Route) throws { try changeRoute(route, "add route", add: RTM.create | RTM.excl) }
    /// Adds or replaces (`ip route replace`).
    public func replaceRoute(_ route: Route) throws { try changeRoute(route, "replace route", add: RTM.create | RTM.replace) }
    public func deleteRoute(_ route: Route) throws { try changeRoute(route, "delete route", add: nil) }

    private func changeRoute(_ route: Route, _ op: String, add flags: Int32?) throws {
        let object = describe(route)
        guard let r = rtnl_route_alloc() else { throw NetlinkError(operation: op, object: object, errno: .noMemory) }
        defer { rtnl_route_put(r) }
        try fill(r, route, op, object, adding: flags != nil)
        if let flags {
            try perform(op, object) { rtnl_route_add(sock, r, flags) }
        } else {
            try perform(op, object) { rtnl_route_delete(sock, r, 0) }
        }
    }

    /// Sets the route's attributes on a libnl rtnl_route (addresses are referenced by it).
    private func fill(_ r: OpaquePointer, _ route: Route, _ op: String, _ object: String,
                      adding: Bool) throws(SystemError) {
        let dst = try NLAddr(route.destination.networkAddress, prefixLength: route.destination.prefixLength)
        try checkSetter(op, object, "family") { rtnl_route_set_family(r, UInt8(route.family.linuxAF)) }
        try checkSetter(op, object, "dst") { dst.pass { rtnl_route_set_dst(r, $0) } }
        rtnl_route_set_table(r, route.table)
        if let scope = route.scope {
            rtnl_route_set_scope(r, scope.rawValue)
        } else if !adding {
            rtnl_route_set_scope(r, Scope.nowhere.rawValue)    // delete: match any scope
        }
        if let metric = route.metric { rtnl_route_set_priority(r, metric) }
        if let proto = route.proto {
            rtnl_route_set_protocol(r, proto)
        } else if adding {
            rtnl_route_set_protocol(r, RouteConstant.protocolStatic)
        }
        if let mtu = route.mtu {
            try checkSetter(op, object, "mtu") { rtnl_route_set_metric(r, RouteConstant.metricMTU, mtu) }
        }
        if let source = route.source {
            let src = try NLAddr(source)
            try checkSetter(op, object, "src") { src.pass { rtnl_route_set_pref_src(r, $0) } }
        }
        var gateway: NLAddr?
        if let g = route.gateway { gateway = try NLAddr(g) }
        if gateway != nil || route.outputIndex != nil {
            guard let nh = rtnl_route_nh_alloc() else { throw NetlinkError(operation: op, object: object, errno: .noMemory) }
            if let idx = route.outputIndex { rtnl_route_nh_set_ifindex(nh, idx) }
            if let gateway { gateway.pass { rtnl_route_nh_set_gateway(nh, $0) } }
            if route.onLink { rtnl_route_nh_set_flags(nh, RouteConstant.nextHopOnLink) }
            rtnl_route_add_nexthop(r, nh)                                     // owned by the route now
        }
    }

    /// Routes of one family (nil: both), in one table (nil: all tables).
    public func routes(family: IPAddress.Family? = nil, table: UInt32? = Route.mainTable) throws -> [Route] {
        try list(.routes, family: family?.linuxAF ?? AF_UNSPEC) { r in
            let t = rtnl_route_get_table(r)
            if let table, t != table { return nil }
            return Route(r, table: t)
        }
    }

    private func describe(_ r: Route) -> String {
        var s = "\(r.destination)"
        if let g = r.gateway { s += " via \(g)" }
        if let i = r.outputIndex { s += " dev ifindex \(i)" }
        if r.table != Route.mainTable { s += " table \(r.table)" }
        return s
    }
}

extension Route {
    /// Reads a libnl rtnl_route of table `table` (not retained); nil for a family other than
    /// IPv4 and IPv6.
    init?(_ r: OpaquePointer, table: UInt32) {
        let fam = rtnl_route_get_family(r)
        guard fam == UInt8(AF_INET) || fam == UInt8(AF_INET6) else { return nil }
        let dst = cidr(rtnl_route_get_dst(r)) ?? CIDR.defaultRoute(fam == UInt8(AF_INET) ? .v4 : .v6)
        self.init(destination: dst, table: table)
        scope = Scope(rawValue: rtnl_route_get_scope(r))
        metric = rtnl_route_get_priority(r)
        proto = rtnl_route_get_protocol(r)
        source = ipAddress(rtnl_route_get_pref_src(r))
        var mtu: UInt32 = 0
        if rtnl_route_get_metric(r, RouteConstant.metricMTU, &mtu) == 0, mtu > 0 { self.mtu = mtu }
        if rtnl_route_get_nnexthops(r) > 0, let nh = rtnl_route_nexthop_n(r, 0) {
            let idx = rtnl_route_nh_get_ifindex(nh)
            outputIndex = idx > 0 ? idx : nil
            gateway = ipAddress(rtnl_route_nh_get_gateway(nh))
            onLink = rtnl_route_nh_get_flags(nh) & RouteConstant.nextHopOnLink != 0
        }
    }
}
