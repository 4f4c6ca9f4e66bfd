// The runtime side, as libcni does it: execute a network configuration list for ADD (chaining
// prevResult), DEL (reverse order, with the cached result), CHECK, STATUS and GC; cache each
// ADD result per (network, container, ifname) in `<cacheDir>/results/<net>-<id>-<ifname>`
// in libcni's cache format, so another runtime (or a later run) can find it.

import SystemKit

/// What a runtime knows about one attachment.
public struct RuntimeConf: Sendable {
    public var containerID: String
    public var netns: String?
    public var ifName: String
    /// CNI_ARGS pairs.
    public var args: [(String, String)]
    /// Values for capabilities (`portMappings`, `ips`, `mac`, `bandwidth`, ...); a plugin gets
    /// those it declares in its `capabilities` map, under `runtimeConfig`.
    public var capabilityArgs: [String: JSONValue]

    public init(containerID: String, netns: String?, ifName: String, args: [(String, String)] = [],
                capabilityArgs: [String: JSONValue] = [:]) {
        self.containerID = containerID; self.netns = netns; self.ifName = ifName
        self.args = args; self.capabilityArgs = capabilityArgs
    }
}

/// One entry of the result cache.
public struct CachedAttachment: Sendable {
    public var networkName: String
    public var containerID: String
    public var ifName: String
    public var netns: String?
    public var args: [(String, String)]
    public var capabilityArgs: [String: JSONValue]
    /// The config list bytes the ADD ran with.
    public var config: [UInt8]
    public var result: CNIResult?
    public var path: String

    public var runtimeConf: RuntimeConf {
        RuntimeConf(containerID: containerID, netns: netns, ifName: ifName, args: args, capabilityArgs: capabilityArgs)
    }
}

public struct CNIRuntime: Sendable {
    public var pluginDirectories: [String]
    public var cacheDirectory: String
    /// The environment plugins start with (CNI_* variables are set on top). Default: ours.
    public var environment: [String: String]

    public init(pluginDirectories: [String], cacheDirectory: String = "/var/lib/cni",
                environment: [String: String]? = nil) {
        self.pluginDirectories = pluginDirectories
        self.cacheDirectory = cacheDirectory
        self.environment = (environment ?? Environment.current).filter { !$0.key.hasPrefix("CNI_") }
    }

    // MARK: verbs

    /// ADD: each plugin in order, each getting the previous one's result as `prevResult`;
    /// the last result is cached and returned (in the list's version).
    public func addNetworkList(_ list: NetworkConfigList, _ rt: RuntimeConf) throws(CNIError) -> CNIResult {
        try validate(list, rt)
        var prev: CNIResult?
        for plugin in list.plugins {
            let conf = try buildConfig(plugin, list: list, prevResult: prev, rt: rt)
            let out = try exec(plugin, .add, conf, rt: rt)
            prev = try CNIResult.decode(out, version: list.cniVersion)
        }
        guard let result = prev else { throw CNIError.internal("no plugin produced a result") }
        try cache(result, list: list, rt: rt)
        return result
    }

    /// DEL: each plugin in reverse order, with the cached result as `prevResult` (0.4.0+);
    /// the cache entry is removed when every plugin succeeded.
    public func delNetworkList(_ list: NetworkConfigList, _ rt: RuntimeConf) throws(CNIError) {
        try validate(list, rt)
        var cached: CNIResult?
        if CNIVersion.atLeast(list.cniVersion, .v0_4_0) {
            // As libcni: an unreadable cache entry must not block DEL; the plugins clean up without it.
            cached = try? cachedResult(network: list.name, containerID: rt.containerID, ifName: rt.ifName)?
                .converted(to: list.cniVersion)
        }
        for plugin in list.plugins.reversed() {
            let conf = try buildConfig(plugin, list: list, prevResult: cached, rt: rt)
            _ = try exec(plugin, .del, conf, rt: rt)
        }
        let cache = cachePath(network: list.name, containerID: rt.containerID, ifName: rt.ifName)
        try io { () throws(SystemError) in try Files.remove(cache) }
        // A runtime killed while caching this attachment's result left its temporary file.
        _ = try io { () throws(SystemError) in
            try Files.removeAbandonedTemporaries(in: Files.directoryName(cache), namePrefix: Files.baseName(cache) + ".tmp.")
        }
    }

    /// CHECK (0.4.0+): each plugin in order with the cached result. Nothing when `disableCheck`.
    public func checkNetworkList(_ list: NetworkConfigList, _ rt: RuntimeConf) throws(CNIError) {
        try validate(list, rt)
        guard CNIVersion.atLeast(list.cniVersion, .v0_4_0) else {
            throw CNIError.incompatibleVersion("configuration version \(list.cniVersion) does not support CHECK")
        }
        if list.disableCheck { return }
        guard let cached = try cachedResult(network: list.name, containerID: rt.containerID, ifName: rt.ifName) else {
            throw CNIError.unknownContainer("cannot CHECK: no cached result for \(list.name)/\(rt.containerID)/\(rt.ifName)")
        }
        let prev = try cached.converted(to: list.cniVersion)
        for plugin in list.plugins {
            _ = try exec(plugin, .check, buildConfig(plugin, list: list, prevResult: prev, rt: rt), rt: rt)
        }
    }

    /// STATUS (1.1.0+): each plugin in order; the first that is not ready throws (code 50/51).
    /// Lists older than 1.1.0 are reported ready without calling anything, like libcni.
    public func statusNetworkList(_ list: NetworkConfigList) throws(CNIError) {
        guard CNIVersion.atLeast(list.cniVersion, .v1_1_0) else { return }
        for plugin in list.plugins {
            _ = try exec(plugin, .status, buildConfig(plugin, list: list, prevResult: nil, rt: nil), rt: nil)
        }
    }

    /// GC: deletes every cached attachment of this network that is not in `validAttachments`
    /// (DEL with its cached config), then, for 1.1.0+, sends GC to every plugin with
    /// `cni.dev/valid-attachments` (and `cni.dev/attachments`, which libcni also sets).
    /// Nothing when `disableGC`. Continues past failures and throws the first at the end.
    public func gcNetworkList(_ list: NetworkConfigList, validAttachments: [Attachment]) throws(CNIError) {
        if list.disableGC { return }
        let valid = Set(validAttachments)
        var firstError: CNIError?
        for entry in try cachedAttachments(network: list.name)
        where !valid.contains(Attachment(containerID: entry.containerID, ifname: entry.ifName)) {
            do throws(CNIError) {
                // An unreadable cached config falls back to the current list (same network name).
                let cachedList = (try? NetworkConfigList(bytes: entry.config)) ?? list
                try delNetworkList(cachedList, entry.runtimeConf)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if CNIVersion.atLeast(list.cniVersion, .v1_1_0) {
            let va: JSONValue = .array(validAttachments.map {
                ["containerID": .string($0.containerID), "ifname": .string($0.ifname)]
            })
            for plugin in list.plugins {
                do throws(CNIError) {
                    var conf = try buildConfigValue(plugin, list: list, prevResult: nil, rt: nil)
                    conf["cni.dev/valid-attachments"] = va
                    conf["cni.dev/attachments"] = va
                    _ = try exec(plugin, .gc, conf.serialized(), rt: nil)
                } catch {
                    if firstError == nil { firstError = error }
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// VERSION: the spec versions plugin `type` supports (its `supportedVersions`).
    public func pluginVersions(type: String, cniVersion: String = CNIVersion.current) throws(CNIError) -> [String] {
        let path = try PluginExec.find(type, in: pluginDirectories)
        var env = environment
        env["CNI_COMMAND"] = CNICommand.version.rawValue
        env["CNI_PATH"] = pluginDirectories.joined(separator: ":")
        let stdin = JSONValue.object(["cniVersion": .string(cniVersion)]).serialized()
        let out = try JSONValue.parse(PluginExec.invoke(path, environment: env, stdin: stdin), what: "VERSION output")
        guard let list = out["supportedVersions"]?.arrayValue?.compactMap(\.stringValue) else {
            throw CNIError.decodingFailure("VERSION output of \(type) has no supportedVersions")
        }
        return list
    }

    // MARK: building each plugin's config

    /// A plugin's stdin: its entry of the list with `name` and `cniVersion` of the list,
    /// `prevResult` (in the list's version) and `runtimeConfig` holding the capability
    /// arguments the plugin declares in `capabilities`.
    public func buildConfig(_ plugin: JSONValue, list: NetworkConfigList, prevResult: CNIResult?,
                            rt: RuntimeConf?) throws(CNIError) -> [UInt8] {
        try buildConfigValue(plugin, list: list, prevResult: prevResult, rt: rt).serialized()
    }

    func buildConfigValue(_ plugin: JSONValue, list: NetworkConfigList, prevResult: CNIResult?,
                          rt: RuntimeConf?) throws(CNIError) -> JSONValue {
        var conf = plugin
        conf["name"] = .string(list.name)
        conf["cniVersion"] = .string(list.cniVersion)
        if let prevResult { conf["prevResult"] = try prevResult.json(version: list.cniVersion) }
        if let rt, let caps = plugin["capabilities"]?.objectValue {
            var rc: [String: JSONValue] = [:]
            for (cap, enabled) in caps where enabled.boolValue == true {
                if let v = rt.capabilityArgs[cap] { rc[cap] = v }
            }
            if !rc.isEmpty { conf["runtimeConfig"] = .object(rc) }
        }
        return conf
    }

    // MARK: cache

    /// `<cacheDir>/results/<network>-<containerID>-<ifName>`, libcni's layout.
    public func cachePath(network: String, containerID: String, ifName: String) -> String {
        cacheDirectory + "/results/" + network + "-" + containerID + "-" + ifName
    }

    /// The cached ADD result of an attachment, or nil when there is none.
    public func cachedResult(network: String, containerID: String, ifName: String) throws(CNIError) -> CNIResult? {
        let p = cachePath(network: network, containerID: containerID, ifName: ifName)
        guard Files.exists(p) else { return nil }
        return try readCache(p).result
    }

    /// Every cached attachment of `network`.
    public func cachedAttachments(network: String) throws(CNIError) -> [CachedAttachment] {
        let dir = cacheDirectory + "/results"
        var out: [CachedAttachment] = []
        let names = try io { () throws(SystemError) in try Files.listIfPresent(dir) }
        for name in names where name.hasPrefix(network + "-") && !name.contains(".tmp.") {
            // As libcni: a damaged entry is no attachment (another network's "<net>-x" prefix too).
            guard let entry = try? readCache(dir + "/" + name), entry.networkName == network else { continue }
            out.append(entry)
        }
        return out
    }

    func cache(_ result: CNIResult, list: NetworkConfigList, rt: RuntimeConf) throws(CNIError) {
        var o: [String: JSONValue] = [
            "kind": "cniCacheV1",
            "containerId": .string(rt.containerID),
            "config": .string(Base64.encode(list.bytes)),
            "ifName": .string(rt.ifName),
            "networkName": .string(list.name),
            "result": try result.json(version: result.cniVersion),
        ]
        if let n = rt.netns { o["netns"] = .string(n) }
        if !rt.args.isEmpty { o["cniArgs"] = .array(rt.args.map { [.string($0.0), .string($0.1)] }) }
        if !rt.capabilityArgs.isEmpty { o["capabilityArgs"] = .object(rt.capabilityArgs) }
        try io { () throws(SystemError) in try Files.makeDirectories(cacheDirectory + "/results", permissions: 0o700) }
        let bytes = JSONValue.object(o).serialized()
        try io { () throws(SystemError) in
            try Files.writeAtomically(cachePath(network: list.name, containerID: rt.containerID, ifName: rt.ifName),
                                      bytes, permissions: 0o600)
        }
    }

    func readCache(_ path: String) throws(CNIError) -> CachedAttachment {
        let v = try JSONValue.parse(io { () throws(SystemError) in try Files.read(path) }, what: "cache file \(path)")
        guard v["kind"]?.stringValue == "cniCacheV1" else {
            throw CNIError.decodingFailure("cache file \(path) is not a cniCacheV1 entry")
        }
        let result = try v["result"].flatMap { r throws(CNIError) in r.isNull ? nil : try CNIResult.decode(r) }
        let args: [(String, String)] = (v["cniArgs"]?.arrayValue ?? []).compactMap { p in
            guard let a = p.arrayValue, a.count == 2, let k = a[0].stringValue, let val = a[1].stringValue else { return nil }
            return (k, val)
        }
        return CachedAttachment(
            networkName: v["networkName"]?.stringValue ?? "", containerID: v["containerId"]?.stringValue ?? "",
            ifName: v["ifName"]?.stringValue ?? "", netns: v["netns"]?.stringValue, args: args,
            capabilityArgs: v["capabilityArgs"]?.objectValue ?? [:],
            config: v["config"]?.stringValue.flatMap { Base64.decode($0) } ?? [], result: result, path: path)
    }

    // MARK: exec

    func validate(_ list: NetworkConfigList, _ rt: RuntimeConf) throws(CNIError) {
        try validateNetworkName(list.name)
        try validateContainerID(rt.containerID)
        try validateInterfaceName(rt.ifName)
    }

    func exec(_ plugin: JSONValue, _ cmd: CNICommand, _ conf: [UInt8], rt: RuntimeConf?) throws(CNIError) -> [UInt8] {
        guard let type = plugin["type"]?.stringValue else { throw CNIError.invalidConfig("plugin without \"type\"") }
        let path = try PluginExec.find(type, in: pluginDirectories)
        var env = environment
        env["CNI_COMMAND"] = cmd.rawValue
        env["CNI_PATH"] = pluginDirectories.joined(separator: ":")
        if let rt {
            env["CNI_CONTAINERID"] = rt.containerID
            env["CNI_IFNAME"] = rt.ifName
            if let n = rt.netns { env["CNI_NETNS"] = n }
            if !rt.args.isEmpty { env["CNI_ARGS"] = rt.args.map { "\($0.0)=\($0.1)" }.joined(separator: ";") }
        }
        return try PluginExec.invoke(path, environment: env, stdin: conf)
    }
}
