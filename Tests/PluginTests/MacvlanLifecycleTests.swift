// macvlan's CHECK, DEL, STATUS and GC, its error answers, and a failed ADD that undoes
// everything: the built executable in a host netns, the kernel and the leases read back.

import Foundation
import XCTest
import TestSupport

final class MacvlanLifecycleTests: SegmentTestCase {
    override class var plugin: String { "macvlan" }

    func testCheckPassesAfterAddAndNamesWhatChanged() throws {
        let conf = seg.config(["mode": "bridge"], version: "0.4.0")
        let c1 = world.netns("c1")
        let r = seg.run("ADD", conf, ctr: c1, id: "chk")
        XCTAssertEqual(r.status, 0, r.description)
        let withPrev = seg.config(conf, prevResult: r.stdout)
        let ok = seg.run("CHECK", withPrev, ctr: c1, id: "chk")
        XCTAssertEqual(ok.status, 0, ok.description)

        // Without prevResult: code 7.
        assertError(seg.run("CHECK", conf, ctr: c1, id: "chk"), code: 7, naming: "prevResult")
        // Another mode configured than the link has.
        let other = seg.run("CHECK", seg.config(seg.config(["mode": "vepa"], version: "0.4.0"), prevResult: r.stdout), ctr: c1, id: "chk")
        assertError(other, code: 999, naming: "mode bridge, expected vepa")
        // Another master configured than the link's parent.
        let dummyish = world.shortName("nlx")
        seg.must(["ip", "-n", seg.host, "link", "add", dummyish, "type", "veth", "peer", "name", world.shortName("nly")])
        let wrong = seg.run("CHECK", seg.config(seg.config(["master": dummyish], version: "0.4.0"), prevResult: r.stdout), ctr: c1, id: "chk")
        assertError(wrong, code: 999, naming: "expected master \(dummyish)")
        // The address removed by hand.
        seg.must(["ip", "-n", c1, "addr", "del", "10.80.0.10/24", "dev", "eth0"])
        assertError(seg.run("CHECK", withPrev, ctr: c1, id: "chk"), code: 999, naming: "address 10.80.0.10/24 missing")
        // The interface gone.
        seg.must(["ip", "-n", c1, "link", "del", "eth0"])
        assertError(seg.run("CHECK", withPrev, ctr: c1, id: "chk"), code: 999, naming: "eth0 not found")
    }

    func testDelTwiceWithoutNetnsAndAfterTheNetnsIsGone() throws {
        let conf = seg.config()
        let c1 = world.netns("c1"), c2 = world.netns("c2"), c3 = world.netns("c3")
        for (ctr, id) in [(c1, "d1"), (c2, "d2"), (c3, "d3")] {
            let r = seg.run("ADD", conf, ctr: ctr, id: id)
            XCTAssertEqual(r.status, 0, r.description)
        }
        XCTAssertEqual(seg.leases(), ["10.80.0.10", "10.80.0.11", "10.80.0.12"])

        // DEL, then DEL again.
        XCTAssertEqual(seg.run("DEL", conf, ctr: c1, id: "d1").status, 0)
        XCTAssertEqual(seg.linkNames(c1), ["lo"])
        let again = seg.run("DEL", conf, ctr: c1, id: "d1")
        XCTAssertEqual(again.status, 0, again.description)
        XCTAssertEqual(seg.leases(), ["10.80.0.11", "10.80.0.12"])

        // The netns removed first: the link died with it; DEL still releases the lease.
        seg.must(["ip", "netns", "del", c2])
        let gone = seg.run("DEL", conf, ctr: c2, id: "d2")
        XCTAssertEqual(gone.status, 0, gone.description)
        XCTAssertEqual(seg.leases(), ["10.80.0.12"])

        // DEL without CNI_NETNS releases the lease; the link goes when its netns does.
        let noNetns = seg.run("DEL", conf, ctr: nil, id: "d3")
        XCTAssertEqual(noNetns.status, 0, noNetns.description)
        XCTAssertEqual(seg.leases(), [])

        // DEL of something never added, with a config ADD would refuse.
        let never = seg.run("DEL", seg.config(["mode": "nonsense", "master": "nosuch0"]), ctr: c1, id: "never")
        XCTAssertEqual(never.status, 0, never.description)
    }

    func testInvalidConfigurationsAreRefusedByField() throws {
        let c1 = world.netns("c1")
        let cases: [([String: Any], String)] = [
            (["mode": "l2"], "mode"), (["mode": "source"], "mode"), (["master": "nosuch0"], "master"),
            (["master": "bad/name"], "master"), (["mtu": 9000], "mtu"), (["mtu": 40], "mtu"), (["mtu": -1], "mtu"),
            (["mac": "01:00:5e:00:00:01"], "mac"), (["mac": "nonsense"], "mac"), (["bcqueuelen": -5], "bcqueuelen"),
            (["runtimeConfig": ["mac": "00:00:00:00:00:00"]], "runtimeConfig.mac"),
        ]
        for (options, field) in cases {
            let r = seg.run("ADD", seg.config(options), ctr: c1, id: "bad")
            assertError(r, code: 7, naming: field)
            assertNothingLeft(in: c1)
        }
        // A host netns without a default route and no master: nothing to take it from.
        seg.must(["ip", "-n", seg.host, "route", "del", "default"])
        let noDefault = seg.run("ADD", seg.config(seg.config(), without: ["master"]), ctr: c1, id: "nodef")
        assertError(noDefault, code: 7, naming: "master")
        XCTAssertTrue(noDefault.cniMessage.contains("no default route"), noDefault.stdout)
        // CNI_ARGS with a bad MAC is the runtime's mistake, named as such.
        assertError(seg.run("ADD", seg.config(), ctr: c1, id: "badarg", args: "MAC=zz"), code: 7, naming: "CNI_ARGS MAC")
        assertNothingLeft(in: c1)
    }

    func testAFailedAddUndoesTheLinkAndTheLease() throws {
        let c1 = world.netns("c1")
        // A route through a gateway no link reaches: the last step of ADD fails.
        let ipam: [String: Any] = ["type": "host-local", "dataDir": seg.dataDir,
                                   "ranges": [[["subnet": "10.80.0.0/24", "rangeStart": "10.80.0.10"]]],
                                   "routes": [["dst": "192.0.2.0/24", "gw": "198.51.100.1"]]]
        let r = seg.run("ADD", seg.config(ipam: ipam), ctr: c1, id: "undo")
        assertError(r, code: 999, naming: "add route 192.0.2.0/24 via 198.51.100.1")
        assertNothingLeft(in: c1)

        // The container already has the interface name: refused, and its own interface untouched.
        seg.must(["ip", "-n", c1, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"])
        let taken = seg.run("ADD", seg.config(), ctr: c1, id: "taken")
        assertError(taken, code: 999, naming: "eth0\" already exists")
        XCTAssertEqual(seg.linkInfo(c1).kind, "veth")
        XCTAssertEqual(seg.leases(), [])

        // A netns that does not exist: code 3, nothing allocated.
        let missing = seg.run("ADD", seg.config(), ctr: "/run/netns/\(TestWorld.namePrefix)-nosuch-\(world.tag)", id: "nons")
        XCTAssertEqual(missing.cniCode, 3, missing.stdout)
        XCTAssertEqual(seg.leases(), [])
    }

    func testStatus() {
        let ok = seg.run("STATUS", seg.config(version: "1.1.0"), ctr: nil, id: "")
        XCTAssertEqual(ok.status, 0, ok.description)
        let noMaster = seg.run("STATUS", seg.config(["master": "nosuch0"], version: "1.1.0"), ctr: nil, id: "")
        assertError(noMaster, code: 50, naming: "master nosuch0")
        let noIPAM = seg.run("STATUS", seg.config(version: "1.1.0"), ctr: nil, id: "", cniPath: world.tempDirectory("nocni"))
        assertError(noIPAM, code: 50, naming: "host-local")
        // A 1.1.0 ADD reports the interface's MTU.
        let c1 = world.netns("c1")
        let r = seg.run("ADD", seg.config(["mtu": 1450], version: "1.1.0"), ctr: c1, id: "mtu11")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(SegmentWorld.interfaces(r).first?["mtu"] as? Int, 1450, r.stdout)
    }

    func testGCReleasesTheLeasesOfInvalidAttachments() throws {
        let conf = seg.config(version: "1.1.0")
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        XCTAssertEqual(seg.run("ADD", conf, ctr: c1, id: "keep").status, 0)
        XCTAssertEqual(seg.run("ADD", conf, ctr: c2, id: "stale").status, 0)
        var c = try JSONSerialization.jsonObject(with: conf.data(using: .utf8)!) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
        let gc = seg.run("GC", BridgeWorld.json(c), ctr: nil, id: "")
        XCTAssertEqual(gc.status, 0, gc.description)
        XCTAssertEqual(seg.leases(), ["10.80.0.10"])
    }
}
