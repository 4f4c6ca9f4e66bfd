// Networks: each one a CNI network configuration list in `<run dir>/networks/NAME.conflist`
// (for a simulated host, `<base>/hosts/H/networks`). The `bridge` network always exists: when
// no conflist named bridge is there, a built-in one is used (loopback + bridge `netlab0` +
// host-local 10.88.0.0/16 with its data under the run dir + portmap).
//
// Every network's host-local state lives in the host's run directory (`<run dir>/ipam`): a
// conflist without `ipam.dataDir` gets that one, and one that names a directory outside the
// run directory is refused, so that `host rm` leaves nothing behind and no two hosts share
// reservations. Two networks of one host that share a bridge or overlapping subnets would
// hand out the same addresses on one wire: `collisions(of:)` finds them for the runtime.

import CNI
import FoundationEssentials
import NetTypes
import SystemKit

public struct NetworkStore: Sendable {
    /// The run directory of the (real or simulated) host.
    public let hostDirectory: String
    /// How suggested commands are written (with the user's `--host`).
    public var hint: CommandHint

    public init(hostDirectory: String, hint: CommandHint = CommandHint()) {
        self.hostDirectory = hostDirectory
        self.hint = hint
    }

    public var directory: String { hostDirectory + "/networks" }
    /// host-local's data directory for every network of this host.
    public var ipamDirectory: String { hostDirectory + "/ipam" }
    /// The CNI result cache of this host.
    public var cacheDirectory: String { hostDirectory + "/cni" }

    public static let defaultNetwork = "bridge"
    /// Names a network cannot take (they are network modes).
    static let reserved: Set<String> = ["none", "host", "default", "loopback"]

    public func path(_ name: String) -> String { directory + "/" + name + ".conflist" }

    /// The configuration list of network `name`.
    public func load(_ name: String) throws -> NetworkConfigList {
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidArgument("invalid network name \"\(name)\"") }
        if let bytes = try Files.readIfPresent(path(name)) {
            let list: NetworkConfigList
            do { list = try NetworkConfigList(bytes: bytes) } catch {
                throw RuntimeError.networkUnavailable(network: name, reason: "\(path(name)): \(error.msg)")
            }
            guard list.name == name else {
                throw RuntimeError.networkUnavailable(network: name, reason:
                    "\(path(name)) says \"name\": \"\(list.name)\"; a network's file is named after it (rename it to \(list.name).conflist)")
            }
            return try withIPAMState(list)
        }
        if name == Self.defaultNetwork { return try NetworkConfigList(bytes: builtinBridge()) }
        throw RuntimeError.networkUnavailable(network: name,
            reason: "no such network (see \(hint("network ls")); create it with \(hint("network create", name)))")
    }

    /// `list` with every host-local IPAM's state in this host's `ipam` directory: a missing
    /// `dataDir` gets it; one outside the run directory is refused.
    func withIPAMState(_ list: NetworkConfigList) throws -> NetworkConfigList {
        guard case .object(var top) = try JSONValue.parse(list.bytes) else { return list }
        var plugins = list.plugins
        var changed = false
        for i in plugins.indices {
            guard case .object(var plugin) = plugins[i], case .object(var ipam)? = plugin["ipam"],
                  ipam["type"]?.stringValue == "host-local" else { continue }
            if let dir = ipam["dataDir"]?.stringValue {
                guard dir == hostDirectory || dir.hasPrefix(hostDirectory + "/") else {
                    throw RuntimeError.networkUnavailable(network: list.name, reason:
                        "ipam.dataDir \(dir) is outside this host's run directory \(hostDirectory): its reservations would be "
                        + "shared with whatever else uses it and outlive the host; remove the key (netlab keeps them in \(ipamDirectory))")
                }
                continue
            }
            ipam["dataDir"] = .string(ipamDirectory)
            plugin["ipam"] = .object(ipam)
            plugins[i] = .object(plugin)
            changed = true
        }
        guard changed else { return list }
        top["plugins"] = .array(plugins)
        return try NetworkConfigList(bytes: JSONValue.object(top).serialized())
    }

    /// Every network, the built-in `bridge` included, sorted by name. A conflist that cannot be
    /// read or parsed throws (naming its file), so that no caller mistakes it for no network.
    public func list() throws -> [NetworkConfigList] {
        let suffix = ".conflist"
        // A file whose name no network can have (written by hand) is not one of ours.
        var names = Set(try Files.listIfPresent(directory).filter { $0.hasSuffix(suffix) }
            .map { String($0.dropLast(suffix.count)) }.filter(ContainerRecord.isValidName))
        names.insert(Self.defaultNetwork)
        return try names.sorted().map(load)
    }

    /// The built-in `bridge` network.
    public func builtinBridge() -> [UInt8] {
        let list = Self.conflist(name: Self.defaultNetwork, bridge: "netlab0", subnets: [CIDR("10.88.0.0/16")!],
                                 gateway: nil, dataDir: ipamDirectory, loopback: true)
        return list.serialized(pretty: true)
    }

    /// A conflist: [loopback,] bridge (gateway, masquerade, hairpin, `ips`/`mac` capabilities)
    /// + host-local, then portmap.
    static func conflist(name: String, bridge: String, subnets: [CIDR], gateway: IPAddress?, dataDir: String,
                         loopback: Bool) -> JSONValue {
        let ranges: [JSONValue] = subnets.map { s in
            var r: [String: JSONValue] = ["subnet": .string(s.description)]
            if let gateway, s.contains(gateway) { r["gateway"] = .string(gateway.description) }
            return .array([.object(r)])
        }
        var routes: [JSONValue] = []
        if subnets.contains(where: { $0.address.isV4 }) { routes.append(["dst": "0.0.0.0/0"]) }
        if subnets.contains(where: { !$0.address.isV4 }) { routes.append(["dst": "::/0"]) }
        let bridgePlugin: JSONValue = [
            "type": "bridge", "bridge": .string(bridge), "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "capabilities": ["ips": true, "mac": true],
            "ipam": ["type": "host-local", "ranges": .array(ranges), "routes": .array(routes), "dataDir": .string(dataDir)],
        ]
        let portmap: JSONValue = ["type": "portmap", "capabilities": ["portMappings": true], "snat": true]
        var plugins: [JSONValue] = loopback ? [["type": "loopback"]] : []
        plugins += [bridgePlugin, portmap]
        return ["cniVersion": "1.1.0", "name": .string(name), "plugins": .array(plugins)]
    }

    /// The subnets a list's host-local ranges use.
    public static func subnets(of list: NetworkConfigList) -> [CIDR] {
        list.plugins.flatMap { p -> [CIDR] in
            let ranges = p["ipam"]?["ranges"]?.arrayValue ?? []
            var out = ranges.flatMap { $0.arrayValue ?? [] }.compactMap { $0["subnet"]?.stringValue.flatMap(CIDR.init) }
            if let s = p["ipam"]?["subnet"]?.stringValue.flatMap(CIDR.init) { out.append(s) }
            return out
        }
    }

    /// The bridge device a list uses.
    public static func bridgeName(of list: NetworkConfigList) -> String? {
        list.plugins.first { $0["type"]?.stringValue == "bridge" }?["bridge"]?.stringValue
    }

    /// `network create`: writes `NAME.conflist`. Subnets must not overlap another network's;
    /// without one, the first free 10.89.N.0/24 (and with `ipv6`, fd89:0:0:N::/64).
    @discardableResult
    public func create(name: String, subnets requested: [String], gateway: String?, ipv6: Bool,
                       driver: String = "bridge") throws -> NetworkConfigList {
        guard driver == "bridge" else { throw RuntimeError.invalidArgument("unknown --driver \(driver): only bridge is supported") }
        guard ContainerRecord.isValidName(name), !Self.reserved.contains(name), name != Self.defaultNetwork else {
            throw RuntimeError.invalidArgument("invalid network name \"\(name)\": \(name == Self.defaultNetwork || Self.reserved.contains(name) ? "the name is reserved" : "use letters, digits, '_', '.', '-'")")
        }
        if Files.exists(path(name)) { throw RuntimeError.invalidArgument("network \(name) already exists") }
        var subnets: [CIDR] = []
        for s in requested {
            guard let c = CIDR(s) else {
                throw RuntimeError.invalidArgument("invalid --subnet \"\(s)\": expected a network address like 10.90.0.0/24")
            }
            let network = CIDR(address: c.networkAddress, prefixLength: c.prefixLength)!
            guard network.address == c.address else {
                throw RuntimeError.invalidArgument("invalid --subnet \"\(s)\": it has host bits set; use \(network)")
            }
            subnets.append(c)
        }
        let existing = try list()
        let others = existing.flatMap { l in Self.subnets(of: l).map { (network: l.name, subnet: $0) } }
        for s in subnets {
            if let o = others.first(where: { $0.subnet.overlaps(s) }) {
                throw RuntimeError.invalidArgument("subnet \(s) overlaps \(o.subnet) of network \(o.network)")
            }
        }
        let bridge = Self.deriveBridgeName(name)
        if let o = existing.first(where: { Self.bridgeName(of: $0) == bridge }) {
            throw RuntimeError.invalidArgument("network \(o.name) already uses bridge \(bridge); choose another name")
        }
        func free(_ make: (Int) -> CIDR) throws -> CIDR {
            for n in 0..<256 {
                let c = make(n)
                if !others.contains(where: { $0.subnet.overlaps(c) }) { return c }
            }
            throw RuntimeError.invalidArgument("no free subnet left: give one with --subnet")
        }
        if !subnets.contains(where: { $0.address.isV4 }) && (subnets.isEmpty || ipv6) && requested.isEmpty {
            subnets.append(try free { CIDR("10.89.\($0).0/24")! })
        }
        if ipv6, !subnets.contains(where: { !$0.address.isV4 }) {
            subnets.append(try free { CIDR("fd89:0:0:\(String($0, radix: 16))::/64")! })
        }
        var gw: IPAddress?
        if let gateway {
            guard let g = IPAddress(gateway), subnets.contains(where: { $0.contains(g) }) else {
                throw RuntimeError.invalidArgument("invalid --gateway \(gateway): it must be an address in the subnet")
            }
            gw = g
        }
        let json = Self.conflist(name: name, bridge: bridge, subnets: subnets, gateway: gw,
                                 dataDir: ipamDirectory, loopback: false)
        try Files.makeDirectories(directory)
        try Files.writeAtomically(path(name), json.serialized(pretty: true) + [10])
        return try load(name)
    }

    /// The other networks of this host that share `list`'s bridge or overlap its subnets, with
    /// what they share (e.g. `bridge netlab0, subnet 10.88.0.0/16`).
    public func collisions(of list: NetworkConfigList) throws -> [(network: String, shared: String)] {
        let bridge = Self.bridgeName(of: list), subnets = Self.subnets(of: list)
        return try self.list().filter { $0.name != list.name }.compactMap { other in
            var shared: [String] = []
            if let bridge, Self.bridgeName(of: other) == bridge { shared.append("bridge \(bridge)") }
            for s in Self.subnets(of: other) where subnets.contains(where: { $0.overlaps(s) }) {
                shared.append("subnet \(s)")
            }
            return shared.isEmpty ? nil : (other.name, shared.joined(separator: ", "))
        }
    }

    /// `nl-NAME` when that fits in 15 bytes, else `nl-` + a prefix + a hash of the name.
    public static func deriveBridgeName(_ name: String) -> String {
        if name.utf8.count <= 12 { return "nl-" + name }
        var h: UInt32 = 2166136261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        let hex = String(h & 0xffff, radix: 16)
        return "nl-" + name.prefix(7) + "-" + String(repeating: "0", count: 4 - hex.count) + hex
    }

    /// `network rm`: deletes the conflist (the caller checks that no container uses it).
    public func remove(_ name: String) throws {
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidArgument("invalid network name \"\(name)\"") }
        guard Files.exists(path(name)) else {
            if name == Self.defaultNetwork { throw RuntimeError.invalidArgument("the built-in network bridge cannot be removed") }
            throw RuntimeError.networkUnavailable(network: name, reason: "no such network")
        }
        try Files.remove(path(name))
    }
}
