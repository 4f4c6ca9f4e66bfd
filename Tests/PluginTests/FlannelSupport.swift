// A world for the flannel plugin's integration tests: a BridgeWorld (the host netns where the
// plugin and its delegates run, host-local's data directory, a bridge name) plus a hand-written
// subnet.env and the plugin's own data directory, both in temporary directories, and readers
// of the saved delegate configs that fail the test when the directory cannot be read.

import Foundation
import Glibc
import SystemKit
import XCTest
import TestSupport

final class FlannelWorld {
    let world: TestWorld
    /// The delegate's side: host netns, host-local data directory, bridge, network name.
    let bw: BridgeWorld
    /// The overlay daemon's file, written by the test.
    let subnetFile: String
    /// The plugin's data directory; ADD creates it.
    let dataDir: String

    /// A host whose daemon leased 10.244.7.0/24 of 10.244.0.0/16, MTU 1410, masquerading itself.
    static let ipv4Env = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1410\nFLANNEL_IPMASQ=true\n"
    /// The same host with IPv6 enabled as well.
    static let dualEnv = """
        FLANNEL_NETWORK=10.244.0.0/16
        FLANNEL_SUBNET=10.244.7.1/24
        FLANNEL_IPV6_NETWORK=fd44::/56
        FLANNEL_IPV6_SUBNET=fd44:0:0:7::1/64
        FLANNEL_MTU=1410
        FLANNEL_IPMASQ=true

        """

    init(_ world: TestWorld, env: String? = FlannelWorld.ipv4Env) {
        self.world = world
        bw = BridgeWorld(world, network: "flnet")
        let dir = world.tempDirectory("flannel")
        subnetFile = dir + "/run/flannel/subnet.env"
        dataDir = dir + "/data"
        if let env { writeSubnetEnv(env) }
    }

    var host: String { bw.host }

    /// Replaces subnet.env (creating its directory); fails the test when it cannot be written.
    func writeSubnetEnv(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try FileManager.default.createDirectory(atPath: (subnetFile as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try text.write(toFile: subnetFile, atomically: true, encoding: .utf8)
        } catch {
            XCTFail("write \(subnetFile): \(error)", file: file, line: line)
        }
    }

    func removeSubnetEnv(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNoThrow(try FileManager.default.removeItem(atPath: subnetFile), file: file, line: line)
    }

    /// A flannel network config: `delegate` gets the test's bridge name (unless it sets one),
    /// `ipam` host-local's data directory; `options` go on top.
    func config(_ options: [String: Any] = [:], delegate: [String: Any] = [:], version: String = "1.0.0") -> String {
        var d: [String: Any] = ["bridge": bw.bridge]
        for (k, v) in delegate { d[k] = v }
        var c: [String: Any] = ["cniVersion": version, "name": bw.network, "type": "flannel",
                                "subnetFile": subnetFile, "dataDir": dataDir, "delegate": d,
                                "ipam": ["dataDir": bw.dataDir]]
        for (k, v) in options { c[k] = v }
        return BridgeWorld.json(c)
    }

    /// Runs the built `flannel` inside the host netns, as a runtime does.
    @discardableResult
    func run(_ command: String, _ config: String, ctr: String?, id: String) -> CommandResult {
        world.runPlugin("flannel", command: command, config: config, containerID: id,
                        netns: ctr.map { world.path($0) }, ifname: "eth0", hostNetns: host)
    }

    /// The saved delegate config file of a container.
    func savedFile(_ id: String) -> String { dataDir + "/" + id }

    /// The saved delegate config of `id` as text; nil when there is none.
    func saved(_ id: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        guard FileManager.default.fileExists(atPath: savedFile(id)) else { return nil }
        do {
            return try String(contentsOfFile: savedFile(id), encoding: .utf8)
        } catch {
            XCTFail("read \(savedFile(id)): \(error)", file: file, line: line)
            return nil
        }
    }

    /// The names in the data directory, sorted ([] while ADD has not made it; a directory
    /// that cannot be read fails the test).
    func savedNames(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        TestFailures.reporting([], file: file, line: line) { try Files.listIfPresent(dataDir) }
    }

    /// The permission bits of `path` (lstat); -1 after failing the test when it cannot be read.
    static func mode(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> Int {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            XCTFail("lstat \(path): errno \(errno)", file: file, line: line)
            return -1
        }
        return Int(st.st_mode & 0o7777)
    }

    /// Routes of a netns to `dst` (`ip -j route show DST`; a failing `ip` fails the test).
    func routes(_ ns: String, to dst: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        world.ipJSON(ns, [dst.contains(":") ? "-6" : "-4", "route", "show", dst], file: file, line: line)
    }

    /// The container's `eth0` as `ip -j link` shows it ([:] after failing the test when absent).
    func eth0(_ ns: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        guard let l = world.links(ns, file: file, line: line)["eth0"] else {
            XCTFail("no eth0 in \(ns)", file: file, line: line)
            return [:]
        }
        return l
    }

    /// Asserts a CNI error: exit 1, `code`, and every one of `texts` in `msg`.
    static func assertError(_ r: CommandResult, code: Int, _ texts: [String],
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.description, file: file, line: line)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, code, r.stdout, file: file, line: line)
        let msg = r.jsonObject?["msg"] as? String ?? ""
        for t in texts { XCTAssertTrue(msg.contains(t), "want \"\(t)\" in: \(r.stdout)", file: file, line: line) }
    }
}

/// Base of the flannel tests: a fresh TestWorld and FlannelWorld (IPv4 subnet.env) per test,
/// removed at teardown also when the test fails.
class FlannelTestCase: XCTestCase {
    var world: TestWorld!
    var fw: FlannelWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        fw = FlannelWorld(world)
    }
}
