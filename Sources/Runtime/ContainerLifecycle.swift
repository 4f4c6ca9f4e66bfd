// A container's life after `run`, as Docker users expect it: when its command ends (stop,
// exit, kill) its networks are released — CNI DEL of every attachment, so its address, veth
// and published ports are free for others — and its netns bind mount goes; `start` gives it
// a new netns, attaches it again with the same options and runs its command anew.
//
// Who releases: `stop` and a foreground `run` themselves; for a detached container the
// reaper that `run -d` and `start` leave behind (`superviseUntilExit`); and, for what a
// killed reaper or runtime left, every `run` and `start` first (`releaseExitedBestEffort`).
// Each takes the container's lock, and a released container is one without a netns mount.

import FoundationEssentials
import Glibc
import SystemKit

extension ContainerRuntime {
    // MARK: release

    /// Whether `r` still holds what a stopped container must give back.
    func holdsNetwork(_ r: ContainerRecord) -> Bool {
        Files.exists(runDirectory.netnsPath(r.name)) || !r.networks.isEmpty
    }

    /// Releases an exited container's networks: CNI DEL of its attachments (from the cache,
    /// as libcni does), then its netns bind mount. Call it holding the container's lock.
    /// Returns the record as saved. A running container is returned unchanged.
    @discardableResult
    func release(_ r: ContainerRecord) throws -> ContainerRecord {
        guard r.status == .exited, holdsNetwork(r) else { return r }
        let nsPath = runDirectory.netnsPath(r.name)
        if r.networkMode.ownsNetworkNamespace {
            try attacher.detach(container: r, netnsPath: Files.exists(nsPath) ? nsPath : nil)
        }
        try NetnsMounts.unmountAndRemove(nsPath)
        var released = r
        released.networks = [:]
        if released.netnsPath == nsPath { released.netnsPath = nil }
        try runDirectory.save(released)
        return released
    }

    /// Releases every exited container that still holds its networks (what a killed runtime
    /// or reaper left), so that no stopped container holds an address or a port.
    func releaseExitedBestEffort() {
        // Read failures: `run`/`start` go on; a container whose state cannot be read is
        // reported by `ps`/`gc`, and a port it still holds is refused by portmap by name.
        guard let records = try? runDirectory.records() else { return }
        for r in records where r.status != .created && holdsNetwork(r) {
            // One container's failed DEL must not stop a `run` of another; `check`/`gc` report it.
            _ = try? runDirectory.withLock(r.name) {
                guard let now = try runDirectory.loadIfPresent(r.name) else { return }
                try release(try refreshed(now))
            }
        }
    }

    // MARK: the reaper

    /// For `run -d` and `start`: starts `reaperCommand` (which must end up calling
    /// `superviseUntilExit(name)`, e.g. `netlab __reap NAME`) detached from this process.
    public func startReaper(_ reaperCommand: [String]) throws {
        var environment = ["PATH": Self.defaultPath]
        // Where the state and the plugins are, when the caller named them this way.
        for key in ["NETLAB_RUN_DIR", "NETLAB_CNI_PATH"] { environment[key] = Environment[key] }
        try Subprocess.startDetached(reaperCommand[0], arguments: Array(reaperCommand.dropFirst()), environment: environment)
    }

    /// Whether a detached container needs a reaper: something to remove or release on exit.
    public func needsReaper(_ r: ContainerRecord) -> Bool {
        r.autoRemove || r.networkMode != .host
    }

    /// Waits for a container's init to exit, then removes the container (networks, netns,
    /// state) if it was started with `--rm`, else releases its networks. Nothing happens when
    /// the container was removed or started again meanwhile (another init).
    public func superviseUntilExit(_ name: String) throws {
        let r = try runDirectory.load(name)
        if let pid = r.pid { try waitForExit(pid: pid, startTime: r.pidStartTime) }
        _ = try runDirectory.withLock(name) {
            guard let now = try runDirectory.loadIfPresent(name), now.id == r.id, now.pid == r.pid else { return }
            let exited = try refreshed(now)
            if exited.autoRemove {
                try teardown(exited)
            } else {
                try release(exited)
            }
        }
    }

    // MARK: start

    /// `netlab start`: runs an exited container's command again, detached (its output appended
    /// to its log), in a new netns attached to its network with the same ports, address and
    /// MAC. A running container is left as it is. On failure the container stays exited and
    /// holds nothing.
    @discardableResult
    public func start(_ nameOrID: String) throws -> ContainerRecord {
        try Self.requireRoot("netlab start")
        let target = try runDirectory.find(nameOrID)
        releaseExitedBestEffort()
        let started = try runDirectory.withLock(target.name) { () throws -> ContainerRecord in
            var r = try refreshed(try runDirectory.load(target.name))
            if r.status == .running { return r }
            if r.status == .created, let pid = r.pid, ProcessStat.isAlive(pid: pid, startTime: r.pidStartTime) {
                throw RuntimeError.invalidArgument("container \(r.name) is being started")
            }
            r.status = .exited
            r = try release(r)
            try validate(RunRequest(record: r), name: r.name)
            let netns = try networkNamespace(for: r.networkMode, name: r.name)
            defer { netns.close() }
            r.status = .created
            (r.pid, r.pidStartTime, r.exitCode, r.finished, r.started) = (nil, nil, nil, nil, nil)
            r.netnsPath = netns.path
            r.detached = true
            r.logPath = runDirectory.logPath(r.name)
            do {
                try launch(&r, netns: netns.choice)
            } catch {
                r.status = .exited
                // Best effort: the launch's error is what is reported; this only gives back
                // what it attached (the next `run`/`start` retries it).
                _ = try? release(r)
                throw naming(error)
            }
            return r
        }
        guard let started else { throw RuntimeError.noSuchContainer(nameOrID) }
        return started
    }

    // MARK: shared netns

    /// The running containers that share `r`'s netns (`--network container:NAME`).
    public func sharers(of r: ContainerRecord) throws -> [ContainerRecord] {
        try list(all: false).filter { $0.networkMode == .container(r.name) && $0.id != r.id }
    }
}

extension RunRequest {
    /// The request a container was run with, for `start`.
    init(record r: ContainerRecord) {
        self.init(command: r.command)
        name = r.name
        hostname = r.hostname
        environment = r.environment ?? []
        networkMode = r.networkMode
        ports = r.ports
        ip = r.ip
        mac = r.mac
        rootfs = r.rootfs
        detach = true
        autoRemove = r.autoRemove
    }
}
