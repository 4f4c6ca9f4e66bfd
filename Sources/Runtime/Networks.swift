// Networks: each one a CNI network configuration list in `<run dir>/networks/NAME.conflist`
// (for a simulated host, `<base>/hosts/H/networks`). The `bridge` network always exists: when
// no conflist named bridge is there, a built-in one is used (loopback + bridge `netlab0` +
// host-local 10.88.0.0/16 with its data under the run dir + portmap).

import CNI
import FoundationEssentials
import NetTypes
import SystemKit

public struct NetworkStore: Sendable {
    /// The run directory of the (real or simulated) host.
    public let hostDirectory: String

    public init(hostDirectory: String) { self.hostDirectory = hostDirectory }

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
            do { return try NetworkConfigList(bytes: bytes) } catch {
                throw RuntimeError.networkUnavailable(network: name, reason: "\(path(name)): \(error.msg)")
            }
        }
        if name == Self.defaultNetwork { return try NetworkConfigList(bytes: builtinBridge()) }
        throw RuntimeError.networkUnavailable(network: name,
            reason: "no such network (see netlab network ls; create it with netlab network create \(name))")
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
            guard let c = CIDR(s), c.networkAddress == c.address else {
                throw RuntimeError.invalidArgument("invalid --subnet \"\(s)\": expected a network address like 10.90.0.0/24")
            }
            subnets.append(c)
        }
        let others = try list().flatMap(Self.subnets(of:))
        for s in subnets {
            if let o = others.first(where: { $0.overlaps(s) }) {
                throw RuntimeError.invalidArgument("subnet \(s) overlaps \(o) of another network")
            }
        }
        func free(_ make: (Int) -> CIDR) throws -> CIDR {
            for n in 0..<256 {
                let c = make(n)
                if !others.contains(where: { $0.overlaps(c) }) { return c }
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
        let json = Self.conflist(name: name, bridge: Self.deriveBridgeName(name), subnets: subnets, gateway: gw,
                                 dataDir: ipamDirectory, loopback: false)
        try Files.makeDirectories(directory)
        try Files.writeAtomically(path(name), json.serialized(pretty: true) + [10])
        return try load(name)
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
