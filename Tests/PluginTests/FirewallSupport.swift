// A world for the firewall plugin's integration tests: one host netns with two bridge
// networks made by our bridge plugin (+ host-local), containers attached to them, the
// firewall plugin chained after bridge the way a runtime chains it, and readers of the
// kernel state that fail the test when the tool fails.

import Foundation
import XCTest
import TestSupport

final class FirewallWorld {
    let world: TestWorld
    let host: String
    let dataDir: String

    /// A bridge network of the world: its name, bridge, IPv4 and IPv6 subnets and gateways.
    struct Network {
        var name: String
        var bridge: String
        var subnetV4: String
        var gatewayV4: String
        var subnetV6: String
    }

    /// One attached container: its netns, ID, network and the bridge plugin's result.
    struct Container {
        var netns: String
        var id: String
        var network: Network
        var bridgeResult: String
        var v4: String { FirewallWorld.addresses(bridgeResult).first { !$0.contains(":") } ?? "" }
        var v6: String { FirewallWorld.addresses(bridgeResult).first { $0.contains(":") } ?? "" }
    }

    let a: Network
    let b: Network

    init(_ world: TestWorld, role: String = "host") {
        self.world = world
        host = world.netns(role)
        dataDir = world.tempDirectory("ipam")
        a = Network(name: "fwa", bridge: world.shortName("fwa"), subnetV4: "10.71.0.0/24", gatewayV4: "10.71.0.1",
                    subnetV6: "fd71::/64")
        b = Network(name: "fwb", bridge: world.shortName("fwb"), subnetV4: "10.72.0.0/24", gatewayV4: "10.72.0.1",
                    subnetV6: "fd72::/64")
    }

    static func json(_ o: Any) -> String {
        String(data: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), encoding: .utf8)!
    }
    static func object(_ s: String) -> Any { try! JSONSerialization.jsonObject(with: s.data(using: .utf8)!) }

    static func addresses(_ result: String) -> [String] {
        let o = try? JSONSerialization.jsonObject(with: result.data(using: .utf8) ?? Data()) as? [String: Any]
        return ((o?["ips"] as? [[String: Any]]) ?? []).compactMap { ($0["address"] as? String)?.split(separator: "/").first.map(String.init) }
    }

    func bridgeConfig(_ n: Network) -> String {
        Self.json(["cniVersion": "1.0.0", "name": n.name, "type": "bridge", "bridge": n.bridge, "isGateway": true,
                   "ipam": ["type": "host-local", "dataDir": dataDir,
                            "ranges": [[["subnet": n.subnetV4]], [["subnet": n.subnetV6]]],
                            "routes": [["dst": "0.0.0.0/0"], ["dst": "::/0"]]]])
    }

    /// The firewall config of network `n`: `options` merged in, `prevResult` when given.
    func firewallConfig(_ n: Network, _ options: [String: Any] = [:], prevResult: String? = nil,
                        version: String = "1.0.0") -> String {
        var c: [String: Any] = ["cniVersion": version, "name": n.name, "type": "firewall"]
        for (k, v) in options { c[k] = v }
        if let prevResult { c["prevResult"] = Self.object(prevResult) }
        return Self.json(c)
    }

    @discardableResult
    func plugin(_ type: String, _ command: String, _ config: String, netns: String?, id: String) -> CommandResult {
        world.runPlugin(type, command: command, config: config, containerID: id, netns: netns.map { world.path($0) },
                        ifname: "eth0", cniPath: BuiltProducts.directory, hostNetns: host)
    }

    /// A new container netns attached to `n` by the bridge plugin, then the firewall plugin
    /// with `options` chained after it. Fails the test when either plugin fails.
    func attach(_ role: String, to n: Network, _ options: [String: Any] = [:],
                file: StaticString = #filePath, line: UInt = #line) -> Container {
        let ns = world.netns(role)
        let id = "ctr-\(role)"
        let br = plugin("bridge", "ADD", bridgeConfig(n), netns: ns, id: id)
        XCTAssertEqual(br.status, 0, "bridge ADD \(role): \(br)", file: file, line: line)
        let c = Container(netns: ns, id: id, network: n, bridgeResult: br.stdout)
        let fw = plugin("firewall", "ADD", firewallConfig(n, options, prevResult: br.stdout), netns: ns, id: id)
        XCTAssertEqual(fw.status, 0, "firewall ADD \(role): \(fw)", file: file, line: line)
        XCTAssertEqual(fw.jsonObject.map { Self.json($0) }, br.jsonObject.map { Self.json($0) },
                       "firewall passes prevResult on unchanged", file: file, line: line)
        return c
    }

    /// One set or map element of `table inet netlab`: the set, the key (concatenations
    /// joined with " . "), the verdict of a map element ("" in sets) and the comment.
    struct Element: Hashable, Comparable, CustomStringConvertible {
        var set: String
        var key: String
        var verdict: String
        var comment: String
        var description: String { "\(set): \(key)\(verdict.isEmpty ? "" : " : \(verdict)") \"\(comment)\"" }
        static func < (x: Element, y: Element) -> Bool { x.description < y.description }
    }

    /// The ruleset of the host netns as `nft -j list ruleset` prints it; fails the test (and
    /// returns []) when nft fails or prints something that is not its JSON.
    func ruleset(file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        let r = world.exec(in: host, ["nft", "-j", "list", "ruleset"])
        guard r.ok, let items = r.jsonObject?["nftables"] as? [[String: Any]] else {
            XCTFail("nft -j list ruleset in \(host) failed: \(r)", file: file, line: line)
            return []
        }
        return items
    }

    /// The elements of the firewall's sets and maps (`fw_*`) in `inet netlab`, sorted.
    func elements(file: StaticString = #filePath, line: UInt = #line) -> [Element] {
        var out: [Element] = []
        for item in ruleset(file: file, line: line) {
            guard let s = (item["set"] ?? item["map"]) as? [String: Any], s["family"] as? String == "inet",
                  s["table"] as? String == "netlab", let name = s["name"] as? String, name.hasPrefix("fw_") else { continue }
            for e in (s["elem"] as? [Any]) ?? [] { out.append(Self.element(e, set: name)) }
        }
        return out.sorted()
    }

    static func element(_ e: Any, set: String) -> Element {
        var keyPart: Any = e, verdict = ""
        if let pair = e as? [Any], pair.count == 2 {
            keyPart = pair[0]
            if let v = pair[1] as? [String: Any], let (kind, target) = v.first {
                verdict = "\(kind) \((target as? [String: Any])?["target"] ?? "")"
            }
        }
        var val: Any? = keyPart, comment = ""
        if let inner = (keyPart as? [String: Any])?["elem"] as? [String: Any] {
            val = inner["val"]
            comment = inner["comment"] as? String ?? ""
        }
        let key = ((val as? [String: Any])?["concat"] as? [Any]).map { $0.map { "\($0)" }.joined(separator: " . ") } ?? "\(val ?? "")"
        return Element(set: set, key: key, verdict: verdict, comment: comment)
    }

    /// The elements the firewall plugin must have made for `c` (`isolated`: same-bridge).
    func expected(_ c: Container, isolated: Bool) -> [Element] {
        let owner = "\(c.network.name) \(c.id) eth0"
        var out: [Element] = []
        for (ip, fam) in [(c.v4, "v4"), (c.v6, "v6")] where !ip.isEmpty {
            out.append(Element(set: "fw_\(fam)", key: ip, verdict: "", comment: owner))
            if isolated {
                out.append(Element(set: "fw_iso_from_\(fam)", key: "\(ip) . \(c.network.bridge)",
                                   verdict: "jump fw-iso-\(c.network.bridge)", comment: owner))
                out.append(Element(set: "fw_iso_to_\(fam)", key: "\(ip) . \(c.network.bridge)", verdict: "", comment: owner))
            }
        }
        return out.sorted()
    }

    /// `nft list chain inet netlab NAME` text; fails the test when nft fails.
    func chain(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = world.exec(in: host, ["nft", "list", "chain", "inet", "netlab", name])
        XCTAssertTrue(r.ok, "nft list chain inet netlab \(name): \(r)", file: file, line: line)
        return r.stdout
    }

    /// One ping (2 s) from `ns` to `ip`: true when it was answered, false when it went out
    /// and nothing came back. A ping that could not run at all fails the test, so "dropped"
    /// is never read from a broken tool.
    func pings(from ns: String, _ ip: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let r = world.exec(in: ns, ["ping", ip.contains(":") ? "-6" : "-4", "-c", "1", "-W", "2", ip], timeout: 10)
        XCTAssertTrue(r.stdout.contains("1 packets transmitted"), "ping \(ip) from \(ns) did not run: \(r)", file: file, line: line)
        return r.ok
    }
}
