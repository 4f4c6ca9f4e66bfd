import Foundation
import XCTest
import TestSupport

/// Base of the firewall tests: a fresh host netns with two bridge networks per test, removed
/// at teardown also when the test fails.
class FirewallTestCase: XCTestCase {
    var world: TestWorld!
    var fw: FirewallWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        fw = FirewallWorld(world)
    }
}

/// The firewall plugin run as a runtime runs it (chained after bridge), its nftables elements
/// and rules read back, traffic between containers tried.
final class FirewallTests: FirewallTestCase {
    func testAddAcceptsEachContainerAddressAndDelRemovesItsElementsByOwner() throws {
        let c1 = fw.attach("c1", to: fw.a)
        let c2 = fw.attach("c2", to: fw.a)
        XCTAssertFalse(c1.v4.isEmpty || c1.v6.isEmpty, c1.bridgeResult)
        XCTAssertEqual(fw.elements(), (fw.expected(c1, isolated: false) + fw.expected(c2, isolated: false)).sorted())
        let forward = fw.chain("fw_forward")
        for rule in ["type filter hook forward priority filter; policy accept;",
                     "ip saddr . iifname vmap @fw_iso_from_v4", "ip6 saddr . iifname vmap @fw_iso_from_v6", "jump fw_admin",
                     "ip daddr @fw_v4 ct state established,related accept", "ip saddr @fw_v4 accept",
                     "ip6 daddr @fw_v6 ct state established,related accept", "ip6 saddr @fw_v6 accept"] {
            XCTAssertTrue(forward.contains(rule), "fw_forward lacks \(rule):\n\(forward)")
        }
        XCTAssertTrue(fw.pings(from: c1.netns, c2.v4), "c1 -> c2")
        XCTAssertTrue(fw.pings(from: c1.netns, fw.a.gatewayV4), "c1 -> gateway")

        // CHECK with the result; DEL without it (the runtime lost it) removes c1's elements only.
        let check = fw.plugin("firewall", "CHECK", fw.firewallConfig(fw.a, prevResult: c1.bridgeResult), netns: c1.netns, id: c1.id)
        XCTAssertEqual(check.status, 0, check.description)
        let del = fw.plugin("firewall", "DEL", fw.firewallConfig(fw.a), netns: c1.netns, id: c1.id)
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(fw.elements(), fw.expected(c2, isolated: false))
        let again = fw.plugin("firewall", "DEL", fw.firewallConfig(fw.a), netns: nil, id: c1.id)
        XCTAssertEqual(again.status, 0, "a second DEL, without a netns: \(again)")

        // CHECK now names the missing element.
        let bad = fw.plugin("firewall", "CHECK", fw.firewallConfig(fw.a, prevResult: c1.bridgeResult), netns: c1.netns, id: c1.id)
        XCTAssertEqual(bad.status, 1, bad.description)
        XCTAssertEqual(bad.jsonObject?["code"] as? Int, 999, bad.stdout)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("element \(c1.v4) of container \(c1.id)"), bad.stdout)
    }

    func testSameBridgeIsolatesTheBridgesWhileOpenLetsTrafficThrough() throws {
        // Open (the default): containers of the two bridges reach each other through the host.
        let a1 = fw.attach("a1", to: fw.a), b1 = fw.attach("b1", to: fw.b)
        XCTAssertTrue(fw.pings(from: a1.netns, b1.v4), "open: a1 -> b1")
        XCTAssertTrue(fw.pings(from: b1.netns, a1.v6), "open: b1 -> a1 over IPv6")

        // same-bridge on both networks: across the bridges dropped, within a bridge and to the
        // gateway still fine.
        let iso: [String: Any] = ["ingressPolicy": "same-bridge"]
        let a2 = fw.attach("a2", to: fw.a, iso), a3 = fw.attach("a3", to: fw.a, iso), b2 = fw.attach("b2", to: fw.b, iso)
        XCTAssertEqual(fw.elements(), (fw.expected(a1, isolated: false) + fw.expected(b1, isolated: false)
            + fw.expected(a2, isolated: true) + fw.expected(a3, isolated: true) + fw.expected(b2, isolated: true)).sorted())
        XCTAssertFalse(fw.pings(from: a2.netns, b2.v4), "same-bridge: a2 -> b2 must be dropped")
        XCTAssertFalse(fw.pings(from: b2.netns, a2.v4), "same-bridge: b2 -> a2 must be dropped")
        XCTAssertFalse(fw.pings(from: b2.netns, a3.v6), "same-bridge: b2 -> a3 over IPv6 must be dropped")
        XCTAssertTrue(fw.pings(from: a2.netns, a3.v4), "same-bridge: a2 -> a3 on one bridge")
        XCTAssertTrue(fw.pings(from: a2.netns, fw.a.gatewayV4), "same-bridge: a2 -> its gateway")
        XCTAssertTrue(fw.pings(from: b2.netns, fw.a.gatewayV4), "same-bridge: b2 -> the host's address on the other bridge")
        // As in the reference, bridges are isolated from each other only when both ask for it:
        // the open containers still reach the isolated ones.
        XCTAssertTrue(fw.pings(from: a1.netns, b2.v4), "open a1 -> same-bridge b2")
        XCTAssertTrue(fw.pings(from: b2.netns, a1.v4), "same-bridge b2 -> open a1")
        let isoChain = fw.chain("fw-iso-\(fw.a.bridge)")
        XCTAssertTrue(isoChain.contains("oifname \"\(fw.a.bridge)\" return"), isoChain)
        XCTAssertTrue(isoChain.contains("ip daddr . oifname @fw_iso_to_v4 drop"), isoChain)

        // DEL of b2 (without the result): its isolation ends, a2 reaches b2's address's
        // bridge again once b2 is reattached openly.
        XCTAssertEqual(fw.plugin("firewall", "DEL", fw.firewallConfig(fw.b, iso), netns: b2.netns, id: b2.id).status, 0)
        let reopen = fw.plugin("firewall", "ADD", fw.firewallConfig(fw.b, prevResult: b2.bridgeResult), netns: b2.netns, id: b2.id)
        XCTAssertEqual(reopen.status, 0, reopen.description)
        XCTAssertTrue(fw.pings(from: a2.netns, b2.v4), "b2 open again: a2 -> b2")
        let check = fw.plugin("firewall", "CHECK", fw.firewallConfig(fw.a, iso, prevResult: a2.bridgeResult), netns: a2.netns, id: a2.id)
        XCTAssertEqual(check.status, 0, check.description)
    }

    func testChainsEmptiedByHandAreNamedByCheckAndRebuiltByTheNextAdd() throws {
        let iso: [String: Any] = ["ingressPolicy": "same-bridge"]
        let a1 = fw.attach("a1", to: fw.a, iso), b1 = fw.attach("b1", to: fw.b, iso)
        XCTAssertFalse(fw.pings(from: a1.netns, b1.v4), "isolated")
        let checkA1 = { self.fw.plugin("firewall", "CHECK", self.fw.firewallConfig(self.fw.a, iso, prevResult: a1.bridgeResult),
                                       netns: a1.netns, id: a1.id) }
        XCTAssertTrue(world.exec(in: fw.host, ["nft", "flush", "chain", "inet", "netlab", "fw-iso-\(fw.a.bridge)"]).ok)
        var bad = checkA1()
        XCTAssertEqual(bad.jsonObject?["code"] as? Int, 999, bad.stdout)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("isolation chain inet netlab/fw-iso-\(fw.a.bridge) is missing or has 0 of its 3 rules"), bad.stdout)
        XCTAssertTrue(world.exec(in: fw.host, ["nft", "flush", "chain", "inet", "netlab", "fw_forward"]).ok)
        bad = checkA1()
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("chain inet netlab/fw_forward is missing or has 0 of its 7 rules"), bad.stdout)
        XCTAssertTrue(fw.pings(from: a1.netns, b1.v4), "with the rules gone, nothing isolates")
        // The next ADD on the bridge finds the rules missing and writes the chains whole again.
        _ = fw.attach("a2", to: fw.a, iso)
        XCTAssertFalse(fw.pings(from: a1.netns, b1.v4), "isolated again")
        let ok = checkA1()
        XCTAssertEqual(ok.status, 0, ok.description)
    }

    func testConcurrentAddsOnAFreshHostLeaveTheChainsWholeAndEveryElement() throws {
        let n = 12
        // prevResults as bridge writes them; the firewall needs no interface to exist.
        let prevs = (0..<n).map { i in
            #"{"cniVersion":"1.0.0","interfaces":[{"name":"\#(fw.a.bridge)"},{"name":"veth\#(i)"},{"name":"eth0","sandbox":"/run/netns/x\#(i)"}],"ips":[{"address":"10.71.0.\#(i + 10)/24","interface":2},{"address":"fd71::\#(i + 10)/64","interface":2}]}"#
        }
        nonisolated(unsafe) let f = fw!
        let ctr = world.netns("ctr")
        nonisolated(unsafe) var adds = [CommandResult?](repeating: nil, count: n)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let r = f.plugin("firewall", "ADD", f.firewallConfig(f.a, ["ingressPolicy": "same-bridge"], prevResult: prevs[i]),
                             netns: ctr, id: "burst-\(i)")
            lock.withLock { adds[i] = r }
        }
        for (i, r) in adds.enumerated() { XCTAssertEqual(r?.status, 0, "ADD \(i): \(r?.description ?? "")") }
        XCTAssertEqual(fw.elements().count, n * 6)
        let forward = fw.chain("fw_forward"), isoChain = fw.chain("fw-iso-\(fw.a.bridge)")
        func rules(_ listing: String) -> Int {
            listing.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { l in !["table ", "chain ", "type ", "}"].contains { l.hasPrefix($0) } }.count
        }
        XCTAssertEqual(rules(forward), 7, forward)
        XCTAssertEqual(rules(isoChain), 3, isoChain)
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let r = f.plugin("firewall", "DEL", f.firewallConfig(f.a), netns: nil, id: "burst-\(i)")
            XCTAssertEqual(r.status, 0, "DEL \(i): \(r)")
        }
        XCTAssertEqual(fw.elements(), [])
    }

    func testRefusedConfigurationsAreCode7AndChangeNothing() throws {
        let ns = world.netns("c1")
        let br = fw.plugin("bridge", "ADD", fw.bridgeConfig(fw.a), netns: ns, id: "bad")
        XCTAssertEqual(br.status, 0, br.description)
        let cases: [([String: Any], String)] = [
            (["backend": "iptables"], "backend: \"iptables\" is not supported; this plugin suite's firewall writes nftables only"),
            (["backend": "firewalld"], "backend: \"firewalld\" is not supported"),
            (["ingressPolicy": "isolated"], "use the bridge plugin's \"portIsolation\""),
            (["ingressPolicy": "nobody"], "ingressPolicy: \"nobody\" is not supported (\"open\" or \"same-bridge\")"),
        ]
        for (options, text) in cases {
            for verb in ["ADD", "CHECK"] {
                let r = fw.plugin("firewall", verb, fw.firewallConfig(fw.a, options, prevResult: br.stdout), netns: ns, id: "bad")
                XCTAssertEqual(r.status, 1, "\(verb) \(options): \(r)")
                XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, "\(verb) \(options): \(r.stdout)")
                XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains(text), "\(verb) \(options): \(r.stdout)")
            }
            // DEL never refuses a config: what an older config made must stay removable.
            let del = fw.plugin("firewall", "DEL", fw.firewallConfig(fw.a, options), netns: ns, id: "bad")
            XCTAssertEqual(del.status, 0, "DEL \(options): \(del)")
        }
        let noPrev = fw.plugin("firewall", "ADD", fw.firewallConfig(fw.a), netns: ns, id: "bad")
        XCTAssertEqual(noPrev.jsonObject?["code"] as? Int, 7, noPrev.stdout)
        XCTAssertTrue((noPrev.jsonObject?["msg"] as? String ?? "").contains("prevResult"), noPrev.stdout)
        // same-bridge needs the bridge first in prevResult (chained after bridge).
        let noBridge = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"\#(world.path(ns))"}],"ips":[{"address":"10.71.0.9/24","interface":0}]}"#
        let r = fw.plugin("firewall", "ADD", fw.firewallConfig(fw.a, ["ingressPolicy": "same-bridge"], prevResult: noBridge), netns: ns, id: "bad")
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, r.stdout)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("prevResult names no bridge"), r.stdout)
        // Nothing of the firewall's was made by any of these.
        XCTAssertFalse(fw.ruleset().contains { (($0["set"] ?? $0["map"] ?? $0["chain"]) as? [String: Any])?["name"].map { "\($0)".hasPrefix("fw") } ?? false })
        // An explicit "nftables" and podman's empty backend are accepted.
        for backend in ["nftables", ""] {
            let ok = fw.plugin("firewall", "ADD", fw.firewallConfig(fw.a, ["backend": backend], prevResult: br.stdout), netns: ns, id: "bad")
            XCTAssertEqual(ok.status, 0, "backend \"\(backend)\": \(ok)")
        }
    }

    func testDelAfterTheNetnsIsGoneAndWithoutAnyAddSucceeds() throws {
        let c1 = fw.attach("c1", to: fw.a, ["ingressPolicy": "same-bridge"])
        XCTAssertEqual(fw.elements().count, 6)
        let path = world.path(c1.netns)
        XCTAssertTrue(runCommand(["ip", "netns", "del", c1.netns]).ok)
        for netns in [path, nil] {
            let d = world.runPlugin("firewall", command: "DEL", config: fw.firewallConfig(fw.a), containerID: c1.id,
                                    netns: netns, ifname: "eth0", hostNetns: fw.host)
            XCTAssertEqual(d.status, 0, d.description)
        }
        XCTAssertEqual(fw.elements(), [])
        // A host where the table was never made.
        let fresh = FirewallWorld(world, role: "host2")
        let d = world.runPlugin("firewall", command: "DEL", config: fresh.firewallConfig(fresh.a), containerID: "never",
                                netns: nil, ifname: "eth0", hostNetns: fresh.host)
        XCTAssertEqual(d.status, 0, d.description)
    }

    func testGCRemovesStaleElementsOfThisNetworkOnly() throws {
        let keep = fw.attach("keep", to: fw.a), stale = fw.attach("stale", to: fw.a, ["ingressPolicy": "same-bridge"])
        let other = fw.attach("other", to: fw.b)
        XCTAssertEqual(fw.elements().count, 2 + 6 + 2)
        var c = FirewallWorld.object(fw.firewallConfig(fw.a, version: "1.1.0")) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": keep.id, "ifname": "eth0"]]
        let gc = fw.plugin("firewall", "GC", FirewallWorld.json(c), netns: nil, id: "")
        XCTAssertEqual(gc.status, 0, gc.description)
        let left = fw.elements()
        XCTAssertEqual(left, (fw.expected(keep, isolated: false) + fw.expected(other, isolated: false)).sorted())
        XCTAssertFalse(left.contains { $0.comment.contains(stale.id) }, "\(left)")
    }

    func testTablesOfOthersAreNeverTouched() throws {
        // An iptables-nft style table and a firewalld style table, made before the plugin runs.
        let foreign = """
        table ip filter {
          chain FORWARD { type filter hook forward priority filter; policy accept; counter; }
        }
        table inet firewalld {
          set allowed { type ipv4_addr; elements = { 192.0.2.7 }; }
          chain filter_FORWARD { type filter hook forward priority filter + 10; policy accept; ip saddr @allowed accept; }
        }
        """
        let load = world.exec(in: fw.host, ["nft", "-f", "-"], stdin: foreign)
        XCTAssertTrue(load.ok, load.description)
        func snapshot() -> String {
            let t = ["ip filter", "inet firewalld"].map { world.exec(in: fw.host, ["nft", "list", "table"] + $0.split(separator: " ").map(String.init)) }
            for r in t { XCTAssertTrue(r.ok, r.description) }
            // Counters move with the traffic of the test; everything else must stay as it was.
            return t.map(\.stdout).joined().replacingOccurrences(of: #"counter packets \d+ bytes \d+"#, with: "counter",
                                                                   options: .regularExpression)
        }
        let before = snapshot()
        let c1 = fw.attach("c1", to: fw.a, ["ingressPolicy": "same-bridge"]), c2 = fw.attach("c2", to: fw.b)
        XCTAssertTrue(fw.pings(from: c2.netns, fw.a.gatewayV4))
        XCTAssertEqual(fw.plugin("firewall", "DEL", fw.firewallConfig(fw.a), netns: c1.netns, id: c1.id).status, 0)
        var c = FirewallWorld.object(fw.firewallConfig(fw.b, version: "1.1.0")) as! [String: Any]
        c["cni.dev/valid-attachments"] = [[String: String]]()
        XCTAssertEqual(fw.plugin("firewall", "GC", FirewallWorld.json(c), netns: nil, id: "").status, 0)
        XCTAssertEqual(snapshot(), before)
        XCTAssertEqual(fw.elements(), [])
    }

    func testFailedAddChangesNothing() throws {
        // A set of the firewall's name with another type: the full batch is refused whole.
        let c1 = fw.attach("c1", to: fw.a)
        XCTAssertEqual(fw.plugin("firewall", "DEL", fw.firewallConfig(fw.a), netns: c1.netns, id: c1.id).status, 0)
        let sabotage = world.exec(in: fw.host, ["nft", "flush chain inet netlab fw_forward; delete chain inet netlab fw_forward; delete set inet netlab fw_iso_to_v6; add set inet netlab fw_iso_to_v6 { type ipv4_addr; }"])
        XCTAssertTrue(sabotage.ok, sabotage.description)
        let r = fw.plugin("firewall", "ADD", fw.firewallConfig(fw.a, ["ingressPolicy": "same-bridge"], prevResult: c1.bridgeResult),
                          netns: c1.netns, id: c1.id)
        XCTAssertEqual(r.status, 1, r.description)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").hasPrefix("firewall ADD: "), r.stdout)
        XCTAssertEqual(fw.elements(), [], "a refused batch leaves no element")
        XCTAssertFalse(fw.ruleset().contains { ($0["chain"] as? [String: Any])?["name"] as? String == "fw_forward" })
    }
}
