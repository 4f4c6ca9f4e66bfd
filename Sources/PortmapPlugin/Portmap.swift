// The portmap chained plugin: `runtimeConfig.portMappings` become elements of the DNAT maps
// in `inet netlab`, each commented with its owner, added in one atomic batch with the layout.

import CNI
import Netlink
import NetTypes
import NFTables
import PluginKit

public struct Portmap: CNIPlugin {
    public init() {}

    /// Every portmap map and set: their elements carry owner comments, so DEL (without the
    /// container's result), CHECK, GC and ADD's rollback find a container's elements by owner.
    static let owned = OwnedElements(PortmapLayout.all)

    /// The container's addresses: those of prevResult's ips on a sandbox interface (or with
    /// no interface index), first of each family.
    static func containerIPs(_ prev: CNIResult) -> [IPAddress] {
        prev.ips.filter { ip in
            guard let i = ip.interface, i >= 0, i < prev.interfaces.count else { return true }
            return prev.interfaces[i].sandbox?.isEmpty == false
        }.map(\.address.address)
    }

    static func mappings(_ r: CNIRequest, _ prev: CNIResult) throws(CNIError) -> [Mapping] {
        try Mapping.resolve(r.config.runtimeConfig.portMappings ?? [], containerIPs: containerIPs(prev))
    }

    // MARK: ADD

    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(PortmapConfig.self)
        let prev = try r.requirePrevResult()
        let mappings = try Portmap.mappings(r, prev)
        guard !mappings.isEmpty else { return prev }
        let me = ElementOwner(r)
        try CNIError.mapping("portmap ADD") {
            let hairpin = conf.snat ? try hairpinInterfaces(mappings) : []
            let sock = try NFTSocket()
            try apply(addBatch(mappings, hairpin: hairpin, conf, owner: me), mappings, owner: me, sock)
            try enableRouteLocalnet(hairpin, owner: me, sock)
        }
        // A stale UDP/SCTP flow to this host port (a client that kept sending while nothing was
        // mapped) would bypass the new DNAT. TCP flows cannot outlive their connection, and the
        // conntrack walk costs milliseconds, so TCP-only ADDs skip it (DEL flushes every protocol).
        flushFlows(mappings.filter { $0.proto != Mapping.tcp })
        return prev
    }

    /// The host interface each container address is reached through (its bridge), for the
    /// hairpin sets.
    func hairpinInterfaces(_ mappings: [Mapping]) throws -> [(IPAddress, String)] {
        let rs = try RouteSocket()
        return try Set(mappings.map(\.containerIP)).sorted().compactMap { ip in
            try hostInterface(for: ip, rs).map { (ip, $0) }
        }
    }

    /// The interface of the most specific route that reaches `ip` directly (no gateway).
    func hostInterface(for ip: IPAddress, _ rs: RouteSocket) throws -> String? {
        let best = try rs.routes(family: ip.family).filter { $0.gateway == nil && $0.destination.contains(ip) && $0.outputIndex != nil }
            .max { $0.destination.prefixLength < $1.destination.prefixLength }
        guard let idx = best?.outputIndex else { return nil }
        return try rs.link(index: idx)?.name
    }

    /// ADD's one batch: the layout (created or rewritten whole), the map elements (exclusive:
    /// a host port mapped by anyone already fails the batch) and the hairpin elements.
    func addBatch(_ mappings: [Mapping], hairpin: [(IPAddress, String)], _ conf: PortmapConfig,
                  owner me: ElementOwner) -> Batch {
        var batch = Batch()
        PortmapLayout.ensure(into: &batch, conditionsV4: conf.conditionsV4, conditionsV6: conf.conditionsV6, masqBit: conf.masqBit)
        let grouped = Dictionary(grouping: mappings, by: { PortmapLayout.map(for: $0) })
        for map in PortmapLayout.maps {
            guard let ms = grouped[map] else { continue }
            batch.addElements(map, ms.map { PortmapLayout.element($0, owner: me) }, exclusive: true)
        }
        for (ip, ifname) in hairpin {
            batch.addElements(ip.isV4 ? PortmapLayout.hairpinV4 : PortmapLayout.hairpinV6,
                              [SetElement(.address(ip), .ifname(ifname), comment: me.comment)], exclusive: false)
        }
        return batch
    }

    /// Applies ADD's batch. When a host port is mapped already: by this attachment (a repeated
    /// ADD), its elements are replaced; by another, the ADD fails naming the holder and
    /// nothing is changed.
    func apply(_ batch: Batch, _ mappings: [Mapping], owner me: ElementOwner, _ sock: NFTSocket) throws {
        do {
            try sock.apply(batch)
        } catch let e as NFTError where e.isAlreadyExists {
            // Which container holds the port? Read the existing elements' comments.
            let holders = try conflicts(mappings, sock)
            if let (m, comment) = holders.first(where: { !me.owns($0.1) }) {
                let who = ElementOwner.parse(comment).map { "container \($0.containerID) (\($0.ifName), network \($0.networkTag))" }
                    ?? "another owner (\(comment ?? "no comment"))"
                throw CNIError(code: .internal,
                               msg: "portmap ADD: host port \(m.hostIP.map { "\($0) " } ?? "")\(m.hostPort)/\(m.protoName) is already mapped by \(who); nothing was changed")
            }
            guard !holders.isEmpty else { throw e }  // EEXIST with no mapping holding a port: report it as it is
            try removeOwned(by: me, sock)
            try sock.apply(batch)
        }
    }

    /// Existing elements that collide with `mappings` (same map key), with their comments. A
    /// map that does not exist holds none; any other failed read fails the caller.
    func conflicts(_ mappings: [Mapping], _ sock: NFTSocket) throws -> [(Mapping, String?)] {
        var out: [(Mapping, String?)] = []
        for map in PortmapLayout.maps {
            let existing: [SetElement]
            do { existing = try sock.elements(of: map) } catch let e as NFTError where e.isNotFound { continue }
            for m in mappings where PortmapLayout.map(for: m) == map {
                let key = PortmapLayout.key(m)
                if let e = existing.first(where: { $0.key == key }) { out.append((m, e.comment)) }
            }
        }
        return out
    }

    /// The host reaching 127.0.0.1:hostPort: the DNATed packet leaves on the bridge with a
    /// loopback source, which the kernel drops unless route_localnet is on. Set after the
    /// batch, and the elements removed again when it fails, so a refused ADD changes nothing.
    func enableRouteLocalnet(_ hairpin: [(IPAddress, String)], owner me: ElementOwner, _ sock: NFTSocket) throws {
        for ifname in Set(hairpin.filter { $0.0.isV4 }.map(\.1)) {
            do {
                try Sysctl.set("net/ipv4/conf/\(ifname)/route_localnet", "1")
            } catch {
                // Best-effort undo: the sysctl failure is what the runtime must see.
                try? removeOwned(by: me, sock)
                throw error
            }
        }
    }

    /// Removes the given elements in one batch, then flushes conntrack for the removed mappings.
    func remove(_ found: [(NFTSet, SetElement)], _ sock: NFTSocket) throws {
        try OwnedElements.remove(sock, found)
        flushFlows(found.compactMap { PortmapLayout.mapping(from: $0.1) })
    }

    func removeOwned(by me: ElementOwner, _ sock: NFTSocket) throws {
        try remove(Portmap.owned.find(sock, where: me.owns), sock)
    }

    /// Deletes the conntrack entries towards these mappings' host ports, so a flow that began
    /// before the change does not keep its old translation.
    func flushFlows(_ mappings: [Mapping]) {
        let filters = Set(mappings.map { ConntrackFilter(proto: $0.proto, destinationPort: $0.hostPort) })
        // Best-effort: the rules are already right; a flow missed here only ends with its timeout.
        _ = try? Conntrack.delete(matching: Array(filters))
    }

    // MARK: DEL, CHECK, GC

    /// DEL: every element owned by the attachment, found by its comment (also without the
    /// port mappings or the result); none is success.
    public func del(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(PortmapConfig.self)
        try CNIError.mapping("portmap DEL") { try removeOwned(by: ElementOwner(r), NFTSocket()) }
    }

    public func check(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(PortmapConfig.self)
        let prev = try r.requirePrevResult()
        let mappings = try Portmap.mappings(r, prev)
        guard !mappings.isEmpty else { return }
        let me = ElementOwner(r)
        let mine = try CNIError.mapping("portmap CHECK") { try Portmap.owned.find(NFTSocket(), where: me.owns) }
        let have = Set(mine.compactMap { PortmapLayout.mapping(from: $0.1) })
        for m in mappings where !have.contains(m) {
            throw CNIError(code: .internal, msg: "portmap CHECK: mapping \(m) of container \(r.containerID) is missing from \(SuiteFirewall.table)")
        }
    }

    /// GC: every element of this network whose attachment is not valid.
    public func gc(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(PortmapConfig.self)
        let isStale = ElementOwner.isStale(network: r.config.name, valid: r.validAttachments)
        try CNIError.mapping("portmap GC") {
            let sock = try NFTSocket()
            try remove(Portmap.owned.find(sock, where: isStale), sock)
        }
    }
}

extension Portmap {
    /// What `portmap` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab portmap plugin: publishes container ports through nftables maps" }
}
