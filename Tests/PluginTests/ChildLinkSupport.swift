// A world for the macvlan and ipvlan tests: a netns playing "the host" whose parent interface
// (one end of a veth) sits on a segment shared with an "outside" netns (10.80.0.1/24 and
// fd00:80::1/64 there), a default route through the parent, containers in netns of their own,
// a host-local data directory, and helpers that read the kernel state back and fail the test
// when the tool they run fails (so "nothing there" is never a broken tool).

import Foundation
import XCTest
import TestSupport

final class SegmentWorld {
    let world: TestWorld
    let plugin: String
    let host: String
    let outside: String
    /// The host's interface on the segment: the master.
    let parent: String
    let dataDir: String
    let network = "segnet"
    static let outsideV4 = "10.80.0.1", outsideV6 = "fd00:80::1"
    static let hostV4 = "10.80.0.254"

    init(_ world: TestWorld, plugin: String) {
        self.world = world
        self.plugin = plugin
        host = world.netns("host")
        outside = world.netns("out")
        parent = world.shortName("nlpar")
        dataDir = world.tempDirectory("ipam")
        let peer = world.shortName("nlseg")
        must(["ip", "-n", host, "link", "add", parent, "type", "veth", "peer", "name", peer, "netns", outside])
        must(["ip", "-n", outside, "addr", "add", "\(Self.outsideV4)/24", "dev", peer])
        must(["ip", "-n", outside, "addr", "add", "\(Self.outsideV6)/64", "dev", peer, "nodad"])
        must(["ip", "-n", outside, "link", "set", peer, "up"])
        must(["ip", "-n", host, "addr", "add", "\(Self.hostV4)/24", "dev", parent])
        must(["ip", "-n", host, "link", "set", parent, "up"])
        must(["ip", "-n", host, "route", "add", "default", "via", Self.outsideV4])
    }

    /// Runs a command that builds the world or changes it on purpose; a failure fails the test.
    func must(_ argv: [String], file: StaticString = #filePath, line: UInt = #line) {
        TestFailures.reporting((), file: file, line: line) { _ = try runChecked(argv) }
    }

    /// A network config of the plugin: `options` over the defaults (master = the parent),
    /// `ipam` host-local on 10.80.0.0/24 from .10 with a default route, unless given.
    func config(_ options: [String: Any] = [:], ipam: [String: Any]? = nil, version: String = "1.0.0") -> String {
        var c: [String: Any] = ["cniVersion": version, "name": network, "type": plugin, "master": parent]
        c["ipam"] = ipam ?? ["type": "host-local", "dataDir": dataDir, "ranges": [[["subnet": "10.80.0.0/24", "rangeStart": "10.80.0.10"]]],
                             "routes": [["dst": "0.0.0.0/0"]]]
        for (k, v) in options { c[k] = v }
        return BridgeWorld.json(c)
    }

    /// Removes keys from a config (e.g. "master", "ipam").
    func config(_ base: String, without keys: [String]) -> String {
        var c = try! JSONSerialization.jsonObject(with: base.data(using: .utf8)!) as! [String: Any]
        for k in keys { c.removeValue(forKey: k) }
        return BridgeWorld.json(c)
    }

    /// The config with `prevResult` set (CHECK, or a chained ADD).
    func config(_ base: String, prevResult: String) -> String {
        var c = try! JSONSerialization.jsonObject(with: base.data(using: .utf8)!) as! [String: Any]
        c["prevResult"] = try! JSONSerialization.jsonObject(with: prevResult.data(using: .utf8)!)
        return BridgeWorld.json(c)
    }

    /// Runs the plugin inside the host netns as a runtime would.
    @discardableResult
    func run(_ command: String, _ config: String, ctr: String?, id: String, ifname: String = "eth0",
             args: String? = nil, cniPath: String? = nil, executable: String? = nil) -> CommandResult {
        world.runPlugin(executable ?? plugin, command: command, config: config, containerID: id,
                        netns: ctr.map { $0.hasPrefix("/") ? $0 : world.path($0) }, ifname: ifname, args: args,
                        cniPath: cniPath ?? BuiltProducts.directory, hostNetns: host)
    }

    // MARK: reading the kernel back (a failing tool fails the test)

    /// `ip -n NS -j ARGS…` parsed (a failing `ip` fails the test: TestWorld.ipJSON).
    func ipJSON(_ ns: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        world.ipJSON(ns, args, file: file, line: line)
    }

    /// Names of the links in a netns.
    func linkNames(_ ns: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        ipJSON(ns, ["link", "show"], file: file, line: line).compactMap { $0["ifname"] as? String }
    }

    /// `ip -d -j link show dev DEV` in `ns` (fails the test when the link is missing).
    func link(_ ns: String, _ dev: String = "eth0", file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        guard let l = ipJSON(ns, ["-d", "link", "show"], file: file, line: line).first(where: { $0["ifname"] as? String == dev }) else {
            XCTFail("no link \(dev) in \(ns)", file: file, line: line)
            return [:]
        }
        return l
    }

    /// The link's kind and its kind's data (`linkinfo.info_kind`, `linkinfo.info_data`).
    func linkInfo(_ ns: String, _ dev: String = "eth0", file: StaticString = #filePath,
                  line: UInt = #line) -> (kind: String?, data: [String: Any]) {
        let info = link(ns, dev, file: file, line: line)["linkinfo"] as? [String: Any] ?? [:]
        return (info["info_kind"] as? String, info["info_data"] as? [String: Any] ?? [:])
    }

    /// Addresses on `dev` as "a/len" (link-local ones left out).
    func addresses(_ ns: String, _ dev: String = "eth0", file: StaticString = #filePath, line: UInt = #line) -> [String] {
        addressInfo(ns, dev, file: file, line: line).compactMap { a in
            guard let local = a["local"] as? String, !local.hasPrefix("fe80") else { return nil }
            return "\(local)/\(a["prefixlen"] ?? "")"
        }
    }

    /// `addr_info` entries of `dev`.
    func addressInfo(_ ns: String, _ dev: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        ipJSON(ns, ["addr", "show", "dev", dev], file: file, line: line).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
    }

    /// The ifindex of `dev` in `ns`.
    func index(_ ns: String, _ dev: String, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        link(ns, dev, file: file, line: line)["ifindex"] as? Int
    }

    /// Lease files of the network in the host-local data directory (none before the first
    /// ADD; an unreadable data directory fails the test).
    func leases(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        TestFailures.reporting([], file: file, line: line) { try hostLocalReservations(dataDir: dataDir, network: network).sorted() }
    }

    func ping(from ns: String, _ ip: String) -> CommandResult {
        world.exec(in: ns, ["ping", ip.contains(":") ? "-6" : "-4", "-c", "1", "-W", "2", ip], timeout: 10)
    }

    /// The result's interfaces and addresses.
    static func interfaces(_ r: CommandResult) -> [[String: Any]] { r.jsonObject?["interfaces"] as? [[String: Any]] ?? [] }
    static func ips(_ r: CommandResult) -> [[String: Any]] { r.jsonObject?["ips"] as? [[String: Any]] ?? [] }
    static func address(_ r: CommandResult, family v6: Bool = false) -> String? {
        ips(r).compactMap { $0["address"] as? String }.first { $0.contains(":") == v6 }.map { String($0.split(separator: "/")[0]) }
    }
}

/// Base of the macvlan and ipvlan tests: a fresh world per test, removed at teardown also
/// when the test fails.
class SegmentTestCase: XCTestCase {
    var world: TestWorld!
    var seg: SegmentWorld!
    /// The plugin under test.
    class var plugin: String { "" }

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        seg = SegmentWorld(world, plugin: Self.plugin)
    }

    /// Asserts an error answer: exit status non-zero, the code, and `field` in the message.
    func assertError(_ r: CommandResult, code: Int, naming field: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, r.description, file: file, line: line)
        XCTAssertEqual(r.cniCode, code, r.stdout, file: file, line: line)
        XCTAssertTrue(r.cniMessage.contains(field), "message should name \(field): \(r.stdout)", file: file, line: line)
    }

    /// ADDs a container whose config has `mode` (none when empty: the default), asserts the
    /// link's kind and `expected` mode and that CHECK passes; returns the container, config and ID.
    @discardableResult
    func addInMode(_ mode: String, expecting expected: String, file: StaticString = #filePath,
                   line: UInt = #line) -> (ctr: String, conf: String, id: String) {
        let ctr = world.netns("m\(expected)\(mode.isEmpty ? "-default" : "")")
        let conf = mode.isEmpty ? seg.config() : seg.config(["mode": mode])
        let id = "mode-\(mode.isEmpty ? "default" : mode)"
        let r = seg.run("ADD", conf, ctr: ctr, id: id)
        XCTAssertEqual(r.status, 0, "\(mode): \(r.description)", file: file, line: line)
        XCTAssertEqual(seg.linkInfo(ctr).kind, Self.plugin, mode, file: file, line: line)
        XCTAssertEqual(seg.linkInfo(ctr).data["mode"] as? String, expected, mode, file: file, line: line)
        let check = seg.run("CHECK", seg.config(conf, prevResult: r.stdout), ctr: ctr, id: id)
        XCTAssertEqual(check.status, 0, "\(mode): \(check.description)", file: file, line: line)
        return (ctr, conf, id)
    }

    /// Nothing of a failed ADD is left: only `lo` in the container, no lease.
    func assertNothingLeft(in ctr: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(seg.linkNames(ctr, file: file, line: line), ["lo"], file: file, line: line)
        XCTAssertEqual(seg.leases(file: file, line: line), [], file: file, line: line)
    }
}
