// What `run` and `start` refuse before anything is made, each with the reason, as Docker
// does: options that cannot apply in the chosen network mode or on the chosen network (rather
// than accepted and ignored), a network that collides with another network of the host in
// use, and a host port another container of the host publishes already.

import CNI
import SystemKit

extension ContainerRuntime {
    func validate(_ req: RunRequest, name: String) throws {
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidName(name) }
        try attacher.validate(mode: req.networkMode)
        try checkOptionsApply(req)
        if case .network(let network) = req.networkMode, let cni {
            let list = try cni.networks.load(network)
            try checkCapabilities(req, list)
            try checkCollisions(list, starting: name)
        }
        try checkPortsFree(req.ports, for: name)
        if let rootfs = req.rootfs, !Files.exists(rootfs) {
            throw RuntimeError.invalidArgument("--rootfs \(rootfs): no such directory")
        }
    }

    /// `-p`, `--ip` and `--mac` need an interface of the container's own on a network.
    func checkOptionsApply(_ req: RunRequest) throws {
        let given = [("-p", !req.ports.isEmpty), ("--ip", req.ip != nil), ("--mac", req.mac != nil)]
            .filter(\.1).map(\.0)
        guard let option = given.first else { return }
        switch req.networkMode {
        case .network: return
        case .none:
            throw RuntimeError.invalidArgument(
                "\(option) needs a network: with --network none the container has only lo, so there is nothing to "
                + (option == "-p" ? "publish a port on" : "give an address or a MAC") + " (use --network bridge or a network's name)")
        case .host:
            throw RuntimeError.invalidArgument(
                "\(option) needs a network: in --network host mode the container uses the host's interfaces, "
                + (option == "-p" ? "so its ports are the host's already" : "whose addresses and MACs are the host's"))
        case .container(let other):
            throw RuntimeError.invalidArgument(
                "\(option) cannot be used with --network container:\(other): the container joins \(other)'s network namespace, "
                + "whose interfaces, addresses and ports are \(other)'s (give \(option) when running \(other))")
        }
    }

    /// `-p`, `--ip` and `--mac` reach the plugins only as capability arguments (libcni's
    /// rule): on a network none of whose plugins declares the capability they would be lost.
    func checkCapabilities(_ req: RunRequest, _ list: NetworkConfigList) throws {
        let needed = [("-p", "portMappings", !req.ports.isEmpty), ("--ip", "ips", req.ip != nil), ("--mac", "mac", req.mac != nil)]
        for (option, capability, wanted) in needed where wanted {
            let declared = list.plugins.contains { $0["capabilities"]?[capability]?.boolValue == true }
            if !declared {
                throw RuntimeError.networkUnavailable(network: list.name, reason:
                    "\(option) needs the \"\(capability)\" capability, and no plugin of this network declares it, so it "
                    + "would be ignored (add \"capabilities\": {\"\(capability)\": true} to the plugin that should get it)")
            }
        }
    }

    /// Two networks of one host that share a bridge or a subnet hand out the same addresses
    /// on one wire: the second one to be used is refused while the first has containers.
    func checkCollisions(_ list: NetworkConfigList, starting name: String) throws {
        guard let cni else { return }
        for (other, shared) in try cni.networks.collisions(of: list) {
            let users = try containers(onNetwork: other).filter { $0.name != name }.map(\.name)
            guard !users.isEmpty else { continue }
            throw RuntimeError.networkUnavailable(network: list.name, reason:
                "it collides with network \(other) (both use \(shared)), which has containers (\(users.joined(separator: ", "))): "
                + "use \(other), or give \(list.name) its own bridge and subnet")
        }
    }

    /// A host port that a running container of this host publishes is refused naming it (its
    /// ports are in the host's one portmap table whatever its network).
    func checkPortsFree(_ ports: [PortMapping], for name: String) throws {
        guard !ports.isEmpty else { return }
        for holder in try list(all: false) where holder.name != name {
            for p in ports {
                guard let held = holder.ports.first(where: { $0.clashes(with: p) }) else { continue }
                throw RuntimeError.invalidArgument(
                    "host port \(p.hostPort)/\(p.protocol)\(p.hostIP.isEmpty ? "" : " on " + p.hostIP) is already published by "
                    + "container \(holder.name) (\(holder.status.rawValue), -p \(held)): stop it first (\(hint("stop", holder.name))) "
                    + "or choose another host port")
            }
        }
    }

    /// A CNI error's text with every container ID of this host replaced by the container's
    /// name and state (`web (running)`), and unknown 64-digit IDs shortened.
    func naming(_ error: any Error) -> any Error {
        guard case .networkUnavailable(let network, let reason) = error as? RuntimeError else { return error }
        // Only presentation: unreadable state leaves the IDs as they are (shortened).
        let known = Dictionary((try? runDirectory.records())?.map { ($0.id, $0) } ?? [], uniquingKeysWith: { a, _ in a })
        var out = ""
        var rest = Substring(reason)
        while let range = Self.firstContainerID(in: rest) {
            out += rest[..<range.lowerBound]
            let id = String(rest[range])
            if let r = known[id] {
                out += "\(r.name) (\(r.status.rawValue))"
            } else {
                out += "\(id.prefix(12)) (no container of this host; \(hint("gc")) removes what it left)"
            }
            rest = rest[range.upperBound...]
        }
        return RuntimeError.networkUnavailable(network: network, reason: out + rest)
    }

    static let containerIDLength = 64

    /// The first run of exactly 64 hex digits in `text`.
    static func firstContainerID(in text: Substring) -> Range<Substring.Index>? {
        var start: Substring.Index?
        var i = text.startIndex
        while true {
            let atEnd = i == text.endIndex
            let isHex = !atEnd && text[i].isHexDigit && !text[i].isUppercase
            if isHex {
                if start == nil { start = i }
            } else if let s = start {
                if text.distance(from: s, to: i) == containerIDLength { return s..<i }
                start = nil
            }
            if atEnd { return nil }
            i = text.index(after: i)
        }
    }
}
