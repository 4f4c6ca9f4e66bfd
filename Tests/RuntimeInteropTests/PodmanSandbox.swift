// A podman of its own for a test: a network namespace that plays the host (the machine's own is
// never touched) and a private mount namespace in which podman's configuration, storage, run
// state, netns directory and the CNI state directories are the test's own directories. One
// long-lived holder process keeps both namespaces; every podman command and every state read
// enters them with nsenter. Podman's CNI backend is configured with `cni_plugin_dirs` set to
// one directory holding only the plugins under test.

import Foundation
import Glibc
import SystemKit
import TestSupport
import XCTest

final class PodmanSandbox: @unchecked Sendable {
    let world = TestWorld()
    /// The netns playing the host: bridges, nftables tables and sysctls of the test live here.
    let hostNetns: String
    /// The test's directory; the private mounts are its subdirectories.
    let root: String
    /// The directory podman's CNI backend finds plugins in (and nothing else).
    let pluginDir: String
    /// The holder's pid (our child, in a session of its own).
    private let holder: pid_t
    /// Mount points the sandbox needed that the machine did not have (outermost first):
    /// made on the real filesystem, so removed again at teardown.
    private let madeMountPoints: [String]
    private var holderRunning = true

    /// Name of the image made from busybox-static (`podman import`).
    static let image = "localhost/netlab-busybox:latest"
    /// The page busybox httpd serves from the image.
    static let page = "netlab podman page"

    /// Where each private directory is mounted in the sandbox: podman's configuration,
    /// storage, run state, libpod's temporary state, the CNI state (host-local's leases and
    /// libcni's result cache), the conflists, and the netns files podman makes.
    static let privateMounts: [(name: String, target: String)] = [
        ("etc-containers", "/etc/containers"), ("storage", "/var/lib/containers"),
        ("run-containers", "/run/containers"), ("run-libpod", "/run/libpod"),
        ("var-lib-cni", "/var/lib/cni"), ("run-cni", "/run/cni"), ("net.d", "/etc/cni/net.d"),
    ]

    /// Why the sandbox cannot run here, or nil: podman, runc and busybox-static are needed.
    static func missingTools() -> String? {
        for tool in ["podman", "runc", "nsenter", "unshare"] where findExecutable(tool) == nil {
            return "\(tool) is not installed (scripts/setup.sh installs podman, runc, busybox-static)"
        }
        if !FileManager.default.isExecutableFile(atPath: "/bin/busybox") { return "busybox-static is not installed" }
        return nil
    }

    /// Starts the sandbox with the plugins of `plugins` (a directory) as podman's only plugin directory.
    init(plugins: String) throws {
        hostNetns = try world.makeNetns("podhost")
        root = world.tempDirectory("podman")
        pluginDir = plugins
        for m in Self.privateMounts { try FileManager.default.createDirectory(atPath: root + "/" + m.name, withIntermediateDirectories: true) }
        try Self.writeConfiguration(root: root, pluginDir: plugins)
        madeMountPoints = Self.missingDirectories(Self.privateMounts.map(\.target) + ["/run/netns"])
        holder = try Self.startHolder(netns: world.path(hostNetns), root: root)
        try importImage()
    }

    /// The directories among `paths` and their parents that do not exist, outermost first.
    static func missingDirectories(_ paths: [String]) -> [String] {
        var missing: [String] = []
        for path in paths {
            var chain: [String] = []
            var p = path
            while p != "/" && !FileManager.default.fileExists(atPath: p) {
                chain.insert(p, at: 0)
                p = (p as NSString).deletingLastPathComponent
            }
            for d in chain where !missing.contains(d) { missing.append(d) }
        }
        return missing
    }

    /// podman's configuration (docs/runtimes.md explains each line).
    private static func writeConfiguration(root: String, pluginDir: String) throws {
        let etc = root + "/etc-containers"
        let conf = Self.containersConf(pluginDir: pluginDir)
        try conf.write(toFile: etc + "/containers.conf", atomically: true, encoding: .utf8)
        try Self.storageConf.write(toFile: etc + "/storage.conf", atomically: true, encoding: .utf8)
        for f in ["policy.json", "registries.conf"] where FileManager.default.fileExists(atPath: "/etc/containers/" + f) {
            try FileManager.default.copyItem(atPath: "/etc/containers/" + f, toPath: etc + "/" + f)
        }
    }

    /// containers.conf for podman's CNI backend on this kind of machine.
    static func containersConf(pluginDir: String) -> String {
        """
        [containers]
        # Podman asks runc for nofile and nproc limits of 1048576 in every container; raising a
        # hard limit is refused here even to root, so runc fails unless they are lower.
        default_ulimits = ["nofile=\(limits.nofile):\(limits.nofile)", "nproc=\(limits.nproc):\(limits.nproc)"]
        [network]
        network_backend = "cni"
        cni_plugin_dirs = ["\(pluginDir)"]
        network_config_dir = "/etc/cni/net.d"
        default_subnet = "10.88.0.0/16"
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"

        """
    }

    /// The limits podman's containers get: at most what podman itself runs with (its own
    /// nofile hard limit, and the nproc hard limit of 32768 it sets for itself).
    static let limits: (nofile: Int, nproc: Int) = (4096, 4096)

    static let storageConf = """
        [storage]
        driver = "overlay"
        graphroot = "/var/lib/containers/storage"
        runroot = "/run/containers/storage"

        """

    /// The holder: nsenter into the host netns, a private mount namespace, the private
    /// directories bound over the real ones, then it sleeps until the test ends it. Started
    /// through SystemKit (its own session, none of our descriptors) and waited for with
    /// waitpid, like every command of the sandbox.
    private static func startHolder(netns: String, root: String) throws -> pid_t {
        var script = "set -e\nexec 2>\(root)/holder.err\n"
        for m in privateMounts {
            script += "mkdir -p \(m.target) && mount --bind \(root)/\(m.name) \(m.target)\n"
        }
        script += "mkdir -p /run/netns && mount -t tmpfs -o mode=0755 netlab-podman-netns /run/netns\n"
        script += "ip link set lo up\ntouch \(root)/ready\nexec sleep infinity\n"
        let pid = try Subprocess.startDetached(findExecutable("nsenter") ?? "/usr/bin/nsenter", arguments: [
            "--net=" + netns, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script,
        ], environment: environment)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: root + "/ready") {
            if !ProcessStat.isAlive(pid: pid, startTime: nil) || Date() > deadline {
                // Setup failed: the holder is ended however it can be; the error thrown below
                // carries the holder's own stderr.
                try? Processes.signal(pid, SIGKILL)
                _ = try? Processes.wait(pid)
                let err = (try? String(contentsOfFile: root + "/holder.err", encoding: .utf8)) ?? "(no stderr)"
                throw CommandFailure(CommandResult(command: ["nsenter", "--net=" + netns, "unshare", "--mount"], status: 1,
                                                   stdout: "", stderr: err), "could not set up the sandbox's namespaces")
            }
            usleep(20_000)
        }
        return pid
    }

    static let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]

    /// The busybox-static image: /bin/busybox and its applets, and a page for httpd.
    private func importImage() throws {
        let rootfs = root + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: rootfs + "/www", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "ip", "ping", "httpd", "nc", "sleep", "true", "cat", "ls", "wget"] {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try Self.page.write(toFile: rootfs + "/www/index.html", atomically: true, encoding: .utf8)
        try runChecked(["tar", "-C", rootfs, "-cf", root + "/rootfs.tar", "."])
        try podmanChecked(["import", "--change", "CMD=/bin/sh", root + "/rootfs.tar", Self.image])
    }

    // MARK: running things inside

    /// Runs argv inside the sandbox (its host netns and its mounts), at most `timeout`
    /// seconds (coreutils' timeout ends it). Spawned and waited for by SystemKit (waitpid on
    /// its pid), not Foundation's Process, whose exit detection missed a podman's exit here
    /// while the holder was alive.
    @discardableResult
    func run(_ argv: [String], timeout: Int = 300) -> CommandResult {
        let full = ["--kill-after=10", String(timeout), "nsenter", "-t", String(holder), "-m", "-n"] + argv
        var env = Self.environment
        env["HOME"] = root
        do {
            let out = try Subprocess.run(findExecutable("timeout") ?? "/usr/bin/timeout", arguments: full, environment: env)
            return CommandResult(command: ["timeout"] + full, status: out.status.shellExitCode,
                                 stdout: String(decoding: out.stdout, as: UTF8.self), stderr: String(decoding: out.stderr, as: UTF8.self))
        } catch {
            return CommandResult(command: ["timeout"] + full, status: 127, stdout: "", stderr: "cannot run: \(error)")
        }
    }

    @discardableResult
    func runChecked(_ argv: [String], timeout: Int = 300) throws(CommandFailure) -> CommandResult {
        try run(argv, timeout: timeout).checked()
    }

    @discardableResult
    func podman(_ args: [String], timeout: Int = 300) -> CommandResult { run(["podman"] + args, timeout: timeout) }

    @discardableResult
    func podmanChecked(_ args: [String], timeout: Int = 300) throws(CommandFailure) -> CommandResult {
        try podman(args, timeout: timeout).checked()
    }

    /// The conflist podman wrote for a network, parsed.
    func conflist(_ network: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/net.d/" + network + ".conflist"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The plugin types of a network's conflist, in order.
    func pluginTypes(_ network: String) throws -> [String] {
        try (conflist(network)["plugins"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
    }

    /// A running container's address on a network (podman inspect).
    func address(of container: String, on network: String) throws -> String {
        let format = "{{(index .NetworkSettings.Networks \"\(network)\").IPAddress}}"
        let out = try podmanChecked(["inspect", "--format", format, container]).stdout
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: state left behind

    /// Veth interfaces in the host netns.
    func hostVeths() throws -> [String] {
        try world.readIPJSON(hostNetns, ["link", "show", "type", "veth"]).compactMap { $0["ifname"] as? String }
    }

    /// host-local's reservations (files named after an address) of a network.
    func reservations(_ network: String) throws -> [String] {
        let dir = root + "/var-lib-cni/networks/" + network
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".") || $0.contains(":") }
            .filter { !$0.hasPrefix("last_reserved_ip") }
    }

    /// libcni's cached results.
    func cachedResults() throws -> [String] {
        let dir = root + "/var-lib-cni/results"
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir)
    }

    /// What tuning keeps to undo its changes at DEL.
    func tuningData() throws -> [String] {
        let dir = root + "/run-cni/tuning"
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: dir)
    }

    /// The host netns' nftables ruleset.
    func ruleset() throws -> NFTRuleset { try NFTRuleset.read(in: hostNetns) }

    // MARK: teardown

    /// Removes every container and network, ends the holder (its mount namespace, and with it
    /// the netns files podman made, go with it) and removes the host netns. Collects failures.
    func tearDown(file: StaticString = #filePath, line: UInt = #line) {
        var problems: [String] = []
        if holderRunning {
            let rm = podman(["rm", "--all", "--force", "--time", "0"])
            if !rm.ok { problems.append("podman rm: \(rm.stderr)") }
            do {
                try Processes.signal(holder, SIGTERM)
                _ = try Processes.wait(holder)
            } catch {
                problems.append("ending the holder \(holder): \(error)")
            }
            holderRunning = false
        }
        for dir in madeMountPoints.reversed() where rmdir(dir) != 0 {
            problems.append("removing the mount point \(dir) the sandbox made: \(Errno(rawValue: errno).name)")
        }
        for p in problems { XCTFail("podman sandbox teardown: \(p)", file: file, line: line) }
        // Storage layers are overlay mounts inside the ended mount namespace: gone with it.
        world.cleanup(file: file, line: line)
    }
}
