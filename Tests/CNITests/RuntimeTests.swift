// CNIRuntime executing conflists of cni-echo plugins: prevResult chaining, runtimeConfig
// from capabilities, DEL in reverse with the cached result, the cache file, CHECK, STATUS, GC.

import XCTest
@testable import CNI
import NetTypes
import SystemKit
import TestSupport

final class RuntimeTests: XCTestCase {
    var world: TestWorld!
    var dir = ""
    var runtime: CNIRuntime!

    override func setUp() {
        world = TestWorld()
        let w = world!
        addTeardownBlock { w.cleanup() }
        dir = world.tempDirectory("rt")
        runtime = CNIRuntime(pluginDirectories: ["/nonexistent", BuiltProducts.directory], cacheDirectory: dir + "/cache")
    }

    func list(_ version: String = "1.1.0", extra: String = "") throws -> NetworkConfigList {
        try NetworkConfigList(bytes: Array("""
        {"cniVersion": "\(version)", "name": "chain", \(extra)
         "plugins": [
           {"type": "cni-echo", "log": "\(dir)/calls.log", "interface": "eth0", "ip": "10.88.0.5/16",
            "capabilities": {"mac": true, "ips": false}},
           {"type": "cni-echo", "log": "\(dir)/calls.log", "ip": "fd00::5/64",
            "capabilities": {"portMappings": true}}
         ]}
        """.utf8))
    }

    var rt: RuntimeConf {
        RuntimeConf(containerID: "ctr-1", netns: "/run/netns/blue", ifName: "eth0", args: [("K8S_POD_NAME", "web")],
                    capabilityArgs: ["portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"]],
                                     "mac": "c2:11:22:33:44:55", "ips": ["10.88.0.9/16"]])
    }

    /// What the fake plugins logged, one call a line; none while no plugin has run (no log
    /// yet). A log that cannot be read throws.
    func calls() throws -> [JSONValue] {
        guard let text = try Files.readText(dir + "/calls.log") else { return [] }
        return try text.split(separator: "\n").map { try JSONValue.parse(Array($0.utf8)) }
    }

    func testAddChainsPrevResultAndCaches() throws {
        let l = try list()
        let result = try runtime.addNetworkList(l, rt)
        XCTAssertEqual(result.cniVersion, "1.1.0")
        XCTAssertEqual(result.interfaces, [.init(name: "eth0", sandbox: "/run/netns/blue")])
        XCTAssertEqual(result.ips.map(\.address.description), ["10.88.0.5/16", "fd00::5/64"])

        let c = try calls()
        XCTAssertEqual(c.count, 2)
        XCTAssertEqual(c.map { $0["command"] }, ["ADD", "ADD"])
        // First plugin: name/cniVersion injected, no prevResult, only the capability it declares.
        XCTAssertEqual(c[0]["config"]?["name"], "chain")
        XCTAssertEqual(c[0]["config"]?["cniVersion"], "1.1.0")
        XCTAssertNil(c[0]["config"]?["prevResult"])
        XCTAssertEqual(c[0]["config"]?["runtimeConfig"], ["mac": "c2:11:22:33:44:55"])
        XCTAssertEqual(c[0]["containerID"], "ctr-1")
        XCTAssertEqual(c[0]["netns"], "/run/netns/blue")
        XCTAssertEqual(c[0]["args"], ["K8S_POD_NAME": "web"])
        // Second plugin: the first one's result as prevResult, portMappings as runtimeConfig.
        XCTAssertEqual(c[1]["config"]?["prevResult"], try CNIResult(
            cniVersion: "1.1.0", interfaces: [.init(name: "eth0", sandbox: "/run/netns/blue")],
            ips: [.init(address: CIDR("10.88.0.5/16")!, interface: 0)]).json(version: "1.1.0"))
        XCTAssertEqual(c[1]["config"]?["runtimeConfig"],
                       ["portMappings": [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"]]])

        // The cache file, libcni's layout and format.
        let path = dir + "/cache/results/chain-ctr-1-eth0"
        let cached = try JSONValue.parse(Array(try String(contentsOfFile: path, encoding: .utf8).utf8))
        XCTAssertEqual(cached["kind"], "cniCacheV1")
        XCTAssertEqual(cached["containerId"], "ctr-1")
        XCTAssertEqual(cached["ifName"], "eth0")
        XCTAssertEqual(cached["networkName"], "chain")
        XCTAssertEqual(cached["netns"], "/run/netns/blue")
        XCTAssertEqual(cached["cniArgs"], [["K8S_POD_NAME", "web"]])
        XCTAssertEqual(cached["result"], try result.json(version: "1.1.0"))
        let configBytes = Data(base64Encoded: try XCTUnwrap(cached["config"]?.stringValue))
        XCTAssertEqual(configBytes.map { Array($0) }, l.bytes)
        XCTAssertEqual(try runtime.cachedResult(network: "chain", containerID: "ctr-1", ifName: "eth0"), result)
        XCTAssertNil(try runtime.cachedResult(network: "chain", containerID: "ctr-2", ifName: "eth0"))
    }

    func testDelRunsInReverseWithCachedResultAndRemovesCache() throws {
        let l = try list()
        let result = try runtime.addNetworkList(l, rt)
        try runtime.delNetworkList(l, rt)
        let c = try calls()
        XCTAssertEqual(c.map { $0["command"] }, ["ADD", "ADD", "DEL", "DEL"])
        // Reverse order: the second plugin (ip fd00::5) first.
        XCTAssertEqual(c[2]["config"]?["ip"], "fd00::5/64")
        XCTAssertEqual(c[3]["config"]?["ip"], "10.88.0.5/16")
        for del in c[2...] { XCTAssertEqual(del["config"]?["prevResult"], try result.json(version: "1.1.0")) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/cache/results/chain-ctr-1-eth0"))
        // A second DEL, with nothing cached, still succeeds and passes no prevResult.
        try runtime.delNetworkList(l, rt)
        XCTAssertNil(try calls().last?["config"]?["prevResult"])
    }

    func testLegacyListPassesLegacyPrevResult() throws {
        let l = try list("0.3.1")
        _ = try runtime.addNetworkList(l, rt)
        let prev = try XCTUnwrap(try calls()[1]["config"]?["prevResult"])
        XCTAssertEqual(prev["cniVersion"], "0.3.1")
        XCTAssertEqual(prev["ips"]?.arrayValue?.first?["version"], "4")
        // 0.3.1 has no cached prevResult on DEL (like libcni) and no CHECK.
        try runtime.delNetworkList(l, rt)
        XCTAssertNil(try calls().last?["config"]?["prevResult"])
        XCTAssertThrowsError(try runtime.checkNetworkList(l, rt)) { XCTAssertEqual(($0 as? CNIError)?.code, 1) }
    }

    func testCheck() throws {
        let l = try list("1.0.0")
        XCTAssertThrowsError(try runtime.checkNetworkList(l, rt)) { XCTAssertEqual(($0 as? CNIError)?.code, 3) }
        let result = try runtime.addNetworkList(l, rt)
        try runtime.checkNetworkList(l, rt)
        let c = try calls().filter { $0["command"] == "CHECK" }
        XCTAssertEqual(c.count, 2)
        XCTAssertEqual(c[0]["config"]?["prevResult"], try result.json(version: "1.0.0"))
        // disableCheck: nothing is called.
        let disabled = try list("1.0.0", extra: "\"disableCheck\": true,")
        try runtime.checkNetworkList(disabled, rt)
        XCTAssertEqual(try calls().filter { $0["command"] == "CHECK" }.count, 2)
    }

    func testStatus() throws {
        try runtime.statusNetworkList(try list())
        XCTAssertEqual(try calls().map { $0["command"] }, ["STATUS", "STATUS"])
        XCTAssertEqual(try calls()[0]["containerID"], "")
        // Lists older than 1.1.0 call nothing.
        try runtime.statusNetworkList(try list("1.0.0"))
        XCTAssertEqual(try calls().count, 2)
        // A plugin's 50 comes back as a CNIError with that code.
        let failing = try NetworkConfigList(bytes: Array("""
        {"cniVersion":"1.1.0","name":"f","plugins":[{"type":"cni-echo","fail":{"command":"STATUS","code":50,"msg":"down"}}]}
        """.utf8))
        XCTAssertThrowsError(try runtime.statusNetworkList(failing)) {
            XCTAssertEqual($0 as? CNIError, CNIError(code: .notAvailable, msg: "down"))
        }
    }

    func testGCDeletesStaleAttachmentsThenCallsGC() throws {
        let l = try list()
        var keep = rt
        keep.containerID = "keep"
        var stale = rt
        stale.containerID = "stale"
        _ = try runtime.addNetworkList(l, keep)
        _ = try runtime.addNetworkList(l, stale)
        XCTAssertEqual(try runtime.cachedAttachments(network: "chain").map(\.containerID), ["keep", "stale"])
        try runtime.gcNetworkList(l, validAttachments: [Attachment(containerID: "keep", ifname: "eth0")])
        let c = try calls().dropFirst(4)
        XCTAssertEqual(c.map { $0["command"] }, ["DEL", "DEL", "GC", "GC"])
        XCTAssertEqual(c.first?["containerID"], "stale")
        let gc = try XCTUnwrap(c.last)
        let va: JSONValue = [["containerID": "keep", "ifname": "eth0"]]
        XCTAssertEqual(gc["config"]?["cni.dev/valid-attachments"], va)
        XCTAssertEqual(gc["config"]?["cni.dev/attachments"], va)
        XCTAssertEqual(try runtime.cachedAttachments(network: "chain").map(\.containerID), ["keep"])

        // disableGC: nothing at all.
        let disabled = try list(extra: "\"disableGC\": true,")
        let before = try calls().count
        try runtime.gcNetworkList(disabled, validAttachments: [])
        XCTAssertEqual(try calls().count, before)
        XCTAssertEqual(try runtime.cachedAttachments(network: "chain").count, 1)
    }

    func testFailuresAndValidation() throws {
        let l = try list()
        var bad = rt
        bad.containerID = "../x"
        XCTAssertThrowsError(try runtime.addNetworkList(l, bad)) { XCTAssertEqual(($0 as? CNIError)?.code, 7) }
        let failing = try NetworkConfigList(bytes: Array("""
        {"cniVersion":"1.0.0","name":"f","plugins":[{"type":"cni-echo"},
          {"type":"cni-echo","fail":{"command":"ADD","code":11,"msg":"later","details":"d"}}]}
        """.utf8))
        XCTAssertThrowsError(try runtime.addNetworkList(failing, rt)) {
            XCTAssertEqual($0 as? CNIError, CNIError(code: .tryAgainLater, msg: "later", details: "d"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/cache/results/f-ctr-1-eth0"))
        let missing = try NetworkConfigList(bytes: Array(#"{"cniVersion":"1.0.0","name":"m","plugins":[{"type":"nope"}]}"#.utf8))
        XCTAssertThrowsError(try runtime.addNetworkList(missing, rt)) {
            XCTAssertTrue(($0 as? CNIError)?.msg.contains("nope") ?? false)
        }
    }

    func testPluginVersions() throws {
        XCTAssertEqual(try runtime.pluginVersions(type: "cni-echo"), CNIVersion.supported)
        XCTAssertThrowsError(try runtime.pluginVersions(type: "no-such")) { XCTAssertEqual(($0 as? CNIError)?.code, 999) }
    }

    func testLoadFromFile() throws {
        let path = dir + "/10-chain.conflist"
        try Data(try list().bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try NetworkConfigList.load(path: path).plugins.count, 2)
        XCTAssertThrowsError(try NetworkConfigList.load(path: dir + "/missing")) { XCTAssertEqual(($0 as? CNIError)?.code, 5) }
    }
}
