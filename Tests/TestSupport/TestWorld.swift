// A test world built in network namespaces: a netns playing "the host", netns playing
// containers, helpers that run built executables as a CNI runtime would, and cleanup that
// removes everything the test made, also when it fails. Nothing here touches the machine's
// own network namespace: every command that changes state runs with `ip -n NS` or inside
// `ip netns exec NS`.

import Foundation

public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var ok: Bool { status == 0 }

    /// stdout parsed as JSON (object or array), nil when it is not JSON.
    public var json: Any? {
        guard let d = stdout.data(using: .utf8), !d.isEmpty else { return nil }
        return try? JSONSerialization.jsonObject(with: d)
    }
    public var jsonObject: [String: Any]? { json as? [String: Any] }
    public var jsonArray: [[String: Any]]? { json as? [[String: Any]] }

    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs an executable and waits for it, capturing its output.
@discardableResult
public func runCommand(_ argv: [String], environment: [String: String]? = nil, stdin: String? = nil,
                       timeout: Double = 120) -> CommandResult {
    let p = Process()
    let exe = argv[0].hasPrefix("/") ? argv[0] : (findExecutable(argv[0]) ?? argv[0])
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = Array(argv.dropFirst())
    if let environment { p.environment = environment }
    let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
    p.standardOutput = outPipe
    p.standardError = errPipe
    p.standardInput = inPipe
    do { try p.run() } catch {
        return CommandResult(status: 127, stdout: "", stderr: "cannot run \(exe): \(error)")
    }
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    group.enter()
    DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if let stdin { inPipe.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
    try? inPipe.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
    }
    p.waitUntilExit()
    group.wait()
    return CommandResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs `/bin/sh -c script`.
@discardableResult
public func sh(_ script: String) -> CommandResult { runCommand(["/bin/sh", "-c", script]) }

func findExecutable(_ name: String) -> String? {
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Where the package's built executables are: `$NETLAB_BIN_DIR`, or the directory of the
/// running test bundle (`.build/debug`), which `swift test` fills with every product.
public enum BuiltProducts {
    public static var directory: String {
        if let d = ProcessInfo.processInfo.environment["NETLAB_BIN_DIR"], !d.isEmpty { return d }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the bundle is `.build/debug/<pkg>PackageTests.xctest` (a file); be tolerant
        // of layouts where it is a directory.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("loopback").path),
              url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }
    public static func path(_ name: String) -> String { directory + "/" + name }
}

/// One test's world of network namespaces and temporary directories.
public final class TestWorld: @unchecked Sendable {
    /// Every name made here starts with this, followed by the creating process's pid, so a
    /// later run can sweep what a crashed run left behind.
    public static let namePrefix = "nlt"
    public let tag: String
    private var namespaces: [String] = []
    private var directories: [String] = []
    private let lock = NSLock()

    public init() {
        TestWorld.sweepStale()
        let rand = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        tag = "\(getpid())-\(rand)"
    }

    deinit { cleanup() }

    /// A short random suffix for interface names (IFNAMSIZ is 16 with the NUL).
    public func shortName(_ prefix: String) -> String {
        let r = String(UInt32.random(in: 0..<(36 * 36 * 36 * 36 * 36)), radix: 36)
        return String((prefix + r).prefix(15))
    }

    /// Creates a network namespace named `nlt<pid>-<rand>-<role>` with `lo` up; returns its name.
    @discardableResult
    public func netns(_ role: String) -> String {
        let name = "\(TestWorld.namePrefix)\(tag)-\(role)"
        let r = runCommand(["ip", "netns", "add", name])
        precondition(r.ok, "ip netns add \(name) failed: \(r)")
        lock.withLock { namespaces.append(name) }
        runCommand(["ip", "-n", name, "link", "set", "lo", "up"])
        // No IPv6 duplicate address detection in test worlds: a tentative address (also the
        // link-local one a new veth gets) makes the first packets of a test a matter of timing.
        runCommand(["ip", "netns", "exec", name, "sh", "-c",
                    "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"])
        return name
    }

    public func path(_ netns: String) -> String { "/run/netns/" + netns }

    /// A fresh temporary directory removed at cleanup.
    public func tempDirectory(_ role: String = "tmp") -> String {
        let dir = NSTemporaryDirectory() + "\(TestWorld.namePrefix)\(tag)-\(role)"
        try? FileManager.default.removeItem(atPath: dir)
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        lock.withLock { directories.append(dir) }
        return dir
    }

    /// Runs a command inside a netns (`ip netns exec`).
    @discardableResult
    public func exec(in netns: String, _ argv: [String], environment: [String: String]? = nil,
                     stdin: String? = nil, timeout: Double = 120) -> CommandResult {
        runCommand(["ip", "netns", "exec", netns] + argv, environment: environment, stdin: stdin, timeout: timeout)
    }

    /// `ip -n NS -j ARGS…` parsed as a JSON array.
    public func ipJSON(_ netns: String, _ args: [String]) -> [[String: Any]] {
        runCommand(["ip", "-n", netns, "-j"] + args).jsonArray ?? []
    }

    /// Links of a netns keyed by name, read back with `ip -j link show`.
    public func links(_ netns: String) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for l in ipJSON(netns, ["link", "show"]) { if let n = l["ifname"] as? String { out[n] = l } }
        return out
    }

    /// Runs a CNI plugin executable the way a runtime does: CNI_* variables and the
    /// config on stdin; `hostNetns` runs the plugin process inside that netns.
    @discardableResult
    public func runPlugin(_ plugin: String, command: String, config: String,
                          containerID: String? = "ctr-\(UInt32.random(in: 0..<UInt32.max))",
                          netns: String? = nil, ifname: String? = "eth0", args: String? = nil,
                          cniPath: String? = nil, hostNetns: String? = nil,
                          extraEnvironment: [String: String] = [:]) -> CommandResult {
        var env: [String: String] = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        env["CNI_COMMAND"] = command
        if let containerID { env["CNI_CONTAINERID"] = containerID }
        if let netns { env["CNI_NETNS"] = netns.hasPrefix("/") ? netns : path(netns) }
        if let ifname { env["CNI_IFNAME"] = ifname }
        if let args { env["CNI_ARGS"] = args }
        env["CNI_PATH"] = cniPath ?? BuiltProducts.directory
        for (k, v) in extraEnvironment { env[k] = v }
        let exe = plugin.hasPrefix("/") ? plugin : BuiltProducts.path(plugin)
        if let hostNetns {
            return exec(in: hostNetns, [exe], environment: env, stdin: config)
        }
        return runCommand([exe], environment: env, stdin: config)
    }

    /// Removes every namespace and directory this world made. Safe to call twice.
    public func cleanup() {
        let (ns, dirs) = lock.withLock { () -> ([String], [String]) in
            defer { namespaces = []; directories = [] }
            return (namespaces, directories)
        }
        for n in ns.reversed() {
            // Deleting the netns destroys its veths, bridges and nftables tables with it.
            runCommand(["ip", "netns", "del", n])
        }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
    }

    /// Deletes test namespaces left behind by test processes that no longer run.
    public static func sweepStale() {
        let r = runCommand(["ip", "netns", "list"])
        for line in r.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(namePrefix) else { continue }
            let pidText = name.dropFirst(namePrefix.count).prefix { $0.isNumber }
            guard let pid = Int32(pidText), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                runCommand(["ip", "netns", "del", name])
            }
        }
    }
}
