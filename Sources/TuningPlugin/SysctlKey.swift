// Which sysctls the tuning plugin may write: keys of the network subsystem only, named in
// the dotted form (`net.ipv4.conf.IFNAME.arp_filter`), resolved to a path under
// /proc/sys/net that cannot leave it. /proc/sys/net is per network namespace, so these are
// the container's own settings, written from inside its netns.

import CNI

/// A sysctl key resolved to its path below /proc/sys (`net/ipv4/conf/eth0/arp_filter`).
public struct SysctlKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The path components below /proc/sys; the first is always "net".
    public let components: [String]
    /// The key as written in the config.
    public let written: String

    /// The path below /proc/sys, as `Sysctl` takes it.
    public var path: String { components.joined(separator: "/") }
    public var description: String { written }
    public static func < (a: SysctlKey, b: SysctlKey) -> Bool { a.path < b.path }
    public static func == (a: SysctlKey, b: SysctlKey) -> Bool { a.path == b.path }
    public func hash(into h: inout Hasher) { h.combine(path) }

    /// The placeholder the reference substitutes with CNI_IFNAME.
    static let interfacePlaceholder = "IFNAME"
    static let subsystem = "net"

    /// Resolves `key` for the container interface `ifName`. Code 7 naming the key unless it
    /// is `net.` followed by dot-separated non-empty components without "/" or NUL: no
    /// other subsystem, no slash form, no "..", nothing that could name a path outside
    /// /proc/sys/net. A component `IFNAME` becomes `ifName` (which may itself hold dots, as
    /// VLAN interfaces do; CNI_IFNAME was validated: no "/", not "." or "..").
    public init(_ key: String, ifName: String) throws(CNIError) {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == Self.subsystem else {
            throw CNIError.invalidConfig("sysctl: key \"\(key)\" is not a network sysctl (only net.* keys are allowed)")
        }
        for p in parts where p.isEmpty || p.contains("/") || p.utf8.contains(0) {
            throw CNIError.invalidConfig("sysctl: key \"\(key)\" is not a plain dotted name (empty component, \"/\" or NUL)")
        }
        components = parts.map { $0 == Self.interfacePlaceholder ? ifName : $0 }
        written = key
    }

    /// Every key of `map` resolved, values checked. Two keys naming one path (e.g. with and
    /// without `IFNAME`) with different values are code 7, as are values with a newline or NUL.
    static func resolve(_ map: [String: String], ifName: String) throws(CNIError) -> [SysctlKey: String] {
        var out: [SysctlKey: String] = [:]
        for (k, v) in map.sorted(by: { $0.key < $1.key }) {
            let key = try SysctlKey(k, ifName: ifName)
            guard !v.contains("\n"), !v.utf8.contains(0) else {
                throw CNIError.invalidConfig("sysctl: value of \"\(k)\" contains a newline or NUL")
            }
            if let (other, value) = out.first(where: { $0.key == key }), value != v {
                throw CNIError.invalidConfig("sysctl: keys \"\(other.written)\" and \"\(k)\" name the same sysctl with different values")
            }
            out[key] = v
        }
        return out
    }

    /// Compares a configured value with what the kernel shows: white space runs are equal
    /// (the kernel prints multi-value sysctls with tabs).
    static func sameValue(_ configured: String, _ current: String) -> Bool {
        configured.split(whereSeparator: { $0 == " " || $0 == "\t" }) == current.split(whereSeparator: { $0 == " " || $0 == "\t" })
    }
}
