// The firewall plugin's configuration: the reference plugin's keys, read the suite's way.
// Only the nftables backend exists here; the reference's iptables and firewalld backends are
// refused by name, so a config written for them never silently gets something else.

import CNI

/// `ingressPolicy`: who may open connections to the container across the host.
public enum IngressPolicy: String, Sendable, Hashable {
    /// Everything the host forwards may reach the container (the default).
    case open
    /// Containers of bridges with this policy cannot reach one another across the host:
    /// traffic from such a container into another such bridge is dropped.
    case sameBridge = "same-bridge"
}

/// The options of a `firewall` network config.
public struct FirewallConfig: PluginConfiguration, Sendable {
    public var network: String
    public var ingressPolicy: IngressPolicy

    /// The keys as written.
    public struct Options: Decodable {
        var backend: String?
        var ingressPolicy: String?
        /// firewalld's zone (reference, firewalld backend only): accepted, no effect here.
        var firewalldZone: String?
        /// The reference iptables backend's admin chain: accepted, no effect here (admin
        /// rules go into the chain `fw_admin` of `inet netlab`).
        var iptablesAdminChainName: String?
    }

    /// The one backend of this suite.
    public static let backend = "nftables"

    public init(_ raw: Options, request r: CNIRequest) throws(CNIError) {
        network = r.config.name
        // DEL and GC clean up by owner whatever the config says, so a config written for
        // another backend or policy never blocks removing what was made.
        let cleaningUp = r.command == .del || r.command == .gc
        if !cleaningUp { try Self.checkBackend(raw.backend) }
        switch raw.ingressPolicy {
        case nil, "", IngressPolicy.open.rawValue?: ingressPolicy = .open
        case IngressPolicy.sameBridge.rawValue?: ingressPolicy = .sameBridge
        case let other?:
            if cleaningUp { ingressPolicy = .open; break }
            throw CNIError.invalidConfig("ingressPolicy: \"\(other)\" is not supported (\"open\" or \"same-bridge\")"
                + (other == "isolated" ? "; to keep containers of one bridge apart use the bridge plugin's \"portIsolation\"" : ""))
        }
    }

    /// `backend`: absent, "" (what podman writes) or "nftables". The reference's "iptables"
    /// and "firewalld", and anything else, are code 7: this suite writes nftables only, in
    /// its own table.
    static func checkBackend(_ backend: String?) throws(CNIError) {
        guard let backend, !backend.isEmpty, backend != Self.backend else { return }
        throw CNIError.invalidConfig("backend: \"\(backend)\" is not supported; this plugin suite's firewall "
            + "writes nftables only, in its own table inet netlab (set \"backend\": \"\(Self.backend)\" or leave it out)")
    }
}
