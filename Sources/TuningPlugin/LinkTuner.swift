// The container interface's attributes, read and changed through one rtnetlink socket opened
// inside the container's netns, and its sysctls, read and written from a thread inside it.

import NetTypes
import Netlink
import PluginKit
import SystemKit

struct LinkTuner {
    /// Opened inside the container's netns.
    let sock: RouteSocket
    let netns: String

    init(netns: String) throws {
        sock = try RouteSocket(namespace: netns)
        self.netns = netns
    }

    /// The interface called `name`; ENODEV naming the netns when it is missing.
    func link(_ name: String) throws -> Link {
        guard let l = try sock.link(named: name) else {
            throw SystemError(operation: "find container interface", object: "\(name) in \(netns)", errno: .noSuchDevice)
        }
        return l
    }

    /// What `conf` would change, as it is now.
    func originals(of link: Link, for conf: TuningConfig) throws -> Originals {
        var o = Originals()
        if conf.mac != nil { o.mac = link.mac }
        if conf.promisc != nil { o.promisc = link.isPromiscuous }
        if conf.mtu != nil { o.mtu = link.mtu }
        if conf.allmulti != nil { o.allmulti = link.isAllMulticast }
        if conf.txQueueLength != nil { o.txQueueLength = try sock.txQueueLength(link.index) }
        o.renamedTo = conf.newName
        let keys = conf.sysctls.keys.map(\.path)
        if !keys.isEmpty {
            o.sysctls = try withNetworkNamespace(netns) {
                try Dictionary(uniqueKeysWithValues: keys.map { ($0, try Sysctl.get($0)) })
            }
        }
        return o
    }

    // MARK: changes

    /// Writes sysctls inside the netns, in key order. Each written key's original goes into
    /// `rollback` before the write, so a failure part-way puts the earlier ones back.
    func writeSysctls(_ values: [(path: String, value: String)], originals: [String: String],
                      rollback: inout Rollback) throws {
        guard !values.isEmpty else { return }
        let netns = self.netns
        var written: [(String, String)] = []
        defer {
            if !written.isEmpty {
                rollback.register("sysctls") { try withNetworkNamespace(netns) { for (p, v) in written.reversed() { try Sysctl.set(p, v) } } }
            }
        }
        try withNetworkNamespace(netns) {
            for (p, v) in values {
                if let o = originals[p] { written.append((p, o)) }
                try Sysctl.set(p, v)
            }
        }
    }

    /// Sets every attribute `conf` names on `link`, registering each undo in `rollback`.
    func apply(_ conf: TuningConfig, to link: Link, originals o: Originals, rollback: inout Rollback) throws {
        let sock = self.sock, idx = link.index
        try change("mac", conf.mac, o.mac, &rollback) { try sock.setMAC(idx, $0) }
        try change("promisc", conf.promisc, o.promisc, &rollback) { try sock.setPromiscuous(idx, $0) }
        try change("mtu", conf.mtu, o.mtu, &rollback) { try sock.setMTU(idx, $0) }
        try change("allmulti", conf.allmulti, o.allmulti, &rollback) { try sock.setAllMulticast(idx, $0) }
        try change("txqueuelen", conf.txQueueLength, o.txQueueLength, &rollback) { try sock.setTxQueueLength(idx, $0) }
        if let name = conf.newName, name != link.name {
            try rename(link, to: name)
            let back = link
            rollback.register("rename") { try self.rename(self.link(name), to: back.name) }
        }
    }

    /// Sets `value` when the config names one, and registers setting `original` back.
    private func change<V>(_ what: String, _ value: V?, _ original: V?, _ rollback: inout Rollback,
                           _ set: @escaping (V) throws -> Void) throws {
        guard let value, let original else { return }
        try set(value)
        rollback.register(what) { try set(original) }
    }

    /// Puts back every saved original on `link`, all of them even when some fail; the
    /// failures are returned. The name goes back first: the saved sysctl paths of the
    /// interface (`IFNAME`) name it as it was called before ADD.
    func restore(_ o: Originals, on link: Link, originalName: String) -> [any Error] {
        var failures: [any Error] = []
        func attempt(_ body: () throws -> Void) { do { try body() } catch { failures.append(error) } }
        if link.name != originalName { attempt { try rename(link, to: originalName) } }
        let idx = link.index
        if let mtu = o.mtu { attempt { try sock.setMTU(idx, mtu) } }
        if let mac = o.mac { attempt { try sock.setMAC(idx, mac) } }
        if let on = o.promisc { attempt { try sock.setPromiscuous(idx, on) } }
        if let on = o.allmulti { attempt { try sock.setAllMulticast(idx, on) } }
        if let q = o.txQueueLength { attempt { try sock.setTxQueueLength(idx, q) } }
        if !o.sysctls.isEmpty {
            attempt { try withNetworkNamespace(netns) { for (p, v) in o.sysctls.sorted(by: { $0.key < $1.key }) { try Sysctl.set(p, v) } } }
        }
        return failures
    }

    // MARK: rename

    /// Renames the link. Linux 6.2 and later rename a link that is up; earlier kernels answer
    /// EBUSY, and then the link is taken down, renamed and brought up again (see `renameDown`).
    func rename(_ link: Link, to name: String) throws {
        do {
            try sock.rename(link.index, to: name)
        } catch let e as SystemError where e.kind == .busy && link.isUp {
            try renameDown(link, to: name)
        }
    }

    /// Rename through down/up. Taking a link down removes its IPv6 addresses and every route
    /// through it, so both are read first and what went missing is put back once it is up
    /// (link-local addresses and the kernel's own prefix routes come back by themselves).
    func renameDown(_ link: Link, to name: String) throws {
        let idx = link.index
        let addresses = try sock.addresses(index: idx).filter { $0.scope != .link }
        let routes = try sock.routes().filter { $0.outputIndex == idx && $0.proto != Self.kernelRouteProtocol }
        try sock.setDown(idx)
        var renameError: (any Error)?
        do { try sock.rename(idx, to: name) } catch { renameError = error }
        try sock.setUp(idx)
        let present = Set(try sock.addresses(index: idx).map(\.address))
        for a in addresses where !present.contains(a.address) {
            try sock.addAddress(idx, a.address, broadcast: a.broadcast, noDAD: a.family == .v6)
        }
        let routesNow = Set(try sock.routes().filter { $0.outputIndex == idx }.map { RouteKey($0) })
        for r in routes where !routesNow.contains(RouteKey(r)) { try sock.addRoute(r) }
        if let renameError { throw renameError }
    }

    /// RTPROT_KERNEL: routes the kernel makes for an address.
    static let kernelRouteProtocol: UInt8 = 2

    /// What tells two routes apart when one is put back.
    struct RouteKey: Hashable {
        var destination: CIDR, gateway: IPAddress?, metric: UInt32?
        init(_ r: Route) { destination = r.destination; gateway = r.gateway; metric = r.metric }
    }
}
