// What the daemon was told on its command line, as plain values: which store, which
// underlay, where subnet.env goes, lease timing, the health endpoint. The command-line
// layer (Command.swift) fills these in; everything below it reads only these.

import NetTypes
import Overlay
import OverlayStores

/// Which lease store, and how to reach it; the same for the daemon and its subcommands.
public struct StoreSettings: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A SQLite database file on this machine (no server).
        case embedded
        /// etcd v3, flannel's own store.
        case etcd
    }

    public var kind: Kind
    /// The embedded store's database file.
    public var path: String
    /// How to reach etcd (for `.etcd`).
    public var etcd: EtcdOptions?
    /// The keys of the network (`--etcd-prefix`).
    public var layout: StoreLayout

    /// Where the embedded store lives unless `--store-path` says otherwise.
    public static let defaultPath = "/var/lib/overlayd/leases.db"
    /// flanneld's endpoints when `--store etcd` is given without `--etcd-endpoints`.
    public static let flannelDefaultEndpoints = ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]

    public init(kind: Kind, path: String = StoreSettings.defaultPath, etcd: EtcdOptions? = nil,
                layout: StoreLayout = StoreLayout()) {
        self.kind = kind
        self.path = path
        self.etcd = etcd
        self.layout = layout
    }

    /// Opens the store. etcd connects on its first request, so this never waits for it.
    public func open() async throws(StoreError) -> any LeaseStore {
        switch kind {
        case .embedded: return try await EmbeddedLeaseStore.open(path: path)
        case .etcd: return try EtcdLeaseStore(options: etcd ?? EtcdOptions(endpoints: Self.flannelDefaultEndpoints))
        }
    }

    /// The store in words for logs: never a credential.
    public var summary: String {
        switch kind {
        case .embedded: return "embedded store \(path), prefix \(layout.prefix)"
        case .etcd:
            let endpoints = (etcd?.endpoints ?? Self.flannelDefaultEndpoints).joined(separator: ",")
            return "etcd \(endpoints), prefix \(layout.prefix)"
        }
    }
}

/// How to find this host's underlay interface and addresses (flanneld's `--iface`,
/// `--iface-regex`, `--public-ip`, `--public-ipv6`).
public struct UnderlaySettings: Sendable, Hashable {
    /// Interface names or addresses, tried in order.
    public var interfaces: [String] = []
    /// Regular expressions matched against every interface's addresses, then names.
    public var interfacePatterns: [String] = []
    /// The address peers reach this host at, when not the interface's own (behind NAT).
    public var publicIP: IPAddress?
    public var publicIPv6: IPAddress?

    public init(interfaces: [String] = [], interfacePatterns: [String] = [],
                publicIP: IPAddress? = nil, publicIPv6: IPAddress? = nil) {
        self.interfaces = interfaces
        self.interfacePatterns = interfacePatterns
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
    }
}

/// Everything the daemon runs with.
public struct DaemonSettings: Sendable {
    public var store: StoreSettings
    public var underlay: UnderlaySettings
    /// `--subnet-file`.
    public var subnetFile: String
    /// `--ip-masq`.
    public var ipMasq: Bool
    /// `--subnet-lease-ttl`.
    public var leaseTTL: Duration
    /// `--subnet-lease-renew-margin`.
    public var renewMargin: Duration
    /// `--healthz-ip`/`--healthz-port`; nil when the port is 0 (no endpoint, as flanneld).
    public var healthz: HealthzAddress?
    /// Where the VTEP-MAC seed is kept (`--state-dir`).
    public var stateDirectory: String

    public static let defaultStateDirectory = "/var/lib/overlayd"
    /// flannel's lease lifetime.
    public static let defaultLeaseTTL: Duration = .seconds(24 * 3600)
    /// flannel's renewal margin, 60 minutes.
    public static let defaultRenewMargin: Duration = .seconds(60 * 60)

    public init(store: StoreSettings, underlay: UnderlaySettings = UnderlaySettings(),
                subnetFile: String = SubnetEnv.defaultPath, ipMasq: Bool = false,
                leaseTTL: Duration = DaemonSettings.defaultLeaseTTL, renewMargin: Duration = DaemonSettings.defaultRenewMargin,
                healthz: HealthzAddress? = nil, stateDirectory: String = DaemonSettings.defaultStateDirectory) {
        self.store = store
        self.underlay = underlay
        self.subnetFile = subnetFile
        self.ipMasq = ipMasq
        self.leaseTTL = leaseTTL
        self.renewMargin = renewMargin
        self.healthz = healthz
        self.stateDirectory = stateDirectory
    }

    /// How long after a renewal the next one is due: the margin before expiry, as flannel
    /// does; when the margin is not shorter than the TTL itself (a short test TTL with the
    /// 60-minute default), halfway through the TTL instead.
    public static func renewInterval(ttl: Duration, margin: Duration) -> Duration {
        margin < ttl ? ttl - margin : ttl / 2
    }

    public var renewInterval: Duration { Self.renewInterval(ttl: leaseTTL, margin: renewMargin) }
}

/// Where `/healthz` is served.
public struct HealthzAddress: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
