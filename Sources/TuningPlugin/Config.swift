// The tuning plugin's configuration: the reference plugin's keys (sysctl, mac, mtu, promisc,
// allmulti, txQLen, dataDir) with its runtime forms for the MAC (CNI_ARGS `MAC`,
// `runtimeConfig.mac`, `args.cni.mac`) and its `args.cni` overrides, plus `ifName` (rename),
// which the reference does not have. Every value is checked before anything is changed.

import CNI
import NetTypes

/// The options of a `tuning` network config, validated.
public struct TuningConfig: PluginConfiguration, Sendable {
    /// The sysctls to write inside the container's netns, keys resolved (see `SysctlKey`).
    public var sysctls: [SysctlKey: String]
    public var mac: MACAddress?
    public var mtu: UInt32?
    /// nil: left as it is; true/false: turned on/off (and restored at DEL).
    public var promisc: Bool?
    public var allmulti: Bool?
    public var txQueueLength: UInt32?
    /// The interface's new name in the container (`ifName`).
    public var newName: String?
    /// Where the originals are kept between ADD and DEL.
    public var dataDir: String

    /// The reference plugin's overrides under `args.cni`.
    public struct CNIArgs: Decodable {
        var sysctl: [String: String]?
        var mac: String?
        var promisc: Bool?
        var mtu: Int?
        var allmulti: Bool?
        var txQLen: Int?
    }
    public struct Args: Decodable { var cni: CNIArgs? }

    /// The keys as written.
    public struct Options: Decodable {
        var sysctl: [String: String]?
        var mac: String?
        var mtu: Int?
        var promisc: Bool?
        var allmulti: Bool?
        var txQLen: Int?
        var ifName: String?
        var dataDir: String?
        var args: Args?
    }

    /// The reference plugin's default data directory.
    public static let defaultDataDir = "/run/cni/tuning"
    /// MTUs accepted: IPv4's minimum to the largest any link type allows.
    static let mtuRange = 68...65535
    /// Transmit queue lengths the kernel stores (a u32).
    static let txQueueLengths = 0...Int(UInt32.max)

    public init(_ o: Options, request r: CNIRequest) throws(CNIError) {
        dataDir = try Self.dataDir(o.dataDir)
        // DEL and GC undo what the saved originals say, whatever the config asks now: a
        // value that would be refused today never blocks cleaning up.
        if r.command == .del || r.command == .gc { sysctls = [:]; return }
        let a = o.args?.cni
        var sysctlText = o.sysctl ?? [:]
        for (k, v) in a?.sysctl ?? [:] { sysctlText[k] = v }
        newName = try Self.newName(o.ifName, current: r.ifName)
        // `IFNAME` is the interface as ADD finds it (before a rename); CHECK finds it renamed.
        let interface = r.command == .check ? newName ?? r.ifName : r.ifName
        sysctls = try SysctlKey.resolve(sysctlText, ifName: interface)
        try SysctlAllowlist.check(Array(sysctls.keys))
        mac = try Self.mac(o, r)
        mtu = try (a?.mtu ?? o.mtu).flatMap { m throws(CNIError) -> UInt32? in
            if m == 0 { return nil }  // 0 is the reference's "not set"
            guard Self.mtuRange.contains(m) else { throw CNIError.invalidConfig("mtu: \(m) is out of range 68-65535") }
            return UInt32(m)
        }
        promisc = a?.promisc ?? o.promisc
        allmulti = a?.allmulti ?? o.allmulti
        txQueueLength = try (a?.txQLen ?? o.txQLen).map { q throws(CNIError) -> UInt32 in
            guard Self.txQueueLengths.contains(q) else { throw CNIError.invalidConfig("txQLen: \(q) is out of range 0-\(UInt32.max)") }
            return UInt32(q)
        }
    }

    /// The MAC as the reference picks it: `args.cni.mac` over `runtimeConfig.mac` over
    /// CNI_ARGS `MAC` over the config's `mac`. Code 7 unless it is a unicast, non-zero MAC.
    static func mac(_ o: Options, _ r: CNIRequest) throws(CNIError) -> MACAddress? {
        let candidates = [o.args?.cni?.mac, r.config.runtimeConfig.mac, r.arg("MAC"), o.mac]
        guard let text = candidates.compactMap({ $0 }).first(where: { !$0.isEmpty }) else { return nil }
        guard let m = MACAddress(text), !m.isMulticast, !m.isZero else {
            throw CNIError.invalidConfig("mac: invalid unicast MAC address \"\(text)\"")
        }
        return m
    }

    /// `ifName`: a valid interface name (code 7 otherwise); nil when absent or the same name.
    static func newName(_ name: String?, current: String) throws(CNIError) -> String? {
        guard let name, !name.isEmpty, name != current else { return nil }
        do {
            try validateInterfaceName(name)
        } catch {
            throw CNIError.invalidConfig("ifName: \"\(name)\" is not a valid interface name (1-15 bytes, no \"/\", \":\" or white space)")
        }
        return name
    }

    /// `dataDir`: an absolute path without "." or ".." components (code 7 otherwise).
    static func dataDir(_ dir: String?) throws(CNIError) -> String {
        guard let dir, !dir.isEmpty else { return defaultDataDir }
        let parts = dir.split(separator: "/", omittingEmptySubsequences: true)
        guard dir.hasPrefix("/"), !parts.contains(where: { $0 == "." || $0 == ".." }), !dir.utf8.contains(0) else {
            throw CNIError.invalidConfig("dataDir: \"\(dir)\" must be an absolute path without \".\" or \"..\" components")
        }
        return dir
    }

    /// True when ADD changes a link attribute (the originals are then saved).
    var changesLink: Bool {
        mac != nil || mtu != nil || promisc != nil || allmulti != nil || txQueueLength != nil || newName != nil
    }
}
