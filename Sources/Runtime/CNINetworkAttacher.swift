// Networking through CNI, as a runtime does it with libcni: every netns the runtime owns gets
// the `loopback` plugin (interface `lo`), and a container on a network gets that network's
// conflist (interface `eth0`) with `portMappings`, `ips` and `mac` as capability arguments.
// Results are cached per host (`<host dir>/cni`), so DEL, CHECK and GC work from the cache.
// For a simulated host every CNI call runs inside the host's netns: the plugins are spawned
// from a thread that has entered it, so they start there.

import CNI
import FoundationEssentials
import Netlink

public struct CNINetworkAttacher: NetworkAttacher {
    public let networks: NetworkStore
    public let pluginDirectories: [String]
    /// The simulated host's netns; nil: the caller's own.
    public let hostNetnsPath: String?

    /// The list every owned netns gets: `lo` up.
    public static let loopbackNetwork = "loopback"
    public static let containerInterface = "eth0"

    public init(networks: NetworkStore, pluginDirectories: [String], hostNetnsPath: String?) {
        self.networks = networks
        self.pluginDirectories = pluginDirectories
        self.hostNetnsPath = hostNetnsPath
    }

    /// `--cni-path` (colon-separated), else `$NETLAB_CNI_PATH`, else the directory of the
    /// running executable, then /opt/cni/bin and /usr/libexec/cni.
    public static func pluginDirectories(option: String?, environment: [String: String], executable: String) -> [String] {
        if let p = option ?? environment["NETLAB_CNI_PATH"], !p.isEmpty {
            return p.split(separator: ":").map(String.init)
        }
        var dirs: [String] = []
        if let slash = executable.lastIndex(of: "/") { dirs.append(String(executable[..<slash])) }
        return dirs + ["/opt/cni/bin", "/usr/libexec/cni"]
    }

    var cni: CNIRuntime { CNIRuntime(pluginDirectories: pluginDirectories, cacheDirectory: networks.cacheDirectory) }

    static let loopbackList: NetworkConfigList = {
        let json: JSONValue = ["cniVersion": "1.1.0", "name": .string(loopbackNetwork), "plugins": [["type": "loopback"]]]
        return try! NetworkConfigList(bytes: json.serialized())
    }()

    /// Runs `body` in the host's netns (the plugins it spawns start there).
    func inHost<T>(_ body: () throws -> T) throws -> T {
        guard let hostNetnsPath else { return try body() }
        let host: NetworkNamespace
        do {
            host = try NetworkNamespace.open(path: hostNetnsPath)
        } catch {
            throw RuntimeError.state("cannot enter the host's network namespace \(hostNetnsPath): \(error)")
        }
        return try withNetworkNamespace(host, body)
    }

    public func validate(mode: NetworkMode) throws {
        if case .network(let name) = mode {
            guard name != Self.loopbackNetwork else {
                throw RuntimeError.networkUnavailable(network: name, reason: "reserved name; use --network none for a netns with only lo")
            }
            _ = try networks.load(name)
        }
    }

    /// The lists a mode is attached with, and the interface each one gets.
    func lists(for mode: NetworkMode) throws -> [(list: NetworkConfigList, ifName: String)] {
        switch mode {
        case .host, .container: return []
        case .none: return [(Self.loopbackList, "lo")]
        case .network(let name):
            let list = try networks.load(name)
            let hasLoopback = list.plugins.contains { $0["type"]?.stringValue == "loopback" }
            return (hasLoopback ? [] : [(Self.loopbackList, "lo")]) + [(list, Self.containerInterface)]
        }
    }

    /// The capability arguments of a container: `-p`, `--ip`, `--mac`.
    static func capabilityArgs(_ c: ContainerRecord) -> [String: JSONValue] {
        var caps: [String: JSONValue] = [:]
        if !c.ports.isEmpty {
            caps["portMappings"] = .array(c.ports.map { p in
                var o: [String: JSONValue] = ["hostPort": .number(Double(p.hostPort)), "containerPort": .number(Double(p.containerPort)),
                                              "protocol": .string(p.protocol)]
                if !p.hostIP.isEmpty { o["hostIP"] = .string(p.hostIP) }
                return .object(o)
            })
        }
        if let ip = c.ip { caps["ips"] = [.string(ip)] }
        if let mac = c.mac { caps["mac"] = .string(mac) }
        return caps
    }

    func runtimeConf(_ c: ContainerRecord, netns: String?, list: NetworkConfigList, ifName: String) -> RuntimeConf {
        RuntimeConf(containerID: c.id, netns: netns, ifName: ifName,
                    capabilityArgs: list.name == Self.loopbackNetwork ? [:] : Self.capabilityArgs(c))
    }

    static func runtimeError(_ error: any Error, network: String) -> any Error {
        guard let e = error as? CNIError else { return error }
        var reason = e.msg
        if !e.details.isEmpty && !e.msg.contains(e.details) { reason += ": " + e.details }
        reason = reason.split(separator: "\n").joined(separator: " ")
        return RuntimeError.networkUnavailable(network: network, reason: reason)
    }

    // MARK: NetworkAttacher

    public func attach(container: ContainerRecord, netnsPath: String) throws -> [String: JSONValue] {
        let lists = try lists(for: container.networkMode)
        var results: [String: JSONValue] = [:]
        var attempted: [(NetworkConfigList, RuntimeConf)] = []
        let cni = self.cni
        do {
            try inHost {
                for (list, ifName) in lists {
                    let rt = runtimeConf(container, netns: netnsPath, list: list, ifName: ifName)
                    attempted.append((list, rt))
                    do {
                        let result = try cni.addNetworkList(list, rt)
                        results[list.name] = try result.json(version: result.cniVersion)
                    } catch {
                        throw Self.runtimeError(error, network: list.name)
                    }
                }
            }
        } catch {
            // Nothing is left behind: DEL what was tried, newest first. Best effort: the ADD's
            // error is what is reported, and the container's teardown DELs once more.
            _ = try? inHost {
                for (list, rt) in attempted.reversed() { try? cni.delNetworkList(list, rt) }
            }
            throw error
        }
        return results
    }

    public func detach(container: ContainerRecord, netnsPath: String?) throws {
        var firstError: (any Error)?
        let cni = self.cni
        let wanted: [(list: NetworkConfigList, ifName: String)]
        do {
            wanted = try lists(for: container.networkMode)
        } catch {
            // The network was removed (or its conflist broken) since ADD: DEL from the cache.
            wanted = try fallbackLists(for: container.networkMode)
        }
        try inHost {
            for (list, ifName) in wanted.reversed() {
                do {
                    // The configuration and arguments the ADD ran with, as libcni does.
                    let cached = try cni.cachedAttachments(network: list.name)
                        .first { $0.containerID == container.id && $0.ifName == ifName }
                    var useList = list
                    var rt = runtimeConf(container, netns: netnsPath, list: list, ifName: ifName)
                    if let cached {
                        // A cached configuration that no longer parses: the current one will do.
                        if let l = try? NetworkConfigList(bytes: cached.config) { useList = l }
                        rt.capabilityArgs = cached.capabilityArgs
                        rt.args = cached.args
                    }
                    try cni.delNetworkList(useList, rt)
                } catch let e as CNIError {
                    firstError = firstError ?? Self.runtimeError(e, network: list.name)
                } catch {
                    firstError = firstError ?? error
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// When a network's conflist is gone: only what the cache still knows.
    func fallbackLists(for mode: NetworkMode) throws -> [(list: NetworkConfigList, ifName: String)] {
        var out: [(list: NetworkConfigList, ifName: String)] = [(Self.loopbackList, "lo")]
        if case .network(let name) = mode, let entry = try cni.cachedAttachments(network: name).first {
            out.append((try NetworkConfigList(bytes: entry.config), Self.containerInterface))
        }
        return out
    }

    // MARK: CHECK, STATUS, GC

    /// CNI CHECK of every attachment of `container` (nil: fine). Throws the first failure.
    public func check(container: ContainerRecord) throws {
        guard container.networkMode.ownsNetworkNamespace, let netns = container.netnsPath else { return }
        let cni = self.cni
        try inHost {
            for (list, ifName) in try lists(for: container.networkMode) {
                do {
                    try cni.checkNetworkList(list, runtimeConf(container, netns: netns, list: list, ifName: ifName))
                } catch {
                    throw Self.runtimeError(error, network: list.name)
                }
            }
        }
    }

    /// CNI STATUS of a network: nil when ready, else the reason.
    public func status(_ list: NetworkConfigList) -> String? {
        let cni = self.cni
        do {
            try inHost {
                do { try cni.statusNetworkList(list) } catch { throw Self.runtimeError(error, network: list.name) }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// CNI GC of every network (and the loopback list) with the attachments of `live`.
    public func gc(live: [ContainerRecord]) throws {
        let cni = self.cni
        var firstError: (any Error)?
        var all = try networks.list()
        all.append(Self.loopbackList)
        try inHost {
            for list in all {
                var valid: [Attachment] = []
                for c in live {
                    // A live container's networks must load: GC would otherwise take its attachments.
                    for (l, ifName) in try lists(for: c.networkMode) where l.name == list.name {
                        valid.append(Attachment(containerID: c.id, ifname: ifName))
                    }
                }
                do { try cni.gcNetworkList(list, validAttachments: valid) } catch {
                    firstError = firstError ?? Self.runtimeError(error, network: list.name)
                }
            }
        }
        if let firstError { throw firstError }
    }
}
