// The command line: `overlayd [FLAGS]` runs the daemon; `overlayd config put FILE|-`,
// `overlayd config get` and `overlayd leases` work on the store the same flags select.
// flanneld's flags keep their names, defaults and environment variables (FLANNELD_<FLAG>);
// see FlagEnvironment for how the environment and Go's flag syntax are folded in.

import ArgumentParser
import Dispatch
import Glibc
import Logging
import NetTypes
import Overlay
import OverlayStores
import SystemKit

public struct OverlaydCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "overlayd",
        abstract: "A flannel-compatible VXLAN overlay daemon: leases this host a subnet from etcd or an embedded "
            + "store, programs the VTEP and every peer's neighbour, FDB and route entries, and writes subnet.env.",
        discussion: """
            Every flag can also be set in the environment as FLANNELD_<FLAG> (uppercase, dashes as \
            underscores, e.g. FLANNELD_ETCD_ENDPOINTS); a flag on the command line wins. Go's spellings \
            work too: -etcd-endpoints=URL, --ip-masq=true. Without --etcd-endpoints the lease store is the \
            embedded one (--store-path). The network config is read from <etcd-prefix>/config; store it \
            with `overlayd config put FILE`.
            """,
        subcommands: [ConfigCommand.self, LeasesCommand.self])

    @OptionGroup var store: StoreFlags

    @Option(name: .customLong("iface"), help: ArgumentHelp(
        "Interface (name or address) to reach other hosts through; may be repeated, the first match wins. "
            + "Default: the interface of the default route.", valueName: "name|address"))
    var interfaces: [String] = []

    @Option(name: .customLong("iface-regex"), help: ArgumentHelp(
        "Regular expression matched against interface addresses, then names; may be repeated.", valueName: "regex"))
    var interfacePatterns: [String] = []

    @Option(name: .customLong("public-ip"), help: ArgumentHelp(
        "IPv4 address other hosts reach this one at. Default: the interface's address.", valueName: "address"))
    var publicIP: String?

    @Option(name: .customLong("public-ipv6"), help: ArgumentHelp(
        "IPv6 address other hosts reach this one at. Default: the interface's address.", valueName: "address"))
    var publicIPv6: String?

    @Option(name: .customLong("subnet-file"), help: ArgumentHelp("Where subnet.env is written.", valueName: "path"))
    var subnetFile = SubnetEnv.defaultPath

    @Flag(name: .customLong("ip-masq"), help: "Masquerade traffic from the cluster network to outside it.")
    var ipMasq = false

    @Option(name: .customLong("subnet-lease-renew-margin"), help: ArgumentHelp(
        "Renew the lease this long before it expires: minutes, or a duration such as 30s "
            + "(half the TTL when it is not shorter than the TTL).", valueName: "minutes"))
    var renewMargin = "60"

    @Option(name: .customLong("subnet-lease-ttl"), help: ArgumentHelp(
        "Lifetime of the lease between renewals (10s, 5m, 24h).", valueName: "duration"))
    var leaseTTL = "24h"

    @Option(name: .customLong("healthz-ip"), help: ArgumentHelp("Address /healthz listens on.", valueName: "address"))
    var healthzIP = "0.0.0.0"

    @Option(name: .customLong("healthz-port"), help: ArgumentHelp(
        "Port of /healthz (200 once the device, routes and subnet.env are in place, else 503); 0: none.",
        valueName: "port"))
    var healthzPort = 0

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Directory of the seed the VTEP MAC is derived from (kept across restarts).", valueName: "path"))
    var stateDirectory = DaemonSettings.defaultStateDirectory

    public init() {}

    /// The daemon's settings from the flags; a wrong value is refused naming its flag.
    func settings() throws -> DaemonSettings {
        func address(_ text: String?, _ family: IPAddress.Family, _ flag: String) throws -> IPAddress? {
            guard let text else { return nil }
            guard let ip = IPAddress(text), ip.family == family else {
                throw ValidationError("--\(flag): \"\(text)\" is not an IP\(family == .v4 ? "v4" : "v6") address")
            }
            return ip
        }
        guard let ttl = GoDuration.parse(leaseTTL), ttl > .zero else {
            throw ValidationError("--subnet-lease-ttl: \"\(leaseTTL)\" is not a positive duration (such as 10s, 5m, 24h)")
        }
        let margin: Duration
        if let minutes = Int(renewMargin), minutes >= 0 {
            margin = .seconds(minutes * 60)
        } else if let d = GoDuration.parse(renewMargin), d >= .zero {
            margin = d
        } else {
            throw ValidationError("--subnet-lease-renew-margin: \"\(renewMargin)\" is neither minutes nor a duration")
        }
        guard (0...Int(UInt16.max)).contains(healthzPort) else {
            throw ValidationError("--healthz-port: \(healthzPort) is not a port (0 turns /healthz off)")
        }
        let underlay = UnderlaySettings(interfaces: interfaces, interfacePatterns: interfacePatterns,
                                        publicIP: try address(publicIP, .v4, "public-ip"),
                                        publicIPv6: try address(publicIPv6, .v6, "public-ipv6"))
        return DaemonSettings(store: try store.settings(), underlay: underlay, subnetFile: subnetFile, ipMasq: ipMasq,
                              leaseTTL: ttl, renewMargin: margin,
                              healthz: healthzPort == 0 ? nil : HealthzAddress(host: healthzIP, port: healthzPort),
                              stateDirectory: stateDirectory)
    }

    public func run() async throws {
        let settings = try settings()
        let log = store.makeLogger()
        let timing = "lease TTL \(GoDuration.format(settings.leaseTTL)), renewed every \(GoDuration.format(settings.renewInterval))"
        log.info("overlayd starting: \(settings.store.summary), subnet file \(settings.subnetFile), \(timing)")
        let leaseStore = try await settings.store.open()
        let daemon = Daemon(settings: settings, store: leaseStore, logger: log)
        if let healthz = settings.healthz {
            _ = try await HealthServer.start(healthz, state: daemon.health)
            log.info("serving \(HealthServer.path) on \(healthz.host):\(healthz.port)")
        }
        SignalHandling.exitOnTermination(log)
        await daemon.run()
    }

    /// The program's entry: the environment and Go's flag syntax folded into the
    /// arguments, then parsed and run.
    public static func start() async {
        let arguments: [String]
        do {
            arguments = try FlagEnvironment.merge(Array(CommandLine.arguments.dropFirst()), environment: Environment.current)
        } catch {
            exit(withError: ValidationError("\(error)"))
        }
        await main(arguments)
    }
}

/// The flags that select and reach the store, shared by every command.
struct StoreFlags: ParsableArguments {
    @Option(name: .customLong("etcd-endpoints"), help: ArgumentHelp(
        "Comma-separated etcd endpoints (http:// or https://); selects the etcd store.", valueName: "urls"))
    var etcdEndpoints: String?

    @Option(name: .customLong("etcd-prefix"), help: ArgumentHelp("Key prefix of the network.", valueName: "prefix"))
    var etcdPrefix = defaultStorePrefix

    @Option(name: .customLong("etcd-keyfile"), help: ArgumentHelp("TLS client key (PEM).", valueName: "path"))
    var etcdKeyFile: String?
    @Option(name: .customLong("etcd-certfile"), help: ArgumentHelp("TLS client certificate (PEM).", valueName: "path"))
    var etcdCertFile: String?
    @Option(name: .customLong("etcd-cafile"), help: ArgumentHelp("TLS CA certificate (PEM).", valueName: "path"))
    var etcdCAFile: String?
    @Option(name: .customLong("etcd-username"), help: ArgumentHelp("etcd user.", valueName: "name"))
    var etcdUsername: String?
    @Option(name: .customLong("etcd-password"), help: ArgumentHelp(
        "etcd password (prefer FLANNELD_ETCD_PASSWORD: the command line is visible to every user).", valueName: "password"))
    var etcdPassword: String?

    @Option(name: .customLong("store"), help: ArgumentHelp(
        "Lease store: embedded (a SQLite file on this machine) or etcd. Default: etcd when --etcd-endpoints "
            + "is given, else embedded.", valueName: "embedded|etcd"))
    var store: StoreSettings.Kind?

    @Option(name: .customLong("store-path"), help: ArgumentHelp("The embedded store's database file.", valueName: "path"))
    var storePath = StoreSettings.defaultPath

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel = Logger.Level.info

    func settings() throws -> StoreSettings {
        let endpoints = etcdEndpoints.map { $0.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty } }
        let kind = store ?? (endpoints?.isEmpty == false ? .etcd : .embedded)
        let layout = StoreLayout(prefix: etcdPrefix)
        guard kind == .etcd else {
            let etcdOnly = [("etcd-endpoints", etcdEndpoints), ("etcd-keyfile", etcdKeyFile), ("etcd-certfile", etcdCertFile),
                            ("etcd-cafile", etcdCAFile), ("etcd-username", etcdUsername), ("etcd-password", etcdPassword)]
            if let (flag, _) = etcdOnly.first(where: { $0.1 != nil }) {
                throw ValidationError("--\(flag) needs the etcd store, but --store embedded was given")
            }
            return StoreSettings(kind: .embedded, path: storePath, layout: layout)
        }
        var options = EtcdOptions(endpoints: endpoints ?? StoreSettings.flannelDefaultEndpoints,
                                  username: etcdUsername, password: etcdPassword,
                                  keyFile: etcdKeyFile, certFile: etcdCertFile, caFile: etcdCAFile)
        if options.endpoints.isEmpty { options.endpoints = StoreSettings.flannelDefaultEndpoints }
        return StoreSettings(kind: .etcd, etcd: options, layout: layout)
    }

    /// Logs on stderr at the chosen level (journald takes them from there under systemd).
    func makeLogger() -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "overlayd")
    }

    /// Opens the selected store for a subcommand.
    func openStore() async throws -> (any LeaseStore, StoreLayout) {
        let s = try settings()
        return (try await s.open(), s.layout)
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Store or show the network config (<etcd-prefix>/config).",
        subcommands: [Put.self, Get.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a network config (flannel's JSON) and store it; a wrong field is refused by name.")
        @OptionGroup var store: StoreFlags
        @Argument(help: ArgumentHelp("The config file, or - for standard input.", valueName: "file|-"))
        var file: String

        func run() async throws {
            let value = file == "-" ? try FileDescriptor.standardInput.readAll(context: "standard input") : try Files.read(file)
            let (leaseStore, layout) = try await store.openStore()
            let config = try await StoreCommands.putConfig(value, store: leaseStore, layout: layout)
            await leaseStore.close()
            let networks = [config.ipv4?.network, config.ipv6?.network].compactMap { $0.map { "\($0)" } }
            print("stored the network config for \(networks.joined(separator: " and ")) at \(layout.configKey)")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the stored network config.")
        @OptionGroup var store: StoreFlags

        func run() async throws {
            let (leaseStore, layout) = try await store.openStore()
            let text = try await StoreCommands.getConfig(store: leaseStore, layout: layout)
            await leaseStore.close()
            print(text.hasSuffix("\n") ? String(text.dropLast()) : text)
        }
    }
}

struct LeasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases", abstract: "List every subnet lease: subnet, public IP, VTEP MAC, expiry.")
    @OptionGroup var store: StoreFlags

    func run() async throws {
        let (leaseStore, layout) = try await store.openStore()
        let rows = try await StoreCommands.leaseRows(store: leaseStore, layout: layout)
        await leaseStore.close()
        print(StoreCommands.table(rows), terminator: "")
    }
}

extension StoreSettings.Kind: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// SIGTERM and SIGINT end the daemon at once and on purpose: the device, the peer entries,
/// the lease and subnet.env stay, so traffic flows on until a restarted daemon takes over.
enum SignalHandling {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    static func exitOnTermination(_ log: Logger) {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                log.info("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"): exiting; the device, peer entries, lease and subnet.env stay")
                exit(0)
            }
            source.resume()
            sources.append(source)
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
