import XCTest
import TestSupport

/// The built `loopback` executable, run as a runtime runs it, against fresh netns.
final class LoopbackTests: XCTestCase {
    var world: TestWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
    }

    func config(_ version: String = "1.0.0") -> String {
        #"{"cniVersion":"\#(version)","name":"lonet","type":"loopback"}"#
    }

    func loState(_ ns: String) -> [String: Any]? { world.links(ns)["lo"] }

    func isUp(_ ns: String) -> Bool {
        ((loState(ns)?["flags"] as? [String]) ?? []).contains("UP")
    }

    func testAddBringsLoUpAndReportsIt() throws {
        let ns = world.netns("ctr")
        try runChecked(["ip", "-n", ns, "link", "set", "lo", "down"])
        XCTAssertFalse(isUp(ns))
        let r = world.runPlugin("loopback", command: "ADD", config: config(), netns: ns, ifname: "lo")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertTrue(isUp(ns), "lo is not up after ADD: \(String(describing: loState(ns)))")
        let out = try XCTUnwrap(r.jsonObject, r.stdout)
        XCTAssertEqual(out["cniVersion"] as? String, "1.0.0")
        let ifaces = try XCTUnwrap(out["interfaces"] as? [[String: Any]])
        XCTAssertEqual(ifaces.first?["name"] as? String, "lo")
        XCTAssertEqual(ifaces.first?["sandbox"] as? String, world.path(ns))
        let ips = (out["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        XCTAssertTrue(ips.contains("127.0.0.1/8"), "ips: \(ips)")
    }

    func testCheckAfterAddAndFailsWhenLoIsDown() throws {
        let ns = world.netns("ctr")
        XCTAssertEqual(world.runPlugin("loopback", command: "ADD", config: config(), netns: ns, ifname: "lo").status, 0)
        let check = world.runPlugin("loopback", command: "CHECK", config: config(), netns: ns, ifname: "lo")
        XCTAssertEqual(check.status, 0, check.description)
        try runChecked(["ip", "-n", ns, "link", "set", "lo", "down"])
        let bad = world.runPlugin("loopback", command: "CHECK", config: config(), netns: ns, ifname: "lo")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("down"), bad.stdout)
    }

    func testDelTwiceSucceedsAndBringsLoDown() {
        let ns = world.netns("ctr")
        XCTAssertEqual(world.runPlugin("loopback", command: "ADD", config: config(), netns: ns, ifname: "lo").status, 0)
        for _ in 0..<2 {
            let r = world.runPlugin("loopback", command: "DEL", config: config(), netns: ns, ifname: "lo")
            XCTAssertEqual(r.status, 0, r.description)
            XCTAssertEqual(r.stdout, "")
        }
        XCTAssertFalse(isUp(ns))
    }

    func testDelOnVanishedNetnsSucceeds() throws {
        let ns = world.netns("gone")
        let path = world.path(ns)
        try runChecked(["ip", "netns", "del", ns])
        let r = world.runPlugin("loopback", command: "DEL", config: config(), netns: path, ifname: "lo")
        XCTAssertEqual(r.status, 0, r.description)
        let r2 = world.runPlugin("loopback", command: "DEL", config: config(), netns: nil, ifname: "lo")
        XCTAssertEqual(r2.status, 0, r2.description)
    }

    func testAddOnMissingNetnsIsAClearError() {
        let r = world.runPlugin("loopback", command: "ADD", config: config(), netns: "/run/netns/nlt-does-not-exist", ifname: "lo")
        XCTAssertNotEqual(r.status, 0)
        let out = r.jsonObject
        XCTAssertEqual(out?["code"] as? Int, 3, r.stdout)
        XCTAssertTrue((out?["msg"] as? String ?? "").contains("nlt-does-not-exist"), r.stdout)
    }

    func testOldVersionsWork() {
        let ns = world.netns("ctr")
        let r = world.runPlugin("loopback", command: "ADD", config: config("0.3.1"), netns: ns, ifname: "lo")
        XCTAssertEqual(r.status, 0, r.description)
        let ips = r.jsonObject?["ips"] as? [[String: Any]] ?? []
        XCTAssertEqual(ips.first?["version"] as? String, "4", r.stdout)
        let check = world.runPlugin("loopback", command: "CHECK", config: config("0.3.1"), netns: ns, ifname: "lo")
        XCTAssertEqual(check.jsonObject?["code"] as? Int, 1, "CHECK needs 0.4.0: \(check.stdout)")
    }

    func testChainedLoopbackPassesPrevResultThrough() throws {
        let ns = world.netns("ctr")
        let conf = #"{"cniVersion":"1.0.0","name":"lonet","type":"loopback","prevResult":{"cniVersion":"1.0.0","#
            + #""interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.9.0.2/24","interface":0}]}}"#
        let r = world.runPlugin("loopback", command: "ADD", config: conf, netns: ns, ifname: "lo")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertTrue(isUp(ns))
        let ips = (r.jsonObject?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        XCTAssertEqual(ips, ["10.9.0.2/24"], r.stdout)
    }
}
