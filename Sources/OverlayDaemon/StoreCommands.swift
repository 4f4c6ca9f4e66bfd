// `overlayd config put|get` and `overlayd leases`: the store as an operator sees it, through
// the same store flags as the daemon (etcdctl is not needed, and the embedded store has no
// other client).

import Glibc
import NetTypes
import Overlay
import OverlayStores

/// A refused request of a subcommand, printed as it is.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum StoreCommands {
    /// Checks `value` as a network config (the field is named when it is wrong) and stores it.
    public static func putConfig(_ value: [UInt8], store: any LeaseStore, layout: StoreLayout) async throws -> NetworkConfig {
        let config: NetworkConfig
        do {
            config = try NetworkConfig(json: value)
        } catch {
            throw CommandError("refused: \(error)")
        }
        _ = try await store.update(layout.configKey, value: value, ttl: .none, ifCreateRevision: nil)
        return config
    }

    /// The stored config text.
    public static func getConfig(store: any LeaseStore, layout: StoreLayout) async throws -> String {
        guard let entry = try await store.get(layout.configKey) else {
            throw CommandError("no network config at \(layout.configKey): store one with `overlayd config put FILE`")
        }
        return entry.text
    }

    /// One lease as the table shows it.
    public struct Row: Sendable, Hashable {
        public var subnet: String
        public var publicIP: String
        public var vtepMAC: String
        public var expires: String
    }

    /// Every lease of the network with its expiry, by subnet.
    public static func leaseRows(store: any LeaseStore, layout: StoreLayout) async throws -> [Row] {
        let listing = try await store.list(prefix: layout.subnetsPrefix)
        var rows: [Row] = []
        for entry in listing.entries {
            guard let subnets = layout.subnets(ofKey: entry.key) else { continue }
            let ttl = try await store.timeToLive(entry.key)
            let subnetText = subnets.cidrs()
            do {
                guard let lease = try Lease(entry, layout: layout) else { continue }
                let a = lease.attributes
                let ips = [a.publicIP, a.publicIPv6].compactMap { $0.map { "\($0)" } }.joined(separator: " ")
                let macs = [a.backendData?.vtepMAC, a.backendV6Data?.vtepMAC].compactMap { $0.map { "\($0)" } }
                rows.append(Row(subnet: subnetText, publicIP: ips.isEmpty ? "-" : ips,
                                vtepMAC: macs.isEmpty ? "-" : macs.joined(separator: " "), expires: expiry(ttl)))
            } catch {
                rows.append(Row(subnet: subnetText, publicIP: "(unreadable: \(error))", vtepMAC: "-", expires: expiry(ttl)))
            }
        }
        return rows
    }

    /// The rows as an aligned table under a header.
    public static func table(_ rows: [Row]) -> String {
        let header = Row(subnet: "SUBNET", publicIP: "PUBLIC IP", vtepMAC: "VTEP MAC", expires: "EXPIRES")
        let all = [header] + rows
        let widths = [\Row.subnet, \Row.publicIP, \Row.vtepMAC].map { path in all.map { $0[keyPath: path].count }.max() ?? 0 }
        return all.map { r in
            [r.subnet, r.publicIP, r.vtepMAC].enumerated().map { i, s in s + String(repeating: " ", count: widths[i] - s.count + 2) }
                .joined() + r.expires
        }.joined(separator: "\n") + "\n"
    }

    /// "2025-06-01 12:00:00 UTC (in 23h59m)", or "never".
    static func expiry(_ ttl: Duration?) -> String {
        guard let ttl else { return "never" }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var at = time_t(Int(now.tv_sec) + Int(ttl.components.seconds))
        var parts = tm()
        gmtime_r(&at, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let date = "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
        let time = "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        return "\(date) \(time) UTC (in \(GoDuration.format(.seconds(ttl.components.seconds))))"
    }
}
