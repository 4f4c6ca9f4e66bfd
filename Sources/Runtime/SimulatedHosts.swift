// Simulated hosts: each one a network namespace joined to a shared underlay, so several
// "machines" can be built on one real machine without ever touching its own network
// namespace. The underlay is a bridge inside its own namespace; every host gets a veth whose
// inside end is the host's `eth0` with an address from 198.18.0.0/24 (RFC 2544's benchmark
// range: never routed on a real network).
//
//   netns netlab-underlay:  bridge underlay0  ── u-<host> ┐
//   netns netlab-<host>:    eth0 198.18.0.N/24 ───────────┘   lo up, ip_forward on
//
// State: <base>/hosts/<host>/host.json (the record), beside the host's own run directory
// content (containers, networks, CNI cache, IPAM data).

import FoundationEssentials
import NetTypes
import Netlink
import SystemKit

/// One simulated host as recorded on disk.
public struct SimulatedHost: Codable, Sendable, Equatable {
    public var name: String
    /// The host's network namespace name under /run/netns.
    public var netns: String
    /// The host's address on the underlay (`eth0`).
    public var address: CIDR
    /// The underlay-side veth in the underlay namespace.
    public var underlayPort: String

    public var netnsPath: String { NetworkNamespace.path(named: netns) }
}

public struct SimulatedHosts: Sendable {
    public static let underlayNetns = "netlab-underlay"
    public static let underlayBridge = "underlay0"
    public static let underlaySubnet = CIDR("198.18.0.0/24")!

    /// The base run directory (not a host's): hosts live in `<base>/hosts/<name>`.
    public let base: String
    /// How suggested commands are written (with the user's `--run-dir`, never `--host`).
    public var hint: CommandHint

    public init(base: String, hint: CommandHint = CommandHint()) {
        self.base = base
        self.hint = hint
    }

    public func directory(_ name: String) -> String { base + "/hosts/" + name }
    func recordPath(_ name: String) -> String { directory(name) + "/host.json" }

    /// The netns name of a host (`netlab-<name>`), visible to `ip netns`.
    public static func netnsName(_ host: String) -> String { "netlab-" + host }

    public func get(_ name: String) throws -> SimulatedHost {
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidArgument("invalid host name \"\(name)\"") }
        guard let host = try record(name) else {
            throw RuntimeError.invalidArgument("no such host: \(name) (create it with: \(hint("host add", name)))")
        }
        return host
    }

    /// The host's record, nil when there is none (no host, or one whose `add` did not finish).
    func record(_ name: String) throws -> SimulatedHost? {
        guard let bytes = try Files.readIfPresent(recordPath(name)) else { return nil }
        do {
            return try JSONDecoder().decode(SimulatedHost.self, from: Data(bytes))
        } catch {
            throw RuntimeError.state("host \(name): unreadable \(recordPath(name)): \(error)")
        }
    }

    public func list() throws -> [SimulatedHost] {
        try Files.listIfPresent(base + "/hosts").filter(ContainerRecord.isValidName).compactMap(record)
    }

    /// Creates the host: its netns, its veth on the underlay (creating the underlay when it is
    /// the first host), its address, `lo` up and IP forwarding on. Undone whole on failure.
    @discardableResult
    public func add(_ name: String) throws -> SimulatedHost {
        guard ContainerRecord.isValidName(name), name.utf8.count <= 13 else {
            throw RuntimeError.invalidArgument("invalid host name \"\(name)\": use at most 13 letters, digits, '_', '.', '-'")
        }
        if try record(name) != nil { throw RuntimeError.invalidArgument("host \(name) already exists") }
        let netnsName = SimulatedHosts.netnsName(name)
        if NetworkNamespace.isLive(path: NetworkNamespace.path(named: netnsName)) {
            throw RuntimeError.invalidArgument("network namespace \(netnsName) already exists; remove it or choose another host name")
        }
        try Files.makeDirectories(directory(name))
        // Undo is best effort: the error being thrown says what failed.
        var undo: [() -> Void] = [{ [self] in try? Files.removeTree(directory(name)) }]
        let lock = try FileLock(path: Self.underlayLockPath)
        defer { lock.unlock() }
        do {
            let underlay = try ensureUnderlay()
            let address = try freeAddress(underlay)
            try NetworkNamespace.create(named: netnsName)
            undo.append { try? NetworkNamespace.delete(named: netnsName) }
            let hostNS = try NetworkNamespace.open(path: NetworkNamespace.path(named: netnsName))
            let port = "u-" + name
            try underlay.addVethPair(name: port, peerName: "eth0", peerNamespace: hostNS)
            undo.append { try? underlay.deleteLink(named: port) }
            let bridge = try underlay.requireLink(named: SimulatedHosts.underlayBridge)
            let p = try underlay.requireLink(named: port)
            try underlay.setMaster(p.index, master: bridge.index)
            try underlay.setUp(p.index)

            let inside = try RouteSocket(namespace: hostNS)
            let lo = try inside.requireLink(named: "lo")
            try inside.setUp(lo.index)
            let eth0 = try inside.requireLink(named: "eth0")
            try inside.addAddress(eth0.index, address, broadcast: address.lastAddress)
            try inside.setUp(eth0.index)
            try Sysctl.set("net/ipv4/ip_forward", "1", namespace: hostNS.path)

            let host = SimulatedHost(name: name, netns: netnsName, address: address, underlayPort: port)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try Files.writeAtomically(recordPath(name), [UInt8](try enc.encode(host)) + [10])
            return host
        } catch {
            for u in undo.reversed() { u() }
            if let e = error as? SystemError { throw RuntimeError.state("host add \(name): \(e)") }
            throw error
        }
    }

    /// Removes the host's netns (its veths, bridges and nftables go with it) and its state;
    /// the underlay goes too when no host is left. Containers must be removed first.
    public func remove(_ name: String) throws {
        let host = try get(name)
        if NetworkNamespace.isLive(path: host.netnsPath) {
            do { try NetworkNamespace.delete(named: host.netns) } catch let e as SystemError where e.isNotFound {}
        }
        let lock = try FileLock(path: Self.underlayLockPath)
        defer { lock.unlock() }
        if NetworkNamespace.isLive(path: NetworkNamespace.path(named: SimulatedHosts.underlayNetns)) {
            let underlay = try RouteSocket(namespace: SimulatedHosts.underlayNetns)
            // The port usually went with the host's netns (a veth dies with its peer).
            do { try underlay.deleteLink(named: host.underlayPort) } catch let e as SystemError where e.isNotFound {}
            // The underlay is shared by every run directory's hosts: it goes when no port is left.
            if try !underlay.links().contains(where: { $0.name.hasPrefix("u-") }) {
                try NetworkNamespace.delete(named: SimulatedHosts.underlayNetns)
            }
        }
        try Files.removeTree(directory(name))
    }

    /// The underlay namespace and bridge, created when missing.
    func ensureUnderlay() throws -> RouteSocket {
        let path = NetworkNamespace.path(named: SimulatedHosts.underlayNetns)
        if !NetworkNamespace.isLive(path: path) {
            do { try NetworkNamespace.create(named: SimulatedHosts.underlayNetns) }
            catch let e as SystemError where e.isAlreadyExists {}
        }
        let sock = try RouteSocket(namespace: path)
        if try sock.link(named: SimulatedHosts.underlayBridge) == nil {
            do { try sock.addBridge(name: SimulatedHosts.underlayBridge) }
            catch let e as SystemError where e.isAlreadyExists {}
        }
        let br = try sock.requireLink(named: SimulatedHosts.underlayBridge)
        if !br.isUp { try sock.setUp(br.index) }
        if let lo = try sock.link(named: "lo"), !lo.isUp { try sock.setUp(lo.index) }
        return sock
    }

    /// Serialises changes to the shared underlay between netlab processes (any run directory).
    static let underlayLockPath = "/run/netlab-underlay.lock"

    /// The lowest underlay address (from .2) no host on the underlay uses: the hosts of every
    /// run directory share it, so the addresses are read from the hosts' eth0 behind each port.
    func freeAddress(_ underlay: RouteSocket) throws -> CIDR {
        var used = Set(try list().map { $0.address.address })
        for port in try underlay.links() where port.name.hasPrefix("u-") {
            let ns = NetworkNamespace.path(named: SimulatedHosts.netnsName(String(port.name.dropFirst(2))))
            let sock: RouteSocket
            do {
                sock = try RouteSocket(namespace: ns)
            } catch let e as SystemError where e.kind == .namespaceGone {
                continue  // a host being removed: its port goes with its netns (a veth dies with its peer)
            }
            guard let eth0 = try sock.link(named: "eth0") else { continue }
            for a in try sock.addresses(index: eth0.index) { used.insert(a.address.address) }
        }
        var ip = SimulatedHosts.underlaySubnet.networkAddress.advanced(by: 2)!
        while SimulatedHosts.underlaySubnet.contains(ip) && ip != SimulatedHosts.underlaySubnet.lastAddress {
            if !used.contains(ip) { return CIDR(address: ip, prefixLength: SimulatedHosts.underlaySubnet.prefixLength)! }
            ip = ip.next!
        }
        throw RuntimeError.invalidArgument("the underlay \(SimulatedHosts.underlaySubnet) is full")
    }
}
