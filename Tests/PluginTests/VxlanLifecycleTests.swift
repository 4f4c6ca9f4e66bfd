// The vxlan segment's life on a host: made once by concurrent first ADDs, kept while a
// container is on it, removed by the last DEL (also after the container's netns is gone) and
// by GC; DEL twice; the flood list following `remotes`.

import Foundation
import XCTest
import TestSupport

final class VxlanLifecycleTests: VxlanTestCase {
    /// True when host `i` has neither the network's bridge nor its VXLAN device.
    private func segmentGone(_ i: Int, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let names = vx.linkNames(vx.host(i), file: file, line: line)
        return !names.contains(vx.bridge) && !names.contains(vx.device)
    }

    /// The host veths on host `i` whose alias names container `id`.
    private func vethsOwned(by id: String, on i: Int, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        vx.ipJSON(vx.host(i), ["link", "show", "type", "veth"], file: file, line: line)
            .filter { $0["ifalias"] as? String == "\(vx.network) \(id) eth0" }.compactMap { $0["ifname"] as? String }
    }

    func testTheLastDelRemovesTheBridgeAndTheDevice() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        vx.add(host: 1, c1, id: "one")
        vx.add(host: 1, c2, id: "two")
        XCTAssertEqual(vx.ports(vx.host(1), of: vx.bridge).count, 3)

        let del1 = vx.run("DEL", host: 1, vx.config(host: 1), ctr: c1, id: "one")
        XCTAssertEqual(del1.status, 0, del1.description)
        XCTAssertEqual(vx.ports(vx.host(1), of: vx.bridge).count, 2, "another container is still on the bridge")
        XCTAssertEqual(vx.linkNames(c1), ["lo"])

        let del2 = vx.run("DEL", host: 1, vx.config(host: 1), ctr: c2, id: "two")
        XCTAssertEqual(del2.status, 0, del2.description)
        XCTAssertTrue(segmentGone(1), "the last DEL removes bridge and VXLAN device: \(vx.linkNames(vx.host(1)))")
        XCTAssertEqual(vx.leases(host: 1), [])

        // DEL again, and DEL of something never added (with a config ADD would refuse).
        let again = vx.run("DEL", host: 1, vx.config(host: 1), ctr: c2, id: "two")
        XCTAssertEqual(again.status, 0, again.description)
        let never = vx.run("DEL", host: 1, vx.config(vx.config(host: 1, ["port": 0]), without: ["vni"]), ctr: c1, id: "never")
        XCTAssertEqual(never.status, 0, never.description)
        XCTAssertTrue(segmentGone(1))

        // The next ADD makes the segment again.
        vx.add(host: 1, c1, id: "three")
        XCTAssertEqual(vx.floodList(vx.host(1), vx.device), [VxlanWorld.vtep(2), VxlanWorld.vtep(3)])
    }

    func testDelAfterTheNetnsIsGoneAndWithoutNetns() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        vx.add(host: 2, c1, id: "gone")
        vx.add(host: 2, c2, id: "nonetns")
        XCTAssertEqual(vx.leases(host: 2), ["10.60.0.20", "10.60.0.21"])

        TestFailures.reporting((), file: #filePath, line: #line) { _ = try runChecked(["ip", "netns", "del", c1]) }
        let gone = vx.run("DEL", host: 2, vx.config(host: 2), ctr: c1, id: "gone")
        XCTAssertEqual(gone.status, 0, gone.description)
        XCTAssertEqual(vx.leases(host: 2), ["10.60.0.21"])
        XCTAssertEqual(vethsOwned(by: "gone", on: 2), [], "the gone container's host veth is not left behind")
        XCTAssertEqual(vethsOwned(by: "nonetns", on: 2).count, 1)

        // Without CNI_NETNS: the lease goes, and the host veth found by its alias with it.
        let noNetns = vx.run("DEL", host: 2, vx.config(host: 2), ctr: nil, id: "nonetns")
        XCTAssertEqual(noNetns.status, 0, noNetns.description)
        XCTAssertEqual(vx.leases(host: 2), [])
        XCTAssertTrue(segmentGone(2), "\(vx.linkNames(vx.host(2)))")
        XCTAssertEqual(vx.linkNames(c2), ["lo"], "deleting the host end took the container's end")
    }

    /// Runs `command` for every container on host 1 at once; fails the test for each that fails.
    private func simultaneously(_ command: String, _ conf: String, _ ctrs: [String]) {
        nonisolated(unsafe) var results = [CommandResult?](repeating: nil, count: ctrs.count)
        nonisolated(unsafe) let v = vx!
        let group = DispatchGroup()
        for (i, ctr) in ctrs.enumerated() {
            group.enter()
            Thread {
                results[i] = v.run(command, host: 1, conf, ctr: ctr, id: "burst\(i)")
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        for (i, r) in results.enumerated() { XCTAssertEqual(r?.status, 0, "\(command) \(i): \(r?.description ?? "none")") }
    }

    func testConcurrentFirstAddsMakeTheSegmentOnce() throws {
        let n = 8
        let ctrs = (0..<n).map { world.netns("p\($0)") }
        let conf = vx.config(host: 1)
        simultaneously("ADD", conf, ctrs)
        let h = vx.host(1)
        XCTAssertEqual(vx.ipJSON(h, ["link", "show", "type", "bridge"]).count, 1)
        XCTAssertEqual(vx.ipJSON(h, ["link", "show", "type", "vxlan"]).count, 1)
        XCTAssertEqual(vx.ports(h, of: vx.bridge).count, n + 1)
        XCTAssertEqual(vx.floodList(h, vx.device), [VxlanWorld.vtep(2), VxlanWorld.vtep(3)], "each peer once")

        simultaneously("DEL", conf, ctrs)
        XCTAssertTrue(segmentGone(1), "\(vx.linkNames(h))")
        XCTAssertEqual(vx.leases(host: 1), [])
    }

    func testGCRemovesStaleAttachmentsAndTheUnusedSegment() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        vx.add(host: 3, c1, id: "keep")
        vx.add(host: 3, c2, id: "stale")
        func gc(_ valid: [[String: String]]) -> CommandResult {
            let c = VxlanWorld.edited(vx.config(host: 3, version: "1.1.0")) { $0["cni.dev/valid-attachments"] = valid }
            return vx.run("GC", host: 3, c, ctr: nil, id: "")
        }
        let first = gc([["containerID": "keep", "ifname": "eth0"]])
        XCTAssertEqual(first.status, 0, first.description)
        XCTAssertEqual(vx.leases(host: 3), ["10.60.0.30"])
        XCTAssertEqual(vx.linkNames(c2), ["lo"], "the stale attachment's veth is gone")
        XCTAssertEqual(vx.linkNames(c1), ["lo", "eth0"], "the valid one is untouched")
        XCTAssertEqual(vx.ports(vx.host(3), of: vx.bridge).count, 2)

        // The valid container's netns goes without a DEL: GC with no valid attachment clears the host.
        TestFailures.reporting((), file: #filePath, line: #line) { _ = try runChecked(["ip", "netns", "del", c1]) }
        let second = gc([])
        XCTAssertEqual(second.status, 0, second.description)
        XCTAssertEqual(vx.leases(host: 3), [])
        XCTAssertTrue(segmentGone(3), "\(vx.linkNames(vx.host(3)))")
    }

    func testTheFloodListFollowsRemotes() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        vx.add(host: 1, c1, id: "a")
        XCTAssertEqual(vx.floodList(vx.host(1), vx.device), [VxlanWorld.vtep(2), VxlanWorld.vtep(3)])
        // Host 3 leaves, a new host 198.18.0.99 joins: the next ADD brings the list in line.
        vx.add(host: 1, c2, id: "b", config: vx.config(host: 1, ["remotes": [VxlanWorld.vtep(2), "198.18.0.99"]]))
        XCTAssertEqual(vx.floodList(vx.host(1), vx.device), [VxlanWorld.vtep(2), "198.18.0.99"])
    }

    func testADeviceWithOtherSettingsIsReplacedOnlyWhileUnused() throws {
        let h = vx.host(1)
        // A leftover device of that name with another port, on no bridge: replaced at ADD.
        TestFailures.reporting((), file: #filePath, line: #line) {
            _ = try runChecked(["ip", "-n", h, "link", "add", vx.device, "type", "vxlan", "id", "\(vx.vni)", "dstport", "8472", "dev", "eth0"])
        }
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        vx.add(host: 1, c1, id: "a")
        let data = (vx.link(h, vx.device)?["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(data?["port"] as? Int, 4789)
        // With a container on it, another port is refused and nothing changes.
        let r = vx.run("ADD", host: 1, vx.config(host: 1, ["port": 4790]), ctr: c2, id: "b")
        assertError(r, code: 999, naming: "port 4789 (configured 4790)")
        XCTAssertEqual(vx.linkNames(c2), ["lo"])
        XCTAssertEqual(vx.ports(h, of: vx.bridge).count, 2)
        XCTAssertEqual(vx.ping(from: c1, "10.60.0.10").status, 0)
    }
}
