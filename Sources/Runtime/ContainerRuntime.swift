// The runtime: starts containers, records their state, and stops, enters and removes them.

import CNetlabShims
import FoundationEssentials
import Glibc

/// What `netlab run` asks for.
public struct RunRequest: Sendable {
    public var name: String?
    public var hostname: String?
    /// Empty, or `["pause"]`: the built-in pause init.
    public var command: [String]
    public var environment: [String] = []
    public var networkMode: NetworkMode = .none
    public var ports: [PortMapping] = []
    public var ip: String?
    public var mac: String?
    public var rootfs: String?
    public var detach = false
    public var autoRemove = false

    public init(command: [String]) { self.command = command }
}

public enum RunOutcome: Equatable, Sendable {
    /// A detached container is running.
    case started(ContainerRecord)
    /// A foreground container exited with this code.
    case exited(Int32)
}

public final class ContainerRuntime: @unchecked Sendable {
    public let runDirectory: RunDirectory
    public var attacher: any NetworkAttacher
    /// The netns of the simulated host this runtime works for (`--host`): mode `host` joins it.
    /// nil: the caller's own netns is the host's.
    public var hostNetnsPath: String?
    /// The simulated host's name, recorded in each container (nil: the machine itself).
    public var hostName: String?

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public init(runDirectory: RunDirectory, attacher: any NetworkAttacher = NoNetworkAttacher(),
                hostNetnsPath: String? = nil, hostName: String? = nil) {
        self.runDirectory = runDirectory
        self.attacher = attacher
        self.hostNetnsPath = hostNetnsPath
        self.hostName = hostName
    }

    static func requireRoot(_ operation: String) throws {
        if !Sys.isRoot { throw RuntimeError.notRoot(operation: operation) }
    }

    // MARK: run

    public func run(_ req: RunRequest, onStarted: (ContainerRecord) -> Void = { _ in }) throws -> RunOutcome {
        try Self.requireRoot("netlab run")
        let id = ContainerRecord.generateID()
        let name = req.name ?? "c" + String(id.prefix(11))
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidName(name) }
        try attacher.validate(mode: req.networkMode)
        if req.networkMode == .host, !req.ports.isEmpty {
            throw RuntimeError.invalidArgument("-p needs a network: in --network host mode the container's ports are the host's")
        }
        let command = req.command == ["pause"] ? [] : req.command
        if let rootfs = req.rootfs, !Sys.exists(rootfs) {
            throw RuntimeError.invalidArgument("--rootfs \(rootfs): no such directory")
        }
        var joinFD: Int32 = -1
        defer { if joinFD >= 0 { close(joinFD) } }
        let netns: NetnsChoice
        var netnsPath: String? = runDirectory.netnsPath(name)
        switch req.networkMode {
        case .none, .network:
            netns = .new
        case .host:
            netnsPath = hostNetnsPath
            if let hostNetnsPath {
                joinFD = try sys("open", hostNetnsPath) { open(hostNetnsPath, O_RDONLY | O_CLOEXEC) }
                netns = .join(fd: joinFD)
            } else {
                netns = .inherit
            }
        case .container(let other):
            let o = try refreshed(try runDirectory.find(other))
            guard o.status == .running, let opid = o.pid else { throw RuntimeError.containerNotRunning(other) }
            let path = o.netnsPath ?? "/proc/\(opid)/ns/net"
            joinFD = try sys("open netns of container", other) { open(path, O_RDONLY | O_CLOEXEC) }
            netns = .join(fd: joinFD)
        }

        try runDirectory.claim(name)
        var record = ContainerRecord(
            id: id, name: name, pid: nil, pidStartTime: nil, command: command, created: Date(),
            started: nil, finished: nil, status: .created, exitCode: nil, networkMode: req.networkMode,
            networks: [:], ports: req.ports, ip: req.ip, mac: req.mac,
            hostname: req.hostname ?? String(id.prefix(12)), rootfs: req.rootfs, netnsPath: netnsPath,
            logPath: req.detach ? runDirectory.logPath(name) : nil, detached: req.detach,
            autoRemove: req.autoRemove, host: hostName)
        var spawned: SpawnedInit?
        do {
            try runDirectory.save(record)
            let exitPath = runDirectory.exitPath(name)
            let exitFD = try sys("create", exitPath) { open(exitPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
            defer { close(exitFD) }
            var opts = SpawnOptions(argv: command, environment: environment(for: record, extra: req.environment),
                                    hostname: record.hostname, rootfs: req.rootfs, netns: netns)
            opts.exitStatusFD = exitFD
            var logFD: Int32 = -1, nullFD: Int32 = -1
            defer { if logFD >= 0 { close(logFD) }; if nullFD >= 0 { close(nullFD) } }
            if req.detach {
                let logPath = runDirectory.logPath(name)
                logFD = try sys("create", logPath) { open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640) }
                nullFD = try sys("open", "/dev/null") { open("/dev/null", O_RDONLY | O_CLOEXEC) }
                (opts.stdinFD, opts.stdoutFD, opts.stderrFD) = (nullFD, logFD, logFD)
                opts.newSession = true
            }
            let s = try spawnContainerInit(opts)
            spawned = s
            // From now on ^C and kill reach the container rather than leaving it behind.
            if !req.detach { netlab_forward_signals(s.pid) }
            record.pid = s.pid
            record.pidStartTime = Sys.processStat(s.pid)?.startTime
            try runDirectory.save(record)
            if req.networkMode != .host {
                try Sys.bindMount("/proc/\(s.pid)/ns/net", on: runDirectory.netnsPath(name))
            }
            if req.networkMode.ownsNetworkNamespace {
                record.networks = try attacher.attach(container: record, netnsPath: runDirectory.netnsPath(name))
            }
            record.status = .running
            record.started = Date()
            try runDirectory.save(record)
            try s.release()
        } catch {
            netlab_forward_signals(0)
            spawned?.abandon()
            try? teardown(record)
            throw error
        }
        onStarted(record)
        if req.detach { return .started(record) }

        let code = waitForwardingSignals(record.pid!)
        record.status = .exited
        record.exitCode = code
        record.finished = Date()
        if req.autoRemove {
            try teardown(record)
        } else {
            try runDirectory.save(record)
        }
        return .exited(code)
    }

    /// For `run -d --rm`: starts `reaperCommand` (which must end up calling
    /// `removeWhenExited(name)`, e.g. `netlab __reap NAME`) detached from this process.
    public func startReaper(_ reaperCommand: [String]) throws {
        try Sys.spawnDetached(reaperCommand)
    }

    /// Waits for a container's init to exit, then removes the container (networks, netns,
    /// state) if it was started with `--rm`.
    public func removeWhenExited(_ name: String) throws {
        let r = try runDirectory.load(name)
        if let pid = r.pid { try Sys.waitForExit(pid: pid, startTime: r.pidStartTime) }
        let now = try runDirectory.load(name)
        guard now.id == r.id, now.autoRemove else { return }
        try teardown(refreshed(now))
    }

    func environment(for record: ContainerRecord, extra: [String]) -> [String] {
        var env = ["PATH=" + Self.defaultPath, "HOSTNAME=" + record.hostname, "HOME=/root"]
        if let term = getenv("TERM") { env.append("TERM=" + String(cString: term)) }
        return env + extra
    }

    // MARK: state

    /// The record with its status brought up to date: a "running" container whose init is gone
    /// becomes "exited" with the code its init wrote (137 when it was killed before it could).
    public func refreshed(_ record: ContainerRecord) -> ContainerRecord {
        guard record.status == .running else { return record }
        if let pid = record.pid, Sys.isAlive(pid: pid, startTime: record.pidStartTime) { return record }
        var r = record
        r.status = .exited
        if let exit = runDirectory.recordedExit(r.name) {
            r.exitCode = exit.code
            r.finished = exit.time
        } else {
            r.exitCode = 128 + SIGKILL
            r.finished = Date()
        }
        // A `--rm` container is about to be removed by its reaper: writing its state now
        // would race with that removal.
        if !r.autoRemove { try? runDirectory.save(r) }
        return r
    }

    public func container(_ nameOrID: String) throws -> ContainerRecord {
        refreshed(try runDirectory.find(nameOrID))
    }

    /// Every container (running ones only unless `all`), oldest first.
    public func list(all: Bool) -> [ContainerRecord] {
        runDirectory.names()
            .compactMap { try? runDirectory.load($0) }
            .map(refreshed)
            .filter { all || $0.status == .running }
            .sorted { $0.created < $1.created }
    }

    public func logs(_ nameOrID: String) throws -> [UInt8] {
        let r = try runDirectory.find(nameOrID)
        guard let path = r.logPath else {
            throw RuntimeError.invalidArgument("container \(r.name) was not started with -d: its output went to the terminal")
        }
        return Sys.readFile(path) ?? []
    }

    // MARK: exec, stop, rm

    public func exec(_ nameOrID: String, command: [String], environment: [String] = [], interactive: Bool) throws -> Int32 {
        try Self.requireRoot("netlab exec")
        let r = try container(nameOrID)
        guard r.status == .running, let pid = r.pid else { throw RuntimeError.containerNotRunning(r.name) }
        guard !command.isEmpty else { throw RuntimeError.invalidArgument("exec needs a command") }
        return try execInContainer(pid: pid, argv: command, environment: self.environment(for: r, extra: environment),
                                   interactive: interactive)
    }

    /// SIGTERM to the container's init, SIGKILL after `timeout` seconds; returns the record
    /// once the init is gone.
    @discardableResult
    public func stop(_ nameOrID: String, timeout: Double = 10) throws -> ContainerRecord {
        try Self.requireRoot("netlab stop")
        let r = try container(nameOrID)
        guard r.status == .running, let pid = r.pid else { return r }
        try Sys.sendSignal(pid, SIGTERM)
        if !waitGone(r, seconds: timeout) {
            try Sys.sendSignal(pid, SIGKILL)
            _ = waitGone(r, seconds: 10)
        }
        return refreshed(r)
    }

    func waitGone(_ r: ContainerRecord, seconds: Double) -> Bool {
        guard let pid = r.pid else { return true }
        var waited = 0.0
        while Sys.isAlive(pid: pid, startTime: r.pidStartTime) {
            if waited >= seconds { return false }
            Sys.sleep(milliseconds: 20)
            waited += 0.02
        }
        return true
    }

    /// Removes a container: refuses a running one unless `force`, which kills it first.
    public func remove(_ nameOrID: String, force: Bool) throws {
        try Self.requireRoot("netlab rm")
        let r: ContainerRecord
        do {
            r = try container(nameOrID)
        } catch let error as RuntimeError {
            // A directory whose state file a crash left missing or unreadable: with -f,
            // remove what is there.
            guard force, ContainerRecord.isValidName(nameOrID), Sys.exists(runDirectory.containerPath(nameOrID)) else {
                throw error
            }
            try Sys.unmountAndRemove(runDirectory.netnsPath(nameOrID))
            try Sys.removeTree(runDirectory.containerPath(nameOrID))
            return
        }
        let alive = r.pid.map { Sys.isAlive(pid: $0, startTime: r.pidStartTime) } ?? false
        if alive {
            guard force else { throw RuntimeError.containerRunning(r.name) }
            try Sys.sendSignal(r.pid!, SIGKILL)
            _ = waitGone(r, seconds: 10)
        }
        try teardown(r)
    }

    /// Detaches the networks, unmounts the netns and removes the state; keeps going past
    /// failures and reports the first one at the end.
    func teardown(_ r: ContainerRecord) throws {
        var firstError: (any Error)?
        let nsPath = runDirectory.netnsPath(r.name)
        let nsMounted = Sys.exists(nsPath)
        if r.networkMode.ownsNetworkNamespace {
            do { try attacher.detach(container: r, netnsPath: nsMounted ? nsPath : nil) } catch { firstError = firstError ?? error }
        }
        do { try Sys.unmountAndRemove(nsPath) } catch { firstError = firstError ?? error }
        do { try Sys.removeTree(runDirectory.containerPath(r.name)) } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
