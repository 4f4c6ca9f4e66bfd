// The firewall chained plugin: forwarded traffic to and from the container's addresses is
// accepted in the suite's table `inet netlab`, and with `ingressPolicy: same-bridge` traffic
// between containers of different same-bridge bridges is dropped. A container is set
// elements commented with its owner, added in one atomic batch; DEL, CHECK and GC find them
// by that comment.

import CNI
import NFTables
import NetTypes
import PluginKit

public struct Firewall: CNIPlugin {
    public init() {}

    // MARK: ADD

    /// ADD: one batch with the container's elements (and the layout when it is missing);
    /// `prevResult` passed on unchanged. The batch applies whole or not at all, so a failed
    /// ADD leaves nothing behind.
    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(FirewallConfig.self)
        let prev = try r.requirePrevResult()
        let footprint = try Self.footprint(r, conf, prev)
        guard !footprint.addresses.isEmpty else { return prev }
        try CNIError.mapping("firewall ADD") { try FirewallLayout.add(NFTSocket(), footprint) }
        return prev
    }

    /// What ADD makes for this request: every container address of `prevResult`, and the
    /// bridge to isolate with `same-bridge`.
    static func footprint(_ r: CNIRequest, _ conf: FirewallConfig, _ prev: CNIResult) throws(CNIError) -> FirewallLayout.Footprint {
        let bridge = conf.ingressPolicy == .sameBridge ? try isolatedBridge(prev) : nil
        return FirewallLayout.Footprint(addresses: containerAddresses(prev), isolatedBridge: bridge, owner: ElementOwner(r))
    }

    /// The addresses of `prevResult` on a sandbox interface, or naming no interface.
    static func containerAddresses(_ prev: CNIResult) -> [IPAddress] {
        var seen = Set<IPAddress>()
        return prev.ips.filter { ip in
            guard let i = ip.interface, i >= 0, i < prev.interfaces.count else { return true }
            return prev.interfaces[i].sandbox?.isEmpty == false
        }.map(\.address.address).filter { seen.insert($0).inserted }
    }

    /// The bridge of `same-bridge`: the first interface of `prevResult`, as the reference
    /// reads it (the bridge plugin lists the bridge first); it must be a host interface.
    static func isolatedBridge(_ prev: CNIResult) throws(CNIError) -> String {
        guard let first = prev.interfaces.first, first.sandbox?.isEmpty ?? true else {
            throw CNIError.invalidConfig("ingressPolicy \"same-bridge\": prevResult names no bridge (its first interface must be the "
                + "host bridge; chain firewall after the bridge plugin)")
        }
        do {
            try validateInterfaceName(first.name)
        } catch {
            throw CNIError.invalidConfig("ingressPolicy \"same-bridge\": prevResult's bridge \"\(first.name)\" is not a valid interface name")
        }
        return first.name
    }

    // MARK: DEL, CHECK, STATUS, GC

    /// DEL: every element owned by the attachment, found by its comment (no `prevResult`
    /// needed), removed in one batch. None left, or no table, is success.
    public func del(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(FirewallConfig.self)
        try CNIError.mapping("firewall DEL") { try FirewallLayout.owned.removeOwned(by: ElementOwner(r), NFTSocket()) }
    }

    /// CHECK: the forward chain holds its rules, every container address of `prevResult` has
    /// its element owned by this attachment, and with `same-bridge` its isolation elements and
    /// its bridge's chain exist.
    public func check(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FirewallConfig.self)
        let prev = try r.requirePrevResult()
        let expected = try Self.footprint(r, conf, prev)
        guard !expected.addresses.isEmpty else { return }
        try CNIError.mapping("firewall CHECK") {
            let sock = try NFTSocket()
            if let missing = try FirewallLayout.missingRule(sock, bridge: expected.isolatedBridge) {
                throw CNIError(code: .internal, msg: "firewall CHECK: \(missing)")
            }
            let mine = try FirewallLayout.owned.find(sock, where: expected.owner.owns)
            for (set, e) in expected.elements where !mine.contains(where: { $0.0 == set && $0.1 == e }) {
                throw CNIError(code: .internal,
                               msg: "firewall CHECK: element \(e.key.map(\.description).joined(separator: " . ")) of container "
                                + "\(r.containerID) (owner \(expected.owner)) missing from \(set)")
            }
        }
    }

    /// STATUS: ready whenever the configuration is valid (it is read, so a refused backend is
    /// code 7 here too).
    public func status(_ r: CNIRequest) throws {
        _ = try r.pluginConfig(FirewallConfig.self)
    }

    /// GC: every element of this network whose attachment is not valid, in one batch.
    public func gc(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FirewallConfig.self)
        let isStale = ElementOwner.isStale(network: conf.network, valid: r.validAttachments)
        try CNIError.mapping("firewall GC") {
            let sock = try NFTSocket()
            try OwnedElements.remove(sock, FirewallLayout.owned.find(sock, where: isStale))
        }
    }
}

extension Firewall {
    /// What `firewall` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab firewall plugin: forwarded traffic of the container accepted, bridges isolated (nftables)" }
}
