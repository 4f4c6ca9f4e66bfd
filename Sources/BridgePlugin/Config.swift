// The bridge plugin's configuration: every option of the reference plugin, decoded from the
// network config, validated, with the reference's defaults.

import CNI
import NetTypes
import PluginKit

/// One entry of `vlanTrunk`: a single `id`, or a `minID`…`maxID` range.
public struct VLANTrunk: Decodable, Sendable, Hashable {
    public var id: Int?
    public var minID: Int?
    public var maxID: Int?
}

/// The options of a `bridge` network config.
public struct BridgeConfig: PluginConfiguration, Sendable {
    public var network: String
    public var bridge: String
    public var isGateway: Bool
    public var isDefaultGateway: Bool
    public var forceAddress: Bool
    public var ipMasq: Bool
    public var mtu: UInt32?
    public var hairpinMode: Bool
    public var promiscMode: Bool
    public var vlan: UInt16
    public var vlanTrunk: [UInt16]
    public var preserveDefaultVlan: Bool
    public var enableDAD: Bool
    public var macSpoofCheck: Bool
    public var disableContainerInterface: Bool
    public var portIsolation: Bool
    /// The container MAC: `runtimeConfig.mac`, CNI_ARGS `MAC`, or `args.cni.mac`.
    public var mac: MACAddress?
    public var hasIPAM: Bool

    /// True when the bridge must be a VLAN-filtering bridge.
    public var wantsVLAN: Bool { vlan != 0 || !vlanTrunk.isEmpty }

    /// The keys as written.
    public struct Options: Decodable {
        var bridge: String?
        var isGateway: Bool?
        var isDefaultGateway: Bool?
        var forceAddress: Bool?
        var ipMasq: Bool?
        var ipMasqBackend: String?
        var mtu: Int?
        var hairpinMode: Bool?
        var promiscMode: Bool?
        var vlan: Int?
        var vlanTrunk: [VLANTrunk]?
        var preserveDefaultVlan: Bool?
        var enabledad: Bool?
        var macspoofchk: Bool?
        var disableContainerInterface: Bool?
        var portIsolation: Bool?
    }

    public static let defaultBridge = "cni0"
    /// The one masquerade backend of this suite (`ipMasqBackend`).
    public static let masqueradeBackend = "nftables"
    /// The kernel's longest interface name (IFNAMSIZ minus the NUL).
    static let maxInterfaceNameLength = 15
    /// MTUs the plugin accepts: IPv4's minimum to the largest the kernel allows a veth.
    static let mtuRange = 68...65535
    /// 802.1Q VLAN IDs usable on a port (0 and 4095 are reserved).
    static let vlanIDs = 1...4094

    public init(_ raw: Options, request r: CNIRequest) throws(CNIError) {
        network = r.config.name
        bridge = raw.bridge ?? ""
        if bridge.isEmpty { bridge = Self.defaultBridge }
        guard bridge.utf8.count <= Self.maxInterfaceNameLength, !bridge.contains("/"), !bridge.contains(" "), bridge != ".", bridge != ".." else {
            throw CNIError.invalidConfig("bridge: invalid interface name \"\(bridge)\"")
        }
        isDefaultGateway = raw.isDefaultGateway ?? false
        // isDefaultGateway implies isGateway, as in the reference plugin.
        isGateway = (raw.isGateway ?? false) || isDefaultGateway
        forceAddress = raw.forceAddress ?? false
        ipMasq = raw.ipMasq ?? false
        // DEL and GC clean up by owner whatever the backend says, so a config written for
        // another backend never blocks removing what an older version made.
        if r.command != .del && r.command != .gc { try Self.checkBackend(raw.ipMasqBackend) }
        if let m = raw.mtu, m != 0 {
            guard Self.mtuRange.contains(m) else { throw CNIError.invalidConfig("mtu: \(m) is out of range 68-65535") }
            mtu = UInt32(m)
        }
        hairpinMode = raw.hairpinMode ?? false
        promiscMode = raw.promiscMode ?? false
        let v = raw.vlan ?? 0
        guard v == 0 || Self.vlanIDs.contains(v) else { throw CNIError.invalidConfig("vlan: invalid VLAN ID \(v) (must be 0-4094)") }
        vlan = UInt16(v)
        vlanTrunk = try Self.trunkIDs(raw.vlanTrunk ?? [])
        preserveDefaultVlan = raw.preserveDefaultVlan ?? true
        enableDAD = raw.enabledad ?? false
        macSpoofCheck = raw.macspoofchk ?? false
        disableContainerInterface = raw.disableContainerInterface ?? false
        portIsolation = raw.portIsolation ?? false
        hasIPAM = !(r.config.ipamType ?? "").isEmpty

        mac = try r.requestedMAC()
    }

    /// `ipMasqBackend`: absent or "nftables". "iptables", or anything else, is code 7: this
    /// suite masquerades with nftables only and makes no iptables rules.
    static func checkBackend(_ backend: String?) throws(CNIError) {
        guard let backend, backend != masqueradeBackend else { return }
        throw CNIError.invalidConfig("ipMasqBackend: \"\(backend)\" is not supported; this plugin suite masquerades "
            + "with nftables only (set \"ipMasqBackend\": \"\(masqueradeBackend)\" or leave it out)")
    }

    static func trunkIDs(_ items: [VLANTrunk]) throws(CNIError) -> [UInt16] {
        var out: [UInt16] = []
        for (i, t) in items.enumerated() {
            if let id = t.id {
                guard vlanIDs.contains(id) else { throw CNIError.invalidConfig("vlanTrunk[\(i)].id: invalid VLAN ID \(id) (must be 1-4094)") }
                out.append(UInt16(id))
            }
            if t.minID != nil || t.maxID != nil {
                guard let lo = t.minID, let hi = t.maxID else {
                    throw CNIError.invalidConfig("vlanTrunk[\(i)]: minID and maxID must be given together")
                }
                guard vlanIDs.contains(lo), vlanIDs.contains(hi), lo <= hi else {
                    throw CNIError.invalidConfig("vlanTrunk[\(i)]: invalid range \(lo)-\(hi) (IDs 1-4094, minID <= maxID)")
                }
                out += (lo...hi).map { UInt16($0) }
            }
            if t.id == nil && t.minID == nil && t.maxID == nil {
                throw CNIError.invalidConfig("vlanTrunk[\(i)]: needs \"id\" or \"minID\"/\"maxID\"")
            }
        }
        var seen = Set<UInt16>()
        return out.filter { seen.insert($0).inserted }
    }
}
