// netlab-cni, the multi-call executable the installer ships: under each plugin's name it must
// answer exactly as that plugin's own executable does (VERSION, the about text, error JSON and
// exit codes), and under any other name say what it is.

import Foundation
import TestSupport
import XCTest

final class MultiCallTests: XCTestCase {
    static let plugins = ["loopback", "bridge", "host-local", "portmap", "firewall", "tuning", "macvlan", "ipvlan", "vxlan", "flannel"]
    var links = ""

    override func setUpWithError() throws {
        links = NSTemporaryDirectory() + "netlab-multicall-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: links, withIntermediateDirectories: false)
        for name in Self.plugins + ["not-a-plugin"] {
            try FileManager.default.createSymbolicLink(atPath: links + "/" + name, withDestinationPath: BuiltProducts.path("netlab-cni"))
        }
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(atPath: links)
    }

    /// Runs an executable with exactly this environment (as `env -i` would) and stdin.
    private func run(_ exe: String, _ env: [String: String], stdin: String = "", args: [String] = []) -> CommandResult {
        runCommand([exe] + args, environment: env, stdin: stdin)
    }

    /// The same answer, byte for byte, from the link and from the plugin's own executable.
    private func assertSame(_ name: String, _ env: [String: String], stdin: String = "", _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        let own = run(BuiltProducts.path(name), env, stdin: stdin)
        let link = run(links + "/" + name, env, stdin: stdin)
        XCTAssertEqual(link.status, own.status, "\(name) \(what): exit code", file: file, line: line)
        XCTAssertEqual(link.stdout, own.stdout, "\(name) \(what): stdout", file: file, line: line)
        XCTAssertEqual(link.stderr, own.stderr, "\(name) \(what): stderr", file: file, line: line)
    }

    func testListNamesEveryPlugin() throws {
        let out = try runChecked([BuiltProducts.path("netlab-cni"), "--list"]).stdout
        XCTAssertEqual(out.split(separator: "\n").map(String.init), Self.plugins)
    }

    func testEachNameAnswersAsItsOwnPlugin() throws {
        let config = #"{"cniVersion":"0.4.0","name":"mc","type":"x"}"#
        for name in Self.plugins {
            assertSame(name, ["CNI_COMMAND": "VERSION"], "VERSION")
            assertSame(name, ["CNI_COMMAND": "VERSION"], stdin: #"{"cniVersion":"0.4.0"}"#, "VERSION with a config")
            assertSame(name, [:], "about text")
            assertSame(name, ["CNI_COMMAND": "ADD"], stdin: config, "ADD without the variables")
            assertSame(name, ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "eth0",
                              "CNI_PATH": "/nonexistent"], stdin: "{not json", "ADD with a broken config")
            let version = run(links + "/" + name, ["CNI_COMMAND": "VERSION"])
            XCTAssertEqual(version.status, 0)
            XCTAssertEqual((version.jsonObject?["supportedVersions"] as? [String])?.contains("0.4.0"), true, "\(name): \(version)")
            let about = run(links + "/" + name, [:])
            XCTAssertTrue(about.stderr.contains("CNI protocol versions supported"), "\(name) about: \(about)")
        }
    }

    func testTheNameAsFirstArgumentRunsThatPlugin() {
        let viaArgument = run(BuiltProducts.path("netlab-cni"), ["CNI_COMMAND": "VERSION"], args: ["bridge"])
        let own = run(BuiltProducts.path("bridge"), ["CNI_COMMAND": "VERSION"])
        XCTAssertEqual(viaArgument.status, 0)
        XCTAssertEqual(viaArgument.stdout, own.stdout)
    }

    func testAnUnknownNameIsAnErrorARuntimeCanRead() {
        let r = run(links + "/not-a-plugin", ["CNI_COMMAND": "ADD"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 999, "\(r)")
        XCTAssertEqual(r.jsonObject?["msg"] as? String, "not-a-plugin: no plugin of this name")
        let usage = run(links + "/not-a-plugin", [:])
        XCTAssertEqual(usage.status, 1)
        XCTAssertEqual(usage.stdout, "")
        XCTAssertTrue(usage.stderr.contains("plugins: loopback bridge host-local"), usage.stderr)
    }
}
