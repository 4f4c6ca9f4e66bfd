import Foundation
import XCTest
import TestSupport

/// portmap's bookkeeping without traffic: GC, options, DEL of one container among several,
/// snat off, conditions, errors.
final class PortmapLifecycleTests: PortmapTestCase {
    func owners() -> Set<String> { Set(pm.elements().compactMap { $0.comment }) }

    func testGCRemovesOnlyThisNetworksInvalidAttachments() {
        let a = pm.container("a"), b = pm.container("b"), c = pm.container("c")
        XCTAssertEqual(pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)])).status, 0)
        XCTAssertEqual(pm.plugin("ADD", b, pm.config(b, [(8002, 80, "tcp", nil)])).status, 0)
        XCTAssertEqual(pm.plugin("ADD", c, pm.config(c, [(8003, 80, "tcp", nil)], network: "othernet")).status, 0)
        let gcConf = pm.config(nil, [], extra: #","cni.dev/valid-attachments":[{"containerID":"\#(a.id)","ifname":"eth0"}]"#)
            .replacingOccurrences(of: #""cniVersion":"1.0.0""#, with: #""cniVersion":"1.1.0""#)
        let r = world.runPlugin("portmap", command: "GC", config: gcConf, containerID: nil, netns: nil, ifname: nil, hostNetns: pm.host)
        XCTAssertEqual(r.status, 0, r.description)
        let left = owners()
        XCTAssertTrue(left.contains("pmnet \(a.id) eth0"), "\(left)")
        XCTAssertFalse(left.contains("pmnet \(b.id) eth0"), "\(left)")
        XCTAssertTrue(left.contains("othernet \(c.id) eth0"), "GC touched another network: \(left)")
    }

    func testDelRemovesOnlyItsOwnElements() {
        let a = pm.container("a"), b = pm.container("b")
        XCTAssertEqual(pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil), (8001, 80, "udp", "10.88.0.1")])).status, 0)
        XCTAssertEqual(pm.plugin("ADD", b, pm.config(b, [(8002, 80, "sctp", nil)])).status, 0)
        // a: pm_v4 + pm_v6 (tcp), pm_hostip_v4 (udp), two hairpin elements.
        XCTAssertEqual(pm.elements().filter { $0.comment == "pmnet \(a.id) eth0" }.count, 5, pm.ruleset())
        XCTAssertEqual(pm.plugin("DEL", a, pm.config(nil, [])).status, 0)
        XCTAssertEqual(owners(), ["pmnet \(b.id) eth0"], pm.ruleset())
        XCTAssertTrue(pm.ruleset().contains("sctp . 8002"), pm.ruleset())
    }

    func testSnatFalseAddsNoHairpinElements() {
        let a = pm.container("a")
        let r = pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)], extra: #","snat":false"#))
        XCTAssertEqual(r.status, 0, r.description)
        let sets = pm.elements().map(\.set)
        XCTAssertTrue(sets.contains("pm_v4"))
        XCTAssertFalse(sets.contains("pm_hairpin_v4"), pm.ruleset())
    }

    func testIPv4OnlyContainerAndCheck() {
        let a = pm.container("a")
        let conf = pm.config(a, [(8001, 80, "tcp", nil)], v6: false)
        XCTAssertEqual(pm.plugin("ADD", a, conf).status, 0)
        XCTAssertEqual(Set(pm.elements().map(\.set)), ["pm_v4", "pm_hairpin_v4"], pm.ruleset())
        let check = pm.plugin("CHECK", a, conf)
        XCTAssertEqual(check.status, 0, check.description)
    }

    func testConditionsAndMarkBitAreApplied() {
        let a = pm.container("a")
        let extra = #","markMasqBit":5,"conditionsV4":["-s","192.168.77.0/24","!","-i","lo"],"conditionsV6":["-d fd77::/64"]"#
        let r = pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)], extra: extra))
        XCTAssertEqual(r.status, 0, r.description)
        let rules = pm.ruleset()
        XCTAssertTrue(rules.contains("ip saddr 192.168.77.0/24 iifname != \"lo\" jump portmap"), rules)
        XCTAssertTrue(rules.contains("ip6 daddr fd77::/64 jump portmap"), rules)
        XCTAssertTrue(rules.contains("meta mark set meta mark | 0x00000020"), rules)
        // The conditions limit who is DNATed: the outside (192.168.77.1) still gets through.
        pm.serve(a.netns, port: 80, name: "a")
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8001)?.hasPrefix("a "), true)
        XCTAssertNil(pm.connect(from: pm.host, "127.0.0.1", 8001), "localhost is outside conditionsV4")
    }

    func testInvalidOptionsAreRefusedWithCode7() {
        let a = pm.container("a")
        for extra in [#","markMasqBit":40"#, #","markMasqBit":3,"externalSetMarkChain":"KUBE-MARK-MASQ""#,
                      #","conditionsV4":["-m","comment"]"#, #","conditionsV4":["-s","fd00::/8"]"#] {
            let r = pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)], extra: extra))
            XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, "\(extra): \(r.stdout)")
        }
        for bad in [(0, 80, "tcp", nil), (8001, 80, "icmp", nil), (8001, 80, "tcp", "not-an-ip")] as [(Int, Int, String, String?)] {
            let r = pm.plugin("ADD", a, pm.config(a, [bad]))
            XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, "\(bad): \(r.stdout)")
        }
        // ADD without prevResult is a config error; nothing was created.
        let r = pm.plugin("ADD", a, pm.config(nil, [(8001, 80, "tcp", nil)]))
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, r.stdout)
        XCTAssertFalse(world.ruleset(pm.host).hasTable(family: "inet", name: "netlab"))
        // DEL on a host without the table succeeds.
        XCTAssertEqual(pm.plugin("DEL", a, pm.config(nil, [])).status, 0)
    }

    func testOtherTablesAreLeftAlone() throws {
        let a = pm.container("a")
        try world.exec(in: pm.host, ["nft", "add table ip other; add chain ip other c; add rule ip other c counter"]).checked()
        XCTAssertEqual(pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)])).status, 0)
        XCTAssertEqual(pm.plugin("DEL", a, pm.config(nil, [])).status, 0)
        let other = world.exec(in: pm.host, ["nft", "list", "table", "ip", "other"])
        XCTAssertTrue(other.ok && other.stdout.contains("counter"), other.description)
    }

    func testParallelFirstAddsOnAFreshHostAllSucceedWithoutDuplicateRules() {
        let cs = (0..<6).map { pm.container("p\($0)") }
        // Configs built first; the plugin runs themselves are plain processes.
        let runs = cs.enumerated().map { (i, c) in (c, pm.config(c, [(8100 + i, 80, "tcp", nil)])) }
        nonisolated(unsafe) var results = [Int32](repeating: -1, count: cs.count)
        let lock = NSLock()
        let w = world!, host = pm.host
        DispatchQueue.concurrentPerform(iterations: cs.count) { i in
            let r = w.runPlugin("portmap", command: "ADD", config: runs[i].1, containerID: runs[i].0.id,
                                netns: runs[i].0.netns, ifname: "eth0", hostNetns: host)
            lock.withLock { results[i] = r.status }
        }
        XCTAssertEqual(results, Array(repeating: 0, count: cs.count))
        let text = pm.ruleset()
        XCTAssertEqual(text.components(separatedBy: "jump portmap").count - 1, 4, text)
        XCTAssertEqual(text.components(separatedBy: "masquerade").count - 1, 2, text)
        XCTAssertEqual(Set(pm.elements().filter { $0.set == "pm_v4" }.compactMap(\.comment)).count, cs.count, text)
    }

    func testDelWithoutNetnsStillRemovesTheElements() {
        let a = pm.container("a")
        XCTAssertEqual(pm.plugin("ADD", a, pm.config(a, [(8001, 80, "tcp", nil)])).status, 0)
        let r = world.runPlugin("portmap", command: "DEL", config: pm.config(nil, []), containerID: a.id, netns: nil,
                                ifname: "eth0", hostNetns: pm.host)
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertTrue(pm.elements().isEmpty, pm.ruleset())
    }
}
