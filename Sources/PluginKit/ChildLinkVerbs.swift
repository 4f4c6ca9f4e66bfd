// The verbs of a child-link plugin (macvlan, ipvlan), written once for both.
//
// ADD finds the master — in the host netns the plugin runs in, or with `linkInContainer` in
// the container's — and creates the link on it directly inside the container netns under
// CNI_IFNAME (nothing ever appears in the host netns), then applies the IPAM result there.
// Each change registers its undo, so a failed ADD leaves no link and no lease behind. The
// link dies with the container's netns, so DEL after the netns is gone only releases IPAM.

import CNI
import Netlink
import NetTypes
import SystemKit

/// A child-link plugin: `macvlan` is `ChildLinkPlugin<MacvlanConfig>`, `ipvlan` is
/// `ChildLinkPlugin<IpvlanConfig>`.
public struct ChildLinkPlugin<Config: ChildLinkConfig>: CNIPlugin {
    public init() {}

    static var kind: String { Config.kind }

    // MARK: ADD

    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(Config.self)
        let netnsPath = try r.requireNetns()
        var undo = Rollback()
        do {
            let result = try Self.attach(r, conf, netnsPath: netnsPath, &undo)
            undo.commit()
            return result
        } catch {
            undo.run()
            throw CNIError.wrapping(error, context: "\(Self.kind) ADD")
        }
    }

    /// ADD's steps, in order; each change registers its undo.
    private static func attach(_ r: CNIRequest, _ conf: Config, netnsPath: String, _ undo: inout Rollback) throws -> CNIResult {
        let o = conf.options
        let namespace = try NetworkNamespace.open(path: netnsPath)
        let ctr = try RouteSocket(namespace: namespace)
        let parentSide = o.linkInContainer ? ctr : try RouteSocket()
        let master = try Master.find(o.masterName(r), on: parentSide, place: place(o, netnsPath))
        try Master.checkMTU(o.mtu, master: master)
        let link = try createLink(r.ifName, conf, master: master, parentSide: parentSide, ctr: ctr,
                                  namespace: o.linkInContainer ? nil : namespace, netnsPath: netnsPath, &undo)
        var result = try conf.addresses(r, &undo)
        result.cniVersion = r.cniVersion
        // The `mtu` field is written for 1.1.0 results only (older versions drop it).
        result.interfaces = [.init(name: r.ifName, mac: link.mac, mtu: Int(link.mtu), sandbox: netnsPath)]
        for i in result.ips.indices { result.ips[i].interface = containerInterfaceIndex }
        if !o.dns.isEmpty { result.dns = o.dns }
        try configure(link, result, ctr: ctr, namespace: namespace, ifName: r.ifName)
        return result
    }

    /// The link, created on the master under its final name in the container netns.
    private static func createLink(_ ifName: String, _ conf: Config, master: Link, parentSide: RouteSocket,
                                   ctr: RouteSocket, namespace: NetworkNamespace?, netnsPath: String,
                                   _ undo: inout Rollback) throws -> Link {
        do {
            try conf.create(ifName, master: master, on: parentSide, in: namespace)
        } catch let e as NetlinkError where e.isAlreadyExists {
            if try ctr.link(named: ifName) != nil {
                throw CNIError(code: .internal, msg: "\(kind) ADD: container interface \"\(ifName)\" already exists in \(netnsPath)")
            }
            throw e
        } catch let e as NetlinkError where e.errno == .notSupported {
            throw CNIError(e, context: "\(kind) ADD: the kernel has no \(kind) support (CONFIG_\(kind.uppercased()))")
        }
        undo.register("delete \(ifName)") { try ctr.deleteLink(named: ifName) }
        return try ctr.requireLink(named: ifName)
    }

    /// The container side: without addresses (L2 only) the link just comes up; with them,
    /// neighbours are told about the new MAC on link-up, addresses, routes, and IPv6 duplicate
    /// address detection is waited for.
    private static func configure(_ link: Link, _ result: CNIResult, ctr: RouteSocket, namespace: NetworkNamespace,
                                  ifName: String) throws {
        guard !result.ips.isEmpty else { return try ctr.setUp(link.index) }
        announceOnLinkUp(ifName, in: namespace)
        try ContainerInterface.configure(link.index, with: result, on: ctr, noDAD: false)
        try ContainerInterface.waitForDAD(result.ips.map(\.address), on: link.index, ctr, ifName: ifName, context: "\(kind) ADD")
    }

    /// Gratuitous ARP and unsolicited neighbour advertisements when the link comes up, so the
    /// segment's hosts learn the container's MAC for a reused address at once.
    private static func announceOnLinkUp(_ ifName: String, in namespace: NetworkNamespace) {
        let keys = ["net/ipv4/conf/\(ifName)/arp_notify", "net/ipv6/conf/\(ifName)/ndisc_notify"]
        // Only speeds up what neighbours learn anyway; the IPv6 key is absent where IPv6 is off.
        try? withNetworkNamespace(namespace) {
            for key in keys { try? Sysctl.set(key, "1") }
        }
    }

    static func place(_ o: ChildLinkOptions, _ netnsPath: String) -> String {
        o.linkInContainer ? "the container netns \(netnsPath)" : "the host netns"
    }

    /// The container interface's index in the result's `interfaces` (it is the only one).
    static var containerInterfaceIndex: Int { 0 }

    // MARK: DEL

    /// DEL: the IPAM lease released and the link deleted (both run, their failures reported
    /// together). A netns or link already gone — the link dies with its netns — a DEL without
    /// ADD and a second DEL are success.
    public func del(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(Config.self)
        var steps: [@Sendable () throws -> Void] = []
        if let netns = r.netns, !netnsIsGone(netns) {
            let ifName = r.ifName
            steps.append { try ContainerInterface.delete(ifName, in: netns) }
        }
        if conf.options.hasIPAM { steps.append { try IPAMDelegate.del(r) } }
        let failures = Threads.runConcurrently(steps)
        if let e = CNIError.combining(failures, context: "\(Self.kind) DEL") { throw e }
    }

    // MARK: CHECK

    /// CHECK: the IPAM plugin's CHECK; then, against `prevResult`: the interface is in this
    /// netns, of this kind, with its MAC and mode; its parent exists (and is `master` when one
    /// is configured); every address and route is in place.
    public func check(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(Config.self)
        let prev = try r.requirePrevResult()
        let netns = try r.requireNetns()
        if conf.options.hasIPAM { try IPAMDelegate.check(r) }
        let context = "\(Self.kind) CHECK"
        try CNIError.mapping(context) {
            let ctr = try RouteSocket(namespace: NetworkNamespace.open(path: netns))
            let (link, at) = try ContainerInterface.expect(r.ifName, of: Self.kind, in: prev, sandbox: netns, on: ctr,
                                                           netns: netns, context: context)
            try conf.verify(r.ifName, on: ctr, context: context)
            try Self.checkParent(link, conf.options, ctr: ctr, netns: netns)
            try ContainerInterface.verifyAddressesAndRoutes(prev, resultIndex: at, link: link, on: ctr, netns: netns,
                                                            context: context)
        }
    }

    /// The link's parent (IFLA_LINK) exists where the master lives, and is `master` when set.
    private static func checkParent(_ link: Link, _ o: ChildLinkOptions, ctr: RouteSocket, netns: String) throws {
        let parentSide = o.linkInContainer ? ctr : try RouteSocket()
        guard let index = link.linkIndex, let parent = try parentSide.link(index: index) else {
            throw CNIError(code: .internal, msg: "\(kind) CHECK: the parent of \(link.name) is gone from \(place(o, netns))")
        }
        if let m = o.master, parent.name != m {
            throw CNIError(code: .internal, msg: "\(kind) CHECK: \(link.name) is on \(parent.name), expected master \(m)")
        }
    }

    // MARK: STATUS, GC

    /// STATUS: ready when the IPAM plugin is and a configured `master` exists in the host
    /// netns (code 50 otherwise). A master inside containers (`linkInContainer`) or taken from
    /// the default route at ADD time is not asked for.
    public func status(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(Config.self)
        try IPAMDelegate.requireReady(r, plugin: Self.kind)
        guard let name = conf.options.master, !conf.options.linkInContainer else { return }
        let present = try CNIError.mapping("\(Self.kind) STATUS") { try RouteSocket().link(named: name) != nil }
        if !present {
            throw CNIError(code: .notAvailable, msg: "\(Self.kind) STATUS: master \(name) not found in the host netns")
        }
    }

    /// GC: the IPAM plugin's GC (the links die with their netns; nothing else is kept).
    public func gc(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(Config.self)
        if conf.options.hasIPAM { try IPAMDelegate.gc(r) }
    }
}
