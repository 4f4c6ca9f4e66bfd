// A world for the vxlan plugin's tests: an underlay netns with a bridge, three "hosts" (netns
// whose eth0 is 198.18.0.1N/24 on that underlay), containers in netns of their own, a
// host-local data directory and a vxlan data directory per host, and helpers that read the
// kernel state back and fail the running test when the tool they run fails.

import Foundation
import XCTest
import TestSupport

final class VxlanWorld {
    let world: TestWorld
    let underlay: String
    /// The host netns, index 0 is host 1.
    let hosts: [String]
    let dataDirs: [String]
    let ipamDirs: [String]
    let network = "ovnet"
    let vni = 42
    static let subnet = "10.60.0.0/24"

    init(_ world: TestWorld, hosts count: Int = 3) {
        self.world = world
        let underlay = world.netns("under")
        self.underlay = underlay
        var made: [String] = []
        TestFailures.reporting((), file: #filePath, line: #line) {
            try runChecked(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"])
            try runChecked(["ip", "-n", underlay, "link", "set", "br0", "up"])
            for i in 1...count {
                let h = world.netns("h\(i)")
                try runChecked(["ip", "-n", underlay, "link", "add", "u\(i)", "type", "veth", "peer", "name", "eth0", "netns", h])
                try runChecked(["ip", "-n", underlay, "link", "set", "u\(i)", "master", "br0", "up"])
                try runChecked(["ip", "-n", h, "addr", "add", "\(Self.vtep(i))/24", "dev", "eth0"])
                try runChecked(["ip", "-n", h, "link", "set", "eth0", "up"])
                made.append(h)
            }
        }
        hosts = made
        dataDirs = (1...count).map { world.tempDirectory("vx\($0)") }
        ipamDirs = (1...count).map { world.tempDirectory("ipam\($0)") }
    }

    /// Host `i`'s VTEP address on the underlay (1-based).
    static func vtep(_ i: Int) -> String { "198.18.0.1\(i)" }
    /// Host `i`'s slice of the subnet: .(10i) to .(10i+9).
    static func range(_ i: Int) -> (start: String, end: String) { ("10.60.0.\(10 * i)", "10.60.0.\(10 * i + 9)") }

    func host(_ i: Int) -> String { hosts[i - 1] }
    /// Host `i`'s vxlan data directory (its lock files) and host-local data directory.
    func dataDir(_ i: Int) -> String { dataDirs[i - 1] }
    func ipamDir(_ i: Int) -> String { ipamDirs[i - 1] }

    /// Host `i`'s config: every host's VTEP as remotes (its own is skipped), its own range of
    /// the /24, `options` over the defaults.
    func config(host i: Int, _ options: [String: Any] = [:], range: (start: String, end: String)? = nil,
                version: String = "1.0.0") -> String {
        let r = range ?? Self.range(i)
        var c: [String: Any] = [
            "cniVersion": version, "name": network, "type": "vxlan", "vni": vni, "underlayInterface": "eth0",
            "remotes": hosts.indices.map { Self.vtep($0 + 1) }, "dataDir": dataDir(i),
            "ipam": ["type": "host-local", "dataDir": ipamDir(i),
                     "ranges": [[["subnet": Self.subnet, "rangeStart": r.start, "rangeEnd": r.end]]]] as [String: Any],
        ]
        for (k, v) in options { c[k] = v }
        return BridgeWorld.json(c)
    }

    /// `base` with `change` applied to its JSON object.
    static func edited(_ base: String, _ change: (inout [String: Any]) -> Void) -> String {
        var c = try! JSONSerialization.jsonObject(with: base.data(using: .utf8)!) as! [String: Any]
        change(&c)
        return BridgeWorld.json(c)
    }

    /// Removes keys from a config.
    func config(_ base: String, without keys: [String]) -> String {
        Self.edited(base) { c in keys.forEach { c.removeValue(forKey: $0) } }
    }

    /// The config with `prevResult` set.
    func config(_ base: String, prevResult: String) -> String {
        Self.edited(base) { $0["prevResult"] = try! JSONSerialization.jsonObject(with: prevResult.data(using: .utf8)!) }
    }

    /// Runs the plugin in host `i`'s netns as a runtime would.
    @discardableResult
    func run(_ command: String, host i: Int, _ config: String, ctr: String?, id: String,
             extraEnvironment: [String: String] = [:]) -> CommandResult {
        world.runPlugin("vxlan", command: command, config: config, containerID: id,
                        netns: ctr.map { $0.hasPrefix("/") ? $0 : world.path($0) }, hostNetns: host(i),
                        extraEnvironment: extraEnvironment)
    }

    /// ADDs container `ctr` on host `i` and fails the test unless it succeeds; the result.
    @discardableResult
    func add(host i: Int, _ ctr: String, id: String, config: String? = nil,
             file: StaticString = #filePath, line: UInt = #line) -> CommandResult {
        let r = run("ADD", host: i, config ?? self.config(host: i), ctr: ctr, id: id)
        XCTAssertEqual(r.status, 0, "ADD \(id) on host \(i): \(r.description)", file: file, line: line)
        return r
    }

    // MARK: reading the kernel back (a failing tool fails the test)

    /// The bridge of the network (the default name).
    var bridge: String { "vx-\(network)" }
    var device: String { "nlvx\(vni)" }

    func ipJSON(_ ns: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        world.ipJSON(ns, args, file: file, line: line)
    }

    /// `bridge -n NS -j ARGS…` parsed; a failing `bridge` fails the test.
    func bridgeJSON(_ ns: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        TestFailures.reporting([], file: file, line: line) { try runCommand(["bridge", "-n", ns, "-j"] + args).checkedJSONArray() }
    }

    /// `ip -d -j link show` of one link; nil when the netns has no such link.
    func link(_ ns: String, _ dev: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any]? {
        ipJSON(ns, ["-d", "link", "show"], file: file, line: line).first { $0["ifname"] as? String == dev }
    }

    func linkNames(_ ns: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        ipJSON(ns, ["link", "show"], file: file, line: line).compactMap { $0["ifname"] as? String }
    }

    /// Names of the links enslaved to `master` in `ns`.
    func ports(_ ns: String, of master: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        ipJSON(ns, ["link", "show"], file: file, line: line)
            .filter { $0["master"] as? String == master }.compactMap { $0["ifname"] as? String }.sorted()
    }

    /// The destinations of the all-zero FDB entry of `dev` (the flood list).
    func floodList(_ ns: String, _ dev: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        bridgeJSON(ns, ["fdb", "show", "dev", dev], file: file, line: line)
            .filter { $0["mac"] as? String == "00:00:00:00:00:00" }.compactMap { $0["dst"] as? String }.sorted()
    }

    /// The container's neighbour table: IP -> MAC.
    func neighbours(_ ctr: String, file: StaticString = #filePath, line: UInt = #line) -> [String: String] {
        var out: [String: String] = [:]
        for n in ipJSON(ctr, ["neigh", "show", "dev", "eth0"], file: file, line: line) {
            if let ip = n["dst"] as? String, let mac = n["lladdr"] as? String { out[ip] = mac }
        }
        return out
    }

    /// The MAC of eth0 in `ctr`.
    func mac(_ ctr: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        link(ctr, "eth0", file: file, line: line)?["address"] as? String
    }

    /// Lease files of host `i`'s host-local data directory.
    func leases(host i: Int, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        TestFailures.reporting([], file: file, line: line) { try hostLocalReservations(dataDir: ipamDir(i), network: network).sorted() }
    }

    func ping(from ns: String, _ ip: String) -> CommandResult {
        world.exec(in: ns, ["ping", "-c", "1", "-W", "2", ip], timeout: 10)
    }

    /// The first address of an ADD result, without its prefix length.
    static func address(_ r: CommandResult) -> String? {
        (r.jsonObject?["ips"] as? [[String: Any]])?.first.flatMap { $0["address"] as? String }.map { String($0.split(separator: "/")[0]) }
    }
}

/// Base of the vxlan tests: three hosts on an underlay per test, removed at teardown also when
/// the test fails.
class VxlanTestCase: XCTestCase {
    var world: TestWorld!
    var vx: VxlanWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        vx = VxlanWorld(world)
    }

    /// Asserts an error answer: exit status non-zero, the code, and `text` in the message.
    func assertError(_ r: CommandResult, code: Int, naming text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, r.description, file: file, line: line)
        XCTAssertEqual(r.cniCode, code, r.stdout, file: file, line: line)
        XCTAssertTrue(r.cniMessage.contains(text), "message should name \(text): \(r.stdout)", file: file, line: line)
    }
}
