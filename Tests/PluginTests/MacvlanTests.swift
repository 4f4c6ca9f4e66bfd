// The built `macvlan` executable, run inside a host netns as a runtime runs it: containers
// on the parent's segment, every mode and option read back with `ip -d -j link`, traffic.

import Foundation
import XCTest
import TestSupport

final class MacvlanTests: SegmentTestCase {
    override class var plugin: String { "macvlan" }

    func testTwoContainersInBridgeModeReachEachOtherAndTheSegment() throws {
        let conf = seg.config(["mode": "bridge"])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = seg.run("ADD", conf, ctr: c1, id: "mv-one")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = seg.run("ADD", conf, ctr: c2, id: "mv-two")
        XCTAssertEqual(r2.status, 0, r2.description)

        // The result: the one container interface, its addresses on it.
        let ifaces = SegmentWorld.interfaces(r1)
        XCTAssertEqual(ifaces.count, 1, r1.stdout)
        XCTAssertEqual(ifaces.first?["name"] as? String, "eth0")
        XCTAssertEqual(ifaces.first?["sandbox"] as? String, world.path(c1))
        let ips = SegmentWorld.ips(r1)
        XCTAssertEqual(ips.first?["address"] as? String, "10.80.0.10/24")
        XCTAssertEqual(ips.first?["gateway"] as? String, "10.80.0.1")
        XCTAssertEqual(ips.first?["interface"] as? Int, 0)

        // The kernel: a bridge-mode macvlan of the parent, up, with the result's MAC and address.
        let eth0 = seg.link(c1)
        let (kind, data) = seg.linkInfo(c1)
        XCTAssertEqual(kind, "macvlan")
        XCTAssertEqual(data["mode"] as? String, "bridge")
        XCTAssertEqual(eth0["link_index"] as? Int, seg.index(seg.host, seg.parent), "on the parent of the host netns")
        XCTAssertNotNil(eth0["link_netnsid"], "the parent lives in another netns")
        XCTAssertEqual(eth0["address"] as? String, ifaces.first?["mac"] as? String)
        XCTAssertTrue((eth0["flags"] as? [String] ?? []).contains("UP"))
        XCTAssertEqual(seg.addresses(c1), ["10.80.0.10/24"])
        XCTAssertEqual(seg.ipJSON(c1, ["route", "show", "default"]).first?["gateway"] as? String, "10.80.0.1")
        XCTAssertFalse(seg.linkNames(seg.host).contains("eth0"), "nothing appears in the host netns")
        XCTAssertNotEqual(seg.link(c1)["address"] as? String, seg.link(c2)["address"] as? String, "a MAC per container")

        // Traffic: container to container (inside the parent's macvlan bridge) and to the segment.
        let a1 = try XCTUnwrap(SegmentWorld.address(r1)), a2 = try XCTUnwrap(SegmentWorld.address(r2))
        XCTAssertEqual(seg.ping(from: c1, a2).status, 0, "c1 -> c2")
        XCTAssertEqual(seg.ping(from: c2, a1).status, 0, "c2 -> c1")
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0, "c1 -> the segment")
        XCTAssertEqual(seg.ping(from: seg.outside, a2).status, 0, "the segment -> c2")
        XCTAssertEqual(seg.leases(), ["10.80.0.10", "10.80.0.11"])
    }

    func testEveryModeIsAcceptedAndReflected() throws {
        for (mode, expected) in [("bridge", "bridge"), ("private", "private"), ("vepa", "vepa"), ("passthru", "passthru"), ("", "bridge")] {
            let (ctr, conf, id) = addInMode(mode, expecting: expected)
            XCTAssertEqual(seg.ping(from: ctr, SegmentWorld.outsideV4).status, 0, "\(mode): the segment answers")
            // passthru takes the parent over: only one at a time, so each mode is removed again.
            XCTAssertEqual(seg.run("DEL", conf, ctr: ctr, id: id).status, 0, mode)
            XCTAssertEqual(seg.linkNames(ctr), ["lo"], mode)
        }
        XCTAssertEqual(seg.leases(), [])
    }

    func testPrivateModeKeepsContainersApartButNotFromTheSegment() throws {
        let conf = seg.config(["mode": "private"])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = seg.run("ADD", conf, ctr: c1, id: "p1"), r2 = seg.run("ADD", conf, ctr: c2, id: "p2")
        XCTAssertEqual(r1.status, 0, r1.description)
        XCTAssertEqual(r2.status, 0, r2.description)
        XCTAssertNotEqual(seg.ping(from: c1, try XCTUnwrap(SegmentWorld.address(r2))).status, 0, "private: no c1 -> c2")
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0, "private: the segment is reachable")
    }

    func testMTUMACAndBroadcastQueue() throws {
        let c1 = world.netns("c1")
        let r = seg.run("ADD", seg.config(["mtu": 1400, "mac": "02:00:00:0a:0b:0c", "bcqueuelen": 64]), ctr: c1, id: "opts")
        XCTAssertEqual(r.status, 0, r.description)
        let eth0 = seg.link(c1)
        XCTAssertEqual(eth0["mtu"] as? Int, 1400)
        XCTAssertEqual(eth0["address"] as? String, "02:00:00:0a:0b:0c")
        XCTAssertEqual(seg.linkInfo(c1).data["bcqueuelen"] as? Int, 64)
        XCTAssertEqual(SegmentWorld.interfaces(r).first?["mac"] as? String, "02:00:00:0a:0b:0c")

        // The runtime's MAC wins over the config's: runtimeConfig.mac, then CNI_ARGS MAC.
        let c2 = world.netns("c2"), c3 = world.netns("c3")
        let rc = seg.run("ADD", seg.config(["mac": "02:00:00:0a:0b:0c", "runtimeConfig": ["mac": "02:00:00:00:00:22"]]),
                         ctr: c2, id: "rtmac", args: "IgnoreUnknown=1;MAC=02:00:00:00:00:99")
        XCTAssertEqual(rc.status, 0, rc.description)
        XCTAssertEqual(seg.link(c2)["address"] as? String, "02:00:00:00:00:22")
        let ra = seg.run("ADD", seg.config(["mac": "02:00:00:0a:0b:0c"]), ctr: c3, id: "argmac",
                         args: "IgnoreUnknown=1;MAC=02:00:00:00:00:33")
        XCTAssertEqual(ra.status, 0, ra.description)
        XCTAssertEqual(seg.link(c3)["address"] as? String, "02:00:00:00:00:33")
        XCTAssertEqual(seg.ping(from: c3, SegmentWorld.outsideV4).status, 0)
    }

    func testDefaultMasterIsTheHostsDefaultRouteInterface() throws {
        let c1 = world.netns("c1")
        let conf = seg.config(seg.config(), without: ["master"])
        let r = seg.run("ADD", conf, ctr: c1, id: "defmaster")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(seg.link(c1)["link_index"] as? Int, seg.index(seg.host, seg.parent))
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0)
        XCTAssertEqual(seg.run("CHECK", seg.config(conf, prevResult: r.stdout), ctr: c1, id: "defmaster").status, 0)
    }

    func testLinkInContainerUsesAMasterInsideTheContainer() throws {
        // The container owns an interface on a segment of its own ("inner" <-> "far" netns).
        let c1 = world.netns("c1"), far = world.netns("far")
        seg.must(["ip", "-n", c1, "link", "add", "inner0", "type", "veth", "peer", "name", "far0", "netns", far])
        seg.must(["ip", "-n", c1, "link", "set", "inner0", "up"])
        seg.must(["ip", "-n", far, "addr", "add", "10.80.0.1/24", "dev", "far0"])
        seg.must(["ip", "-n", far, "link", "set", "far0", "up"])

        let conf = seg.config(["master": "inner0", "linkInContainer": true])
        let r = seg.run("ADD", conf, ctr: c1, id: "inctr")
        XCTAssertEqual(r.status, 0, r.description)
        // `ip` names a parent of the same netns (`link`), and gives only the index of one elsewhere.
        XCTAssertEqual(seg.link(c1)["link"] as? String, "inner0", "on inner0, in the container")
        XCTAssertNil(seg.link(c1)["link_netnsid"], "parent and link share the container netns")
        XCTAssertEqual(seg.ping(from: c1, "10.80.0.1").status, 0)
        XCTAssertEqual(seg.ping(from: far, try XCTUnwrap(SegmentWorld.address(r))).status, 0)
        XCTAssertEqual(seg.run("CHECK", seg.config(conf, prevResult: r.stdout), ctr: c1, id: "inctr").status, 0)
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "inctr").status, 0)
        XCTAssertEqual(seg.linkNames(c1).sorted(), ["inner0", "lo"], "the container's own master stays")

        // Without linkInContainer the same master is looked for in the host netns, in vain.
        let c2 = world.netns("c2")
        let bad = seg.run("ADD", seg.config(["master": "inner0"]), ctr: c2, id: "notinhost")
        assertError(bad, code: 7, naming: "master")
        XCTAssertTrue(bad.cniMessage.contains("host netns"), bad.stdout)
    }

    func testL2OnlyWithoutIPAM() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let conf = seg.config(seg.config(), without: ["ipam"])
        let r1 = seg.run("ADD", conf, ctr: c1, id: "l2a"), r2 = seg.run("ADD", conf, ctr: c2, id: "l2b")
        XCTAssertEqual(r1.status, 0, r1.description)
        XCTAssertEqual(r2.status, 0, r2.description)
        XCTAssertEqual(SegmentWorld.ips(r1).count, 0, r1.stdout)
        XCTAssertEqual(SegmentWorld.interfaces(r1).count, 1, r1.stdout)
        XCTAssertTrue((seg.link(c1)["flags"] as? [String] ?? []).contains("UP"))
        XCTAssertEqual(seg.addresses(c1), [])
        // L2 connectivity: addresses added by hand reach each other and the segment.
        seg.must(["ip", "-n", c1, "addr", "add", "10.80.0.101/24", "dev", "eth0"])
        seg.must(["ip", "-n", c2, "addr", "add", "10.80.0.102/24", "dev", "eth0"])
        XCTAssertEqual(seg.ping(from: c1, "10.80.0.102").status, 0)
        XCTAssertEqual(seg.ping(from: c2, SegmentWorld.outsideV4).status, 0)
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "l2a").status, 0)
        XCTAssertEqual(seg.linkNames(c1), ["lo"])
    }

    func testDualStackWaitsForDuplicateAddressDetection() throws {
        let c1 = world.netns("c1")
        // A container netns as runtimes make them: IPv6 DAD on (the test world turns it off).
        seg.must(["ip", "netns", "exec", c1, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=1"])
        let ipam: [String: Any] = ["type": "host-local", "dataDir": seg.dataDir,
                                   "ranges": [[["subnet": "10.80.0.0/24", "rangeStart": "10.80.0.10"]],
                                              [["subnet": "fd00:80::/64", "rangeStart": "fd00:80::10"]]],
                                   "routes": [["dst": "0.0.0.0/0"], ["dst": "::/0"]]]
        let r = seg.run("ADD", seg.config(ipam: ipam), ctr: c1, id: "ds")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(seg.addresses(c1).sorted(), ["10.80.0.10/24", "fd00:80::10/64"])
        let v6 = seg.addressInfo(c1, "eth0").first { $0["local"] as? String == "fd00:80::10" }
        XCTAssertNotNil(v6)
        XCTAssertNil(v6?["tentative"], "ADD returns once DAD is done: \(v6 ?? [:])")
        XCTAssertEqual(seg.ipJSON(c1, ["-6", "route", "show", "default"]).first?["gateway"] as? String, "fd00:80::1")
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV6).status, 0, "IPv6 to the segment")
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0, "IPv4 to the segment")
    }

    func testOlderResultVersions() throws {
        let c1 = world.netns("c1")
        let r = seg.run("ADD", seg.config(version: "0.3.1"), ctr: c1, id: "v031")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(r.jsonObject?["cniVersion"] as? String, "0.3.1")
        XCTAssertEqual(SegmentWorld.ips(r).first?["version"] as? String, "4")
        XCTAssertEqual(SegmentWorld.ips(r).first?["interface"] as? Int, 0)
        XCTAssertEqual(seg.run("DEL", seg.config(version: "0.3.1"), ctr: c1, id: "v031").status, 0)
    }

    /// The reference plugin and ours, same config, each into a container of its own: the same
    /// kernel state and the same result shape.
    func testSameAsTheReferencePlugin() throws {
        let reference = "/usr/lib/cni/macvlan"
        guard FileManager.default.isExecutableFile(atPath: reference) else { throw XCTSkip("no reference plugin at \(reference)") }
        let conf = seg.config(["mode": "vepa", "mtu": 1400])
        let theirs = world.netns("ref"), ours = world.netns("ours")
        let rr = seg.run("ADD", conf, ctr: theirs, id: "ref", cniPath: "/usr/lib/cni", executable: reference)
        XCTAssertEqual(rr.status, 0, rr.description)
        let ro = seg.run("ADD", conf, ctr: ours, id: "ours")
        XCTAssertEqual(ro.status, 0, ro.description)
        for ns in [theirs, ours] {
            XCTAssertEqual(seg.linkInfo(ns).kind, "macvlan", ns)
            XCTAssertEqual(seg.linkInfo(ns).data["mode"] as? String, "vepa", ns)
            XCTAssertEqual(seg.link(ns)["mtu"] as? Int, 1400, ns)
            XCTAssertEqual(seg.link(ns)["link_index"] as? Int, seg.index(seg.host, seg.parent), ns)
            XCTAssertEqual(seg.ipJSON(ns, ["route", "show", "default"]).first?["gateway"] as? String, "10.80.0.1", ns)
        }
        XCTAssertEqual(seg.addresses(theirs), ["10.80.0.10/24"])
        XCTAssertEqual(seg.addresses(ours), ["10.80.0.11/24"])
        func shape(_ r: CommandResult) -> [String] {
            let i = SegmentWorld.interfaces(r), ip = SegmentWorld.ips(r)
            return ["\(i.count)", "\(i.first?["name"] ?? "")", "\(ip.count)", "\(ip.first?["interface"] ?? "")",
                    "\(ip.first?["gateway"] ?? "")", "\((r.jsonObject?["routes"] as? [Any])?.count ?? -1)"]
        }
        XCTAssertEqual(shape(ro), shape(rr), "ours: \(ro.stdout)\nreference: \(rr.stdout)")
    }
}
