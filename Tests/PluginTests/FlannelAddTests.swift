import Foundation
import XCTest
import TestSupport

/// The built `flannel` executable's ADD, run inside a host netns with our bridge and
/// host-local on CNI_PATH, a hand-written subnet.env and the kernel state read back.
final class FlannelAddTests: FlannelTestCase {
    func testAddGivesAnAddressOfTheHostsSubnetTheOverlayMTUAndRoutesToTheClusterNetwork() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = fw.run("ADD", fw.config(), ctr: c1, id: "fl-one")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = fw.run("ADD", fw.config(), ctr: c2, id: "fl-two")
        XCTAssertEqual(r2.status, 0, r2.description)

        // The delegate's result, in the config's version: an address of FLANNEL_SUBNET's subnet.
        let out = try XCTUnwrap(r1.jsonObject, r1.stdout)
        XCTAssertEqual(out["cniVersion"] as? String, "1.0.0")
        let ips = try XCTUnwrap(out["ips"] as? [[String: Any]])
        XCTAssertEqual(ips.count, 1, r1.stdout)
        let a1 = try XCTUnwrap(ips.first?["address"] as? String)
        XCTAssertTrue(a1.hasPrefix("10.244.7.") && a1.hasSuffix("/24") && a1 != "10.244.7.1/24", a1)
        XCTAssertEqual(ips.first?["gateway"] as? String, "10.244.7.1")

        // Kernel state: eth0 with FLANNEL_MTU, the address, a route to the cluster network via
        // the gateway (and no default route: the delegate was not asked for one).
        XCTAssertEqual(fw.eth0(c1)["mtu"] as? Int, 1410)
        let addrs = world.ipJSON(c1, ["-4", "addr", "show", "dev", "eth0"])
            .flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
            .map { "\($0["local"] ?? "")/\($0["prefixlen"] ?? "")" }
        XCTAssertEqual(addrs, [a1])
        let cluster = fw.routes(c1, to: "10.244.0.0/16")
        XCTAssertEqual(cluster.count, 1, "\(cluster)")
        XCTAssertEqual(cluster.first?["gateway"] as? String, "10.244.7.1")
        XCTAssertEqual(cluster.first?["dev"] as? String, "eth0")
        XCTAssertEqual(fw.routes(c1, to: "default").count, 0)
        // The gateway address on the bridge (isGateway), and traffic across it.
        let brAddrs = world.ipJSON(fw.host, ["-4", "addr", "show", "dev", fw.bw.bridge])
            .flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { $0["local"] as? String }
        XCTAssertEqual(brAddrs, ["10.244.7.1"])
        XCTAssertEqual(fw.bw.ping(from: c1, "10.244.7.1").status, 0, "c1 -> gateway")
        XCTAssertEqual(fw.bw.ping(from: c1, BridgeWorld.ip(BridgeWorld.addresses(r2)[0])).status, 0, "c1 -> c2")

        // FLANNEL_IPMASQ=true: the daemon masquerades, so the bridge must not.
        XCTAssertEqual(fw.bw.masqElements().map(\.comment), [])
    }

    func testTheSavedDelegateConfigIsExactlyWhatTheDelegateGotWithMode0600() throws {
        let c1 = world.netns("c1")
        let conf = fw.config(["runtimeConfig": ["mac": "02:42:0a:f4:07:99"]])
        let r = fw.run("ADD", conf, ctr: c1, id: "fl-saved")
        XCTAssertEqual(r.status, 0, r.description)
        // flannel's delegate: delegate keys, name and cniVersion of the outer config, type
        // bridge, ipMasq = !FLANNEL_IPMASQ, the MTU, isGateway, host-local with the host's
        // subnet and a route to the cluster network, runtimeConfig passed through. Keys sorted.
        let expected = #"{"bridge":"\#(fw.bw.bridge)","cniVersion":"1.0.0","ipMasq":false,"#
            + #""ipam":{"dataDir":"\#(fw.bw.dataDir)","ranges":[[{"subnet":"10.244.7.0/24"}]],"#
            + #""routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1410,"#
            + #""name":"flnet","runtimeConfig":{"mac":"02:42:0a:f4:07:99"},"type":"bridge"}"#
        XCTAssertEqual(fw.saved("fl-saved"), expected)
        XCTAssertEqual(FlannelWorld.mode(fw.savedFile("fl-saved")), 0o600)
        XCTAssertEqual(FlannelWorld.mode(fw.dataDir), 0o700)
        XCTAssertEqual(fw.savedNames(), ["fl-saved"], "no temporary file stays behind")
        // The runtime's MAC reached the delegate.
        XCTAssertEqual(fw.eth0(c1)["address"] as? String, "02:42:0a:f4:07:99")
    }

    func testIPMasqFalseMakesTheBridgeMasqueradeAndDelegateKeysWin() throws {
        fw.writeSubnetEnv(FlannelWorld.ipv4Env.replacingOccurrences(of: "FLANNEL_IPMASQ=true", with: "FLANNEL_IPMASQ=false"))
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = fw.run("ADD", fw.config(), ctr: c1, id: "fl-masq")
        XCTAssertEqual(r1.status, 0, r1.description)
        XCTAssertEqual(fw.bw.masqElements().map(\.comment), ["flnet fl-masq eth0"])
        XCTAssertTrue(fw.saved("fl-masq")?.contains(#""ipMasq":true"#) ?? false, fw.saved("fl-masq") ?? "none")

        // What the delegate sets itself, flannel leaves alone.
        let r2 = fw.run("ADD", fw.config(delegate: ["ipMasq": false, "mtu": 1300, "isGateway": true,
                                                    "isDefaultGateway": true]), ctr: c2, id: "fl-own")
        XCTAssertEqual(r2.status, 0, r2.description)
        XCTAssertEqual(fw.eth0(c2)["mtu"] as? Int, 1300)
        XCTAssertEqual(fw.routes(c2, to: "default").first?["gateway"] as? String, "10.244.7.1")
        XCTAssertEqual(fw.bw.masqElements().map(\.comment), ["flnet fl-masq eth0"])
    }

    func testIPv6InSubnetEnvGivesDualStackRangesAndRoutes() throws {
        fw.writeSubnetEnv(FlannelWorld.dualEnv)
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r1 = fw.run("ADD", fw.config(), ctr: c1, id: "fl-ds1")
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = fw.run("ADD", fw.config(), ctr: c2, id: "fl-ds2")
        XCTAssertEqual(r2.status, 0, r2.description)
        let saved = try XCTUnwrap(fw.saved("fl-ds1"))
        XCTAssertTrue(saved.contains(#""ranges":[[{"subnet":"10.244.7.0/24"}],[{"subnet":"fd44:0:0:7::/64"}]]"#), saved)
        XCTAssertTrue(saved.contains(#""routes":[{"dst":"10.244.0.0/16"},{"dst":"fd44::/56"}]"#), saved)

        let a1 = BridgeWorld.addresses(r1)
        XCTAssertEqual(a1.count, 2, r1.stdout)
        XCTAssertTrue(a1.contains { $0.hasPrefix("10.244.7.") }, "\(a1)")
        XCTAssertTrue(a1.contains { $0.hasPrefix("fd44:0:0:7::") && $0.hasSuffix("/64") }, "\(a1)")
        let v6route = fw.routes(c1, to: "fd44::/56")
        XCTAssertEqual(v6route.first?["gateway"] as? String, "fd44:0:0:7::1", "\(v6route)")
        let v6peer = try XCTUnwrap(BridgeWorld.addresses(r2).first { $0.contains(":") })
        XCTAssertEqual(fw.bw.ping(from: c1, BridgeWorld.ip(v6peer)).status, 0, "c1 -> c2 over IPv6")
    }

    func testResultsIn040And110() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let old = fw.run("ADD", fw.config(version: "0.4.0"), ctr: c1, id: "fl-040")
        XCTAssertEqual(old.status, 0, old.description)
        let o = try XCTUnwrap(old.jsonObject, old.stdout)
        XCTAssertEqual(o["cniVersion"] as? String, "0.4.0")
        XCTAssertEqual((o["ips"] as? [[String: Any]])?.first?["version"] as? String, "4", old.stdout)
        XCTAssertTrue(fw.saved("fl-040")?.contains(#""cniVersion":"0.4.0""#) ?? false)

        let new = fw.run("ADD", fw.config(version: "1.1.0"), ctr: c2, id: "fl-110")
        XCTAssertEqual(new.status, 0, new.description)
        let n = try XCTUnwrap(new.jsonObject, new.stdout)
        XCTAssertEqual(n["cniVersion"] as? String, "1.1.0")
        XCTAssertNil((n["ips"] as? [[String: Any]])?.first?["version"], new.stdout)
        // 1.1.0 interfaces carry their MTU: the container's is the overlay's.
        let ctrIf = (n["interfaces"] as? [[String: Any]])?.first { $0["sandbox"] != nil }
        XCTAssertEqual(ctrIf?["mtu"] as? Int, 1410, new.stdout)
    }

    func testMissingOrBadSubnetEnvKeysAreNamedWithTheFileAndNothingIsMade() throws {
        let c1 = world.netns("c1")
        let keys = ["FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"]
        for key in keys {
            let text = FlannelWorld.ipv4Env.split(separator: "\n").filter { !$0.hasPrefix(key + "=") }.joined(separator: "\n")
            fw.writeSubnetEnv(text + "\n")
            FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "fl-bad"), code: 7, [key, fw.subnetFile])
        }
        // An IPv4 network without its subnet is refused even when IPv6 is complete.
        fw.writeSubnetEnv(FlannelWorld.dualEnv.replacingOccurrences(of: "FLANNEL_SUBNET=10.244.7.1/24\n", with: ""))
        FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "fl-bad"), code: 7,
                                 ["missing FLANNEL_SUBNET", fw.subnetFile])
        // A value that is not one: the key, the line and the file.
        fw.writeSubnetEnv(FlannelWorld.ipv4Env.replacingOccurrences(of: "FLANNEL_MTU=1410", with: "FLANNEL_MTU=big"))
        FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "fl-bad"), code: 7,
                                 ["FLANNEL_MTU", "line 3", fw.subnetFile, "\"big\""])
        // No file: the daemon has not written it yet, try again later.
        fw.removeSubnetEnv()
        FlannelWorld.assertError(fw.run("ADD", fw.config(), ctr: c1, id: "fl-bad"), code: 11,
                                 [fw.subnetFile, "does not exist"])

        // None of these made anything.
        XCTAssertEqual(fw.savedNames(), [])
        XCTAssertEqual(fw.bw.hostVeths(), [])
        XCTAssertNil(world.links(c1)["eth0"])
        XCTAssertEqual(fw.bw.leases(), [])
    }

    func testKeysFlannelSetsItselfAreRefusedInTheDelegate() throws {
        let c1 = world.netns("c1")
        let cases: [([String: Any], String)] = [
            (["name": "other"], "delegate.name"),
            (["ipam": ["type": "host-local"]], "delegate.ipam"),
            (["type": 5], "delegate.type"),
            (["type": ""], "delegate.type"),
        ]
        for (delegate, text) in cases {
            FlannelWorld.assertError(fw.run("ADD", fw.config(delegate: delegate), ctr: c1, id: "fl-ref"), code: 7, [text])
        }
        // Other options that cannot work: the field named.
        FlannelWorld.assertError(fw.run("ADD", fw.config(["ipam": ["routes": [["gw": "10.0.0.1"]]]]), ctr: c1, id: "fl-ref"),
                                 code: 7, ["ipam.routes[0].dst"])
        FlannelWorld.assertError(fw.run("ADD", fw.config(["subnetFile": "run/subnet.env"]), ctr: c1, id: "fl-ref"),
                                 code: 7, ["subnetFile"])
        FlannelWorld.assertError(fw.run("ADD", fw.config(["dataDir": "/var/lib/../tmp"]), ctr: c1, id: "fl-ref"),
                                 code: 7, ["dataDir"])
        let notObject = fw.run("ADD", fw.config(["delegate": "bridge"]), ctr: c1, id: "fl-ref")
        XCTAssertEqual(notObject.jsonObject?["code"] as? Int, 6, notObject.description)
        XCTAssertEqual(fw.savedNames(), [])
        XCTAssertEqual(fw.bw.hostVeths(), [])
    }

    func testConfiguredIPAMRoutesComeFirstAndIPAMKeysArePassedOn() throws {
        let c1 = world.netns("c1")
        let conf = fw.config(["ipam": ["dataDir": fw.bw.dataDir, "routes": [["dst": "192.0.2.0/24"]]]])
        let r = fw.run("ADD", conf, ctr: c1, id: "fl-routes")
        XCTAssertEqual(r.status, 0, r.description)
        let saved = try XCTUnwrap(fw.saved("fl-routes"))
        XCTAssertTrue(saved.contains(#""routes":[{"dst":"192.0.2.0/24"},{"dst":"10.244.0.0/16"}]"#), saved)
        XCTAssertEqual(fw.routes(c1, to: "192.0.2.0/24").first?["gateway"] as? String, "10.244.7.1")
        XCTAssertEqual(fw.routes(c1, to: "10.244.0.0/16").first?["gateway"] as? String, "10.244.7.1")
    }
}
