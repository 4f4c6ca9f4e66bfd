// vxlan's CHECK (the segment as configured, and addresses no other host holds), STATUS,
// VERSION, and its answers to bad input: code 7 naming the field, nothing left behind.

import Foundation
import XCTest
import TestSupport

final class VxlanCheckTests: VxlanTestCase {
    func testCheckPassesAfterAddAndNamesWhatChanged() throws {
        let c1 = world.netns("c1")
        let conf = vx.config(host: 1)
        let r = vx.add(host: 1, c1, id: "chk")
        let withPrev = vx.config(conf, prevResult: r.stdout)
        let ok = vx.run("CHECK", host: 1, withPrev, ctr: c1, id: "chk")
        XCTAssertEqual(ok.status, 0, ok.description)
        assertError(vx.run("CHECK", host: 1, conf, ctr: c1, id: "chk"), code: 7, naming: "prevResult")

        let h = vx.host(1)
        // A peer's flood entry removed by hand.
        TestFailures.reporting((), file: #filePath, line: #line) {
            _ = try runChecked(["bridge", "-n", h, "fdb", "del", "00:00:00:00:00:00", "dev", vx.device, "dst", VxlanWorld.vtep(3)])
        }
        assertError(vx.run("CHECK", host: 1, withPrev, ctr: c1, id: "chk"), code: 999, naming: "peer VTEP \(VxlanWorld.vtep(3))")
        // The next ADD puts it back.
        vx.add(host: 1, world.netns("c2"), id: "chk2")
        XCTAssertEqual(vx.run("CHECK", host: 1, withPrev, ctr: c1, id: "chk").status, 0)
        // The device down, then gone.
        TestFailures.reporting((), file: #filePath, line: #line) { _ = try runChecked(["ip", "-n", h, "link", "set", vx.device, "down"]) }
        assertError(vx.run("CHECK", host: 1, withPrev, ctr: c1, id: "chk"), code: 999, naming: "\(vx.device) is down")
        TestFailures.reporting((), file: #filePath, line: #line) { _ = try runChecked(["ip", "-n", h, "link", "del", vx.device]) }
        assertError(vx.run("CHECK", host: 1, withPrev, ctr: c1, id: "chk"), code: 999, naming: "\(vx.device) not found")
    }

    func testCheckFindsAnAddressAnotherHostAllocatedToo() throws {
        // Hosts 1 and 2 configured with overlapping ranges: both hand out 10.60.0.10.
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let conf1 = vx.config(host: 1)
        let r1 = vx.add(host: 1, c1, id: "first")
        let check = vx.config(conf1, prevResult: r1.stdout)
        XCTAssertEqual(vx.run("CHECK", host: 1, check, ctr: c1, id: "first").status, 0, "alone, no duplicate")

        let r2 = vx.add(host: 2, c2, id: "second", config: vx.config(host: 2, range: VxlanWorld.range(1)))
        XCTAssertEqual(VxlanWorld.address(r2), "10.60.0.10")
        let dup = vx.run("CHECK", host: 1, check, ctr: c1, id: "first")
        assertError(dup, code: 999, naming: "10.60.0.10 is also used by \(vx.mac(c2) ?? "?")")
        XCTAssertTrue(dup.cniMessage.contains("rangeStart"), dup.stdout)
        // The other side sees it too.
        let dup2 = vx.run("CHECK", host: 2, vx.config(vx.config(host: 2, range: VxlanWorld.range(1)), prevResult: r2.stdout),
                          ctr: c2, id: "second")
        assertError(dup2, code: 999, naming: "10.60.0.10 is also used by \(vx.mac(c1) ?? "?")")
    }

    func testStatusAndVersion() throws {
        let ok = vx.run("STATUS", host: 1, vx.config(host: 1, version: "1.1.0"), ctr: nil, id: "")
        XCTAssertEqual(ok.status, 0, ok.description)
        let noUnderlay = vx.run("STATUS", host: 1, vx.config(host: 1, ["underlayInterface": "nosuch0"], version: "1.1.0"), ctr: nil, id: "")
        assertError(noUnderlay, code: 50, naming: "underlayInterface: interface \"nosuch0\" not found")
        let notLocal = vx.run("STATUS", host: 1, vx.config(host: 1, ["local": "198.18.0.99"], version: "1.1.0"), ctr: nil, id: "")
        assertError(notLocal, code: 50, naming: "local: 198.18.0.99 is not an address of this host")
        let overlayd = vx.run("STATUS", host: 1, vx.config(vx.config(host: 1, ["peers": "overlayd"], version: "1.1.0"), without: ["remotes"]),
                              ctr: nil, id: "")
        assertError(overlayd, code: 50, naming: "overlayd")
        let version = vx.run("VERSION", host: 1, "{\"cniVersion\":\"1.1.0\"}", ctr: nil, id: "")
        XCTAssertEqual(version.status, 0, version.description)
        XCTAssertEqual(version.jsonObject?["supportedVersions"] as? [String], ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    }

    func testInvalidConfigurationsAreRefusedByField() throws {
        let c1 = world.netns("c1")
        let cases: [([String: Any], String)] = [
            (["vni": 16_777_216], "vni"), (["vni": -1], "vni"), (["port": 0], "port"), (["port": 70000], "port"),
            (["remotes": ["nonsense"]], "remotes[0]"), (["remotes": ["198.18.0.12", "239.1.1.1"]], "remotes[1]"),
            (["remotes": ["fd00::1"]], "remotes[0]"), (["local": "198.18.0.99"], "local"), (["local": "x"], "local"),
            (["underlayInterface": "nosuch0"], "underlayInterface"), (["underlayInterface": "bad/name"], "underlayInterface"),
            (["mtu": 1451], "mtu"), (["mtu": 40], "mtu"), (["vlan": 5], "vlan"), (["vlanTrunk": [["id": 5]]], "vlanTrunk"),
            (["peers": "dynamic"], "peers"), (["peers": "overlayd"], "remotes"), (["dataDir": "relative/dir"], "dataDir"),
            (["bridge": "name-longer-than-15"], "bridge"), (["ipMasqBackend": "iptables"], "ipMasqBackend"),
            (["runtimeConfig": ["mac": "01:00:5e:00:00:01"]], "runtimeConfig.mac"),
        ]
        for (options, field) in cases {
            let r = vx.run("ADD", host: 1, vx.config(host: 1, options), ctr: c1, id: "bad")
            assertError(r, code: 7, naming: field)
        }
        assertError(vx.run("ADD", host: 1, vx.config(vx.config(host: 1), without: ["vni"]), ctr: c1, id: "bad"), code: 7, naming: "vni")
        let overlayd = vx.run("ADD", host: 1, vx.config(vx.config(host: 1, ["peers": "overlayd"]), without: ["remotes"]), ctr: c1, id: "bad")
        assertError(overlayd, code: 7, naming: "peers: \"overlayd\" is not available")
        // Nothing was made: no interface in the container, no segment, no lease.
        XCTAssertEqual(vx.linkNames(c1), ["lo"])
        XCTAssertFalse(vx.linkNames(vx.host(1)).contains(vx.bridge))
        XCTAssertEqual(vx.leases(host: 1), [])
    }

    func testAFailedAddUndoesTheSegmentItMade() throws {
        let c1 = world.netns("c1")
        // The IPAM plugin is missing from CNI_PATH: the bridge, the device and the veth go again.
        let r = vx.run("ADD", host: 1, vx.config(host: 1, ["ipam": ["type": "nosuch-ipam"]]), ctr: c1, id: "undo")
        XCTAssertNotEqual(r.status, 0, r.description)
        XCTAssertTrue(r.cniMessage.contains("nosuch-ipam"), r.stdout)
        XCTAssertEqual(vx.linkNames(c1), ["lo"])
        XCTAssertFalse(vx.linkNames(vx.host(1)).contains(vx.bridge), "\(vx.linkNames(vx.host(1)))")
        XCTAssertFalse(vx.linkNames(vx.host(1)).contains(vx.device), "\(vx.linkNames(vx.host(1)))")
        // A container already on the segment keeps it through another container's failed ADD.
        vx.add(host: 1, c1, id: "stays")
        let c2 = world.netns("c2")
        XCTAssertNotEqual(vx.run("ADD", host: 1, vx.config(host: 1, ["ipam": ["type": "nosuch-ipam"]]), ctr: c2, id: "undo2").status, 0)
        XCTAssertEqual(vx.ports(vx.host(1), of: vx.bridge).count, 2)
        XCTAssertEqual(vx.linkNames(c2), ["lo"])
    }
}
