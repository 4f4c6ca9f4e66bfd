// The underlay: the interface this host reaches the other hosts through, found the way
// flanneld finds it, in the network namespace the daemon runs in:
//   1. `--iface` values in order, each an interface name or one of an interface's addresses;
//   2. else `--iface-regex` patterns in order, each matched against every interface's
//      addresses first, then against the names;
//   3. else the interface of the default route (IPv4, or IPv6 on a host without one).
// The encapsulated packets leave from the interface's first global address of each family
// (or the address `--iface` named); the lease tells peers `--public-ip`/`--public-ipv6`
// when given (a host behind NAT), else that same address.

import Netlink
import NetTypes

/// The chosen interface and this host's addresses on it.
public struct Underlay: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var mtu: UInt32
    /// The source address of encapsulated packets, per family; nil when the interface has none.
    public var localIPv4: IPAddress?
    public var localIPv6: IPAddress?
    /// The addresses the lease announces.
    public var publicIP: IPAddress?
    public var publicIPv6: IPAddress?

    public var description: String {
        let addresses = [localIPv4, localIPv6].compactMap { $0.map { "\($0)" } }.joined(separator: ", ")
        var s = "\(name) (\(addresses.isEmpty ? "no address" : addresses), mtu \(mtu))"
        if let p = publicIP, p != localIPv4 { s += ", public IP \(p)" }
        if let p = publicIPv6, p != localIPv6 { s += ", public IPv6 \(p)" }
        return s
    }
}

/// No interface matched, or a pattern is not a regular expression.
public struct UnderlayError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
}

/// One interface as the choice sees it.
struct InterfaceCandidate: Sendable, Hashable {
    var name: String
    var mtu: UInt32
    /// Global addresses, in the kernel's order.
    var addresses: [IPAddress]

    func first(_ family: IPAddress.Family) -> IPAddress? { addresses.first { $0.family == family } }
}

enum UnderlayChoice {
    /// Picks the interface (pure: the tests feed it made-up interfaces). `defaultRoute` is the
    /// name of the default route's interface, if any. Returns the interface and the address
    /// `--iface` named, if it named one.
    static func choose(_ settings: UnderlaySettings, among interfaces: [InterfaceCandidate],
                       defaultRoute: String?) throws(UnderlayError) -> (InterfaceCandidate, IPAddress?) {
        if !settings.interfaces.isEmpty {
            for wanted in settings.interfaces {
                if let ip = IPAddress(wanted) {
                    if let i = interfaces.first(where: { $0.addresses.contains(ip) }) { return (i, ip) }
                } else if let i = interfaces.first(where: { $0.name == wanted }) {
                    return (i, nil)
                }
            }
            throw UnderlayError(description: "no interface matches --iface \(settings.interfaces.joined(separator: ", "))")
        }
        if !settings.interfacePatterns.isEmpty {
            for pattern in settings.interfacePatterns {
                let regex: Regex<AnyRegexOutput>
                do {
                    regex = try Regex(pattern)
                } catch {
                    throw UnderlayError(description: "--iface-regex \(pattern) is not a regular expression: \(error)")
                }
                for i in interfaces {
                    if let ip = i.addresses.first(where: { "\($0)".contains(regex) }) { return (i, ip) }
                }
                if let i = interfaces.first(where: { $0.name.contains(regex) }) { return (i, nil) }
            }
            throw UnderlayError(description: "no interface address or name matches --iface-regex "
                                + settings.interfacePatterns.joined(separator: ", "))
        }
        guard let name = defaultRoute, let i = interfaces.first(where: { $0.name == name }) else {
            throw UnderlayError(description: "no default route to take the interface from: name one with --iface")
        }
        return (i, nil)
    }

    /// The underlay for the chosen interface.
    static func underlay(_ settings: UnderlaySettings, _ chosen: InterfaceCandidate, named: IPAddress?) -> Underlay {
        let v4 = named?.family == .v4 ? named : chosen.first(.v4)
        let v6 = named?.family == .v6 ? named : chosen.first(.v6)
        return Underlay(name: chosen.name, mtu: chosen.mtu, localIPv4: v4, localIPv6: v6,
                        publicIP: settings.publicIP ?? v4, publicIPv6: settings.publicIPv6 ?? v6)
    }

    /// Reads the interfaces and routes of the calling thread's namespace and chooses.
    static func find(_ settings: UnderlaySettings) throws -> Underlay {
        let socket = try RouteSocket()
        let addresses = try socket.addresses()
        let interfaces = try socket.links().map { link in
            InterfaceCandidate(name: link.name, mtu: link.mtu, addresses: addresses.filter {
                $0.index == link.index && $0.scope == .universe
            }.map(\.address.address))
        }
        let (chosen, named) = try choose(settings, among: interfaces, defaultRoute: try defaultRouteInterface(socket))
        return underlay(settings, chosen, named: named)
    }

    /// The interface of the best default route, IPv4 first.
    private static func defaultRouteInterface(_ socket: RouteSocket) throws -> String? {
        for family in [IPAddress.Family.v4, .v6] {
            let defaults = try socket.routes(family: family).filter { $0.destination.prefixLength == 0 && $0.outputIndex != nil }
            if let best = defaults.min(by: { ($0.metric ?? 0) < ($1.metric ?? 0) }), let index = best.outputIndex,
               let link = try socket.link(index: index) {
                return link.name
            }
        }
        return nil
    }
}
