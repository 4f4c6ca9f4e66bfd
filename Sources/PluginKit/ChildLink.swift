// What the macvlan and ipvlan plugins share: a child link of a master interface, placed in
// the container under CNI_IFNAME, addressed from IPAM. The options both read, how the master
// is found, and the link-kind-specific part each plugin supplies (`ChildLinkConfig`). The
// verbs themselves are in ChildLinkVerbs.swift.

import CNI
import Netlink
import NetTypes

/// The keys macvlan and ipvlan both read, as written (the reference plugins' names).
public struct ChildLinkKeys: Decodable, Sendable {
    public var master: String?
    public var mode: String?
    public var mtu: Int?
    /// macvlan's container MAC; ipvlan reads it only to refuse it.
    public var mac: String?
    public var linkInContainer: Bool?
}

/// The options macvlan and ipvlan read alike, checked.
public struct ChildLinkOptions: Sendable {
    /// `master`: the parent interface; nil takes the interface of the default route.
    public var master: String?
    /// `mtu`: nil keeps the master's.
    public var mtu: UInt32?
    /// `linkInContainer`: the master is looked up (and the link made) inside the container netns.
    public var linkInContainer: Bool
    /// ipvlan only: without `master`, a `prevResult` naming exactly one interface gives it.
    public var masterFromPrevResult: Bool
    /// `ipam.type` is set: addresses come from the IPAM plugin.
    public var hasIPAM: Bool
    /// The config's `dns`, written into the result when set (the IPAM plugin's otherwise).
    public var dns: CNIResult.DNS

    /// MTUs accepted: IPv4's minimum to the kernel's largest (and at most the master's, checked at ADD).
    static let mtuRange = 68...65535

    /// Checks and keeps the shared options. DEL and GC read them without complaint about a value
    /// (see `ChildLinkOptions.validates`), so a config that ADD refused never blocks its DEL.
    public init(_ keys: ChildLinkKeys, masterFromPrevResult: Bool = false, request r: CNIRequest) throws(CNIError) {
        master = keys.master.flatMap { $0.isEmpty ? nil : $0 }
        linkInContainer = keys.linkInContainer ?? false
        self.masterFromPrevResult = masterFromPrevResult
        hasIPAM = !(r.config.ipamType ?? "").isEmpty
        dns = r.config.dns ?? CNIResult.DNS()
        guard Self.validates(r) else { return }
        if let m = master {
            do { try validateInterfaceName(m) } catch { throw CNIError.invalidConfig("master: \(error.msg)") }
        }
        if let m = keys.mtu, m != 0 {
            guard Self.mtuRange.contains(m) else {
                throw CNIError.invalidConfig("mtu: \(m) is out of range 68-65535 (0 keeps the master's)")
            }
            self.mtu = UInt32(m)
        }
    }

    /// Whether a verb checks option values: ADD, CHECK and STATUS do; DEL and GC only clean up.
    public static func validates(_ r: CNIRequest) -> Bool { r.command != .del && r.command != .gc }

    /// The master's name for `r`: `master`, or (ipvlan, chained) the one interface of
    /// `prevResult` at ADD; nil means the default route's interface.
    func masterName(_ r: CNIRequest) throws(CNIError) -> String? {
        if let master { return master }
        guard masterFromPrevResult, r.command == .add, let prev = r.prevResult else { return nil }
        guard prev.interfaces.count == 1, let name = prev.interfaces.first?.name, !name.isEmpty else {
            throw CNIError.invalidConfig("master: not given, and prevResult does not name exactly one interface to take it from")
        }
        return name
    }
}

/// One child-link plugin's own part: its kind, its options, how its link is made and how its
/// kind-specific attributes are read back.
public protocol ChildLinkConfig: PluginConfiguration, Sendable {
    /// "macvlan" or "ipvlan": the link kind the kernel reports, and the plugin's name in messages.
    static var kind: String { get }
    var options: ChildLinkOptions { get }
    /// Creates the link `name` on `master` through `sock`; inside `namespace` when given
    /// (otherwise in `sock`'s own netns, which is then the container's).
    func create(_ name: String, master: Link, on sock: RouteSocket, in namespace: NetworkNamespace?) throws
    /// CHECK: the existing link `name` has the configured kind-specific attributes (its mode).
    func verify(_ name: String, on ctr: RouteSocket, context: String) throws
    /// ADD's addresses, routes and DNS; none when there is nothing to apply (L2 only).
    /// The default: the IPAM plugin's when `ipam.type` is set.
    func addresses(_ r: CNIRequest, _ undo: inout Rollback) throws -> CNIResult
}

extension ChildLinkConfig {
    public func addresses(_ r: CNIRequest, _ undo: inout Rollback) throws -> CNIResult {
        guard options.hasIPAM else { return CNIResult(cniVersion: r.cniVersion) }
        return try IPAMDelegate.allocate(r, &undo, plugin: Self.kind)
    }
}

/// Finding the master (macvlan, ipvlan) or the underlay interface (vxlan).
public enum Master {
    /// The master link on `sock` (whose netns `place` names): by name, or the interface of the
    /// netns's default route (IPv4 first, then IPv6). Absent is code 7 naming `field`.
    public static func find(_ name: String?, on sock: RouteSocket, place: String, field: String = "master") throws -> Link {
        if let name {
            guard let link = try sock.link(named: name) else {
                throw CNIError.invalidConfig("\(field): interface \"\(name)\" not found in \(place)")
            }
            return link
        }
        for family in [IPAddress.Family.v4, .v6] {
            let routes = try sock.routes(family: family)
            for route in routes where route.destination.prefixLength == 0 {
                if let index = route.outputIndex, let link = try sock.link(index: index) { return link }
            }
        }
        throw CNIError.invalidConfig("\(field): not given, and \(place) has no default route to take the interface from")
    }

    /// `mtu` must fit the master's MTU (a child link cannot send larger frames than its parent).
    static func checkMTU(_ mtu: UInt32?, master: Link) throws(CNIError) {
        guard let mtu, mtu > master.mtu else { return }
        throw CNIError.invalidConfig("mtu: \(mtu) is above the MTU \(master.mtu) of master \(master.name)")
    }
}
