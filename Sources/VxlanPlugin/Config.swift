// The vxlan plugin's configuration: the bridge plugin's options for the container's
// attachment (read by BridgeConfig itself, so both plugins mean the same by them), and the
// VXLAN segment's own: vni, port, underlayInterface, local, mtu, learning, remotes, peers,
// dataDir.

import CNI
import BridgePlugin
import NetTypes
import PluginKit

/// Where the segment's peer VTEPs come from.
public enum PeerMode: String, Sendable {
    /// `remotes`, as listed in the configuration.
    case `static`
    /// The hosts of the overlay, from the local overlayd (see Backends.swift).
    case overlayd
}

/// The options of a `vxlan` network config.
public struct VxlanConfig: PluginConfiguration, Sendable {
    /// The attachment: bridge name, isGateway, ipMasq, hairpinMode, mtu (of the veths, filled
    /// in at ADD), the requested MAC, ipam.
    public var bridge: BridgeConfig
    public var network: String
    /// nil only for DEL and GC of a config that does not say it (they need no VNI).
    public var vni: UInt32?
    public var port: UInt16
    public var underlayInterface: String?
    public var local: IPAddress?
    /// `mtu` as configured; nil: the underlay's MTU minus the encapsulation overhead.
    public var mtu: UInt32?
    public var learning: Bool
    public var remotes: [IPAddress]
    public var peers: PeerMode
    public var dataDir: String

    /// The keys as written: the bridge plugin's, then the segment's.
    public struct Options: Decodable {
        var bridgeKeys: BridgeConfig.Options
        var bridge: String?
        var vni: Int?
        var port: Int?
        var underlayInterface: String?
        var local: String?
        var learning: Bool?
        var remotes: [String]?
        var peers: String?
        var dataDir: String?

        enum CodingKeys: String, CodingKey {
            case bridge, vni, port, underlayInterface, local, learning, remotes, peers, dataDir
        }

        public init(from decoder: any Decoder) throws {
            bridgeKeys = try BridgeConfig.Options(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            bridge = try c.decodeIfPresent(String.self, forKey: .bridge)
            vni = try c.decodeIfPresent(Int.self, forKey: .vni)
            port = try c.decodeIfPresent(Int.self, forKey: .port)
            underlayInterface = try c.decodeIfPresent(String.self, forKey: .underlayInterface)
            local = try c.decodeIfPresent(String.self, forKey: .local)
            learning = try c.decodeIfPresent(Bool.self, forKey: .learning)
            remotes = try c.decodeIfPresent([String].self, forKey: .remotes)
            peers = try c.decodeIfPresent(String.self, forKey: .peers)
            dataDir = try c.decodeIfPresent(String.self, forKey: .dataDir)
        }
    }

    /// VXLAN's UDP port (IANA).
    public static let defaultPort: UInt16 = 4789
    /// VNIs are 24 bits.
    public static let vniRange = 0...0xFF_FFFF
    public static let defaultDataDir = "/run/cni/vxlan"
    /// Bytes an encapsulated frame adds on the underlay: outer IP header (IPv4 20, IPv6 40),
    /// UDP 8, VXLAN 8, and the inner Ethernet header 14.
    public static func overhead(_ family: IPAddress.Family) -> UInt32 { family == .v4 ? 50 : 70 }
    /// The kernel's longest interface name (IFNAMSIZ minus the NUL).
    static let maxInterfaceNameLength = 15
    static let defaultBridgePrefix = "vx-"

    public init(_ raw: Options, request r: CNIRequest) throws(CNIError) {
        bridge = try BridgeConfig(raw.bridgeKeys, request: r)
        network = r.config.name
        bridge.bridge = Self.bridgeName(raw.bridge, network: network)
        dataDir = try Self.dataDir(raw.dataDir)
        port = Self.defaultPort
        learning = raw.learning ?? true
        remotes = []
        peers = .static
        mtu = bridge.mtu
        // DEL and GC find what to remove from the bridge alone: a value ADD would refuse
        // never blocks cleaning up.
        guard r.command != .del && r.command != .gc else {
            vni = raw.vni.flatMap { Self.vniRange.contains($0) ? UInt32($0) : nil }
            return
        }
        if bridge.vlan != 0 { throw CNIError.invalidConfig("vlan: not supported on a vxlan network (its VXLAN port carries untagged frames)") }
        if !bridge.vlanTrunk.isEmpty { throw CNIError.invalidConfig("vlanTrunk: not supported on a vxlan network (its VXLAN port carries untagged frames)") }
        guard let v = raw.vni else { throw CNIError.invalidConfig("vni: missing (the VXLAN network identifier, 0-16777215)") }
        guard Self.vniRange.contains(v) else { throw CNIError.invalidConfig("vni: \(v) is out of range 0-16777215") }
        vni = UInt32(v)
        if let p = raw.port {
            guard (1...Int(UInt16.max)).contains(p) else { throw CNIError.invalidConfig("port: \(p) is out of range 1-65535") }
            port = UInt16(p)
        }
        try readUnderlay(raw)
        try readPeers(raw)
    }

    /// `underlayInterface` and `local`.
    private mutating func readUnderlay(_ raw: Options) throws(CNIError) {
        if let u = raw.underlayInterface, !u.isEmpty {
            do { try validateInterfaceName(u) } catch { throw CNIError.invalidConfig("underlayInterface: \(error.msg)") }
            underlayInterface = u
        }
        if let text = raw.local, !text.isEmpty {
            guard let a = IPAddress(text), !a.isUnspecified, !a.isMulticastAddress else {
                throw CNIError.invalidConfig("local: \"\(text)\" is not a unicast IP address")
            }
            local = a
        }
    }

    /// `peers` and `remotes`: every remote a unicast address of the underlay's family (the
    /// family of `local`; IPv4 without it, since the kernel opens an IPv6 socket only for a
    /// device with an IPv6 `local`).
    private mutating func readPeers(_ raw: Options) throws(CNIError) {
        if let p = raw.peers {
            guard let mode = PeerMode(rawValue: p) else {
                throw CNIError.invalidConfig("peers: \"\(p)\" is not one of \"static\", \"overlayd\"")
            }
            peers = mode
        }
        if peers == .overlayd, raw.remotes?.isEmpty == false {
            throw CNIError.invalidConfig("remotes: not used with \"peers\": \"overlayd\" (the peers come from the overlay's leases)")
        }
        let family = local?.family ?? .v4
        var seen = Set<IPAddress>()
        for (i, text) in (raw.remotes ?? []).enumerated() {
            guard let a = IPAddress(text), !a.isUnspecified, !a.isMulticastAddress else {
                throw CNIError.invalidConfig("remotes[\(i)]: \"\(text)\" is not a unicast IP address")
            }
            guard a.family == family else {
                throw CNIError.invalidConfig(local == nil
                    ? "remotes[\(i)]: \(a) is IPv6; an IPv6 underlay needs \"local\" set to this host's IPv6 address"
                    : "remotes[\(i)]: \(a) is not of the family of local \(local!)")
            }
            if seen.insert(a).inserted { remotes.append(a) }
        }
    }

    /// The bridge: `bridge` as configured, else "vx-<network>", or "vx-" and a hash of the
    /// network name when that does not fit an interface name.
    static func bridgeName(_ configured: String?, network: String) -> String {
        if let configured, !configured.isEmpty { return configured }
        let plain = defaultBridgePrefix + network
        if plain.utf8.count <= maxInterfaceNameLength && isValidCNIIdentifier(network) { return plain }
        let room = maxInterfaceNameLength - defaultBridgePrefix.utf8.count
        return defaultBridgePrefix + String(ElementOwner.fnv1a(network).prefix(room))
    }

    /// `dataDir`: an absolute path without "." or ".." components (code 7 otherwise).
    static func dataDir(_ dir: String?) throws(CNIError) -> String {
        guard let dir, !dir.isEmpty else { return defaultDataDir }
        let escapes = dir.split(separator: "/").contains { $0 == "." || $0 == ".." }
        guard dir.hasPrefix("/"), !escapes, !dir.utf8.contains(0) else {
            throw CNIError.invalidConfig("dataDir: \"\(dir)\" is not an absolute path without \".\" or \"..\"")
        }
        return dir
    }

    /// The VXLAN device of the network: "nlvx<VNI>".
    public var deviceName: String? { vni.map { "nlvx\($0)" } }
}

extension IPAddress {
    /// 224.0.0.0/4 or ff00::/8.
    var isMulticastAddress: Bool {
        isV4 ? bytes[0] & 0xF0 == 0xE0 : bytes[0] == 0xFF
    }
}
