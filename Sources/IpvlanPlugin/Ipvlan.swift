// The ipvlan plugin: the container gets an ipvlan of a master interface — its own addresses
// on the master's network behind the master's one MAC address, for segments (Wi-Fi, cloud
// networks, port security) that admit one MAC per port. Addresses come from an IPAM plugin,
// or, chained after another plugin, from its result. The verbs are the child-link verbs
// shared with macvlan (PluginKit's ChildLinkPlugin); this module is ipvlan's own part.

import CNI
import Netlink
import PluginKit

public typealias Ipvlan = ChildLinkPlugin<IpvlanConfig>

/// The options of an `ipvlan` network config: the shared ones and `mode`.
public struct IpvlanConfig: ChildLinkConfig {
    public static let kind = "ipvlan"
    public var options: ChildLinkOptions
    public var mode: IpvlanMode

    /// The keys as written (`mac` only to refuse it).
    public typealias Options = ChildLinkKeys

    public init(_ raw: Options, request r: CNIRequest) throws(CNIError) {
        options = try ChildLinkOptions(raw, masterFromPrevResult: true, request: r)
        mode = .l2
        guard ChildLinkOptions.validates(r) else { return }
        if let text = raw.mode, !text.isEmpty {
            guard let m = IpvlanMode(name: text) else {
                throw CNIError.invalidConfig("mode: unknown ipvlan mode \"\(text)\" (one of \(IpvlanMode.allCases.map(\.name).joined(separator: ", ")))")
            }
            mode = m
        }
        for (field, value) in [("mac", raw.mac), ("runtimeConfig.mac", r.config.runtimeConfig.mac)] where !(value ?? "").isEmpty {
            throw CNIError.invalidConfig("\(field): an ipvlan link has its master's MAC address and cannot have its own (use macvlan for a MAC per container)")
        }
        if r.command == .add, !options.hasIPAM, (r.prevResult?.ips ?? []).isEmpty {
            throw CNIError.invalidConfig("ipam: an ipvlan link needs addresses: set ipam.type, or chain ipvlan after a plugin whose result has IPs")
        }
    }

    public func create(_ name: String, master: Link, on sock: RouteSocket, in namespace: NetworkNamespace?) throws {
        try sock.addIpvlan(IpvlanSpec(name: name, parentIndex: master.index, mode: mode, mtu: options.mtu), namespace: namespace)
    }

    public func verify(_ name: String, on ctr: RouteSocket, context: String) throws {
        let have = try ctr.ipvlanMode(named: name)
        guard have == mode else {
            throw CNIError(code: .internal, msg: "\(context): \(name) is in ipvlan mode \(have?.name ?? "unknown"), expected \(mode.name)")
        }
    }

    /// The IPAM plugin's addresses; without `ipam.type`, those of `prevResult` (chained).
    public func addresses(_ r: CNIRequest, _ undo: inout Rollback) throws -> CNIResult {
        if options.hasIPAM { return try IPAMDelegate.allocate(r, &undo, plugin: Self.kind) }
        let prev = try r.requirePrevResult()
        return CNIResult(cniVersion: r.cniVersion, ips: prev.ips, routes: prev.routes, dns: prev.dns)
    }
}

extension ChildLinkPlugin where Config == IpvlanConfig {
    /// What `ipvlan` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab ipvlan plugin: an ipvlan of a master interface per container, IPAM or chained" }
}
