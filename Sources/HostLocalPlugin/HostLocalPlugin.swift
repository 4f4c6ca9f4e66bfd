// The host-local CNI IPAM plugin: the spec's verbs over the IPAM allocator and its disk
// store. Everything here is glue: read the `ipam` section and the runtime's requests, call
// the allocator, turn its answer into a CNI result and its errors into CNI errors.

import CNI
import IPAM
import NetTypes

/// host-local, a drop-in for the reference IPAM plugin of the same name.
public struct HostLocal: CNIPlugin {
    public init() {}

    /// ADD: one address per range set (requested ones exactly), the configured routes and
    /// the DNS settings of `resolvConf`. IPs carry no `interface` index, as the reference's.
    public func add(_ r: CNIRequest) throws -> CNIResult {
        try mapped {
            let net = try r.pluginConfig(HostLocalConfig.self)
            let requested = try net.requestedIPs(r)
            // Checked before the store exists: a refused ADD leaves no network directory behind.
            let checked = try Allocator.check(net.settings, containerID: r.containerID, ifName: r.ifName, requested: requested)
            let out = try net.allocator().add(checked)
            return CNIResult(cniVersion: r.cniVersion,
                             ips: out.ips.map { CNIResult.IPConfig(address: $0.address, gateway: $0.gateway) },
                             routes: out.routes.map { CNIResult.Route(dst: $0.dst, gw: $0.gw) },
                             dns: out.dns.map(HostLocal.resultDNS) ?? CNIResult.DNS())
        }
    }

    /// DEL: releases what the container ID + interface holds; nothing held is success.
    public func del(_ r: CNIRequest) throws {
        try mapped {
            let net = try r.pluginConfig(HostLocalConfig.self)
            try net.allocator().release(containerID: r.containerID, ifName: r.ifName)
        }
    }

    /// CHECK: the attachment still holds an address in every range set.
    public func check(_ r: CNIRequest) throws {
        try mapped {
            let net = try r.pluginConfig(HostLocalConfig.self)
            try net.allocator().check(containerID: r.containerID, ifName: r.ifName)
        }
    }

    /// GC (1.1.0): releases every address whose attachment is not in
    /// `cni.dev/valid-attachments`. Without the list nothing is released: an absent list is
    /// not the same as "nothing is valid".
    public func gc(_ r: CNIRequest) throws {
        try mapped {
            guard let valid = r.config.validAttachments else { return }
            let net = try r.pluginConfig(HostLocalConfig.self)
            try net.allocator().gc(validAttachments: valid.map { AttachmentID(containerID: $0.containerID, ifName: $0.ifname) })
        }
    }

    /// STATUS (1.1.0): ready unless the data directory cannot be used or a range set has no
    /// address left (ADD needs one from every set). Both are code 50, "plugin not available":
    /// containers that already have addresses keep them, so 51 never applies.
    public func status(_ r: CNIRequest) throws {
        let net = try r.pluginConfig(HostLocalConfig.self)
        let usage: [RangeSetUsage]
        do {
            usage = try net.allocator().usage()
        } catch let e as IPAMError {
            guard case .io = e else { throw e.cniError }  // e.g. a network name that is no directory name
            throw CNIError(code: .notAvailable,
                           msg: "data directory \(net.networkDirectory) is not usable: \(e.message)",
                           details: e.details)
        } catch {
            throw CNIError(code: .notAvailable, msg: "data directory \(net.networkDirectory) is not usable: \(error)")
        }
        if let full = usage.first(where: \.isExhausted) {
            throw CNIError(code: .notAvailable,
                           msg: "no IP addresses available in range set \(full.rangeSetIndex) (\(full.rangeSet)): "
                               + "all \(full.allocatable) allocatable addresses are in use",
                           details: usage.map { "range set \($0.rangeSetIndex): \($0.reserved)/\($0.allocatable) in use" }
                               .joined(separator: "; "))
        }
    }

    /// An IPAMError as the CNI error of the same meaning; CNIErrors pass unchanged.
    public static func cniError(_ error: any Error) -> CNIError {
        switch error {
        case let e as CNIError: return e
        case let e as IPAMError: return e.cniError
        default: return CNIError.wrapping(error)
        }
    }

    static func resultDNS(_ d: DNSSettings) -> CNIResult.DNS {
        CNIResult.DNS(nameservers: d.nameservers, domain: d.domain, search: d.search, options: d.options)
    }

    private func mapped<T>(_ body: () throws -> T) throws(CNIError) -> T {
        do { return try body() } catch { throw HostLocal.cniError(error) }
    }
}

/// host-local's configuration: the `ipam` section validated (with the `ipRanges` capability
/// merged) and where its state lives.
struct HostLocalConfig: PluginConfiguration {
    struct Options: Decodable {
        var ipam: IPAMConfig?
    }

    let network: String
    let settings: IPAMSettings

    init(_ options: Options, request r: CNIRequest) throws(CNIError) {
        guard let ipam = options.ipam else {
            throw CNIError.invalidConfig("network config has no \"ipam\" object; host-local reads its ranges from "
                + "ipam (e.g. \"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.22.0.0/16\"})")
        }
        let runtimeRanges = (r.config.runtimeConfig.ipRanges ?? []).map { set in
            set.map { RangeConfig(subnet: $0.subnet.description, rangeStart: $0.rangeStart?.description,
                                  rangeEnd: $0.rangeEnd?.description, gateway: $0.gateway?.description) }
        }
        network = r.config.name
        do {
            settings = try IPAMSettings(ipam, runtimeIPRanges: runtimeRanges)
        } catch {
            throw HostLocal.cniError(error)
        }
    }

    /// `<dataDir>/<network>`, as the disk store names it (for messages).
    var networkDirectory: String { DiskStore.directory(network: network, dataDir: settings.dataDir) }

    func allocator() throws -> Allocator { try Allocator(network: network, settings: settings) }

    /// Requested addresses: `CNI_ARGS` `IP=`, then `args.cni.ips`, then `runtimeConfig.ips`.
    func requestedIPs(_ request: CNIRequest) throws -> [IPAddress] {
        var argsIPs: [String] = []
        if let ips = request.config.args?["cni"]?["ips"], !ips.isNull {
            guard let list = ips.arrayValue else {
                throw CNIError.decodingFailure("args.cni.ips must be a list of IP address strings")
            }
            for (i, v) in list.enumerated() {
                guard let s = v.stringValue else {
                    throw CNIError.decodingFailure("args.cni.ips[\(i)] must be a string (an IP address)")
                }
                argsIPs.append(s)
            }
        }
        return try RequestedIPs.collect(cniArgs: request.environment["CNI_ARGS"], argsIPs: argsIPs,
                                        runtimeIPs: request.config.runtimeConfig.ips ?? [])
    }
}

extension HostLocal {
    /// What `host-local` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "host-local: netlab IPAM plugin, addresses from local ranges with state in <dataDir>/<network>" }
}
