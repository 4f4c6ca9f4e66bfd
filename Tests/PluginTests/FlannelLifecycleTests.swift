import Foundation
import XCTest
import TestSupport

/// The built `flannel` executable's DEL, CHECK, STATUS and GC, and what happens when its
/// delegate fails or something is planted in its data directory.
final class FlannelLifecycleTests: FlannelTestCase {
    private func withoutMasqByDaemon() {
        fw.writeSubnetEnv(FlannelWorld.ipv4Env.replacingOccurrences(of: "FLANNEL_IPMASQ=true", with: "FLANNEL_IPMASQ=false"))
    }

    func testDelAfterSubnetEnvIsGoneRemovesEverything() throws {
        withoutMasqByDaemon()
        // DEL of a container never added: nothing to undo, and nothing is made.
        let none = fw.run("DEL", fw.config(), ctr: nil, id: "fl-never")
        XCTAssertEqual(none.status, 0, none.description)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fw.dataDir))

        let c1 = world.netns("c1")
        let r = fw.run("ADD", fw.config(), ctr: c1, id: "fl-del")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(fw.bw.hostVeths().count, 1)
        XCTAssertEqual(fw.bw.leases().count, 1)
        XCTAssertEqual(fw.bw.masqElements().count, 1)

        // The daemon is gone, and its file with it: DEL works from the saved copy.
        fw.removeSubnetEnv()
        let d = fw.run("DEL", fw.config(), ctr: c1, id: "fl-del")
        XCTAssertEqual(d.status, 0, d.description)
        XCTAssertEqual(fw.bw.hostVeths(), [])
        XCTAssertNil(world.links(c1)["eth0"])
        XCTAssertEqual(fw.bw.leases(), [])
        XCTAssertEqual(fw.bw.masqElements().map(\.comment), [])
        XCTAssertEqual(fw.savedNames(), [])
        // A second DEL: nothing left to undo.
        let again = fw.run("DEL", fw.config(), ctr: c1, id: "fl-del")
        XCTAssertEqual(again.status, 0, again.description)
    }

    func testDelAfterTheNetnsIsGoneReleasesTheAddress() throws {
        let c1 = world.netns("c1")
        let r = fw.run("ADD", fw.config(), ctr: c1, id: "fl-gone")
        XCTAssertEqual(r.status, 0, r.description)
        try runChecked(["ip", "netns", "del", c1])
        let d = fw.run("DEL", fw.config(), ctr: c1, id: "fl-gone")
        XCTAssertEqual(d.status, 0, d.description)
        // (The host veth goes with the netns, when the kernel's cleanup of it gets there.)
        XCTAssertEqual(fw.bw.leases(), [])
        XCTAssertEqual(fw.savedNames(), [])
    }

    func testCheckDelegatesWithTheSavedConfig() throws {
        let c1 = world.netns("c1")
        let r = fw.run("ADD", fw.config(), ctr: c1, id: "fl-chk")
        XCTAssertEqual(r.status, 0, r.description)
        let withPrev = fw.bw.config(fw.config(), prevResult: r.stdout)
        fw.removeSubnetEnv()
        let ok = fw.run("CHECK", withPrev, ctr: c1, id: "fl-chk")
        XCTAssertEqual(ok.status, 0, ok.description)

        // The delegate's CHECK notices what is wrong.
        try runChecked(["ip", "-n", c1, "route", "del", "10.244.0.0/16"])
        let bad = fw.run("CHECK", withPrev, ctr: c1, id: "fl-chk")
        XCTAssertEqual(bad.status, 1, bad.description)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("10.244.0.0/16"), bad.stdout)

        // A container flannel never added is unknown.
        FlannelWorld.assertError(fw.run("CHECK", withPrev, ctr: c1, id: "fl-other"), code: 3, ["fl-other"])
    }

    func testAFailedDelegateAddLeavesTheSavedFileAsItWas() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        // The delegate refuses its config: no saved file, nothing made.
        FlannelWorld.assertError(fw.run("ADD", fw.config(delegate: ["vlan": 5000]), ctr: c1, id: "fl-fail"),
                                 code: 7, ["vlan"])
        FlannelWorld.assertError(fw.run("ADD", fw.config(delegate: ["type": "nosuch"]), ctr: c1, id: "fl-fail"),
                                 code: 999, ["nosuch"])
        XCTAssertEqual(fw.savedNames(), [])
        XCTAssertEqual(fw.bw.hostVeths(), [])

        // A repeated ADD for a container that is attached fails in the delegate (eth0 exists)
        // and keeps the first ADD's copy, so DEL still undoes the first ADD.
        let r = fw.run("ADD", fw.config(), ctr: c2, id: "fl-twice")
        XCTAssertEqual(r.status, 0, r.description)
        let first = try XCTUnwrap(fw.saved("fl-twice"))
        fw.writeSubnetEnv(FlannelWorld.ipv4Env.replacingOccurrences(of: "FLANNEL_MTU=1410", with: "FLANNEL_MTU=1300"))
        let second = fw.run("ADD", fw.config(), ctr: c2, id: "fl-twice")
        XCTAssertEqual(second.status, 1, second.description)
        XCTAssertEqual(fw.saved("fl-twice"), first)
        let d = fw.run("DEL", fw.config(), ctr: c2, id: "fl-twice")
        XCTAssertEqual(d.status, 0, d.description)
        XCTAssertEqual(fw.bw.hostVeths(), [])
        XCTAssertEqual(fw.bw.leases(), [])
    }

    func testSavedFilesAreNeverReadOrWrittenThroughSymlinks() throws {
        let c1 = world.netns("c1")
        let outside = world.tempDirectory("outside")
        let target = outside + "/target"
        try "keep".write(toFile: target, atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: fw.dataDir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: fw.savedFile("fl-link"), withDestinationPath: target)

        // ADD reads the file before replacing it: a link there is refused before anything is made.
        FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "fl-link"), code: 5, [fw.savedFile("fl-link")])
        XCTAssertEqual(fw.bw.hostVeths(), [])
        // DEL does not read through it either.
        FlannelWorld.assertError(fw.run("DEL", fw.config(), ctr: c1, id: "fl-link"), code: 5, [fw.savedFile("fl-link")])
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep")

        // A data directory that is a symlink is refused.
        let linkedDir = world.tempDirectory("linked") + "/data"
        try FileManager.default.createSymbolicLink(atPath: linkedDir, withDestinationPath: outside)
        FlannelWorld.assertError(fw.run("ADD", fw.config(["dataDir": linkedDir]), ctr: c1, id: "fl-dir"),
                                 code: 5, ["symlink"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), ["target"])
        XCTAssertEqual(fw.bw.hostVeths(), [])

        // A container ID that would leave the directory never reaches it.
        FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "../escape"), code: 7, ["escape"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: fw.dataDir + "/../escape"))
    }

    func testASavedConfigThatIsNoneFailsDelAndIsKept() throws {
        try FileManager.default.createDirectory(atPath: fw.dataDir, withIntermediateDirectories: true)
        try "not json".write(toFile: fw.savedFile("fl-junk"), atomically: false, encoding: .utf8)
        let junk = fw.run("DEL", fw.config(), ctr: nil, id: "fl-junk")
        FlannelWorld.assertError(junk, code: 6, [fw.savedFile("fl-junk")])
        try #"{"name":"flnet"}"#.write(toFile: fw.savedFile("fl-notype"), atomically: false, encoding: .utf8)
        FlannelWorld.assertError(fw.run("DEL", fw.config(), ctr: nil, id: "fl-notype"), code: 6,
                                 [fw.savedFile("fl-notype"), "type"])
        XCTAssertEqual(fw.savedNames(), ["fl-junk", "fl-notype"], "what DEL could not undo stays for a person to see")
    }

    func testStatusNeedsSubnetEnvAndTheDelegate() throws {
        let ok = fw.run("STATUS", fw.config(version: "1.1.0"), ctr: nil, id: "")
        XCTAssertEqual(ok.status, 0, ok.description)
        fw.writeSubnetEnv("FLANNEL_NETWORK=10.244.0.0/16\n")
        FlannelWorld.assertError(fw.run("STATUS", fw.config(version: "1.1.0"), ctr: nil, id: ""), code: 50,
                                 ["FLANNEL_SUBNET", fw.subnetFile])
        fw.removeSubnetEnv()
        FlannelWorld.assertError(fw.run("STATUS", fw.config(version: "1.1.0"), ctr: nil, id: ""), code: 50,
                                 [fw.subnetFile])
    }

    func testGCRemovesWhatStaleContainersLeftOfThisNetworkOnly() throws {
        withoutMasqByDaemon()
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        var addresses: [String: String] = [:]
        for (ns, id) in [(c1, "fl-keep"), (c2, "fl-stale")] {
            let r = fw.run("ADD", fw.config(), ctr: ns, id: id)
            XCTAssertEqual(r.status, 0, r.description)
            addresses[id] = BridgeWorld.addresses(r).first.map(BridgeWorld.ip)
        }
        // Another network's saved config in the same directory.
        let other = #"{"cniVersion":"1.0.0","name":"othernet","type":"bridge","ipam":{"type":"host-local"}}"#
        try other.write(toFile: fw.savedFile("other-ctr"), atomically: false, encoding: .utf8)
        // The runtime lost fl-stale: its netns goes, its veth with it.
        try runChecked(["ip", "netns", "del", c2])

        var gc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(fw.config(version: "1.1.0").utf8)) as? [String: Any])
        gc["cni.dev/valid-attachments"] = [["containerID": "fl-keep", "ifname": "eth0"]]
        let r = world.runPlugin("flannel", command: "GC", config: BridgeWorld.json(gc), containerID: nil,
                                ifname: nil, hostNetns: fw.host)
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(fw.savedNames(), ["fl-keep", "other-ctr"])
        XCTAssertEqual(fw.bw.masqElements().map(\.comment), ["flnet fl-keep eth0"])
        XCTAssertEqual(fw.bw.leases(), [try XCTUnwrap(addresses["fl-keep"])])
        XCTAssertEqual(fw.bw.ping(from: c1, "10.244.7.1").status, 0, "the valid container still works")
    }
}
