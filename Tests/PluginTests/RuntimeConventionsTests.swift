// What podman, containerd and cri-o send besides the config, plugin by plugin: CNI_ARGS
// (IgnoreUnknown, the K8S_* keys, IP=, MAC=), `args.cni.ips`, the ips/mac/portMappings
// capabilities, and results written at the version the runtime asked for (podman 4 asks 0.4.0).

import Foundation
import TestSupport
import XCTest

final class RuntimeConventionsTests: BridgeTestCase {
    /// CNI_ARGS as podman 4.3 sends them for `--mac-address`, with the keys containerd and
    /// cri-o add for a pod, and one key no plugin knows.
    static let podArgs = "IgnoreUnknown=1;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default;"
        + "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=0f5d3c3a;MAC=02:42:0a:63:00:2a"

    /// A chained plugin's config at `version` with `prevResult`, in the bridge world's network.
    private func chained(_ type: String, version: String, prevResult: String, _ extra: [String: Any] = [:]) -> String {
        var c: [String: Any] = ["cniVersion": version, "name": bw.network, "type": type]
        for (k, v) in extra { c[k] = v }
        return bw.config(BridgeWorld.json(c), prevResult: prevResult)
    }

    /// The result's version and, below 1.0.0, the `version` field each address must carry.
    private func assertAtVersion(_ r: CommandResult, _ version: String, _ what: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, "\(what): \(r)", file: file, line: line)
        XCTAssertEqual(r.jsonObject?["cniVersion"] as? String, version, "\(what) answers at \(version)", file: file, line: line)
        let ips = r.jsonObject?["ips"] as? [[String: Any]] ?? []
        XCTAssertFalse(ips.isEmpty, "\(what): addresses passed on", file: file, line: line)
        for ip in ips {
            let expected: String? = version.hasPrefix("0.") ? "4" : nil
            XCTAssertEqual(ip["version"] as? String, expected, "\(what) at \(version): ips[].version", file: file, line: line)
        }
    }

    /// podman's chain (bridge, portmap, firewall, tuning) with its CNI_ARGS, at each version a
    /// runtime may ask for: every plugin answers at that version, the MAC from CNI_ARGS and the
    /// port mapping take effect, DEL undoes all of it.
    func testPodmansChainAnswersAtTheVersionAskedForWithItsArgs() throws {
        for (i, version) in ["0.3.1", "0.4.0", "1.0.0"].enumerated() {
            let ctr = world.netns("ctr\(i)"), id = "conv-\(i)"
            let conf = bw.config(["isGateway": true, "ipMasq": true, "hairpinMode": true], version: version)
            let bridge = bw.run("ADD", conf, ctr: ctr, id: id, args: Self.podArgs)
            assertAtVersion(bridge, version, "bridge")
            let ports: [String: Any] = ["capabilities": ["portMappings": true],
                                        "runtimeConfig": ["portMappings": [["hostPort": 18080 + i, "containerPort": 80, "protocol": "tcp"]]]]
            var prev = bridge.stdout
            for (type, extra) in [("portmap", ports), ("firewall", ["backend": ""]), ("tuning", [:])] as [(String, [String: Any])] {
                let r = world.runPlugin(type, command: "ADD", config: chained(type, version: version, prevResult: prev, extra),
                                        containerID: id, netns: world.path(ctr), args: Self.podArgs, hostNetns: bw.host)
                assertAtVersion(r, version, type)
                prev = r.stdout
            }
            let mac = try world.readIPJSON(ctr, ["link", "show", "eth0"]).first?["address"] as? String
            XCTAssertEqual(mac, "02:42:0a:63:00:2a", "CNI_ARGS MAC at \(version)")
            let mapped = world.ruleset(bw.host).sets(table: "netlab").flatMap(\.elements).filter { $0.key.contains("\(18080 + i)") }
            XCTAssertFalse(mapped.isEmpty, "portMappings at \(version)")

            for type in ["tuning", "firewall", "portmap"] {
                let r = world.runPlugin(type, command: "DEL", config: chained(type, version: version, prevResult: prev),
                                        containerID: id, netns: world.path(ctr), args: Self.podArgs, hostNetns: bw.host)
                XCTAssertEqual(r.status, 0, "\(type) DEL at \(version): \(r)")
            }
            XCTAssertEqual(bw.run("DEL", conf, ctr: ctr, id: id, args: Self.podArgs).status, 0)
        }
        XCTAssertEqual(bw.leases(), [])
        XCTAssertEqual(bw.hostVeths(), [])
        XCTAssertEqual(world.ruleset(bw.host).sets(table: "netlab").flatMap(\.elements).count, 0, "no element left")
    }

    /// The three ways a runtime asks for an address, each through bridge (host-local in
    /// process): CNI_ARGS `IP=` (cri-o, and podman's CNI_ARGS pass-through), `args.cni.ips`
    /// (conflist args), the `ips` capability (podman's `--ip`).
    func testRequestedAddressesReachHostLocalThroughBridge() {
        let cases: [(String, [String: Any], String?)] = [
            ("10.99.0.41/24", [:], Self.podArgs + ";IP=10.99.0.41"),
            ("10.99.0.42/24", ["args": ["cni": ["ips": ["10.99.0.42"]]]], Self.podArgs),
            ("10.99.0.43/24", ["capabilities": ["ips": true], "runtimeConfig": ["ips": ["10.99.0.43/24"]]], Self.podArgs),
        ]
        for (i, (want, options, args)) in cases.enumerated() {
            let ctr = world.netns("req\(i)"), id = "req-\(i)"
            let conf = bw.config(options, version: "0.4.0")
            let r = bw.run("ADD", conf, ctr: ctr, id: id, args: args)
            XCTAssertEqual(BridgeWorld.addresses(r), [want], "\(options) \(args ?? ""): \(r)")
            XCTAssertEqual(bw.run("DEL", conf, ctr: ctr, id: id, args: args).status, 0)
        }
        XCTAssertEqual(bw.leases(), [])
    }

    /// `IgnoreUnknown` tells a plugin to ignore CNI_ARGS keys it does not know; ours ignore
    /// them either way (the reference plugins refuse them without it), so a runtime that
    /// omits it works too. A key they do know is still checked: a bad `IP=` is refused.
    func testUnknownArgsAreIgnoredKnownOnesChecked() {
        let ctr = world.netns("unk")
        let conf = bw.config([:], version: "0.4.0")
        let r = bw.run("ADD", conf, ctr: ctr, id: "unk-1", args: "K8S_POD_NAME=x;SOMETHING_ELSE=1")
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(bw.run("DEL", conf, ctr: ctr, id: "unk-1").status, 0)
        let bad = bw.run("ADD", conf, ctr: ctr, id: "unk-2", args: "IgnoreUnknown=1;IP=10.99.0")
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("10.99.0"), "the bad IP= is named: \(bad)")
        XCTAssertEqual(bw.leases(), [])
    }
}
