// PluginMain: the protocol run in-process with a recording plugin, and end to end through the
// built `cni-echo` executable (environment + stdin in, stdout JSON + exit code out).

import XCTest
@testable import CNI
import NetTypes
import TestSupport

/// Records what it was called with; fails as told.
final class Recorder: CNIPlugin, @unchecked Sendable {
    var calls: [CNIRequest] = []
    var failWith: (any Error)?
    var versions = CNIVersion.supported
    var supportedVersions: [String] { versions }

    func add(_ r: CNIRequest) throws -> CNIResult {
        calls.append(r)
        if let failWith { throw failWith }
        return CNIResult(cniVersion: r.cniVersion, interfaces: [.init(name: r.ifName, mac: MACAddress("0a:58:0a:00:00:05"), sandbox: r.netns)],
                         ips: [.init(address: CIDR("10.0.0.5/24")!, gateway: IPAddress("10.0.0.1"), interface: 0)])
    }
    func del(_ r: CNIRequest) throws { calls.append(r); if let failWith { throw failWith } }
    func gc(_ r: CNIRequest) throws { calls.append(r) }
}

final class PluginMainTests: XCTestCase {
    func env(_ cmd: String, _ extra: [String: String] = [:]) -> [String: String] {
        var e = ["CNI_COMMAND": cmd, "CNI_CONTAINERID": "ctr1", "CNI_NETNS": "/var/run/netns/blue",
                 "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin:/usr/lib/cni", "CNI_ARGS": "K8S_POD_NAME=web;IP=10.0.0.5"]
        for (k, v) in extra { e[k] = v.isEmpty ? nil : v }
        return e
    }
    func conf(_ version: String, name: String = "dbnet") -> [UInt8] {
        Array(#"{"cniVersion":"\#(version)","name":"\#(name)","type":"recorder"}"#.utf8)
    }
    func run(_ p: Recorder, _ e: [String: String], _ stdin: [UInt8]) throws -> (JSONValue?, Int32) {
        let (out, code) = PluginMain.execute(p, environment: e, stdin: stdin)
        return (out.isEmpty ? nil : try JSONValue.parse(out), code)
    }

    func testAddParsesEnvironmentAndWritesResultInConfigVersion() throws {
        let p = Recorder()
        for v in CNIVersion.supported {
            let (out, code) = try run(p, env("ADD"), conf(v))
            XCTAssertEqual(code, 0)
            XCTAssertEqual(out?["cniVersion"]?.stringValue, v)
            XCTAssertEqual(out?["ips"]?.arrayValue?.first?["version"]?.stringValue,
                           CNIVersion.atLeast(v, .v1_0_0) ? nil : "4")
        }
        let r = try XCTUnwrap(p.calls.last)
        XCTAssertEqual(r.command, .add)
        XCTAssertEqual(r.containerID, "ctr1")
        XCTAssertEqual(r.netns, "/var/run/netns/blue")
        XCTAssertEqual(r.ifName, "eth0")
        XCTAssertEqual(r.path, ["/opt/cni/bin", "/usr/lib/cni"])
        XCTAssertEqual(r.arg("IP"), "10.0.0.5")
        XCTAssertEqual(r.arg("K8S_POD_NAME"), "web")
        XCTAssertEqual(r.config.name, "dbnet")
        XCTAssertEqual(r.configBytes, conf("1.1.0"))
    }

    func testVersionOutput() throws {
        let p = Recorder()
        p.versions = ["0.4.0", "1.0.0"]
        let (out, code) = try run(p, ["CNI_COMMAND": "VERSION"], Array(#"{"cniVersion":"1.0.0"}"#.utf8))
        XCTAssertEqual(code, 0)
        XCTAssertEqual(out, ["cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0"]])
    }

    func testMissingEnvironmentIsCode4PerVerb() throws {
        let p = Recorder()
        let cases: [(String, String)] = [("ADD", "CNI_NETNS"), ("ADD", "CNI_CONTAINERID"), ("ADD", "CNI_IFNAME"),
                                         ("ADD", "CNI_PATH"), ("CHECK", "CNI_NETNS"), ("DEL", "CNI_IFNAME"),
                                         ("DEL", "CNI_PATH"), ("GC", "CNI_PATH"), ("STATUS", "CNI_PATH")]
        for (cmd, missing) in cases {
            let (out, code) = try run(p, env(cmd, [missing: ""]), conf("1.1.0"))
            XCTAssertEqual(code, 1, "\(cmd) without \(missing)")
            XCTAssertEqual(out?["code"]?.intValue, 4, "\(cmd) without \(missing)")
            XCTAssertTrue(out?["msg"]?.stringValue?.contains(missing) ?? false)
        }
        XCTAssertEqual(try run(p, [:], conf("1.0.0")).0?["code"]?.intValue, 4)
        XCTAssertEqual(try run(p, env("FROB"), conf("1.0.0")).0?["code"]?.intValue, 4)
        XCTAssertEqual(try run(p, env("ADD", ["CNI_ARGS": "garbage"]), conf("1.0.0")).0?["code"]?.intValue, 4)
        XCTAssertEqual(try run(p, env("ADD", ["CNI_IFNAME": "much-too-long-ifname"]), conf("1.0.0")).0?["code"]?.intValue, 4)
        XCTAssertTrue(p.calls.isEmpty)
    }

    func testWhatEachVerbDoesNotNeed() throws {
        let p = Recorder()
        // DEL without a netns; GC and STATUS with only CNI_COMMAND and CNI_PATH.
        XCTAssertEqual(try run(p, env("DEL", ["CNI_NETNS": ""]), conf("1.0.0")).1, 0)
        XCTAssertNil(p.calls.last?.netns)
        let bare = ["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"]
        XCTAssertEqual(try run(p, bare, conf("1.1.0")).1, 0)
        var status = bare; status["CNI_COMMAND"] = "STATUS"
        XCTAssertEqual(try run(p, status, conf("1.1.0")).1, 0)
        XCTAssertEqual(p.calls.map(\.command), [.del, .gc])
    }

    func testVerbVersionGates() throws {
        let p = Recorder()
        for v in ["0.3.0", "0.3.1"] {
            let (out, code) = try run(p, env("CHECK"), conf(v))
            XCTAssertEqual(code, 1); XCTAssertEqual(out?["code"]?.intValue, 1, "CHECK \(v)")
        }
        for cmd in ["GC", "STATUS"] {
            for v in ["0.3.1", "0.4.0", "1.0.0"] {
                XCTAssertEqual(try run(p, env(cmd), conf(v)).0?["code"]?.intValue, 1, "\(cmd) \(v)")
            }
        }
        XCTAssertEqual(try run(p, env("CHECK"), conf("0.4.0")).1, 0)
        XCTAssertTrue(p.calls.isEmpty, "CHECK has a no-op default; nothing recorded")
    }

    func testConfigErrors() throws {
        let p = Recorder()
        XCTAssertEqual(try run(p, env("ADD"), Array("{not json".utf8)).0?["code"]?.intValue, 6)
        XCTAssertEqual(try run(p, env("ADD"), conf("0.2.0")).0?["code"]?.intValue, 1)
        XCTAssertEqual(try run(p, env("ADD"), conf("3.0.0")).0?["code"]?.intValue, 1)
        p.versions = ["0.4.0"]
        XCTAssertEqual(try run(p, env("ADD"), conf("1.0.0")).0?["code"]?.intValue, 1)
        p.versions = CNIVersion.supported
        XCTAssertEqual(try run(p, env("ADD"), conf("1.0.0", name: "")).0?["code"]?.intValue, 7)
        XCTAssertEqual(try run(p, env("ADD"), conf("1.0.0", name: "../etc")).0?["code"]?.intValue, 7)
        XCTAssertEqual(try run(p, env("ADD", ["CNI_CONTAINERID": "../../x"]), conf("1.0.0")).0?["code"]?.intValue, 7)
        XCTAssertEqual(try run(p, env("DEL", ["CNI_CONTAINERID": "a b"]), conf("1.0.0")).0?["code"]?.intValue, 4)
        XCTAssertTrue(p.calls.isEmpty)
    }

    func testPluginErrorsBecomeErrorJSON() throws {
        let p = Recorder()
        p.failWith = CNIError.tryAgainLater("busy", details: "lock held")
        let (out, code) = try run(p, env("ADD"), conf("1.0.0"))
        XCTAssertEqual(code, 1)
        XCTAssertEqual(out, ["cniVersion": "1.0.0", "code": 11, "msg": "busy", "details": "lock held"])
        struct Other: Error {}
        p.failWith = Other()
        XCTAssertEqual(try run(p, env("DEL"), conf("0.4.0")).0?["code"]?.intValue, 999)
    }

    // MARK: end to end through the executable

    func testEchoExecutable() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let config = #"{"cniVersion":"0.3.1","name":"echonet","type":"cni-echo","interface":"eth0","ip":"10.22.0.5/16"}"#
        let add = world.runPlugin("cni-echo", command: "ADD", config: config, containerID: "c1",
                                  netns: "/var/run/netns/blue")
        XCTAssertEqual(add.status, 0, "\(add)")
        XCTAssertEqual(add.stdout, #"{"cniVersion":"0.3.1","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/blue"}],"ips":[{"address":"10.22.0.5/16","interface":0,"version":"4"}]}"#)

        let version = world.runPlugin("cni-echo", command: "VERSION", config: "{}")
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.jsonObject?["cniVersion"] as? String, "1.1.0")
        XCTAssertEqual(version.jsonObject?["supportedVersions"] as? [String], ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])

        let noNetns = world.runPlugin("cni-echo", command: "ADD", config: config, netns: nil)
        XCTAssertNotEqual(noNetns.status, 0)
        XCTAssertEqual(noNetns.jsonObject?["code"] as? Int, 4, "\(noNetns)")
        XCTAssertEqual(noNetns.jsonObject?["cniVersion"] as? String, "0.3.1")

        let del = world.runPlugin("cni-echo", command: "DEL", config: config, netns: nil)
        XCTAssertEqual(del.status, 0, "\(del)")
        XCTAssertEqual(del.stdout, "")

        let bad = world.runPlugin("cni-echo", command: "ADD", config: "{\"cniVersion\":", netns: "/x")
        XCTAssertEqual(bad.jsonObject?["code"] as? Int, 6)
        XCTAssertNotEqual(bad.status, 0)

        let old = world.runPlugin("cni-echo", command: "ADD", config: #"{"cniVersion":"0.2.0","name":"n","type":"cni-echo"}"#, netns: "/x")
        XCTAssertEqual(old.jsonObject?["code"] as? Int, 1)

        let escape = world.runPlugin("cni-echo", command: "DEL", config: config, containerID: "../../etc")
        XCTAssertEqual(escape.jsonObject?["code"] as? Int, 7)
        XCTAssertNotEqual(escape.status, 0)

        let failing = #"{"cniVersion":"1.1.0","name":"n","type":"cni-echo","fail":{"command":"STATUS","code":50,"msg":"no bridge"}}"#
        let status = world.runPlugin("cni-echo", command: "STATUS", config: failing, containerID: nil, ifname: nil)
        XCTAssertNotEqual(status.status, 0)
        XCTAssertEqual(status.jsonObject?["code"] as? Int, 50)
        XCTAssertEqual(status.jsonObject?["msg"] as? String, "no bridge")
    }

    /// cni-echo delegating to cni-echo: the delegate's result is merged; its error comes back
    /// with the same code and message.
    func testDelegation() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let dir = world.tempDirectory("deleg")
        let config = """
        {"cniVersion":"1.0.0","name":"outer","type":"cni-echo","interface":"eth0","ip":"10.1.0.2/24",
         "log":"\(dir)/outer.log","delegate":{"type":"cni-echo","interface":"inner0","ip":"10.9.0.9/8","log":"\(dir)/inner.log"}}
        """
        let add = world.runPlugin("cni-echo", command: "ADD", config: config, containerID: "c2", netns: "/run/netns/x")
        XCTAssertEqual(add.status, 0, "\(add)")
        let r = try CNIResult.decode(Array(add.stdout.utf8))
        XCTAssertEqual(r.interfaces.map(\.name), ["inner0", "eth0"])
        XCTAssertEqual(r.ips.map(\.address.description), ["10.9.0.9/8", "10.1.0.2/24"])
        XCTAssertEqual(r.ips.map(\.interface), [0, 1])
        let inner = try String(contentsOfFile: dir + "/inner.log", encoding: .utf8)
        let line = try JSONValue.parse(Array(inner.split(separator: "\n")[0].utf8))
        XCTAssertEqual(line["command"], "ADD")
        XCTAssertEqual(line["containerID"], "c2", "the delegate inherits the environment")
        XCTAssertEqual(line["config"]?["name"], "outer")
        XCTAssertEqual(line["config"]?["cniVersion"], "1.0.0")

        let failing = """
        {"cniVersion":"1.0.0","name":"outer","type":"cni-echo",
         "delegate":{"type":"cni-echo","fail":{"command":"ADD","code":11,"msg":"ipam busy","details":"retry"}}}
        """
        let f = world.runPlugin("cni-echo", command: "ADD", config: failing, containerID: "c2", netns: "/run/netns/x")
        XCTAssertNotEqual(f.status, 0)
        XCTAssertEqual(f.jsonObject?["code"] as? Int, 11)
        XCTAssertEqual(f.jsonObject?["msg"] as? String, "ipam busy")
        XCTAssertEqual(f.jsonObject?["details"] as? String, "retry")

        let missing = #"{"cniVersion":"1.0.0","name":"outer","type":"cni-echo","delegate":{"type":"no-such-plugin"}}"#
        let m = world.runPlugin("cni-echo", command: "ADD", config: missing, containerID: "c2", netns: "/run/netns/x")
        XCTAssertNotEqual(m.status, 0)
        XCTAssertTrue((m.jsonObject?["msg"] as? String ?? "").contains("no-such-plugin"), "\(m)")
    }
}
