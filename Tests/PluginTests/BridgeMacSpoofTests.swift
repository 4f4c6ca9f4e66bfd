import Foundation
import XCTest
import TestSupport

/// `macspoofchk`: frames from a container's veth with another source MAC are dropped by the
/// suite's `table bridge netlab`, found and removed by owner at DEL, verified by CHECK,
/// collected by GC, undone by a failed ADD. All in test netns.
final class BridgeMacSpoofTests: BridgeTestCase {
    let spoofConf: [String: Any] = ["isGateway": true, "macspoofchk": true]

    struct Element: Equatable, CustomStringConvertible {
        var set: String
        var key: String
        var comment: String
        var description: String { "\(set): \(key) \"\(comment)\"" }
    }

    /// The elements of the sets of `table bridge netlab` in the host netns (keys of
    /// concatenations joined with " . "); a failing `nft` fails the running test.
    func spoofElements(file: StaticString = #filePath, line: UInt = #line) -> [Element] {
        world.ruleset(bw.host, file: file, line: line).sets(table: "netlab", family: "bridge").flatMap { set in
            set.elements.map { Element(set: set.name, key: Self.key($0), comment: $0.comment ?? "") }
        }.sorted { "\($0)" < "\($1)" }
    }

    /// An element's key as nft writes it: `veth . mac` for the concatenations.
    static func key(_ e: NFTRuleset.Element) -> String {
        var value = e.raw
        if let wrapped = (value as? [String: Any])?["elem"] as? [String: Any] { value = wrapped["val"] ?? wrapped }
        guard let concat = (value as? [String: Any])?["concat"] as? [Any] else { return e.key }
        return concat.map { "\($0)" }.joined(separator: " . ")
    }

    /// `nft list ARGS…` in the host netns as nft prints it; throws when `nft` fails.
    func nftList(_ args: String...) throws -> String {
        try world.exec(in: bw.host, ["nft", "list"] + args).checked().stdout
    }

    func expected(_ r: CommandResult, id: String) -> [Element] {
        let ifaces = r.jsonObject?["interfaces"] as? [[String: Any]] ?? []
        let veth = ifaces.count == 3 ? ifaces[1]["name"] as? String ?? "?" : "?"
        let mac = ifaces.count == 3 ? ifaces[2]["mac"] as? String ?? "?" : "?"
        let owner = "\(bw.network) \(id) eth0"
        return [Element(set: "spoofchk_allowed", key: "\(veth) . \(mac)", comment: owner),
                Element(set: "spoofchk_ports", key: veth, comment: owner)]
    }

    func setMAC(_ ns: String, _ mac: String) {
        let r = runCommand(["ip", "-n", ns, "link", "set", "eth0", "address", mac])
        XCTAssertTrue(r.ok, r.description)
    }
    func mac(_ ns: String) -> String { world.links(ns)["eth0"]?["address"] as? String ?? "" }

    func testSpoofedFramesAreDroppedOnlyForTheCheckedContainer() throws {
        let on = bw.config(spoofConf), off = bw.config(["isGateway": true])
        let c1 = world.netns("c1"), c2 = world.netns("c2"), c3 = world.netns("c3")
        let r1 = bw.run("ADD", on, ctr: c1, id: "spoof-one")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = bw.run("ADD", on, ctr: c2, id: "spoof-two")
        XCTAssertEqual(r2.status, 0, r2.description)
        let r3 = bw.run("ADD", off, ctr: c3, id: "plain")
        XCTAssertEqual(r3.status, 0, r3.description)
        let a2 = BridgeWorld.ip(BridgeWorld.addresses(r2)[0])

        // The layout and each checked container's two elements, with the owner comment.
        XCTAssertEqual(spoofElements(), (expected(r1, id: "spoof-one") + expected(r2, id: "spoof-two")).sorted { "\($0)" < "\($1)" })
        let table = try nftList("table", "bridge", "netlab")
        XCTAssertTrue(table.contains("type filter hook prerouting priority dstnat; policy accept;"), table)
        XCTAssertTrue(table.contains("iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed drop"), table)

        // Own MAC: the gateway and the neighbour are reachable.
        XCTAssertEqual(bw.ping(from: c1, "10.99.0.1").status, 0, "c1 -> gateway")
        XCTAssertEqual(bw.ping(from: c1, a2).status, 0, "c1 -> c2")

        // Another MAC inside c1: its frames are dropped at the bridge.
        let own = mac(c1)
        setMAC(c1, "02:5a:00:00:00:01")
        XCTAssertNotEqual(bw.ping(from: c1, "10.99.0.1").status, 0, "spoofed c1 -> gateway must fail")
        try runChecked(["ip", "-n", c1, "neigh", "flush", "dev", "eth0"])
        XCTAssertNotEqual(bw.ping(from: c1, a2).status, 0, "spoofed c1 -> c2 must fail")
        // The second checked container is unaffected.
        XCTAssertEqual(bw.ping(from: c2, "10.99.0.1").status, 0, "c2 -> gateway")
        // Without macspoofchk, a changed MAC keeps working (its ARP reaches c2).
        setMAC(c3, "02:5a:00:00:00:03")
        XCTAssertEqual(bw.ping(from: c3, a2).status, 0, "unchecked c3 with a new MAC -> c2")
        // Its own MAC back: c1 is reachable again, so the drop was the MAC check.
        setMAC(c1, own)
        XCTAssertEqual(bw.ping(from: c1, a2).status, 0, "c1 with its own MAC again -> c2")

        // DEL removes exactly the container's elements.
        XCTAssertEqual(bw.run("DEL", on, ctr: c1, id: "spoof-one").status, 0)
        XCTAssertEqual(spoofElements(), expected(r2, id: "spoof-two"))
        XCTAssertEqual(bw.run("DEL", on, ctr: c2, id: "spoof-two").status, 0)
        XCTAssertEqual(bw.run("DEL", off, ctr: c3, id: "plain").status, 0)
        XCTAssertEqual(spoofElements(), [])
    }

    func testRequestedMACIsTheAllowedOneAndCheckVerifiesTheElements() throws {
        let conf = bw.config(spoofConf)
        let c1 = world.netns("c1")
        let r = bw.run("ADD", conf, ctr: c1, id: "chk", args: "IgnoreUnknown=1;MAC=02:42:0a:63:00:09")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(mac(c1), "02:42:0a:63:00:09")
        let elems = spoofElements()
        XCTAssertEqual(elems, expected(r, id: "chk"))
        XCTAssertTrue(elems.first?.key.hasSuffix(" . 02:42:0a:63:00:09") ?? false, "\(elems)")

        let withPrev = bw.config(conf, prevResult: r.stdout)
        let ok = bw.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertEqual(ok.status, 0, ok.description)

        // The allowed pair gone: CHECK names it.
        try world.exec(in: bw.host, ["nft", "flush", "set", "bridge", "netlab", "spoofchk_allowed"]).checked()
        let bad = bw.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("macspoofchk"), bad.stdout)

        // The rule gone: CHECK fails, and the next ADD puts the layout back whole.
        try world.exec(in: bw.host, ["nft", "flush", "chain", "bridge", "netlab", "spoofchk"]).checked()
        let bad2 = bw.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertTrue((bad2.jsonObject?["msg"] as? String ?? "").contains("spoofchk"), bad2.stdout)
        let c2 = world.netns("c2")
        let r2 = bw.run("ADD", conf, ctr: c2, id: "again")
        XCTAssertEqual(r2.status, 0, r2.description)
        let table = try nftList("table", "bridge", "netlab")
        XCTAssertTrue(table.contains("iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed drop"), table)
        let ok2 = bw.run("CHECK", bw.config(conf, prevResult: r2.stdout), ctr: c2, id: "again")
        XCTAssertEqual(ok2.status, 0, ok2.description)
    }

    func testDelWithTheNetnsGoneAndSecondDelLeaveNoElement() throws {
        let conf = bw.config(spoofConf)
        let c1 = world.netns("c1")
        XCTAssertEqual(bw.run("ADD", conf, ctr: c1, id: "gone").status, 0)
        XCTAssertEqual(spoofElements().count, 2)
        let path = world.path(c1)
        try runChecked(["ip", "netns", "del", c1])
        for netns in [path, nil] {
            let d = bw.run("DEL", conf, ctr: netns, id: "gone")
            XCTAssertEqual(d.status, 0, d.description)
        }
        XCTAssertEqual(spoofElements(), [])
        // DEL without any ADD, on a host without the table, is success too.
        let fresh = BridgeWorld(world, role: "host2")
        XCTAssertEqual(fresh.run("DEL", fresh.config(spoofConf), ctr: nil, id: "never").status, 0)
    }

    func testFailedAddRemovesItsElements() throws {
        let conf = bw.config(spoofConf, ranges: [[["subnet": "10.99.0.0/24", "rangeStart": "10.99.0.10", "rangeEnd": "10.99.0.10"]]])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = bw.run("ADD", conf, ctr: c1, id: "first")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = bw.run("ADD", conf, ctr: c2, id: "second")
        XCTAssertNotEqual(r2.status, 0, r2.description)
        XCTAssertEqual(spoofElements(), expected(r1, id: "first"))
    }

    func testGCRemovesElementsOfInvalidAttachmentsOfThisNetworkOnly() throws {
        let conf = bw.config(spoofConf, version: "1.1.0")
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let keep = bw.run("ADD", conf, ctr: c1, id: "keep")
        XCTAssertEqual(keep.status, 0, keep.description)
        XCTAssertEqual(bw.run("ADD", conf, ctr: c2, id: "stale").status, 0)
        let add = world.exec(in: bw.host, ["nft", "add element bridge netlab spoofchk_ports { \"vethother\" comment \"othernet x eth0\" }"])
        XCTAssertTrue(add.ok, add.description)
        var c = try JSONSerialization.jsonObject(with: conf.data(using: .utf8)!) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
        let gc = bw.run("GC", BridgeWorld.json(c), ctr: nil, id: "")
        XCTAssertEqual(gc.status, 0, gc.description)
        let other = Element(set: "spoofchk_ports", key: "vethother", comment: "othernet x eth0")
        XCTAssertEqual(spoofElements(), (expected(keep, id: "keep") + [other]).sorted { "\($0)" < "\($1)" })
    }

    func testConcurrentAddsOnAFreshHostShareOneRule() throws {
        let conf = bw.config(spoofConf.merging(["ipMasq": true]) { $1 })
        let n = 12
        let ctrs = (0..<n).map { world.netns("c\($0)") }
        nonisolated(unsafe) let b = bw!
        nonisolated(unsafe) var adds = [CommandResult?](repeating: nil, count: n)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let r = b.run("ADD", conf, ctr: ctrs[i], id: "burst-\(i)")
            lock.withLock { adds[i] = r }
        }
        for (i, r) in adds.enumerated() { XCTAssertEqual(r?.status, 0, "ADD \(i): \(r?.description ?? "")") }
        let want = adds.enumerated().flatMap { expected($0.element!, id: "burst-\($0.offset)") }
        XCTAssertEqual(spoofElements(), want.sorted { "\($0)" < "\($1)" })
        let rules = try nftList("chain", "bridge", "netlab", "spoofchk")
        XCTAssertEqual(rules.components(separatedBy: "@spoofchk_allowed drop").count, 2, rules)

        DispatchQueue.concurrentPerform(iterations: n) { i in
            let r = b.run("DEL", conf, ctr: ctrs[i], id: "burst-\(i)")
            XCTAssertEqual(r.status, 0, "DEL \(i): \(r.description)")
        }
        XCTAssertEqual(spoofElements(), [])
    }
}
