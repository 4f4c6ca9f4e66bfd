// The portmap chained plugin: `runtimeConfig.portMappings` become elements of the DNAT maps
// in `inet netlab`, each commented with its owner, added in one atomic batch with the layout.

import CNI
import Netlink
import NetTypes
import NFTables
import PluginKit

public struct Portmap: CNIPlugin {
    public init() {}

    func owner(_ r: CNIRequest) -> ElementOwner {
        ElementOwner(network: r.config.name, containerID: r.containerID, ifName: r.ifName)
    }

    func options(_ r: CNIRequest) throws -> PortmapConfig {
        let c = try r.decodeConfig(PortmapConfig.self)
        try c.validate()
        return c
    }

    /// The container's addresses: those of prevResult's ips on a sandbox interface (or with
    /// no interface index), first of each family.
    static func containerIPs(_ prev: CNIResult) -> [IPAddress] {
        prev.ips.filter { ip in
            guard let i = ip.interface, i >= 0, i < prev.interfaces.count else { return true }
            return prev.interfaces[i].sandbox?.isEmpty == false
        }.map(\.address.address)
    }

    func nft(_ what: String, _ body: () throws -> Void) throws {
        try CNIError.mapping("portmap \(what)", body)
    }

    // MARK: ADD

    public func add(_ r: CNIRequest) throws -> CNIResult {
        let opts = try options(r)
        let prev = try r.requirePrevResult()
        let pms = r.config.runtimeConfig.portMappings ?? []
        let ips = Portmap.containerIPs(prev)
        let mappings = try Mapping.resolve(pms, containerIPs: ips)
        guard !mappings.isEmpty else { return prev }
        let me = owner(r)
        let v4c = try Condition.parse(opts.conditionsV4 ?? [], family: .v4)
        let v6c = try Condition.parse(opts.conditionsV6 ?? [], family: .v6)

        // The host interfaces the container addresses are reached through (its bridge).
        var hairpin: [(IPAddress, String)] = []
        if opts.snatEnabled {
            hairpin = try netlinkStep("portmap ADD: find the container's host interface") {
                let rs = try RouteSocket()
                return try Set(mappings.map(\.containerIP)).sorted().compactMap { ip in
                    try hostInterface(for: ip, rs).map { (ip, $0) }
                }
            }
        }

        var batch = Batch()
        PortmapLayout.ensure(into: &batch, conditionsV4: v4c, conditionsV6: v6c, masqBit: opts.masqBit)
        let grouped = Dictionary(grouping: mappings, by: { PortmapLayout.map(for: $0) })
        for map in PortmapLayout.maps {
            guard let ms = grouped[map] else { continue }
            batch.addElements(map, ms.map { PortmapLayout.element($0, owner: me) }, exclusive: true)
        }
        for (ip, ifname) in hairpin {
            batch.addElements(ip.isV4 ? PortmapLayout.hairpinV4 : PortmapLayout.hairpinV6,
                              [SetElement(.address(ip), .ifname(ifname), comment: me.comment)], exclusive: false)
        }

        let sock = try openSocket("ADD")
        do {
            try sock.apply(batch)
        } catch let e as NFTError where e.isAlreadyExists {
            // Which container holds the port? Read the existing elements' comments.
            let holders = try conflicts(mappings, sock)
            let others = holders.filter { !me.owns($0.1) }
            if others.isEmpty && !holders.isEmpty {
                // A repeated ADD for the same attachment: replace our own elements.
                try removeOwned(by: me, sock)
                try nft("ADD") { try sock.apply(batch) }
            } else if let (m, comment) = others.first {
                let who = ElementOwner.parse(comment).map { "container \($0.containerID) (\($0.ifName), network \($0.networkTag))" }
                    ?? "another owner (\(comment ?? "no comment"))"
                throw CNIError(code: .internal,
                               msg: "portmap ADD: host port \(m.hostIP.map { "\($0) " } ?? "")\(m.hostPort)/\(m.protoName) is already mapped by \(who); nothing was changed")
            } else {
                throw CNIError(code: .internal, msg: "portmap ADD: \(e)")
            }
        } catch let e as NFTError {
            throw CNIError(code: .internal, msg: "portmap ADD: \(e)")
        }
        for ifname in Set(hairpin.filter { $0.0.isV4 }.map(\.1)) {
            // The host reaching 127.0.0.1:hostPort: the DNATed packet leaves on the bridge with
            // a loopback source, which the kernel drops unless route_localnet is on. Set after
            // the batch, so a refused ADD changes nothing at all.
            do {
                try netlinkStep("portmap ADD") { try Sysctl.set("net/ipv4/conf/\(ifname)/route_localnet", "1") }
            } catch {
                try? removeOwned(by: me, sock)
                throw error
            }
        }
        // A stale UDP/SCTP flow to this host port (a client that kept sending while nothing was
        // mapped) would bypass the new DNAT. TCP flows cannot outlive their connection, and the
        // conntrack walk costs milliseconds, so TCP-only ADDs skip it (DEL flushes every protocol).
        let datagram = mappings.filter { $0.proto != 6 }
        _ = try? Conntrack.delete(matching: Array(Set(datagram.map { ConntrackFilter(proto: $0.proto, destinationPort: $0.hostPort) })))
        return prev
    }

    func openSocket(_ verb: String) throws -> NFTSocket {
        do { return try NFTSocket() } catch let e as NFTError {
            throw CNIError(code: .internal, msg: "portmap \(verb): \(e)")
        }
    }

    /// The interface of the most specific route that reaches `ip` directly (no gateway).
    func hostInterface(for ip: IPAddress, _ rs: RouteSocket) throws -> String? {
        let best = try rs.routes(family: ip.family).filter { $0.gateway == nil && $0.destination.contains(ip) && $0.outputIndex != nil }
            .max { $0.destination.prefixLength < $1.destination.prefixLength }
        guard let idx = best?.outputIndex else { return nil }
        return try rs.link(index: idx)?.name
    }

    /// Existing elements that collide with `mappings` (same map key), with their comments.
    func conflicts(_ mappings: [Mapping], _ sock: NFTSocket) throws -> [(Mapping, String?)] {
        var out: [(Mapping, String?)] = []
        for map in PortmapLayout.maps {
            let existing = (try? sock.elements(of: map)) ?? []
            for m in mappings where PortmapLayout.map(for: m) == map {
                let key = PortmapLayout.key(m)
                if let e = existing.first(where: { $0.key == key }) { out.append((m, e.comment)) }
            }
        }
        return out
    }

    /// Elements of every portmap map/set whose comment `matches`, per set.
    func elements(_ sock: NFTSocket, where matches: (String?) -> Bool) throws -> [(NFTSet, [SetElement])] {
        let present = Set(try sock.setNames(table: SuiteFirewall.table))
        return try PortmapLayout.all.filter { present.contains($0.name) }.compactMap { s in
            let es = try sock.elements(of: s).filter { matches($0.comment) }
            return es.isEmpty ? nil : (s, es)
        }
    }

    /// Removes the given elements in one batch, then flushes conntrack for the removed mappings.
    func remove(_ found: [(NFTSet, [SetElement])], _ sock: NFTSocket) throws {
        guard !found.isEmpty else { return }
        var b = Batch()
        for (s, es) in found { b.destroyElements(s, es) }
        try sock.apply(b)
        let filters = found.flatMap { $0.1 }.compactMap(PortmapLayout.mapping(from:))
            .map { ConntrackFilter(proto: $0.proto, destinationPort: $0.hostPort) }
        _ = try? Conntrack.delete(matching: Array(Set(filters)))
    }

    func removeOwned(by me: ElementOwner, _ sock: NFTSocket) throws {
        try nft("remove elements of \(me.containerID)") { try remove(try elements(sock, where: me.owns), sock) }
    }

    // MARK: DEL, CHECK, GC

    public func del(_ r: CNIRequest) throws {
        _ = try options(r)
        let sock = try openSocket("DEL")
        // The table may not exist yet: nothing to undo.
        var tables: [Table] = []
        try nft("DEL") { tables = try sock.tables() }
        guard tables.contains(SuiteFirewall.table) else { return }
        try removeOwned(by: owner(r), sock)
    }

    public func check(_ r: CNIRequest) throws {
        _ = try options(r)
        let prev = try r.requirePrevResult()
        let mappings = try Mapping.resolve(r.config.runtimeConfig.portMappings ?? [], containerIPs: Portmap.containerIPs(prev))
        guard !mappings.isEmpty else { return }
        let sock = try openSocket("CHECK")
        let me = owner(r)
        var mine: [(NFTSet, [SetElement])] = []
        try nft("CHECK") { mine = try elements(sock, where: me.owns) }
        let have = Set(mine.flatMap { $0.1 }.compactMap(PortmapLayout.mapping(from:)))
        for m in mappings where !have.contains(m) {
            throw CNIError(code: .internal, msg: "portmap CHECK: mapping \(m) of container \(r.containerID) is missing from \(SuiteFirewall.table)")
        }
    }

    public func gc(_ r: CNIRequest) throws {
        _ = try options(r)
        let sock = try openSocket("GC")
        var tables: [Table] = []
        try nft("GC") { tables = try sock.tables() }
        guard tables.contains(SuiteFirewall.table) else { return }
        let network = r.config.name
        let valid = Set(r.validAttachments.map { "\($0.containerID) \($0.ifname)" })
        try nft("GC") {
            let stale = try elements(sock) { c in
                guard ElementOwner.comment(c, belongsTo: network), let p = ElementOwner.parse(c) else { return false }
                return !valid.contains("\(p.containerID) \(p.ifName)")
            }
            try remove(stale, sock)
        }
    }
}
