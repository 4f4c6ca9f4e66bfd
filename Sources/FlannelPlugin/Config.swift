// The flannel plugin's configuration: the keys of flannel-io/cni-plugin (`subnetFile`,
// `dataDir`, `delegate`, `ipam`) with its defaults, and the delegate's network config built
// from them and the host's subnet.env exactly as that plugin builds it.

import CNI
import NetTypes
import Overlay

/// The options of a `flannel` network config.
public struct FlannelConfig: PluginConfiguration, Sendable {
    public var network: String
    public var cniVersion: String
    /// Where the overlay daemon writes the host's subnet.env.
    public var subnetFile: String
    /// Where ADD keeps each container's delegate config for DEL, CHECK and GC.
    public var dataDir: String
    /// `delegate` as written ([:] when absent): keys for the delegate plugin.
    public var delegate: [String: JSONValue]
    /// `ipam` as written ([:] when absent): the base of the delegate's `ipam` section.
    public var ipam: [String: JSONValue]
    /// `runtimeConfig` as received (the capability values the runtime put there); nil when absent.
    public var runtimeConfig: JSONValue?

    /// The keys as written.
    public struct Options: Decodable {
        var subnetFile: String?
        var dataDir: String?
        var delegate: [String: JSONValue]?
        var ipam: [String: JSONValue]?
    }

    public static let defaultSubnetFile = SubnetEnv.defaultPath
    public static let defaultDataDir = "/var/lib/cni/flannel"
    /// The delegate flannel uses when `delegate.type` is not given.
    public static let defaultDelegateType = "bridge"
    /// The IPAM plugin of the delegate when `ipam.type` is not given.
    public static let defaultIPAMType = "host-local"

    public init(_ o: Options, request r: CNIRequest) throws(CNIError) {
        network = r.config.name
        cniVersion = r.cniVersion
        subnetFile = try Self.absolutePath(o.subnetFile, default: Self.defaultSubnetFile, field: "subnetFile")
        dataDir = try Self.absolutePath(o.dataDir, default: Self.defaultDataDir, field: "dataDir")
        delegate = o.delegate ?? [:]
        ipam = o.ipam ?? [:]
        runtimeConfig = r.config.raw["runtimeConfig"].flatMap { $0.isNull ? nil : $0 }
    }

    /// A path option: absent or empty gives `default`; otherwise an absolute path without "."
    /// or ".." components (the runtime's working directory is nobody's promise). Code 7 else.
    static func absolutePath(_ value: String?, default fallback: String, field: String) throws(CNIError) -> String {
        guard let value, !value.isEmpty else { return fallback }
        let parts = value.split(separator: "/")
        guard value.hasPrefix("/"), !parts.contains(where: { $0 == "." || $0 == ".." }), !value.utf8.contains(0) else {
            throw CNIError.invalidConfig("\(field): \"\(value)\" must be an absolute path without \".\" or \"..\" components")
        }
        return value
    }
}

// MARK: the delegate's config

extension FlannelConfig {
    /// The delegate's network config, as flannel's plugin builds it: the `delegate` keys, then
    /// `name` and `cniVersion` of this config; `type` "bridge", `ipMasq` = !FLANNEL_IPMASQ and
    /// `mtu` = FLANNEL_MTU where `delegate` does not set them; `isGateway` true for a bridge
    /// that does not set it; `runtimeConfig` of this config; `ipam` from `delegateIPAM`.
    public func delegateConfig(for host: HostSubnets) throws(CNIError) -> JSONValue {
        try Self.checkDelegate(delegate)
        var d = delegate
        d["name"] = .string(network)
        d["cniVersion"] = .string(cniVersion)
        if d["type"] == nil { d["type"] = .string(Self.defaultDelegateType) }
        if d["ipMasq"] == nil { d["ipMasq"] = .bool(!host.ipMasq) }
        if d["mtu"] == nil { d["mtu"] = .number(Double(host.mtu)) }
        if d["type"]?.stringValue == Self.defaultDelegateType, d["isGateway"] == nil { d["isGateway"] = true }
        if let runtimeConfig { d["runtimeConfig"] = runtimeConfig }
        d["ipam"] = try delegateIPAM(for: host)
        return .object(d)
    }

    /// `ipam` with `type` host-local unless given, `ranges` replaced by one range set per
    /// family holding the host's subnet, and `routes`: those of `ipam.routes`, then one to
    /// each cluster network.
    func delegateIPAM(for host: HostSubnets) throws(CNIError) -> JSONValue {
        var i = ipam
        if i["type"] == nil { i["type"] = .string(Self.defaultIPAMType) }
        let families = [host.ipv4, host.ipv6].compactMap { $0 }
        i["ranges"] = .array(families.map { [["subnet": .string($0.subnet.description)]] })
        let clusterRoutes: [JSONValue] = families.map { ["dst": .string($0.network.description)] }
        i["routes"] = .array(try Self.configuredRoutes(i["routes"]) + clusterRoutes)
        return .object(i)
    }

    /// The keys flannel sets itself may not come from `delegate`: `name` and `ipam` are
    /// refused, and `type`, when given, must be a string (code 7 naming the key).
    static func checkDelegate(_ d: [String: JSONValue]) throws(CNIError) {
        if let t = d["type"], t.stringValue?.isEmpty ?? true {
            throw CNIError.invalidConfig("delegate.type: must be a non-empty string naming the delegate plugin")
        }
        for key in ["name", "ipam"] where d[key] != nil {
            throw CNIError.invalidConfig("delegate.\(key): not allowed; flannel sets the delegate's \"\(key)\" itself",
                                         details: key == "ipam" ? "put IPAM options in the top-level \"ipam\" object" : "")
        }
    }

    /// `ipam.routes` as written (null or absent: none). Each must be an object whose `dst` is
    /// an address/prefix; the objects are passed on unchanged (code 7 naming the entry else).
    static func configuredRoutes(_ value: JSONValue?) throws(CNIError) -> [JSONValue] {
        guard let value, !value.isNull else { return [] }
        guard let routes = value.arrayValue else { throw CNIError.invalidConfig("ipam.routes: must be an array of routes") }
        for (n, route) in routes.enumerated() {
            guard let dst = route["dst"]?.stringValue, CIDR(dst) != nil else {
                throw CNIError.invalidConfig("ipam.routes[\(n)].dst: must be an address/prefix such as \"10.0.0.0/8\"")
            }
        }
        return routes
    }
}
