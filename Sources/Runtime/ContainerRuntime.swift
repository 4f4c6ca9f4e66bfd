// The runtime: starts containers, records their state, and stops, enters and removes them.

import FoundationEssentials
import Glibc
import SystemKit

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
    /// How suggested commands are written (with the global options the user gave).
    public var hint: CommandHint

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public init(runDirectory: RunDirectory, attacher: any NetworkAttacher = NoNetworkAttacher(),
                hostNetnsPath: String? = nil, hostName: String? = nil, hint: CommandHint = CommandHint()) {
        self.runDirectory = runDirectory
        self.attacher = attacher
        self.hostNetnsPath = hostNetnsPath
        self.hostName = hostName
        self.hint = hint
    }

    static func requireRoot(_ operation: String) throws {
        if geteuid() != 0 { throw RuntimeError.notRoot(operation: operation) }
    }

    // MARK: run

    /// Starts a container: checks the request, finds its network namespace, claims the name,
    /// starts the init with its networks attached, and (in the foreground) waits for it.
    public func run(_ req: RunRequest, onStarted: (ContainerRecord) -> Void = { _ in }) throws -> RunOutcome {
        try Self.requireRoot("netlab run")
        let id = ContainerRecord.generateID()
        let name = req.name ?? "c" + String(id.prefix(11))
        guard ContainerRecord.isValidName(name) else { throw RuntimeError.invalidName(name) }
        releaseExitedBestEffort()
        var req = req
        if case .container(let other) = req.networkMode {
            // Recorded by name (also when given by ID prefix), so `rm` and `check` find its sharers.
            req.networkMode = .container(try runDirectory.find(other).name)
        }
        try validate(req, name: name)
        let netns = try networkNamespace(for: req.networkMode, name: name)
        defer { netns.close() }

        try runDirectory.claim(name, remove: hint("rm", "-f", name))
        var record = ContainerRecord(
            id: id, name: name, pid: nil, pidStartTime: nil, command: req.command == ["pause"] ? [] : req.command,
            created: Date(), started: nil, finished: nil, status: .created, exitCode: nil,
            networkMode: req.networkMode, networks: [:], ports: req.ports, ip: req.ip, mac: req.mac,
            hostname: req.hostname ?? String(id.prefix(12)), rootfs: req.rootfs, netnsPath: netns.path,
            logPath: req.detach ? runDirectory.logPath(name) : nil, detached: req.detach,
            autoRemove: req.autoRemove, host: hostName, environment: req.environment)
        do {
            try launch(&record, netns: netns.choice)
        } catch {
            // Best effort: the error being thrown is what failed; teardown only tidies after it.
            try? teardown(record)
            throw naming(error)
        }
        onStarted(record)
        if req.detach { return .started(record) }
        return .exited(try waitForeground(&record))
    }

    /// Where a new container's network namespace comes from, and the path it is known by.
    struct NetnsPlan {
        var choice: NetnsChoice
        var path: String?

        func close() {
            if case .join(let fd) = choice { ignoringFailure { Glibc.close(fd.rawValue) } }
        }
    }

    func networkNamespace(for mode: NetworkMode, name: String) throws -> NetnsPlan {
        switch mode {
        case .none, .network:
            return NetnsPlan(choice: .new, path: runDirectory.netnsPath(name))
        case .host:
            guard let hostNetnsPath else { return NetnsPlan(choice: .inherit, path: nil) }
            return NetnsPlan(choice: .join(try FileDescriptor.open(hostNetnsPath)), path: hostNetnsPath)
        case .container(let other):
            let o = try refreshed(try runDirectory.find(other))
            guard o.status == .running, let opid = o.pid else {
                throw RuntimeError.invalidArgument(
                    "container \(o.name) is not running, so it has no network namespace to share (start it: \(hint("start", o.name)))")
            }
            let path = o.netnsPath ?? "/proc/\(opid)/ns/net"
            return NetnsPlan(choice: .join(try FileDescriptor.open(path)), path: runDirectory.netnsPath(name))
        }
    }

    /// Spawns the init, records it, mounts its netns, attaches its networks and lets its
    /// command run. On failure the init is gone; the caller undoes the rest (teardown for a
    /// new container, release for one being started again).
    func launch(_ record: inout ContainerRecord, netns: NetnsChoice) throws {
        var spawned: SpawnedInit?
        do {
            try runDirectory.save(record)
            let s = try spawnInit(record, netns: netns)
            spawned = s
            // From now on ^C and kill reach the container rather than leaving it behind.
            if !record.detached { forwardSignals(to: s.pid) }
            record.pid = s.pid
            record.pidStartTime = ProcessStat.read(pid: s.pid)?.startTime
            try runDirectory.save(record)
            if record.networkMode != .host {
                try NetnsMounts.bind("/proc/\(s.pid)/ns/net", on: runDirectory.netnsPath(record.name))
            }
            if record.networkMode.ownsNetworkNamespace {
                record.networks = try attacher.attach(container: record, netnsPath: runDirectory.netnsPath(record.name))
            }
            record.status = .running
            record.started = Date()
            try runDirectory.save(record)
            try s.release()
        } catch {
            stopForwardingSignals()
            spawned?.abandon()
            throw error
        }
    }

    /// Spawns the container's init with its exit-status file, and for a detached container
    /// its log as stdout/stderr and /dev/null as stdin.
    func spawnInit(_ record: ContainerRecord, netns: NetnsChoice) throws -> SpawnedInit {
        var opts = SpawnOptions(argv: record.command, environment: environment(for: record, extra: record.environment ?? []),
                                hostname: record.hostname, rootfs: record.rootfs, netns: netns)
        let exit = try FileDescriptor.open(runDirectory.exitPath(record.name), [.readWrite, .create, .truncate],
                                           permissions: 0o644)
        return try exit.closeAfter { () throws(SystemError) in
            opts.exitStatus = exit
            guard record.detached else { return try spawnContainerInit(opts) }
            let log = try FileDescriptor.open(runDirectory.logPath(record.name), [.writeOnly, .create, .append],
                                              permissions: 0o640)
            return try log.closeAfter { () throws(SystemError) in
                let null = try FileDescriptor.open("/dev/null")
                return try null.closeAfter { () throws(SystemError) in
                    (opts.stdin, opts.stdout, opts.stderr) = (null, log, log)
                    opts.newSession = true
                    return try spawnContainerInit(opts)
                }
            }
        }
    }

    /// Waits for a foreground container's command and records its exit; then removes the
    /// container (with `--rm`) or releases its networks, as a stopped container does. Returns
    /// the exit code.
    func waitForeground(_ record: inout ContainerRecord) throws -> Int32 {
        let code = try waitForwardingSignals(record.pid!)
        record.status = .exited
        record.exitCode = code
        record.finished = Date()
        if record.autoRemove {
            try teardown(record)
        } else {
            let exited = record
            try runDirectory.withLock(record.name) {
                try runDirectory.save(exited)
                _ = try release(exited)
            }
        }
        return code
    }

    func environment(for record: ContainerRecord, extra: [String]) -> [String] {
        var env = ["PATH=" + Self.defaultPath, "HOSTNAME=" + record.hostname, "HOME=/root"]
        if let term = Environment["TERM"] { env.append("TERM=" + term) }
        return env + extra
    }

    // MARK: state

    /// The record with its status brought up to date: a "running" container whose init is gone
    /// becomes "exited" with the code its init wrote (137 when it was killed before it could).
    public func refreshed(_ record: ContainerRecord) throws -> ContainerRecord {
        guard record.status == .running else { return record }
        if let pid = record.pid, ProcessStat.isAlive(pid: pid, startTime: record.pidStartTime) { return record }
        var r = record
        r.status = .exited
        if let exit = try runDirectory.recordedExit(r.name) {
            r.exitCode = exit.code
            r.finished = exit.time
        } else {
            r.exitCode = 128 + SIGKILL
            r.finished = Date()
        }
        // A `--rm` container is about to be removed by its reaper: writing its state now
        // would race with that removal.
        if !r.autoRemove {
            // The saved state only caches this: when the write fails, or someone holds the
            // container's lock (this process too, around this call), the next reader derives
            // the same again.
            if let lock = try? FileLock.attempt(path: runDirectory.lockPath(r.name)) {
                defer { lock.unlock() }
                // Only over the state this was derived from: a `start` may have run meanwhile.
                if let now = try? runDirectory.loadIfPresent(r.name), now.pid == record.pid, now.status == .running {
                    try? runDirectory.save(r)
                }
            }
        }
        return r
    }

    public func container(_ nameOrID: String) throws -> ContainerRecord {
        try refreshed(try runDirectory.find(nameOrID))
    }

    /// Every container (running ones only unless `all`), oldest first.
    public func list(all: Bool) throws -> [ContainerRecord] {
        try runDirectory.records()
            .map(refreshed)
            .filter { all || $0.status == .running }
            // `created` has whole seconds on disk: within one second, the init's start time
            // (clock ticks) orders them, and the name keeps the order stable.
            .sorted { ($0.created, $0.pidStartTime ?? .max, $0.name) < ($1.created, $1.pidStartTime ?? .max, $1.name) }
    }

    public func logs(_ nameOrID: String) throws -> [UInt8] {
        let r = try runDirectory.find(nameOrID)
        guard let path = r.logPath else {
            throw RuntimeError.invalidArgument("container \(r.name) was not started with -d: its output went to the terminal")
        }
        return try Files.readIfPresent(path) ?? []
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

    /// SIGTERM to the container's init, SIGKILL after `timeout` seconds; once the init is gone
    /// its networks are released (CNI DEL: address, veth, published ports) and its netns
    /// unmounted, as Docker does on stop. Returns the record and the running containers that
    /// shared its netns (`container:NAME`): they lose their network with it.
    @discardableResult
    public func stop(_ nameOrID: String, timeout: Double = 10) throws -> (ContainerRecord, sharers: [ContainerRecord]) {
        try Self.requireRoot("netlab stop")
        let r = try container(nameOrID)
        let sharers = try self.sharers(of: r)
        if r.status == .running, let pid = r.pid {
            try Processes.signal(pid, SIGTERM)
            if !waitGone(r, seconds: timeout) {
                try Processes.signal(pid, SIGKILL)
                _ = waitGone(r, seconds: 10)
            }
        }
        // A `--rm` container's reaper may have removed it meanwhile: then it is gone, not stopped.
        let stopped = try runDirectory.withLock(r.name) { () throws -> ContainerRecord? in
            guard let now = try runDirectory.loadIfPresent(r.name), now.id == r.id else { return nil }
            return try release(try refreshed(now))
        }
        var gone = r
        gone.status = .exited
        return ((stopped ?? nil) ?? gone, sharers)
    }

    /// Polls every `pollInterval` until the container's init is gone; false after `seconds`.
    func waitGone(_ r: ContainerRecord, seconds: Double) -> Bool {
        guard let pid = r.pid else { return true }
        let pollInterval = 0.02
        var waited = 0.0
        while ProcessStat.isAlive(pid: pid, startTime: r.pidStartTime) {
            if waited >= seconds { return false }
            usleep(UInt32(pollInterval * 1_000_000))
            waited += pollInterval
        }
        return true
    }

    /// Removes a container: refuses a running one unless `force`, which kills it first, and
    /// one whose netns running containers share (`container:NAME`) unless `force`. Returns
    /// those sharers: with `force` they have lost their network.
    @discardableResult
    public func remove(_ nameOrID: String, force: Bool) throws -> [ContainerRecord] {
        try Self.requireRoot("netlab rm")
        let r: ContainerRecord
        do {
            r = try container(nameOrID)
        } catch let error as RuntimeError {
            // A directory whose state file a crash left missing or unreadable: with -f,
            // remove what is there.
            guard force, ContainerRecord.isValidName(nameOrID), Files.exists(runDirectory.containerPath(nameOrID)) else {
                throw error
            }
            try NetnsMounts.unmountAndRemove(runDirectory.netnsPath(nameOrID))
            try Files.removeTree(runDirectory.containerPath(nameOrID))
            return []
        }
        let sharers = try self.sharers(of: r)
        if !sharers.isEmpty && !force {
            let names = sharers.map(\.name)
            throw RuntimeError.invalidArgument(
                "container \(r.name) is in use by \(names.joined(separator: ", ")) (--network container:\(r.name)): "
                + "remove \(names.count == 1 ? "it" : "them") first (\(hint("rm", (["-f"] + names).joined(separator: " ")))), "
                + "or use rm -f and \(names.count == 1 ? "it loses its" : "they lose their") network")
        }
        let alive = r.pid.map { ProcessStat.isAlive(pid: $0, startTime: r.pidStartTime) } ?? false
        if alive {
            guard force else { throw RuntimeError.containerRunning(r.name, stop: hint("stop", r.name)) }
            try Processes.signal(r.pid!, SIGKILL)
            _ = waitGone(r, seconds: 10)
        }
        _ = try runDirectory.withLock(r.name) { try teardown(r) }
        return sharers
    }

    /// Detaches the networks, unmounts the netns and removes the state; keeps going past
    /// failures and reports the first one at the end.
    func teardown(_ r: ContainerRecord) throws {
        var firstError: (any Error)?
        let nsPath = runDirectory.netnsPath(r.name)
        let nsMounted = Files.exists(nsPath)
        if r.networkMode.ownsNetworkNamespace {
            do { try attacher.detach(container: r, netnsPath: nsMounted ? nsPath : nil) } catch { firstError = firstError ?? error }
        }
        do { try NetnsMounts.unmountAndRemove(nsPath) } catch { firstError = firstError ?? error }
        do { try Files.removeTree(runDirectory.containerPath(r.name)) } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
