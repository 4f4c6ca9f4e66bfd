// host-local DEL, CHECK, GC and STATUS, run as a runtime runs them.

import Foundation
import XCTest
import TestSupport

final class HostLocalLifecycleTests: XCTestCase {
    func testDelTwiceSucceedsAndRemovesTheFiles() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.50.0.0/24"}], [{"subnet": "fd50::/64"}]]"#)
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        XCTAssertEqual(h.addressFiles(), ["10.50.0.2", "fd50::2"])
        for _ in 0..<2 {
            let del = h.run("DEL", conf)
            XCTAssertEqual(del.status, 0, "\(del)")
            XCTAssertEqual(del.stdout, "")
            XCTAssertEqual(h.addressFiles(), [])
        }
        // The cursors stay, so the next container continues the round robin.
        XCTAssertEqual(h.read("last_reserved_ip.0"), "10.50.0.2")
        XCTAssertEqual(h.run("ADD", conf, id: "ctr2").hostLocalAddresses, ["10.50.0.3/24", "fd50::3/64"])
    }

    func testDelWithoutAddSucceeds() {
        let h = HostLocalHarness(self)
        let del = h.run("DEL", h.config(#""subnet": "10.51.0.0/24""#), id: "never-added")
        XCTAssertEqual(del.status, 0, "\(del)")
        XCTAssertEqual(del.stdout, "")
    }

    func testDelWithAnInvalidConfigIsCode7AndKeepsTheAddress() {
        let h = HostLocalHarness(self)
        XCTAssertEqual(h.run("ADD", h.config(#""subnet": "10.51.0.0/24""#)).status, 0)
        let r = h.run("DEL", h.config(#""subnet": "10.51.0.9/24""#))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.cniCode, 7, "\(r)")
        XCTAssertEqual(h.addressFiles(), ["10.51.0.2"])
    }

    func testDelReleasesOnlyTheGivenInterface() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.52.0.0/24""#)
        XCTAssertEqual(h.run("ADD", conf, id: "c1", ifname: "eth0").status, 0)
        XCTAssertEqual(h.run("ADD", conf, id: "c1", ifname: "net1").status, 0)
        XCTAssertEqual(h.run("ADD", conf, id: "c2", ifname: "eth0").status, 0)
        XCTAssertEqual(h.run("DEL", conf, id: "c1", ifname: "eth0").status, 0)
        XCTAssertEqual(h.addressFiles(), ["10.52.0.3", "10.52.0.4"])
        XCTAssertEqual(h.read("10.52.0.3"), "c1\r\nnet1")
    }

    func testDelReleasesAFileOfAnOldPluginVersionByContainerID() throws {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.53.0.0/24""#)
        XCTAssertEqual(h.run("ADD", conf, id: "other").status, 0)  // creates the directory
        try "legacy-ctr".write(toFile: h.networkDir() + "/10.53.0.9", atomically: false, encoding: .utf8)
        XCTAssertEqual(h.run("CHECK", conf, id: "legacy-ctr").status, 0)
        XCTAssertEqual(h.run("DEL", conf, id: "legacy-ctr").status, 0)
        XCTAssertEqual(h.addressFiles(), ["10.53.0.2"])
    }

    func testCheckPassesAfterAddAndFailsAfterDel() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.54.0.0/24"}], [{"subnet": "fd54::/64"}]]"#)
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        let ok = h.run("CHECK", conf)
        XCTAssertEqual(ok.status, 0, "\(ok)")
        XCTAssertEqual(ok.stdout, "")
        XCTAssertEqual(h.run("DEL", conf).status, 0)
        let gone = h.run("CHECK", conf)
        XCTAssertEqual(gone.status, 1)
        XCTAssertEqual(gone.cniCode, 999, "\(gone)")
        XCTAssertTrue(gone.cniMessage.contains("ctr1") && gone.cniMessage.contains("eth0")
                      && gone.cniMessage.contains("10.54.0.1-10.54.0.254"), gone.cniMessage)
    }

    func testCheckFailsWhenOneRangeSetLostItsAddress() throws {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.55.0.0/24"}], [{"subnet": "fd55::/64"}]]"#)
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        try FileManager.default.removeItem(atPath: h.networkDir() + "/fd55::2")
        let r = h.run("CHECK", conf)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.cniMessage.contains("fd55::1-fd55::ffff:ffff:ffff:ffff"), "\(r)")
    }

    func testCheckNeedsVersion040() {
        let h = HostLocalHarness(self)
        let r = h.run("CHECK", h.config(#""subnet": "10.56.0.0/24""#, version: "0.3.1"))
        XCTAssertEqual(r.cniCode, 1, "\(r)")
    }

    // MARK: GC

    func testGCReleasesOnlyAttachmentsThatAreNotValid() {
        let h = HostLocalHarness(self)
        let ipam = #""ranges": [[{"subnet": "10.57.0.0/24"}], [{"subnet": "fd57::/64"}]]"#
        let conf = h.config(ipam, version: "1.1.0")
        for (id, ifname) in [("c1", "eth0"), ("c2", "eth0"), ("c2", "net1"), ("c3", "eth0")] {
            XCTAssertEqual(h.run("ADD", conf, id: id, ifname: ifname).status, 0)
        }
        XCTAssertEqual(h.addressFiles().count, 8)
        let gcConf = h.config(ipam, version: "1.1.0", extra: #"""
            "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]
            """#)
        let gc = h.run("GC", gcConf)
        XCTAssertEqual(gc.status, 0, "\(gc)")
        XCTAssertEqual(gc.stdout, "")
        // c1/eth0 got .2 and ::2, c2/net1 got .4 and ::4; c2/eth0 (.3) and c3/eth0 (.5) are gone.
        XCTAssertEqual(h.addressFiles(), ["10.57.0.2", "fd57::2", "10.57.0.4", "fd57::4"])
        XCTAssertEqual(h.read("10.57.0.4"), "c2\r\nnet1")
        XCTAssertEqual(h.run("CHECK", conf, id: "c1").status, 0)
        XCTAssertEqual(h.run("CHECK", conf, id: "c3").status, 1)
    }

    func testGCWithAnEmptyListReleasesEverythingAndWithoutAListNothing() {
        let h = HostLocalHarness(self)
        let ipam = #""subnet": "10.58.0.0/24""#
        let conf = h.config(ipam, version: "1.1.0")
        XCTAssertEqual(h.run("ADD", conf, id: "c1").status, 0)
        XCTAssertEqual(h.run("GC", conf).status, 0)
        XCTAssertEqual(h.addressFiles(), ["10.58.0.2"])
        XCTAssertEqual(h.run("GC", h.config(ipam, version: "1.1.0", extra: #""cni.dev/valid-attachments": []"#)).status, 0)
        XCTAssertEqual(h.addressFiles(), [])
    }

    func testGCNeedsVersion110() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.59.0.0/24""#, version: "1.0.0", extra: #""cni.dev/valid-attachments": []"#)
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        let r = h.run("GC", conf)
        XCTAssertEqual(r.cniCode, 1, "\(r)")
        XCTAssertEqual(h.addressFiles(), ["10.59.0.2"])
    }

    // MARK: STATUS

    func testStatusIsReadyWithRoomLeft() {
        let h = HostLocalHarness(self)
        let r = h.run("STATUS", h.config(#""subnet": "10.60.0.0/24""#, version: "1.1.0"))
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(r.stdout, "")
    }

    func testStatusIsCode50WhenARangeSetIsExhausted() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.61.0.0/24"}], [{"subnet": "fd61::/120", "rangeStart": "fd61::7", "rangeEnd": "fd61::7"}]]"#,
                            version: "1.1.0")
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        let r = h.run("STATUS", conf)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.cniCode, 50, "\(r)")
        XCTAssertTrue(r.cniMessage.contains("range set 1") && r.cniMessage.contains("fd61::7-fd61::7"), r.cniMessage)
        XCTAssertEqual(r.jsonObject?["details"] as? String, "range set 0: 1/253 in use; range set 1: 1/1 in use")
        // Releasing the address makes the plugin ready again.
        XCTAssertEqual(h.run("DEL", conf).status, 0)
        XCTAssertEqual(h.run("STATUS", conf).status, 0)
    }

    func testStatusIsCode50NamingAnUnusableDataDirectory() throws {
        let h = HostLocalHarness(self)
        let blocker = h.dataDir + "/not-a-directory"
        try "".write(toFile: blocker, atomically: false, encoding: .utf8)
        let conf = h.config(#""subnet": "10.62.0.0/24", "dataDir": "\#(blocker)/state""#, version: "1.1.0")
        let r = h.run("STATUS", conf)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.cniCode, 50, "\(r)")
        XCTAssertTrue(r.cniMessage.contains("mkdir " + blocker + ": ENOTDIR (Not a directory)"), r.cniMessage)
        // ADD on the same directory is an I/O failure that names it.
        let add = h.run("ADD", conf)
        XCTAssertEqual(add.cniCode, 5, "\(add)")
        XCTAssertTrue(add.cniMessage.contains(blocker), add.cniMessage)
    }

    func testStatusRejectsAnInvalidConfigAndOldVersions() {
        let h = HostLocalHarness(self)
        XCTAssertEqual(h.run("STATUS", h.config(#""subnet": "10.63.0.5/24""#, version: "1.1.0")).cniCode, 7)
        XCTAssertEqual(h.run("STATUS", h.config(#""subnet": "10.63.0.0/24""#, version: "1.0.0")).cniCode, 1)
    }
}
