import Foundation
import XCTest
import TestSupport

/// The built `bridge` executable, run inside a host netns as a runtime runs it.
final class BridgeTests: BridgeTestCase {
    let gwConf: [String: Any] = ["isGateway": true, "isDefaultGateway": true, "ipMasq": true]

    func testTwoContainersReachEachOtherAndTheGateway() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = bw.run("ADD", conf, ctr: c1, id: "ctr-one")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = bw.run("ADD", conf, ctr: c2, id: "ctr-two")
        XCTAssertEqual(r2.status, 0, r2.description)

        // The result: bridge, host veth, container interface with its sandbox.
        let out = try XCTUnwrap(r1.jsonObject, r1.stdout)
        let ifaces = try XCTUnwrap(out["interfaces"] as? [[String: Any]])
        XCTAssertEqual(ifaces.count, 3)
        XCTAssertEqual(ifaces[0]["name"] as? String, bw.bridge)
        XCTAssertNil(ifaces[1]["sandbox"])
        XCTAssertEqual(ifaces[2]["name"] as? String, "eth0")
        XCTAssertEqual(ifaces[2]["sandbox"] as? String, world.path(c1))
        let ips = try XCTUnwrap(out["ips"] as? [[String: Any]])
        XCTAssertEqual(ips.first?["interface"] as? Int, 2)
        XCTAssertEqual(ips.first?["gateway"] as? String, "10.99.0.1")

        // Kernel state: the host veth on the bridge, gateway address on the bridge.
        let hostVeth = try XCTUnwrap(ifaces[1]["name"] as? String)
        XCTAssertEqual(world.links(bw.host)[hostVeth]?["master"] as? String, bw.bridge)
        let brAddrs = world.ipJSON(bw.host, ["addr", "show", "dev", bw.bridge])
            .flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { $0["local"] as? String }
        XCTAssertTrue(brAddrs.contains("10.99.0.1"), "\(brAddrs)")
        XCTAssertEqual(try world.exec(in: bw.host, ["cat", "/proc/sys/net/ipv4/ip_forward"]).checked().stdout, "1\n")
        let routes = world.ipJSON(c1, ["route", "show", "default"])
        XCTAssertEqual(routes.first?["gateway"] as? String, "10.99.0.1")

        // Traffic.
        let a2 = BridgeWorld.ip(BridgeWorld.addresses(r2)[0])
        let a1 = BridgeWorld.ip(BridgeWorld.addresses(r1)[0])
        XCTAssertEqual(bw.ping(from: c1, a2).status, 0, "c1 -> c2")
        XCTAssertEqual(bw.ping(from: c2, a1).status, 0, "c2 -> c1")
        XCTAssertEqual(bw.ping(from: c1, "10.99.0.1").status, 0, "c1 -> gateway")
        XCTAssertEqual(bw.ping(from: bw.host, a1).status, 0, "host -> c1")

        // The gateway's MAC is known in the container before any traffic to it.
        let c3 = world.netns("c3")
        let r3 = bw.run("ADD", conf, ctr: c3, id: "ctr-three")
        XCTAssertEqual(r3.status, 0, r3.description)
        let neigh = world.ipJSON(c3, ["neigh", "show", "10.99.0.1"])
        let brMAC = (world.links(bw.host)[bw.bridge]?["address"] as? String)
        XCTAssertEqual(neigh.first?["lladdr"] as? String, brMAC, "\(neigh)")
    }

    func testMasqueradeToAnOutsideAddress() throws {
        // "The internet": a third netns joined to the host netns by a veth, 203.0.113.0/24.
        let inet = world.netns("inet")
        let (hv, iv) = (world.shortName("nlh"), world.shortName("nli"))
        try runChecked(["ip", "-n", bw.host, "link", "add", hv, "type", "veth", "peer", "name", iv, "netns", inet])
        try runChecked(["ip", "-n", bw.host, "addr", "add", "203.0.113.1/24", "dev", hv])
        try runChecked(["ip", "-n", bw.host, "link", "set", hv, "up"])
        try runChecked(["ip", "-n", inet, "addr", "add", "203.0.113.2/24", "dev", iv])
        try runChecked(["ip", "-n", inet, "link", "set", iv, "up"])
        // No route back to the containers there: only a masqueraded packet can be answered.

        let c1 = world.netns("c1")
        let r = bw.run("ADD", bw.config(gwConf), ctr: c1, id: "ctr-masq")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(bw.masqElements().map(\.comment), ["\(bw.network) ctr-masq eth0"])
        // The layout, in nft's own words.
        let chain = try world.exec(in: bw.host, ["nft", "list", "chain", "inet", "netlab", "masq-\(bw.bridge)"]).checked().stdout
        for rule in ["oifname \"\(bw.bridge)\" return", "ip daddr 224.0.0.0/4 return", "ip6 daddr ff00::/8 return", "masquerade"] {
            XCTAssertTrue(chain.contains(rule), "missing \(rule) in \(chain)")
        }
        let post = try world.exec(in: bw.host, ["nft", "list", "chain", "inet", "netlab", "masq_postrouting"]).checked().stdout
        XCTAssertTrue(post.contains("type nat hook postrouting priority srcnat") && post.contains("ip saddr vmap @masq_v4")
                      && post.contains("ip6 saddr vmap @masq_v6"), post)

        // A TCP server in the internet netns that answers with the peer address it sees.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", inet, "/usr/bin/python3", "-c", """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("203.0.113.2", 8099)); s.listen(1); s.settimeout(20)
            c, a = s.accept(); c.sendall((a[0] + "\\n").encode()); c.close()
            """]
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) }; server.waitUntilExit() }
        var seen = ""
        for _ in 0..<50 {
            let c = world.exec(in: c1, ["/usr/bin/python3", "-c", """
                import socket
                s = socket.create_connection(("203.0.113.2", 8099), timeout=3); print(s.recv(100).decode().strip())
                """], timeout: 10)
            if c.ok { seen = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines); break }
            usleep(100_000)
        }
        XCTAssertEqual(seen, "203.0.113.1", "the internet must see the host's address, not the container's")
    }

    func testIPv6AndDualStack() throws {
        let ranges: [[[String: Any]]] = [[["subnet": "10.99.0.0/24"]], [["subnet": "fd00:99::/64"]]]
        let conf = bw.config(gwConf, ranges: ranges)
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = bw.run("ADD", conf, ctr: c1, id: "ds-1")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = bw.run("ADD", conf, ctr: c2, id: "ds-2")
        XCTAssertEqual(r2.status, 0, r2.description)
        let a1 = BridgeWorld.addresses(r1), a2 = BridgeWorld.addresses(r2)
        XCTAssertEqual(a1.count, 2, r1.stdout)
        let v6 = try XCTUnwrap(a2.first { $0.contains(":") })
        XCTAssertTrue(v6.hasPrefix("fd00:99::"), v6)
        XCTAssertEqual(bw.ping(from: c1, BridgeWorld.ip(v6)).status, 0, "c1 -> c2 over IPv6")
        XCTAssertEqual(bw.ping(from: c1, "fd00:99::1").status, 0, "c1 -> IPv6 gateway")
        XCTAssertEqual(bw.ping(from: c1, BridgeWorld.ip(a2.first { !$0.contains(":") }!)).status, 0)
        let v6routes = world.ipJSON(c1, ["-6", "route", "show", "default"])
        XCTAssertEqual(v6routes.first?["gateway"] as? String, "fd00:99::1")
        XCTAssertEqual(Set(bw.masqElements().map(\.comment)), ["\(bw.network) ds-1 eth0", "\(bw.network) ds-2 eth0"])
        XCTAssertEqual(bw.masqElements().count, 4)

        // IPv6 only.
        let c3 = world.netns("c3")
        let bw6 = BridgeWorld(world, network: "v6only", role: "host6")
        let r3 = bw6.run("ADD", bw6.config(gwConf, ranges: [[["subnet": "fd00:98::/64"]]]), ctr: c3, id: "v6-1")
        XCTAssertEqual(r3.status, 0, r3.description)
        XCTAssertEqual(bw6.ping(from: c3, "fd00:98::1").status, 0)
        XCTAssertEqual(try world.exec(in: bw6.host, ["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).checked().stdout, "1\n")
    }

    func testCheckPassesAfterAddAndFailsWhenTheVethIsGone() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        let r = bw.run("ADD", conf, ctr: c1, id: "chk")
        XCTAssertEqual(r.status, 0, r.description)
        let withPrev = bw.config(conf, prevResult: r.stdout)
        let ok = bw.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertEqual(ok.status, 0, ok.description)

        try runChecked(["ip", "-n", c1, "link", "del", "eth0"])
        let bad = bw.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertNotEqual(bad.status, 0)
        let msg = bad.jsonObject?["msg"] as? String ?? ""
        XCTAssertTrue(msg.contains("eth0") && msg.contains("not found"), bad.stdout)
    }

    func testCheckFailsWhenTheMasqueradeElementIsGone() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        let r = bw.run("ADD", conf, ctr: c1, id: "chk2")
        XCTAssertEqual(r.status, 0, r.description)
        try runChecked(["ip", "netns", "exec", bw.host, "nft", "flush", "map", "inet", "netlab", "masq_v4"])
        let bad = bw.run("CHECK", bw.config(conf, prevResult: r.stdout), ctr: c1, id: "chk2")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("masquerade"), bad.stdout)
    }

    func assertNothingLeft(_ id: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(bw.hostVeths(file: file, line: line), [], "host veths left", file: file, line: line)
        XCTAssertEqual(bw.leases(file: file, line: line), [], "leases left", file: file, line: line)
        XCTAssertTrue(bw.masqElements(file: file, line: line).filter { $0.comment.contains(id) }.isEmpty, "nft elements left", file: file, line: line)
    }

    func testDelTwiceLeavesNothing() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        XCTAssertEqual(bw.run("ADD", conf, ctr: c1, id: "d1").status, 0)
        XCTAssertEqual(bw.leases().count, 1)
        for _ in 0..<2 {
            let d = bw.run("DEL", conf, ctr: c1, id: "d1")
            XCTAssertEqual(d.status, 0, d.description)
            XCTAssertEqual(d.stdout, "")
        }
        assertNothingLeft("d1")
        XCTAssertNil(world.links(c1)["eth0"])
        XCTAssertNotNil(world.links(bw.host)[bw.bridge], "the bridge stays")
    }

    func testDelWithTheNetnsGoneRemovesTheMasqueradeElementAndLease() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        XCTAssertEqual(bw.run("ADD", conf, ctr: c1, id: "gone").status, 0)
        XCTAssertEqual(bw.masqElements().count, 1)
        let path = world.path(c1)
        try runChecked(["ip", "netns", "del", c1])
        let d = bw.run("DEL", conf, ctr: path, id: "gone")
        XCTAssertEqual(d.status, 0, d.description)
        let d2 = bw.run("DEL", conf, ctr: nil, id: "gone")
        XCTAssertEqual(d2.status, 0, d2.description)
        // The kernel dismantles a deleted netns asynchronously; its veth pair goes with it.
        for _ in 0..<100 where !bw.hostVeths().isEmpty { usleep(50_000) }
        assertNothingLeft("gone")
        XCTAssertEqual(bw.masqElements().count, 0)
    }

    func testDelWithTheInterfaceGoneAndDelWithoutAdd() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        XCTAssertEqual(bw.run("ADD", conf, ctr: c1, id: "noif").status, 0)
        try runChecked(["ip", "-n", c1, "link", "del", "eth0"])
        let d = bw.run("DEL", conf, ctr: c1, id: "noif")
        XCTAssertEqual(d.status, 0, d.description)
        assertNothingLeft("noif")
        let c2 = world.netns("c2")
        let never = bw.run("DEL", conf, ctr: c2, id: "never-added")
        XCTAssertEqual(never.status, 0, never.description)
    }

    func testFailedAddWithAnExhaustedRangeLeavesNothing() throws {
        let conf = bw.config(gwConf, ranges: [[["subnet": "10.99.0.0/24", "rangeStart": "10.99.0.10", "rangeEnd": "10.99.0.10"]]])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = bw.run("ADD", conf, ctr: c1, id: "first")
        XCTAssertEqual(r1.status, 0, r1.description)
        let vethsBefore = bw.hostVeths()
        let r2 = bw.run("ADD", conf, ctr: c2, id: "second")
        XCTAssertNotEqual(r2.status, 0, r2.description)
        XCTAssertEqual(r2.jsonObject?["code"] as? Int, 11, "an exhausted range is \"try again later\": \(r2.stdout)")
        XCTAssertEqual(bw.hostVeths(), vethsBefore, "the failed ADD's veth must be gone")
        XCTAssertNil(world.links(c2)["eth0"])
        XCTAssertEqual(bw.leases(), ["10.99.0.10"])
        XCTAssertEqual(bw.masqElements().map(\.comment), ["\(bw.network) first eth0"])
    }

    func testFailedAddWithANameClashLeavesNothing() throws {
        let conf = bw.config(gwConf)
        let c1 = world.netns("c1")
        try runChecked(["ip", "-n", c1, "link", "add", "eth0", "type", "bridge"])
        let r = bw.run("ADD", conf, ctr: c1, id: "clash")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("already exists"), r.stdout)
        assertNothingLeft("clash")
        XCTAssertNotNil(world.links(c1)["eth0"], "the container's own eth0 is untouched")
        XCTAssertEqual(bw.masqElements().count, 0)
    }

    /// A container netns that does not exist is "unknown container" (code 3), and ADD makes nothing.
    func testAddOnAMissingNetnsIsUnknownContainer() {
        let r = bw.run("ADD", bw.config(gwConf), ctr: "/run/netns/nlt-no-such-netns", id: "nonet")
        XCTAssertEqual(r.status, 1, r.description)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 3, r.stdout)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("nlt-no-such-netns"), r.stdout)
        assertNothingLeft("nonet")
    }

    /// A change the kernel refuses reaches the runtime with the kernel's own words in
    /// `details` (netlink extended ack), and the failed ADD undoes what it did.
    func testKernelRefusalKeepsItsTextInDetails() {
        let c1 = world.netns("c1")
        // A route through a gateway that is not on any of the container's links.
        let conf = bw.config(gwConf, ipamExtra: ["routes": [["dst": "192.0.2.0/24", "gw": "198.51.100.1"]]])
        let r = bw.run("ADD", conf, ctr: c1, id: "badroute")
        XCTAssertEqual(r.status, 1, r.description)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 999, r.stdout)
        let msg = r.jsonObject?["msg"] as? String ?? ""
        XCTAssertTrue(msg.hasPrefix("bridge ADD: ") && msg.contains("192.0.2.0/24"), msg)
        let details = r.jsonObject?["details"] as? String ?? ""
        XCTAssertFalse(details.isEmpty, "no extended-ack text: \(r.stdout)")
        XCTAssertTrue(msg.hasSuffix(details), "msg and details disagree: \(r.stdout)")
        assertNothingLeft("badroute")
    }
}
