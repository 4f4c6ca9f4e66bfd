// Drives `netlab` against a simulated host with a random name (created here, removed with
// `host rm -f` at teardown), with the built plugins on --cni-path. Never the machine's netns.

import Foundation
import TestSupport
import XCTest

final class HostHarness: @unchecked Sendable {
    let world = TestWorld()
    let runDir: String
    let exe = BuiltProducts.path("netlab")
    let host: String
    private var extraHosts: [String] = []

    init(_ test: XCTestCase) {
        runDir = world.tempDirectory("run")
        host = HostHarness.randomHostName()
        let r = runCommand([exe, "host", "add", "--run-dir", runDir, host])
        precondition(r.ok, "host add \(host): \(r)")
        test.addTeardownBlock { [self] in cleanup() }
    }

    static func randomHostName() -> String {
        "t" + String(UInt64.random(in: 0..<(1 << 40)), radix: 36)
    }

    /// The host's netns name (for `ip -n`).
    var netns: String { "netlab-" + host }
    func netns(of h: String) -> String { "netlab-" + h }

    /// Another simulated host in the same run directory, removed at teardown.
    func addHost() -> String {
        let h = HostHarness.randomHostName()
        let r = runCommand([exe, "host", "add", "--run-dir", runDir, h])
        precondition(r.ok, "host add \(h): \(r)")
        extraHosts.append(h)
        return h
    }

    /// `netlab SUB… --run-dir D --cni-path P [--host H] ARGS…`
    @discardableResult
    func netlab(_ sub: [String], _ args: [String] = [], on h: String? = nil, hostless: Bool = false,
                timeout: Double = 60) -> CommandResult {
        var argv = [exe] + sub + ["--run-dir", runDir, "--cni-path", BuiltProducts.directory]
        if !hostless { argv += ["--host", h ?? host] }
        return runCommand(argv + args, timeout: timeout)
    }

    func inspect(_ name: String, on h: String? = nil) -> [String: Any]? { netlab(["inspect"], [name], on: h).jsonObject }

    /// The container's first address on `network` (without the prefix length).
    func ip(of name: String, network: String = "bridge", on h: String? = nil) -> String? {
        let nets = inspect(name, on: h)?["networks"] as? [String: Any]
        let ips = (nets?[network] as? [String: Any])?["ips"] as? [[String: Any]]
        return (ips?.first?["address"] as? String)?.split(separator: "/").first.map(String.init)
    }

    /// The underlay address of a simulated host (its eth0), read from the kernel.
    func underlayAddress(_ h: String) -> String? {
        let a = world.ipJSON("netlab-" + h, ["-4", "addr", "show", "eth0"])
        let info = a.first?["addr_info"] as? [[String: Any]]
        return info?.first?["local"] as? String
    }

    /// Interfaces enslaved to `bridge` in the host netns.
    func bridgePorts(_ bridge: String, on h: String? = nil) -> [String] {
        world.ipJSON(netns(of: h ?? host), ["link", "show", "master", bridge]).compactMap { $0["ifname"] as? String }
    }

    /// `nft -j list table inet netlab` in the host netns, as text (empty when there is no such
    /// table). Any other failure of nft throws: a broken tool must not read as "no rules".
    func nftTable(on h: String? = nil) throws -> String {
        let r = runCommand(["ip", "netns", "exec", netns(of: h ?? host), "nft", "-j", "list", "table", "inet", "netlab"])
        if r.ok { return r.stdout }
        if r.stderr.contains("No such file or directory") { return "" }
        throw HarnessError("nft list table inet netlab in \(netns(of: h ?? host)) failed: \(r)")
    }

    /// Address reservations host-local holds for `network` on this host. The directory exists
    /// from the network's first ADD on; reading it must work (a wrong path must not read as "none").
    func reservations(_ network: String, on h: String? = nil) throws -> [String] {
        let dir = runDir + "/hosts/" + (h ?? host) + "/ipam/" + network
        return try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { !$0.hasPrefix("last_reserved_ip") && $0 != "lock" }
    }

    /// The CNI result cache entries of the host (the directory exists from the first ADD on).
    func cacheEntries(on h: String? = nil) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: runDir + "/hosts/" + (h ?? host) + "/cni/results")
    }

    func waitRunning(_ name: String, on h: String? = nil, seconds: Double = 30) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let r = inspect(name, on: h), r["status"] as? String == "running" { return r }
            usleep(20_000)
        }
        return nil
    }

    func cleanup() {
        for h in [host] + extraHosts {
            runCommand([exe, "host", "rm", "-f", "--run-dir", runDir, "--cni-path", BuiltProducts.directory, h])
            // Whatever a failed removal left: the host's netns.
            runCommand(["ip", "netns", "del", "netlab-" + h])
        }
        world.cleanup()
    }
}
