// The result pieces the CNI glue turns into a result: DNS from a resolv.conf file,
// and the routes and addresses of an ADD.

import NetTypes
import SystemKit

/// DNS settings as the CNI result carries them.
public struct DNSSettings: Codable, Hashable, Sendable {
    public var nameservers: [String]
    public var domain: String?
    public var search: [String]
    public var options: [String]

    public init(nameservers: [String] = [], domain: String? = nil, search: [String] = [], options: [String] = []) {
        self.nameservers = nameservers
        self.domain = domain
        self.search = search
        self.options = options
    }

    public var isEmpty: Bool { nameservers.isEmpty && domain == nil && search.isEmpty && options.isEmpty }

    /// Parses resolv.conf text: `nameserver` (each line adds one), `domain` (the last wins),
    /// `search` and `options` (words appended); comments (# or ;) and other lines are ignored.
    public init(resolvConf text: String) {
        self.init()
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 2, let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            switch key {
            case "nameserver": nameservers.append(fields[1])
            case "domain": domain = fields[1]
            case "search": search += fields.dropFirst()
            case "options": options += fields.dropFirst()
            default: continue
            }
        }
    }

    /// Reads and parses the resolv.conf at `path`. A missing file is an error (code 5).
    public init(resolvConfPath path: String) throws {
        let bytes = try storeCall(context: "ipam.resolvConf") { () throws(SystemError) in try Files.read(path) }
        self.init(resolvConf: String(decoding: bytes, as: UTF8.self))
    }
}

/// What an IPAM ADD produces, before the glue converts it to the CNI result types.
public struct IPAMOutput: Hashable, Sendable {
    public var ips: [Allocation]
    public var routes: [RouteConfig]
    public var dns: DNSSettings?

    public init(ips: [Allocation], routes: [RouteConfig], dns: DNSSettings?) {
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }
}

/// An ADD checked against the settings before any store is opened: the attachment, the
/// requested address of each range set, and the DNS settings read from `resolvConf`.
public struct CheckedAdd {
    let attachment: AttachmentID
    let wanted: [Int: IPAddress]
    let dns: DNSSettings?
}

extension Allocator {
    /// ADD in one call: `check`, then `add` of what it accepted.
    public func add(containerID: String, ifName: String, requested: [IPAddress] = []) throws -> IPAMOutput {
        try add(Allocator.check(settings, containerID: containerID, ifName: ifName, requested: requested))
    }

    /// Everything of an ADD that needs no store: a refused ADD (a bad name, a requested
    /// address outside the ranges or reserved, an unreadable `resolvConf`) is refused before
    /// the store's directory is made.
    public static func check(_ settings: IPAMSettings, containerID: String, ifName: String,
                             requested: [IPAddress]) throws -> CheckedAdd {
        let (attachment, wanted) = try validate(settings, containerID: containerID, ifName: ifName, requested: requested)
        let dns = try settings.resolvConf.map { try DNSSettings(resolvConfPath: $0) }
        return CheckedAdd(attachment: attachment, wanted: wanted, dns: dns)
    }

    /// Allocates what `check` accepted; returns addresses, the configured routes and DNS.
    public func add(_ checked: CheckedAdd) throws -> IPAMOutput {
        let ips = try allocate(checked.attachment, checked.wanted)
        return IPAMOutput(ips: ips, routes: settings.routes, dns: checked.dns)
    }
}
