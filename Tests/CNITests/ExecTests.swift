// PluginExec: spawning with an exact environment, feeding stdin, collecting output.

import XCTest
@testable import CNI

final class ExecTests: XCTestCase {
    func testEnvironmentAndStdinReachTheChild() throws {
        // sh reads its script from stdin; the variable comes from the given environment only.
        let o = try PluginExec.run("/bin/sh", environment: ["ONLY": "this"],
                                   stdin: Array("echo \"$ONLY${HOME:-nohome}\"; echo err >&2; exit 3".utf8))
        XCTAssertEqual(o.status, 3)
        XCTAssertEqual(String(decoding: o.stdout, as: UTF8.self), "thisnohome\n")
        XCTAssertEqual(String(decoding: o.stderr, as: UTF8.self), "err\n")
        let cat = try PluginExec.run("/bin/cat", environment: [:], stdin: Array(repeating: UInt8(ascii: "x"), count: 300_000))
        XCTAssertEqual(cat.status, 0)
        XCTAssertEqual(cat.stdout.count, 300_000, "large stdin and stdout pumped together without deadlock")
        let env = try PluginExec.run("/usr/bin/env", environment: ["A": "1", "B": "two"], stdin: [])
        XCTAssertEqual(String(decoding: env.stdout, as: UTF8.self), "A=1\nB=two\n")
    }

    func testChildThatIgnoresStdinAndFails() throws {
        let o = try PluginExec.run("/bin/false", environment: [:], stdin: Array(repeating: 0, count: 1_000_000))
        XCTAssertEqual(o.status, 1)
        XCTAssertThrowsError(try PluginExec.invoke("/bin/false", environment: [:], stdin: [])) {
            XCTAssertEqual(($0 as? CNIError)?.code, 999)
        }
    }

    func testFind() throws {
        XCTAssertEqual(try PluginExec.find("sh", in: ["/nonexistent", "/bin"]), "/bin/sh")
        for bad in ["../sh", "a/b", "", ".."] {
            XCTAssertThrowsError(try PluginExec.find(bad, in: ["/bin"])) { XCTAssertEqual(($0 as? CNIError)?.code, 7, bad) }
        }
        XCTAssertThrowsError(try PluginExec.find("no-such-plugin-x", in: ["/bin"])) {
            XCTAssertEqual(($0 as? CNIError)?.code, 999)
        }
    }

    func testRequireHelpers() throws {
        let c = try NetworkConfig(bytes: Array(#"{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24"}]}}"#.utf8))
        let r = CNIRequest(command: .check, configBytes: [], config: c)
        XCTAssertEqual(try r.requirePrevResult().cniVersion, "1.0.0", "prevResult is held in the config's version")
        XCTAssertThrowsError(try r.requireNetns()) { XCTAssertEqual(($0 as? CNIError)?.code, 4) }
        let bare = CNIRequest(command: .add, netns: "/run/netns/x", configBytes: [],
                              config: try NetworkConfig(bytes: Array(#"{"cniVersion":"1.0.0","name":"n"}"#.utf8)))
        XCTAssertThrowsError(try bare.requirePrevResult()) { XCTAssertEqual(($0 as? CNIError)?.code, 7) }
        XCTAssertEqual(try bare.requireNetns(), "/run/netns/x")
    }
}
