// The built `ipvlan` executable, run inside a host netns as a runtime runs it. What needs no
// ipvlan in the kernel (the refusals, DEL's lease release, STATUS, GC) runs everywhere; the
// rest needs CONFIG_IPVLAN and is skipped, saying so, on a kernel without it — where ADD's
// clear refusal is checked instead.

import Foundation
import XCTest
import TestSupport

final class IpvlanTests: SegmentTestCase {
    override class var plugin: String { "ipvlan" }

    /// Whether the kernel creates ipvlan links (tried on the test's own parent), and its answer.
    func kernelHasIpvlan() -> (Bool, String) {
        let probe = world.shortName("nlprobe")
        let r = runCommand(["ip", "-n", seg.host, "link", "add", probe, "link", seg.parent, "type", "ipvlan", "mode", "l2"])
        if r.ok { seg.must(["ip", "-n", seg.host, "link", "del", probe]) }
        return (r.ok, r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func requireIpvlan() throws {
        let (has, answer) = kernelHasIpvlan()
        if !has { throw XCTSkip("kernel without ipvlan (\(answer)); testWithoutKernelSupport checks the refusal") }
    }

    // MARK: with ipvlan in the kernel

    func testTwoContainersInL2ModeReachEachOtherAndTheSegment() throws {
        try requireIpvlan()
        let conf = seg.config(["mode": "l2"])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = seg.run("ADD", conf, ctr: c1, id: "iv-one"), r2 = seg.run("ADD", conf, ctr: c2, id: "iv-two")
        XCTAssertEqual(r1.status, 0, r1.description)
        XCTAssertEqual(r2.status, 0, r2.description)
        let ifaces = SegmentWorld.interfaces(r1)
        XCTAssertEqual(ifaces.count, 1, r1.stdout)
        XCTAssertEqual(ifaces.first?["sandbox"] as? String, world.path(c1))
        XCTAssertEqual(SegmentWorld.ips(r1).first?["interface"] as? Int, 0)
        XCTAssertEqual(seg.linkInfo(c1).kind, "ipvlan")
        XCTAssertEqual(seg.linkInfo(c1).data["mode"] as? String, "l2")
        XCTAssertEqual(seg.link(c1)["link_index"] as? Int, seg.index(seg.host, seg.parent))
        XCTAssertEqual(seg.link(c1)["address"] as? String, seg.link(seg.host, seg.parent)["address"] as? String,
                       "an ipvlan has its master's MAC")
        XCTAssertEqual(seg.addresses(c1), ["10.80.0.10/24"])
        let a1 = try XCTUnwrap(SegmentWorld.address(r1)), a2 = try XCTUnwrap(SegmentWorld.address(r2))
        XCTAssertEqual(seg.ping(from: c1, a2).status, 0, "c1 -> c2")
        XCTAssertEqual(seg.ping(from: c2, a1).status, 0, "c2 -> c1")
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0, "c1 -> the segment")
        XCTAssertEqual(seg.ping(from: seg.outside, a2).status, 0, "the segment -> c2")
    }

    func testEveryModeIsAcceptedAndReflected() throws {
        try requireIpvlan()
        for (mode, expected) in [("l2", "l2"), ("l3", "l3"), ("l3s", "l3s"), ("", "l2")] {
            addInMode(mode, expecting: expected)
        }
        XCTAssertEqual(seg.leases().count, 4)
    }

    func testCheckNamesWhatChanged() throws {
        try requireIpvlan()
        let conf = seg.config(["mode": "l2"])
        let c1 = world.netns("c1")
        let r = seg.run("ADD", conf, ctr: c1, id: "chk")
        XCTAssertEqual(r.status, 0, r.description)
        let withPrev = seg.config(conf, prevResult: r.stdout)
        XCTAssertEqual(seg.run("CHECK", withPrev, ctr: c1, id: "chk").status, 0)
        let other = seg.run("CHECK", seg.config(seg.config(["mode": "l3"]), prevResult: r.stdout), ctr: c1, id: "chk")
        assertError(other, code: 999, naming: "mode l2, expected l3")
        seg.must(["ip", "-n", c1, "addr", "del", "10.80.0.10/24", "dev", "eth0"])
        assertError(seg.run("CHECK", withPrev, ctr: c1, id: "chk"), code: 999, naming: "address 10.80.0.10/24 missing")
    }

    func testChainedAfterAPluginWithAddresses() throws {
        try requireIpvlan()
        let c1 = world.netns("c1")
        let prev = BridgeWorld.json(["cniVersion": "1.0.0", "interfaces": [["name": seg.parent]],
                                     "ips": [["address": "10.80.0.50/24", "gateway": "10.80.0.1"]],
                                     "routes": [["dst": "0.0.0.0/0"]]])
        let conf = seg.config(seg.config(seg.config(), without: ["master", "ipam"]), prevResult: prev)
        let r = seg.run("ADD", conf, ctr: c1, id: "chained")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(seg.link(c1)["link_index"] as? Int, seg.index(seg.host, seg.parent), "master from prevResult")
        XCTAssertEqual(seg.addresses(c1), ["10.80.0.50/24"])
        XCTAssertEqual(SegmentWorld.interfaces(r).map { $0["name"] as? String }, ["eth0"])
        XCTAssertEqual(seg.ping(from: c1, SegmentWorld.outsideV4).status, 0)
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "chained").status, 0)
        XCTAssertEqual(seg.linkNames(c1), ["lo"])
    }

    func testDelTwiceAndAfterTheNetnsIsGone() throws {
        try requireIpvlan()
        let conf = seg.config()
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        XCTAssertEqual(seg.run("ADD", conf, ctr: c1, id: "d1").status, 0)
        XCTAssertEqual(seg.run("ADD", conf, ctr: c2, id: "d2").status, 0)
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "d1").status, 0)
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "d1").status, 0)
        XCTAssertEqual(seg.linkNames(c1), ["lo"])
        seg.must(["ip", "netns", "del", c2])
        XCTAssertEqual(seg.run("DEL", conf, ctr: c2, id: "d2").status, 0)
        XCTAssertEqual(seg.leases(), [])
    }

    // MARK: everywhere

    func testWithoutKernelSupportAddFailsClearlyAndLeavesNothing() throws {
        let (has, _) = kernelHasIpvlan()
        if has { throw XCTSkip("the kernel has ipvlan; the other tests use it") }
        let c1 = world.netns("c1")
        let r = seg.run("ADD", seg.config(), ctr: c1, id: "nokernel")
        assertError(r, code: 999, naming: "the kernel has no ipvlan support")
        assertNothingLeft(in: c1)
        XCTAssertEqual(seg.run("DEL", seg.config(), ctr: c1, id: "nokernel").status, 0)
    }

    func testInvalidConfigurationsAreRefusedByField() throws {
        let c1 = world.netns("c1")
        let cases: [([String: Any], String)] = [
            (["mode": "bridge"], "mode"), (["mac": "02:00:00:00:00:01"], "mac"),
            (["runtimeConfig": ["mac": "02:00:00:00:00:01"]], "runtimeConfig.mac"), (["master": "nosuch0"], "master"),
            (["mtu": 9000], "mtu"), (["mtu": 20], "mtu"), (["linkInContainer": true], "master"),
        ]
        for (options, field) in cases {
            assertError(seg.run("ADD", seg.config(options), ctr: c1, id: "bad"), code: 7, naming: field)
            assertNothingLeft(in: c1)
        }
        // Addresses from nowhere: no IPAM and no prevResult with IPs.
        let noIPAM = seg.config(seg.config(), without: ["ipam"])
        assertError(seg.run("ADD", noIPAM, ctr: c1, id: "noaddr"), code: 7, naming: "ipam")
        // Chained without master: prevResult must name exactly one interface.
        let two = BridgeWorld.json(["cniVersion": "1.0.0", "interfaces": [["name": "a0"], ["name": "b0"]],
                                    "ips": [["address": "10.80.0.50/24"]]])
        let chained = seg.config(seg.config(noIPAM, without: ["master"]), prevResult: two)
        assertError(seg.run("ADD", chained, ctr: c1, id: "two"), code: 7, naming: "master")
        assertNothingLeft(in: c1)
    }

    func testDelReleasesTheLeaseWithoutNetnsOrLink() throws {
        // A lease held for the attachment (made by host-local itself, as ipvlan's ADD would).
        let c1 = world.netns("c1")
        let lease = world.runPlugin("host-local", command: "ADD", config: seg.config(), containerID: "held",
                                    netns: world.path(c1), hostNetns: seg.host)
        XCTAssertEqual(lease.status, 0, lease.description)
        XCTAssertEqual(seg.leases(), ["10.80.0.10"])
        seg.must(["ip", "netns", "del", c1])
        let del = seg.run("DEL", seg.config(), ctr: c1, id: "held")
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(seg.leases(), [])
        XCTAssertEqual(seg.run("DEL", seg.config(), ctr: nil, id: "held").status, 0, "and again, without CNI_NETNS")
    }

    func testStatusAndGC() throws {
        XCTAssertEqual(seg.run("STATUS", seg.config(version: "1.1.0"), ctr: nil, id: "").status, 0)
        assertError(seg.run("STATUS", seg.config(["master": "nosuch0"], version: "1.1.0"), ctr: nil, id: ""),
                    code: 50, naming: "master nosuch0")
        let c1 = world.netns("c1")
        for id in ["keep", "stale"] {
            let r = world.runPlugin("host-local", command: "ADD", config: seg.config(version: "1.1.0"), containerID: id,
                                    netns: world.path(c1), hostNetns: seg.host)
            XCTAssertEqual(r.status, 0, r.description)
        }
        var c = try JSONSerialization.jsonObject(with: seg.config(version: "1.1.0").data(using: .utf8)!) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
        let gc = seg.run("GC", BridgeWorld.json(c), ctr: nil, id: "")
        XCTAssertEqual(gc.status, 0, gc.description)
        XCTAssertEqual(seg.leases(), ["10.80.0.10"])
    }
}
