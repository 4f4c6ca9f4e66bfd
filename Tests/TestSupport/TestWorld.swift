// A test world built in network namespaces: a netns playing "the host", netns playing
// containers, helpers that run built executables as a CNI runtime would, and cleanup that
// removes everything the test made, also when it fails. Nothing here touches the machine's
// own network namespace: every command that changes state runs with `ip -n NS` or inside
// `ip netns exec NS`.

import Foundation
import SystemKit

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

    /// A short random suffix for interface names (IFNAMSIZ is 16 with the NUL).
    public func shortName(_ prefix: String) -> String {
        let r = String(UInt32.random(in: 0..<(36 * 36 * 36 * 36 * 36)), radix: 36)
        return String((prefix + r).prefix(15))
    }

    /// Creates a network namespace named `nlt<pid>-<rand>-<role>` with `lo` up and no IPv6
    /// duplicate address detection; returns its name. A failed step fails the running test
    /// with the command and its stderr (see `makeNetns` to get the error thrown instead).
    @discardableResult
    public func netns(_ role: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        TestFailures.reporting(name(role), file: file, line: line) { try makeNetns(role) }
    }

    /// `netns(role)`, throwing a `CommandFailure` when a step fails.
    public func makeNetns(_ role: String) throws(CommandFailure) -> String {
        let name = name(role)
        try runChecked(["ip", "netns", "add", name])
        lock.withLock { namespaces.append(name) }
        try runChecked(["ip", "-n", name, "link", "set", "lo", "up"])
        // No IPv6 duplicate address detection in test worlds: a tentative address (also the
        // link-local one a new veth gets) makes the first packets of a test a matter of timing.
        try runChecked(["ip", "netns", "exec", name, "sh", "-c",
                        "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"])
        return name
    }

    /// Creates many bare network namespaces (nothing set up inside) with one `ip -batch`, for
    /// tests that need hundreds of container netns; returns their names in `roles` order.
    public func makeBareNetns(_ roles: [String]) throws(CommandFailure) -> [String] {
        let names = roles.map(name)
        lock.withLock { namespaces += names }
        try runChecked(["ip", "-batch", "-"], stdin: names.map { "netns add \($0)\n" }.joined())
        return names
    }

    private func name(_ role: String) -> String { "\(TestWorld.namePrefix)\(tag)-\(role)" }

    public func path(_ netns: String) -> String { "/run/netns/" + netns }

    /// A fresh temporary directory removed at cleanup.
    public func tempDirectory(_ role: String = "tmp") -> String {
        let dir = NSTemporaryDirectory() + "\(TestWorld.namePrefix)\(tag)-\(role)"
        // A directory of that name cannot be left from an earlier run (the tag is random);
        // creating it below fails loudly if something is in the way.
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

    /// `ip -n NS -j ARGS…` parsed as a JSON array. A failing `ip` (or one that prints no JSON
    /// array) fails the running test with the command and its stderr, and gives [].
    public func ipJSON(_ netns: String, _ args: [String],
                       file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        TestFailures.reporting([], file: file, line: line) { try readIPJSON(netns, args) }
    }

    /// `ip -n NS -j ARGS…` parsed as a JSON array; throws when `ip` fails or prints no array.
    public func readIPJSON(_ netns: String, _ args: [String]) throws(CommandFailure) -> [[String: Any]] {
        try runCommand(["ip", "-n", netns, "-j"] + args).checkedJSONArray()
    }

    /// Links of a netns keyed by name, read back with `ip -j link show` (fails the running
    /// test when `ip` fails).
    public func links(_ netns: String, file: StaticString = #filePath, line: UInt = #line) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for l in ipJSON(netns, ["link", "show"], file: file, line: line) {
            if let n = l["ifname"] as? String { out[n] = l }
        }
        return out
    }

    /// The nftables ruleset of a netns; a failing `nft` fails the running test and gives an
    /// empty ruleset.
    public func ruleset(_ netns: String, file: StaticString = #filePath, line: UInt = #line) -> NFTRuleset {
        TestFailures.reporting(NFTRuleset.empty, file: file, line: line) { try NFTRuleset.read(in: netns) }
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

    /// Removes every namespace and directory this world made, and fails the running test
    /// when something could not be removed. Safe to call twice.
    public func cleanup(file: StaticString = #filePath, line: UInt = #line) {
        for problem in removeAll() { TestFailures.record("cleanup: \(problem)", file, line) }
    }

    deinit {
        // No test may be running any more: what could not be removed is only printed.
        for problem in removeAll() { FileHandle.standardError.write(Data("TestWorld cleanup: \(problem)\n".utf8)) }
    }

    private func removeAll() -> [String] {
        let (ns, dirs) = lock.withLock { () -> ([String], [String]) in
            defer { namespaces = []; directories = [] }
            return (namespaces, directories)
        }
        var problems: [String] = []
        // A test may have deleted a netns itself (to check DEL of a vanished container).
        let present = ns.filter { FileManager.default.fileExists(atPath: path($0)) }
        if !present.isEmpty {
            // Deleting a netns destroys its veths, bridges and nftables tables with it. One
            // `ip -force -batch` for all of them: it goes on past a failure and reports each.
            let r = runCommand(["ip", "-force", "-batch", "-"], stdin: present.reversed().map { "netns del \($0)\n" }.joined())
            if !r.ok { problems.append(CommandFailure(r, "exited with status \(r.status)").description) }
        }
        for d in dirs {
            do { try Files.removeTree(d) } catch { problems.append("\(error)") }
        }
        return problems
    }

    /// Deletes test namespaces left behind by test processes that no longer run.
    public static func sweepStale() {
        // Housekeeping only: when `ip netns list` fails, the test's own commands will say so.
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
