import Foundation
import XCTest
import TestSupport

/// Every option of the bridge plugin, the reference plugin's example configurations, and the
/// STATUS and GC verbs.
final class BridgeOptionsTests: BridgeTestCase {
    /// `ip -d -j link show dev X` of the host netns: the bridge-port attributes.
    func portInfo(_ dev: String) -> [String: Any] {
        let l = world.ipJSON(bw.host, ["-d", "link", "show", "dev", dev]).first ?? [:]
        return ((l["linkinfo"] as? [String: Any])?["info_slave_data"] as? [String: Any]) ?? [:]
    }
    func hostVeth(_ r: CommandResult) -> String {
        ((r.jsonObject?["interfaces"] as? [[String: Any]])?[1]["name"] as? String) ?? ""
    }
    func addrs(_ ns: String, _ dev: String) -> [String] {
        world.ipJSON(ns, ["addr", "show", "dev", dev]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
            .compactMap { a in (a["local"] as? String).map { "\($0)/\(a["prefixlen"] ?? "")" } }
    }
    func flags(_ ns: String, _ dev: String) -> [String] { (world.links(ns)[dev]?["flags"] as? [String]) ?? [] }

    // MARK: the reference plugin's documented examples (typed in, with the test's names)

    func testReferenceExampleGatewayMasqHairpin() throws {
        let c = BridgeWorld.json(["cniVersion": "1.0.0", "name": bw.network, "type": "bridge", "bridge": bw.bridge,
                                  "isDefaultGateway": true, "forceAddress": false, "ipMasq": true, "hairpinMode": true,
                                  "ipam": ["type": "host-local", "subnet": "10.10.0.0/16", "dataDir": bw.dataDir]])
        let c1 = world.netns("c1")
        let r = bw.run("ADD", c, ctr: c1, id: "ex1")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(BridgeWorld.addresses(r), ["10.10.0.2/16"])
        XCTAssertTrue(addrs(bw.host, bw.bridge).contains("10.10.0.1/16"))
        XCTAssertEqual(world.ipJSON(c1, ["route", "show", "default"]).first?["gateway"] as? String, "10.10.0.1")
        XCTAssertEqual(portInfo(hostVeth(r))["hairpin"] as? Bool, true)
        XCTAssertEqual(bw.masqElements().map(\.key), ["10.10.0.2"])
        XCTAssertEqual(bw.ping(from: c1, "10.10.0.1").status, 0)
        XCTAssertEqual(bw.run("DEL", c, ctr: c1, id: "ex1").status, 0)
        XCTAssertEqual(bw.masqElements().count, 0)
    }

    func testReferenceExampleL2Only() throws {
        let c = BridgeWorld.json(["cniVersion": "0.3.1", "name": bw.network, "type": "bridge", "bridge": bw.bridge,
                                  "ipam": [String: Any]()])
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r = bw.run("ADD", c, ctr: c1, id: "l2")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(BridgeWorld.addresses(r), [])
        XCTAssertEqual((r.jsonObject?["interfaces"] as? [Any])?.count, 3)
        XCTAssertTrue(flags(c1, "eth0").contains("UP"))
        XCTAssertTrue(addrs(bw.host, bw.bridge).allSatisfy { $0.hasPrefix("fe80") }, "no gateway address in L2 mode")
        XCTAssertEqual(bw.run("ADD", c, ctr: c2, id: "l2b").status, 0)
        // L2 connectivity: addresses added by hand reach each other through the bridge.
        try runChecked(["ip", "-n", c1, "addr", "add", "192.0.2.1/24", "dev", "eth0"])
        try runChecked(["ip", "-n", c2, "addr", "add", "192.0.2.2/24", "dev", "eth0"])
        XCTAssertEqual(bw.ping(from: c1, "192.0.2.2").status, 0)
        XCTAssertEqual(bw.run("DEL", c, ctr: c1, id: "l2").status, 0)
    }

    // MARK: VLANs: the port's VLANs where the kernel filters VLANs on bridges, a clear refusal
    // that leaves nothing behind where it does not. Each path is its own test, and the one this
    // kernel cannot take is skipped with the reason.

    /// The reference's vlanTrunk example.
    var trunkConfig: String { bw.config(["vlanTrunk": [["id": 101], ["minID": 200, "maxID": 210]]]) }
    /// An access port in VLAN 100 only.
    var accessConfig: String { bw.config(["vlan": 100, "preserveDefaultVlan": false]) }

    func testReferenceExampleVLANTrunkIsRefusedClearlyWithoutKernelVLANFiltering() throws {
        try assertRefusedWithoutVLANFiltering(trunkConfig, id: "trunk", portTest: "testReferenceExampleVLANTrunkPortCarriesTheTrunkVLANs")
    }

    func testReferenceExampleVLANTrunkPortCarriesTheTrunkVLANs() throws {
        let r = try addWithVLANFiltering(trunkConfig, id: "trunk",
                                         refusalTest: "testReferenceExampleVLANTrunkIsRefusedClearlyWithoutKernelVLANFiltering")
        let vlans = try portVLANs(hostVeth(r))
        XCTAssertTrue(vlans.contains(101) && Set(200...210).isSubset(of: vlans), "trunk VLANs on the port: \(vlans)")
    }

    func testVLANAccessPortIsRefusedClearlyWithoutKernelVLANFiltering() throws {
        try assertRefusedWithoutVLANFiltering(accessConfig, id: "vlan", portTest: "testVLANAccessPortIsInItsVLANOnly")
    }

    func testVLANAccessPortIsInItsVLANOnly() throws {
        let r = try addWithVLANFiltering(accessConfig, id: "vlan", refusalTest: "testVLANAccessPortIsRefusedClearlyWithoutKernelVLANFiltering")
        XCTAssertEqual(try portVLANs(hostVeth(r)), [100], "preserveDefaultVlan false: VLAN 1 is gone")
    }

    /// ADD of `config` into a new container where the kernel filters VLANs on bridges, asserted
    /// to succeed. Skips where it does not, naming `refusalTest`, which covers such a kernel.
    func addWithVLANFiltering(_ config: String, id: String, refusalTest: String,
                              file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        guard try KernelFeatures.bridgeVLANFiltering(in: bw.host) else {
            throw XCTSkip(KernelFeatures.noBridgeVLANFiltering + " (\(refusalTest) checks the refusal)")
        }
        let r = bw.run("ADD", config, ctr: world.netns("c1"), id: id)
        XCTAssertEqual(r.status, 0, r.description, file: file, line: line)
        return r
    }

    /// ADD of `config` where the kernel has no bridge VLAN filtering fails with the plugin's own
    /// words for that and undoes everything: no bridge, no veth, no lease, no interface in the
    /// container. Skips where the kernel has the feature, naming `portTest`, which covers it.
    func assertRefusedWithoutVLANFiltering(_ config: String, id: String, portTest: String,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        if try KernelFeatures.bridgeVLANFiltering(in: bw.host) {
            throw XCTSkip("the kernel has bridge VLAN filtering, so ADD is not refused here (\(portTest) checks the port)")
        }
        let container = world.netns("c1")
        let r = bw.run("ADD", config, ctr: container, id: id)
        XCTAssertEqual(r.status, 1, r.description, file: file, line: line)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 999, "the kernel's refusal is an internal error: \(r.stdout)", file: file, line: line)
        let msg = r.jsonObject?["msg"] as? String ?? ""
        XCTAssertTrue(msg.contains("the kernel refused a VLAN-filtering bridge \(bw.bridge)")
                      && msg.contains("vlan/vlanTrunk need bridge VLAN filtering"), r.stdout, file: file, line: line)
        XCTAssertNil(world.links(bw.host, file: file, line: line)[bw.bridge], "the refused bridge was made", file: file, line: line)
        XCTAssertEqual(bw.hostVeths(file: file, line: line), [], file: file, line: line)
        XCTAssertEqual(bw.leases(file: file, line: line), [], file: file, line: line)
        XCTAssertNil(world.links(container, file: file, line: line)["eth0"], file: file, line: line)
    }

    /// The VLAN ids on a bridge port of the host netns (`bridge -j vlan show`, ranges expanded);
    /// throws when `bridge` fails or prints something else.
    func portVLANs(_ dev: String) throws -> [Int] {
        let ports = try world.exec(in: bw.host, ["bridge", "-j", "vlan", "show", "dev", dev]).checkedJSONArray()
        return ports.flatMap { ($0["vlans"] as? [[String: Any]]) ?? [] }.flatMap { v -> [Int] in
            guard let first = v["vlan"] as? Int else { return [] }
            return Array(first...(v["vlanEnd"] as? Int ?? first))
        }.sorted()
    }

    func testInvalidOptionsAreConfigErrors() {
        let c1 = world.netns("c1")
        for (opts, field) in [(["vlan": 5000], "vlan"), (["vlanTrunk": [["minID": 300, "maxID": 200]]], "vlanTrunk"),
                              (["mtu": 20], "mtu"), (["ipMasqBackend": "pf"], "ipMasqBackend")] as [([String: Any], String)] {
            let r = bw.run("ADD", bw.config(opts), ctr: c1, id: "bad")
            XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, r.stdout)
            XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains(field), r.stdout)
        }
        XCTAssertEqual(bw.hostVeths(), [])
        XCTAssertEqual(bw.leases(), [])
    }

    // MARK: options

    func testMTUPromiscIsolationAndMAC() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let conf = bw.config(["mtu": 1400, "promiscMode": true, "portIsolation": true, "isGateway": true,
                              "runtimeConfig": ["mac": "02:11:22:33:44:55"]])
        let r = bw.run("ADD", conf, ctr: c1, id: "opts")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(world.links(c1)["eth0"]?["mtu"] as? Int, 1400)
        XCTAssertEqual(world.links(c1)["eth0"]?["address"] as? String, "02:11:22:33:44:55")
        XCTAssertEqual(world.links(bw.host)[hostVeth(r)]?["mtu"] as? Int, 1400)
        XCTAssertEqual(world.links(bw.host)[bw.bridge]?["mtu"] as? Int, 1400)
        XCTAssertTrue(flags(bw.host, bw.bridge).contains("PROMISC"))
        XCTAssertEqual(portInfo(hostVeth(r))["isolated"] as? Bool, true)
        XCTAssertEqual(portInfo(hostVeth(r))["hairpin"] as? Bool, false)
        // CNI_ARGS MAC= works too.
        let r2 = bw.run("ADD", bw.config(["isGateway": true, "portIsolation": true]), ctr: c2, id: "opts2",
                        args: "MAC=02:aa:bb:cc:dd:ee")
        XCTAssertEqual(r2.status, 0, r2.description)
        XCTAssertEqual(world.links(c2)["eth0"]?["address"] as? String, "02:aa:bb:cc:dd:ee")
        // Isolated ports cannot talk to each other, but both reach the gateway.
        XCTAssertEqual(bw.ping(from: c1, "10.99.0.1").status, 0)
        XCTAssertNotEqual(bw.ping(from: c1, BridgeWorld.ip(BridgeWorld.addresses(r2)[0])).status, 0)
    }

    func testNoGatewayModeAndDisabledContainerInterface() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let r = bw.run("ADD", bw.config([:]), ctr: c1, id: "nogw")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertFalse(addrs(bw.host, bw.bridge).contains { $0.hasPrefix("10.99.") }, "isGateway false: no bridge address")
        XCTAssertTrue(addrs(c1, "eth0").contains { $0.hasPrefix("10.99.0.") })
        XCTAssertTrue(world.ipJSON(c1, ["route", "show", "default"]).isEmpty)

        let d = bw.run("ADD", bw.config(["disableContainerInterface": true]), ctr: c2, id: "down")
        XCTAssertEqual(d.status, 0, d.description)
        XCTAssertFalse(flags(c2, "eth0").contains("UP"))
        XCTAssertEqual(addrs(c2, "eth0"), [])
        XCTAssertEqual(BridgeWorld.addresses(d).count, 1, "the allocation is still reported")
    }

    func testForceAddress() throws {
        try runChecked(["ip", "-n", bw.host, "link", "add", bw.bridge, "type", "bridge"])
        try runChecked(["ip", "-n", bw.host, "addr", "add", "10.99.0.254/24", "dev", bw.bridge])
        let c1 = world.netns("c1")
        let r = bw.run("ADD", bw.config(["isGateway": true]), ctr: c1, id: "force")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("forceAddress"), r.stdout)
        XCTAssertEqual(bw.leases(), [])
        XCTAssertEqual(bw.hostVeths(), [])
        XCTAssertEqual(addrs(bw.host, bw.bridge).filter { $0.hasPrefix("10.") }, ["10.99.0.254/24"])

        let ok = bw.run("ADD", bw.config(["isGateway": true, "forceAddress": true]), ctr: c1, id: "force")
        XCTAssertEqual(ok.status, 0, ok.description)
        XCTAssertEqual(addrs(bw.host, bw.bridge).filter { $0.hasPrefix("10.") }, ["10.99.0.1/24"])
    }

    /// `ipMasqBackend`: "nftables" (or absent) masquerades with nftables; "iptables" is refused
    /// with code 7 naming the field and the backend this suite uses, before anything is made.
    func testIPMasqBackendNFTablesOnly() throws {
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let nft = bw.config(["isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables"])
        let ok = bw.run("ADD", nft, ctr: c1, id: "nft")
        XCTAssertEqual(ok.status, 0, ok.description)
        XCTAssertEqual(bw.masqElements().map(\.comment), ["\(bw.network) nft eth0"])

        let ipt = bw.config(["isGateway": true, "ipMasq": true, "ipMasqBackend": "iptables"])
        let refused = bw.run("ADD", ipt, ctr: c2, id: "ipt")
        XCTAssertEqual(refused.status, 1, refused.description)
        XCTAssertEqual(refused.jsonObject?["code"] as? Int, 7, refused.stdout)
        let msg = refused.jsonObject?["msg"] as? String ?? ""
        XCTAssertTrue(msg.contains("ipMasqBackend") && msg.contains("\"iptables\"") && msg.contains("nftables"), msg)
        XCTAssertEqual(bw.hostVeths().count, 1, "the refused ADD made a veth")
        XCTAssertEqual(bw.leases().count, 1, "the refused ADD reserved an address")
        XCTAssertNil(world.links(c2)["eth0"])

        // DEL never refuses a backend: what an older version made under such a config goes.
        let del = bw.run("DEL", ipt, ctr: c1, id: "nft")
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(bw.masqElements().count, 0)
        XCTAssertEqual(bw.leases(), [])
    }

    func testOldVersionResultAndEnableDAD() throws {
        let c1 = world.netns("c1")
        let r = bw.run("ADD", bw.config(["enabledad": true], ranges: [[["subnet": "fd00:97::/64"]]], version: "0.3.1"),
                       ctr: c1, id: "old")
        XCTAssertEqual(r.status, 0, r.description)
        let ips = r.jsonObject?["ips"] as? [[String: Any]] ?? []
        XCTAssertEqual(ips.first?["version"] as? String, "6", r.stdout)
        let info = world.ipJSON(c1, ["-6", "addr", "show", "dev", "eth0"]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
        let global = info.first { ($0["local"] as? String ?? "").hasPrefix("fd00:97") }
        XCTAssertNotNil(global)
        XCTAssertNil(global?["nodad"], "enabledad: the address goes through DAD")
    }

    func testAnotherIPAMBinaryIsExecuted() throws {
        // Our host-local runs in-process only when CNI_PATH leads to the one beside `bridge`;
        // the reference host-local found first is executed like any delegate.
        guard FileManager.default.isExecutableFile(atPath: "/usr/lib/cni/host-local") else {
            throw XCTSkip("reference host-local not installed")
        }
        let dir = world.tempDirectory("refipam")
        try FileManager.default.createSymbolicLink(atPath: dir + "/host-local", withDestinationPath: "/usr/lib/cni/host-local")
        let c1 = world.netns("c1")
        let conf = bw.config(["isGateway": true])
        let r = bw.run("ADD", conf, ctr: c1, id: "refipam", cniPath: dir)
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(bw.leases(), ["10.99.0.2"])
        XCTAssertEqual(bw.run("DEL", conf, ctr: c1, id: "refipam", cniPath: dir).status, 0)
        XCTAssertEqual(bw.leases(), [])
        // Not found anywhere: a clear error, nothing left.
        let none = bw.run("ADD", conf, ctr: c1, id: "noipam", cniPath: world.tempDirectory("empty"))
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue((none.jsonObject?["msg"] as? String ?? "").contains("host-local"), none.stdout)
        XCTAssertEqual(bw.hostVeths(), [])
    }

    // MARK: STATUS and GC

    func testStatus() {
        let ok = bw.run("STATUS", bw.config(version: "1.1.0"), ctr: nil, id: "")
        XCTAssertEqual(ok.status, 0, ok.description)
        let empty = world.tempDirectory("nocni")
        let missing = bw.run("STATUS", bw.config(version: "1.1.0"), ctr: nil, id: "", cniPath: empty)
        XCTAssertEqual(missing.jsonObject?["code"] as? Int, 50, missing.stdout)
        // A data directory that cannot be used (a file where the directory should be).
        let file = world.tempDirectory("notadir") + "/file"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let bad = bw.run("STATUS", bw.config(version: "1.1.0", ipamExtra: ["dataDir": file]), ctr: nil, id: "")
        XCTAssertEqual(bad.jsonObject?["code"] as? Int, 50, bad.stdout)
        // A 1.1.0 ADD reports the MTU of every interface.
        let c1 = world.netns("c1")
        let r = bw.run("ADD", bw.config(["mtu": 1450], version: "1.1.0"), ctr: c1, id: "mtu11")
        XCTAssertEqual(r.status, 0, r.description)
        let mtus = (r.jsonObject?["interfaces"] as? [[String: Any]] ?? []).compactMap { $0["mtu"] as? Int }
        XCTAssertEqual(mtus, [1450, 1450, 1450], r.stdout)
    }

    func testGCRemovesMasqueradeElementsAndLeasesOfInvalidAttachments() throws {
        let conf = bw.config(["isGateway": true, "ipMasq": true], version: "1.1.0")
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        XCTAssertEqual(bw.run("ADD", conf, ctr: c1, id: "keep").status, 0)
        XCTAssertEqual(bw.run("ADD", conf, ctr: c2, id: "stale").status, 0)
        // Another network's element is not ours to collect.
        let add = world.exec(in: bw.host, ["nft", "add element inet netlab masq_v4 { 10.200.0.9 comment \"othernet x eth0\" : jump masq-\(bw.bridge) }"])
        XCTAssertTrue(add.ok, add.description)
        var c = try JSONSerialization.jsonObject(with: conf.data(using: .utf8)!) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
        let gc = bw.run("GC", BridgeWorld.json(c), ctr: nil, id: "")
        XCTAssertEqual(gc.status, 0, gc.description)
        XCTAssertEqual(Set(bw.masqElements().map(\.comment)), ["\(bw.network) keep eth0", "othernet x eth0"])
        XCTAssertEqual(bw.leases().count, 1)
    }
}
