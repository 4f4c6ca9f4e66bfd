// Runtime operations that span containers and networks: check, gc, network removal, and
// emptying a simulated host.

import CNI
import FoundationEssentials
import SystemKit

extension ContainerRuntime {
    /// The CNI backend, when networking is configured.
    public var cni: CNINetworkAttacher? { attacher as? CNINetworkAttacher }

    func requireCNI() throws -> CNINetworkAttacher {
        guard let cni else { throw RuntimeError.invalidArgument("no network backend is configured") }
        return cni
    }

    /// Containers (any status) whose network mode is network `name`.
    public func containers(onNetwork name: String) throws -> [ContainerRecord] {
        try list(all: true).filter { $0.networkMode == .network(name) }
    }

    /// `netlab check [NAME]`: CNI CHECK for every running container's attachments (or one
    /// container's), and for a container in another's netns (`container:NAME`) that it is
    /// still there. Returns (container, nil or the failure) for each container checked.
    public func check(_ nameOrID: String?) throws -> [(ContainerRecord, String?)] {
        let cni = try requireCNI()
        let targets = try nameOrID.map { [try container($0)] } ?? (try list(all: false))
        return targets.filter { $0.networkMode != .host }.map { c in
            guard c.status == .running else { return (c, "not running") }
            if case .container(let owner) = c.networkMode { return (c, sharedNetnsProblem(c, owner: owner)) }
            do { try cni.check(container: c); return (c, nil) } catch { return (c, "\(error)") }
        }
    }

    /// Nil when `c` is in the netns of the running container `owner`; else what happened to
    /// its network.
    func sharedNetnsProblem(_ c: ContainerRecord, owner: String) -> String? {
        let fix = "\(hint("rm", "-f", c.name)) and run it again"
        let o: ContainerRecord
        do {
            o = try container(owner)
        } catch {
            return "its network is gone: it shared the network namespace of \(owner), which was removed (\(fix))"
        }
        guard o.status == .running, let opid = o.pid, let pid = c.pid else {
            return "its network is gone: it shares the network namespace of \(owner), which is \(o.status.rawValue) (\(fix))"
        }
        do {
            let mine = try Files.status("/proc/\(pid)/ns/net"), theirs = try Files.status("/proc/\(opid)/ns/net")
            if let mine, let theirs, mine.st_ino == theirs.st_ino, mine.st_dev == theirs.st_dev { return nil }
        } catch {
            return "cannot read its network namespace: \(error)"
        }
        return "its network is gone: \(owner) was started again in a new network namespace, and \(c.name) is still in the old one (\(fix))"
    }

    /// `netlab gc`: removes every container that is not running (with its networks, netns and
    /// state; also directories a crash left without state), then CNI GC of every network with
    /// the running containers' attachments as the valid ones. Returns the names removed.
    @discardableResult
    public func gc() throws -> [String] {
        try Self.requireRoot("netlab gc")
        var removed: [String] = []
        var firstError: (any Error)?
        for name in try runDirectory.names() {
            do {
                if try collect(name) { removed.append(name) }
            } catch {
                firstError = firstError ?? error
            }
        }
        if let cni {
            do { try cni.gc(live: try list(all: false)) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
        return removed
    }

    /// Removes container `name` unless it is running or still being started; true when removed.
    /// A directory without a readable state (what a crash left) is removed as it is.
    private func collect(_ name: String) throws -> Bool {
        let record: ContainerRecord?
        do { record = try runDirectory.loadIfPresent(name) } catch RuntimeError.state { record = nil }
        guard let record else {
            try remove(name, force: true)
            return true
        }
        let now = try refreshed(record)
        guard now.status != .running else { return false }
        if now.status == .created, let pid = now.pid, ProcessStat.isAlive(pid: pid, startTime: now.pidStartTime) {
            return false
        }
        _ = try runDirectory.withLock(name) { try teardown(now) }
        return true
    }

    /// `network rm`: refused while a container uses the network.
    public func removeNetwork(_ name: String) throws {
        let cni = try requireCNI()
        let users = try containers(onNetwork: name)
        if !users.isEmpty {
            let names = users.map(\.name)
            throw RuntimeError.invalidArgument(
                "network \(name) is in use by \(names.joined(separator: ", ")): remove \(names.count == 1 ? "it" : "those containers") first "
                + "(\(hint("rm", (["-f"] + names).joined(separator: " "))))")
        }
        try cni.networks.remove(name)
    }

    /// Removes every container of this (simulated) host, killing running ones.
    public func removeAll() throws {
        var firstError: (any Error)?
        for name in try runDirectory.names() {
            do { try remove(name, force: true) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    /// `network inspect`: the conflist and the containers attached, as pretty JSON.
    public func inspectNetwork(_ name: String) throws -> String {
        let cni = try requireCNI()
        let list = try cni.networks.load(name)
        let containers: [JSONValue] = try containers(onNetwork: name).map { c in
            ["name": .string(c.name), "id": .string(c.id), "status": .string(c.status.rawValue),
             "result": c.networks[name] ?? .null]
        }
        let config = try JSONValue.parse(list.bytes)
        let out: JSONValue = ["name": .string(name), "config": config, "containers": .array(containers)]
        return String(decoding: out.serialized(pretty: true), as: UTF8.self)
    }
}
