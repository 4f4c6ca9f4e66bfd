// The macvlan plugin: the container gets a macvlan of a master interface — its own MAC
// address on the master's Ethernet segment, a host of that network like any other — with
// addresses from an IPAM plugin, or none (L2 only). The verbs are the child-link verbs
// shared with ipvlan (PluginKit's ChildLinkPlugin); this module is macvlan's own part.

import CNI
import Netlink
import NetTypes
import PluginKit

public typealias Macvlan = ChildLinkPlugin<MacvlanConfig>

/// The options of a `macvlan` network config: the shared ones, `mode`, `mac`, `bcqueuelen`.
public struct MacvlanConfig: ChildLinkConfig {
    public static let kind = "macvlan"
    public var options: ChildLinkOptions
    public var mode: MacvlanMode
    /// The container's MAC: `runtimeConfig.mac`, CNI_ARGS `MAC`, `args.cni.mac` or `mac`.
    public var mac: MACAddress?
    /// `bcqueuelen`: the broadcast/multicast queue of the master's macvlans (kernel's default when nil).
    public var broadcastQueueLength: UInt32?

    /// The keys as written: the shared ones and `bcqueuelen`.
    public struct Options: Decodable {
        var keys: ChildLinkKeys
        var bcqueuelen: Int?

        enum CodingKeys: String, CodingKey { case bcqueuelen }

        public init(from decoder: any Decoder) throws {
            keys = try ChildLinkKeys(from: decoder)
            bcqueuelen = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Int.self, forKey: .bcqueuelen)
        }
    }

    /// The modes a container link may have (`source` needs MAC lists the reference never sets).
    static let modes: [MacvlanMode] = [.bridge, .private, .vepa, .passthru]

    public init(_ raw: Options, request r: CNIRequest) throws(CNIError) {
        options = try ChildLinkOptions(raw.keys, request: r)
        mode = .bridge
        guard ChildLinkOptions.validates(r) else { return }
        if let text = raw.keys.mode, !text.isEmpty {
            guard let m = MacvlanMode(name: text), Self.modes.contains(m) else {
                throw CNIError.invalidConfig("mode: unknown macvlan mode \"\(text)\" (one of \(Self.modes.map(\.name).joined(separator: ", ")))")
            }
            mode = m
        }
        mac = try r.requestedMAC(configured: raw.keys.mac)
        if let q = raw.bcqueuelen, q != 0 {
            guard let length = UInt32(exactly: q), q > 0 else {
                throw CNIError.invalidConfig("bcqueuelen: \(q) is out of range 0-\(UInt32.max)")
            }
            broadcastQueueLength = length
        }
    }

    public func create(_ name: String, master: Link, on sock: RouteSocket, in namespace: NetworkNamespace?) throws {
        try sock.addMacvlan(MacvlanSpec(name: name, parentIndex: master.index, mode: mode, mtu: options.mtu, mac: mac,
                                        broadcastQueueLength: broadcastQueueLength), namespace: namespace)
    }

    public func verify(_ name: String, on ctr: RouteSocket, context: String) throws {
        let have = try ctr.macvlanMode(named: name)
        guard have == mode else {
            throw CNIError(code: .internal, msg: "\(context): \(name) is in macvlan mode \(have?.name ?? "unknown"), expected \(mode.name)")
        }
    }
}

extension ChildLinkPlugin where Config == MacvlanConfig {
    /// What `macvlan` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab macvlan plugin: a macvlan of a master interface per container, IPAM" }
}
