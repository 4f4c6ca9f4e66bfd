// Overlay networks: one network spanning every simulated host of a run directory, carried by
// `overlayd` (flannel's L3 VXLAN model). netlab writes the network config into the store, runs
// one daemon per simulated host inside that host's netns, waits for the subnet it leased
// (its subnet.env), and gives each host a conflist whose `flannel` plugin hands that subnet
// to bridge + host-local.
//
//   <base>/overlays/NAME/network.json                    the record (OverlayNetwork)
//   <base>/overlays/NAME/store.db                        the embedded store (unless etcd)
//   <base>/hosts/H/overlays/NAME/{daemon.json,overlayd.log,subnet.env,state/,flannel/}
//   <base>/hosts/H/networks/NAME.conflist                flannel (+ portmap)

import CNI
import FoundationEssentials
import NetTypes
import Netlink
import SystemKit

/// An overlay network as recorded on disk.
public struct OverlayNetwork: Codable, Sendable, Equatable {
    public var name: String
    /// The cluster network the hosts' subnets are leased from (flannel's `Network`).
    public var subnet: CIDR
    /// The VXLAN network identifier: distinct per overlay network, so each has its own device.
    public var vni: Int
    /// etcd endpoints (comma-separated), nil for the embedded store.
    public var etcdEndpoints: String?
}

/// A running daemon as recorded: the pid and its start time name one process, also after the
/// pid is recycled.
struct OverlayDaemonRecord: Codable, Sendable {
    var pid: Int32
    var startTime: UInt64
}

public struct OverlayNetworks: Sendable {
    public let hosts: SimulatedHosts
    /// The `overlayd` executable.
    public let overlayd: String
    /// argv of the helper that enters a netns and execs a program there (`netlab __netns-exec`).
    public let netnsExec: [String]

    public init(hosts: SimulatedHosts, overlayd: String, netnsExec: [String]) {
        self.hosts = hosts
        self.overlayd = overlayd
        self.netnsExec = netnsExec
    }

    static let defaultSubnet = CIDR("10.244.0.0/16")!
    /// How long a daemon may take to lease a subnet and program its device.
    static let readyTimeoutMilliseconds = 30_000
    /// How long a daemon may take to exit on SIGTERM before it is killed.
    static let stopTimeoutMilliseconds = 5_000
    static let pollMilliseconds = 50

    var directory: String { hosts.base + "/overlays" }
    func directory(_ name: String) -> String { directory + "/" + name }
    func recordPath(_ name: String) -> String { directory(name) + "/network.json" }
    func storePath(_ name: String) -> String { directory(name) + "/store.db" }
    /// The etcd key prefix of a network: one per network, so several share one etcd.
    static func etcdPrefix(_ name: String) -> String { "/netlab/" + name + "/network" }

    /// A host's directory for network `name`.
    public func hostDirectory(_ host: String, _ name: String) -> String { hosts.directory(host) + "/overlays/" + name }
    public func subnetFile(_ host: String, _ name: String) -> String { hostDirectory(host, name) + "/subnet.env" }
    func daemonPath(_ host: String, _ name: String) -> String { hostDirectory(host, name) + "/daemon.json" }
    public func logPath(_ host: String, _ name: String) -> String { hostDirectory(host, name) + "/overlayd.log" }

    // MARK: records

    public func get(_ name: String) throws -> OverlayNetwork? {
        guard ContainerRecord.isValidName(name), let bytes = try Files.readIfPresent(recordPath(name)) else { return nil }
        do { return try JSONDecoder().decode(OverlayNetwork.self, from: Data(bytes)) } catch {
            throw RuntimeError.state("overlay network \(name): unreadable \(recordPath(name)): \(error)")
        }
    }

    public func list() throws -> [OverlayNetwork] {
        try Files.listIfPresent(directory).filter(ContainerRecord.isValidName).sorted().compactMap(get)
    }

    /// The subnet `host` leased for network `name`, nil while it has none.
    public func leasedSubnet(_ host: String, _ name: String) throws -> CIDR? {
        guard let bytes = try Files.readIfPresent(subnetFile(host, name)) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("FLANNEL_SUBNET=") {
            guard let c = CIDR(String(line.dropFirst("FLANNEL_SUBNET=".count))) else { return nil }
            return CIDR(address: c.networkAddress, prefixLength: c.prefixLength)
        }
        return nil
    }

    // MARK: create and remove

    /// `network create --driver overlay`: the record, the config in the store, a daemon on
    /// every simulated host and each host's conflist. Undone whole on failure.
    @discardableResult
    public func create(name: String, subnet requested: String?, etcdEndpoints: String?) throws -> OverlayNetwork {
        let all = try hosts.list()
        guard !all.isEmpty else {
            throw RuntimeError.invalidArgument("an overlay network spans the simulated hosts, and there is none: create them first (\(hosts.hint("host add", "NAME")))")
        }
        let subnet = try Self.parseSubnet(requested)
        try checkFree(name: name, subnet: subnet, on: all)
        // The lowest VNI no other overlay network of the run directory uses; a failed listing
        // fails the create (it must never hand out a VNI that may be taken).
        let taken = Set(try list().map(\.vni))
        let vni = (1...).first { !taken.contains($0) }!
        let network = OverlayNetwork(name: name, subnet: subnet, vni: vni, etcdEndpoints: etcdEndpoints)
        try Files.makeDirectories(directory(name))
        do {
            try writeRecord(network)
            try putConfig(network)
            for h in all { try attach(h.name, to: network) }
            return network
        } catch {
            // Undo is best effort: the error being thrown says what failed.
            try? remove(name, hostsWithContainers: [])
            throw error
        }
    }

    static func parseSubnet(_ s: String?) throws -> CIDR {
        guard let s else { return defaultSubnet }
        guard let c = CIDR(s), c.address.isV4 else {
            throw RuntimeError.invalidArgument("invalid --subnet \"\(s)\": an overlay network needs an IPv4 network like 10.244.0.0/16")
        }
        let network = CIDR(address: c.networkAddress, prefixLength: c.prefixLength)!
        guard network.address == c.address else {
            throw RuntimeError.invalidArgument("invalid --subnet \"\(s)\": it has host bits set; use \(network)")
        }
        guard c.prefixLength <= maxPrefixLength else {
            throw RuntimeError.invalidArgument("invalid --subnet \(s): an overlay network is split into one subnet per host; use a /\(maxPrefixLength) or larger")
        }
        return c
    }

    /// The smallest cluster network overlayd splits into per-host subnets (prefix + 2 per host).
    static let maxPrefixLength = 22

    /// Refuses a name another network of any host has, and a subnet overlapping one.
    func checkFree(name: String, subnet: CIDR, on all: [SimulatedHost]) throws {
        guard ContainerRecord.isValidName(name), !NetworkStore.reserved.contains(name), name != NetworkStore.defaultNetwork else {
            throw RuntimeError.invalidArgument("invalid network name \"\(name)\": \(name == NetworkStore.defaultNetwork || NetworkStore.reserved.contains(name) ? "the name is reserved" : "use letters, digits, '_', '.', '-'")")
        }
        if try get(name) != nil { throw RuntimeError.invalidArgument("network \(name) already exists") }
        for o in try list() where o.subnet.overlaps(subnet) {
            throw RuntimeError.invalidArgument("subnet \(subnet) overlaps \(o.subnet) of network \(o.name)")
        }
        for h in all.sorted(by: { $0.name < $1.name }) {
            let store = NetworkStore(hostDirectory: hosts.directory(h.name))
            for list in try store.list() {
                if list.name == name { throw RuntimeError.invalidArgument("network \(name) already exists on host \(h.name)") }
                if let s = NetworkStore.subnets(of: list).first(where: { $0.overlaps(subnet) }) {
                    throw RuntimeError.invalidArgument("subnet \(subnet) overlaps \(s) of network \(list.name) on host \(h.name)")
                }
            }
        }
    }

    func writeRecord(_ network: OverlayNetwork) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Files.writeAtomically(recordPath(network.name), [UInt8](try enc.encode(network)) + [10])
    }

    /// The store flags of `overlayd` for `network`.
    func storeArguments(_ network: OverlayNetwork) -> [String] {
        if let etcd = network.etcdEndpoints { return ["--etcd-endpoints", etcd, "--etcd-prefix", Self.etcdPrefix(network.name)] }
        return ["--store-path", storePath(network.name)]
    }

    /// `overlayd config put -`: flannel's network config (Network, Backend vxlan with our VNI).
    func putConfig(_ network: OverlayNetwork) throws {
        let config: JSONValue = ["Network": .string(network.subnet.description),
                                 "Backend": ["Type": "vxlan", "VNI": .number(Double(network.vni))]]
        let out = try Subprocess.run(overlayd, arguments: ["config", "put", "-"] + storeArguments(network),
                                     environment: Environment.current, stdin: config.serialized(pretty: false))
        guard out.status.shellExitCode == 0 else {
            throw RuntimeError.state("overlayd config put: \(String(decoding: out.stderr, as: UTF8.self).trimmingSpace)")
        }
    }

    /// `network rm` of an overlay network: refused while containers use it on some host;
    /// stops every host's daemon, removes its device, state and conflist, then the record.
    public func remove(_ name: String, hostsWithContainers users: [(host: String, containers: [String])]) throws {
        if let (host, names) = users.first {
            throw RuntimeError.invalidArgument(
                "network \(name) is in use by \(names.joined(separator: ", ")) on host \(host): remove \(names.count == 1 ? "it" : "those containers") first "
                + "(\(hosts.hint("rm", "--host", host, (["-f"] + names).joined(separator: " "))))")
        }
        let network = try get(name)
        var firstError: (any Error)?
        for h in try hosts.list() {
            do { try detach(h.name, from: name, vni: network?.vni) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
        try Files.removeTree(directory(name))
    }

    // MARK: one host

    /// Starts `host`'s daemon for `network`, waits for its subnet and installs the conflist.
    public func attach(_ host: String, to network: OverlayNetwork) throws {
        let h = try hosts.get(host)
        try Files.makeDirectories(hostDirectory(host, network.name) + "/state")
        try startDaemon(h, network)
        try waitForSubnet(host, network.name)
        let store = NetworkStore(hostDirectory: hosts.directory(host))
        try Files.makeDirectories(store.directory)
        try Files.writeAtomically(store.path(network.name), conflist(host, network).serialized(pretty: true) + [10])
    }

    /// Stops `host`'s daemon for network `name` and removes its device, conflist and state.
    public func detach(_ host: String, from name: String, vni: Int?) throws {
        try stopDaemon(host, name)
        if let vni, let h = try hosts.record(host), NetworkNamespace.isLive(path: h.netnsPath) {
            let sock = try RouteSocket(namespace: h.netnsPath)
            do { try sock.deleteLink(named: "flannel.\(vni)") } catch let e as SystemError where e.isNotFound {}
        }
        let store = NetworkStore(hostDirectory: hosts.directory(host))
        if Files.exists(store.path(name)) { try Files.remove(store.path(name)) }
        try Files.removeTree(hostDirectory(host, name))
    }

    /// Starts every overlay network's daemon on a host just added.
    public func attachAll(_ host: String) throws {
        for n in try list() { try attach(host, to: n) }
    }

    /// Stops every overlay network's daemon of a host being removed.
    public func detachAll(_ host: String) throws {
        for n in try list() { try detach(host, from: n.name, vni: n.vni) }
    }

    /// flannel (subnet.env of this host, saved delegate configs under the host's directory,
    /// host-local data in the host's ipam directory), then portmap.
    func conflist(_ host: String, _ network: OverlayNetwork) -> JSONValue {
        let store = NetworkStore(hostDirectory: hosts.directory(host))
        let flannel: JSONValue = [
            "type": "flannel", "subnetFile": .string(subnetFile(host, network.name)),
            "dataDir": .string(hostDirectory(host, network.name) + "/flannel"),
            "delegate": ["bridge": .string(NetworkStore.deriveBridgeName(network.name)), "hairpinMode": true],
            "ipam": ["dataDir": .string(store.ipamDirectory)],
        ]
        let portmap: JSONValue = ["type": "portmap", "capabilities": ["portMappings": true], "snat": true]
        return ["cniVersion": "1.0.0", "name": .string(network.name), "plugins": [flannel, portmap]]
    }
}

extension String {
    var trimmingSpace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
