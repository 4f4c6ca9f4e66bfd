// host-local against the reference: the example configs of the reference README (typed by
// hand, as docs/plugins/host-local.md lists them), the same answers as the reference binary
// for the same configs, and both plugins sharing one data directory.

import Foundation
import XCTest
import TestSupport

final class HostLocalReferenceTests: XCTestCase {
    // MARK: the reference README's example configs

    /// The dual-stack example: two ranges in the IPv4 set, one IPv6 set, routes.
    func dualStackExample(_ h: HostLocalHarness) -> String {
        #"""
        {
          "cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cni0",
          "ipam": {
            "type": "host-local",
            "ranges": [
              [
                {"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254"},
                {"subnet": "172.16.5.0/24"}
              ],
              [
                {"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020"}
              ]
            ],
            "routes": [
              {"dst": "0.0.0.0/0"},
              {"dst": "192.168.0.0/16", "gw": "10.10.5.1"},
              {"dst": "3ffe:ffff:0:01ff::1/64"}
            ],
            "dataDir": "\#(h.dataDir)"
          }
        }
        """#
    }

    func legacyExample(_ h: HostLocalHarness) -> String {
        #"""
        {
          "cniVersion": "1.0.0", "name": "legacy",
          "ipam": {
            "type": "host-local",
            "subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254",
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}],
            "dataDir": "\#(h.dataDir)"
          }
        }
        """#
    }

    func v6Example(_ h: HostLocalHarness, resolvConf: String) -> String {
        #"""
        {
          "cniVersion": "1.0.0", "name": "v6net",
          "ipam": {
            "type": "host-local",
            "subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020",
            "routes": [{"dst": "3ffe:ffff:0:01ff::1/64"}],
            "resolvConf": "\#(resolvConf)",
            "dataDir": "\#(h.dataDir)"
          }
        }
        """#
    }

    func argsIPsExample(_ h: HostLocalHarness) -> String {
        #"""
        {
          "cniVersion": "1.0.0", "name": "mynet",
          "args": {"cni": {"ips": ["10.10.1.30", "3ffe:ffff:0:01ff::15"]}},
          "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.10.0.0/16"}], [{"subnet": "3ffe:ffff:0:01ff::/64"}]],
                   "dataDir": "\#(h.dataDir)"}
        }
        """#
    }

    func runtimeIPsExample(_ h: HostLocalHarness) -> String {
        #"""
        {
          "cniVersion": "1.0.0", "name": "rtnet", "capabilities": {"ips": true},
          "runtimeConfig": {"ips": ["10.10.1.30/16"]},
          "ipam": {"type": "host-local", "subnet": "10.10.0.0/16", "dataDir": "\#(h.dataDir)"}
        }
        """#
    }

    func writeResolvConf(_ h: HostLocalHarness) throws -> String {
        let path = h.dataDir + "/resolv.conf"
        try "nameserver 3ffe:ffff:0:01ff::53\nsearch example.test\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testReferenceExampleConfigsAreAccepted() throws {
        let h = HostLocalHarness(self)
        let dual = h.run("ADD", dualStackExample(h))
        XCTAssertEqual(dual.status, 0, "\(dual)")
        assertHostLocalJSON(dual.stdout, equals: #"""
            {"cniVersion": "1.0.0",
             "ips": [{"address": "10.10.1.20/16", "gateway": "10.10.0.254"},
                     {"address": "3ffe:ffff:0:1ff::10/64", "gateway": "3ffe:ffff:0:1ff::1"}],
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"},
                        {"dst": "3ffe:ffff:0:1ff::1/64"}]}
            """#)

        let legacy = h.run("ADD", legacyExample(h))
        XCTAssertEqual(legacy.status, 0, "\(legacy)")
        XCTAssertEqual(legacy.hostLocalAddresses, ["10.10.1.20/16"])

        let v6 = h.run("ADD", v6Example(h, resolvConf: try writeResolvConf(h)))
        XCTAssertEqual(v6.status, 0, "\(v6)")
        assertHostLocalJSON(v6.stdout, equals: #"""
            {"cniVersion": "1.0.0", "ips": [{"address": "3ffe:ffff:0:1ff::10/64", "gateway": "3ffe:ffff:0:1ff::1"}],
             "routes": [{"dst": "3ffe:ffff:0:1ff::1/64"}],
             "dns": {"nameservers": ["3ffe:ffff:0:01ff::53"], "search": ["example.test"]}}
            """#)

        let argsIPs = h.run("ADD", argsIPsExample(h), id: "ctr-args")
        XCTAssertEqual(argsIPs.hostLocalAddresses, ["10.10.1.30/16", "3ffe:ffff:0:1ff::15/64"], "\(argsIPs)")

        let rt = h.run("ADD", runtimeIPsExample(h))
        XCTAssertEqual(rt.hostLocalAddresses, ["10.10.1.30/16"], "\(rt)")

        let cniArgs = h.run("ADD", legacyExample(h), id: "ctr-ip", args: "IgnoreUnknown=1;IP=10.10.1.30")
        XCTAssertEqual(cniArgs.hostLocalAddresses, ["10.10.1.30/16"], "\(cniArgs)")
    }

    // MARK: the same answers as the reference binary

    func requireReference() throws {
        guard HostLocalHarness.hasReference else {
            throw XCTSkip("reference plugin \(HostLocalHarness.referencePlugin) is not installed")
        }
    }

    /// The result without the reference's empty `"dns": {}`, for comparison.
    func normalized(_ r: CommandResult) -> NSObject? {
        guard var o = r.jsonObject else { return nil }
        if let dns = o["dns"] as? [String: Any], dns.isEmpty { o["dns"] = nil }
        return o as NSDictionary
    }

    func testSameResultsAsTheReference() throws {
        try requireReference()
        let ours = HostLocalHarness(self), theirs = HostLocalHarness(self)
        let resolv = try writeResolvConf(ours)
        // Each case: a config maker and the CNI_ARGS; three containers in a row, so the
        // round robin is compared too.
        let cases: [(String, (HostLocalHarness) -> String, String?)] = [
            ("dual-stack", dualStackExample, nil),
            ("legacy", legacyExample, nil),
            ("v6", { self.v6Example($0, resolvConf: resolv) }, nil),
            ("args.cni.ips", argsIPsExample, nil),
            ("runtimeConfig.ips", runtimeIPsExample, nil),
            ("CNI_ARGS IP", legacyExample, "IgnoreUnknown=1;IP=10.10.2.7"),
            ("0.3.1", { $0.config(#""ranges": [[{"subnet": "10.80.0.0/24"}], [{"subnet": "fd80::/64"}]]"#, name: "v031", version: "0.3.1") }, nil),
            ("0.4.0", { $0.config(#""subnet": "10.81.0.0/24", "gateway": "10.81.0.254""#, name: "v040", version: "0.4.0") }, nil),
            ("ipRanges", { $0.config(#""subnet": "10.82.0.0/24""#, name: "ipr",
                                     extra: #""runtimeConfig": {"ipRanges": [[{"subnet": "10.83.0.0/24", "rangeStart": "10.83.0.50"}]]}"#) }, nil),
        ]
        var compared = 0
        for (label, make, args) in cases {
            // Every case starts from empty state on both sides.
            for dir in [ours.dataDir, theirs.dataDir] {
                for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f != "resolv.conf" {
                    try FileManager.default.removeItem(atPath: dir + "/" + f)
                }
            }
            for i in 0..<3 {
                // A requested address can be held only once: request it for the first container.
                let a = ours.run("ADD", make(ours), id: "c\(i)", args: i == 0 ? args : nil)
                let b = theirs.run("ADD", make(theirs), id: "c\(i)", args: i == 0 ? args : nil, plugin: HostLocalHarness.referencePlugin)
                if b.status != 0 {
                    // The reference refuses a second container asking for the same address too.
                    XCTAssertNotEqual(a.status, 0, "\(label) c\(i): reference failed but we did not: \(b) / \(a)")
                    continue
                }
                XCTAssertEqual(a.status, 0, "\(label) c\(i): \(a)")
                XCTAssertFalse(b.hostLocalAddresses.isEmpty, "\(label) c\(i): \(b)")
                compared += 1
                XCTAssertEqual(normalized(a), normalized(b), "\(label) c\(i):\nours:   \(a.stdout)\ntheirs: \(b.stdout)")
            }
        }
        // args.cni.ips and runtimeConfig.ips request the same address for every container,
        // so only their first ADD succeeds (on both sides).
        XCTAssertEqual(compared, 3 * cases.count - 4)
    }

    // MARK: one data directory, both plugins

    func testBothPluginsShareOneDataDirectory() throws {
        try requireReference()
        let h = HostLocalHarness(self)
        let ref = HostLocalHarness.referencePlugin
        let conf = h.config(#""ranges": [[{"subnet": "10.90.0.0/24"}], [{"subnet": "fd90::/64"}]]"#, name: "shared")

        // Ours, theirs, ours: the round robin continues across the two.
        XCTAssertEqual(h.run("ADD", conf, id: "ours-1").hostLocalAddresses, ["10.90.0.2/24", "fd90::2/64"])
        let t = h.run("ADD", conf, id: "theirs-1", plugin: ref)
        XCTAssertEqual(t.hostLocalAddresses, ["10.90.0.3/24", "fd90::3/64"], "\(t)")
        XCTAssertEqual(h.run("ADD", conf, id: "ours-2").hostLocalAddresses, ["10.90.0.4/24", "fd90::4/64"])
        XCTAssertEqual(h.read("10.90.0.3", network: "shared"), "theirs-1\r\neth0")
        XCTAssertEqual(h.read("last_reserved_ip.0", network: "shared"), "10.90.0.4")

        // Each one's CHECK sees the other's reservations.
        XCTAssertEqual(h.run("CHECK", conf, id: "theirs-1").status, 0)
        let theirCheck = h.run("CHECK", conf, id: "ours-1", plugin: ref)
        XCTAssertEqual(theirCheck.status, 0, "\(theirCheck)")

        // Theirs DEL releases ours, ours DEL releases theirs.
        XCTAssertEqual(h.run("DEL", conf, id: "ours-1", plugin: ref).status, 0)
        XCTAssertEqual(h.run("DEL", conf, id: "theirs-1").status, 0)
        XCTAssertEqual(h.addressFiles("shared"), ["10.90.0.4", "fd90::4"])

        // A requested address ours holds is refused by theirs.
        XCTAssertEqual(h.run("ADD", conf, id: "ours-3", args: "IP=10.90.0.77").status, 0)
        let clash = h.run("ADD", conf, id: "theirs-2", args: "IgnoreUnknown=1;IP=10.90.0.77", plugin: ref)
        XCTAssertNotEqual(clash.status, 0, "\(clash)")
        XCTAssertEqual(h.read("10.90.0.77", network: "shared"), "ours-3\r\neth0")
    }

    func testBothPluginsAtOnceNeverShareAnAddress() throws {
        try requireReference()
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.91.0.0/24""#, name: "mixed")
        let n = 40
        let results = hostLocalRunTogether(n) { i in
            h.run("ADD", conf, id: "ctr-\(i)", plugin: i % 2 == 0 ? "host-local" : HostLocalHarness.referencePlugin)
        }
        for (i, r) in results.enumerated() { XCTAssertEqual(r.status, 0, "ADD ctr-\(i): \(r)") }
        let all = results.flatMap(\.hostLocalAddresses)
        XCTAssertEqual(all.count, n)
        XCTAssertEqual(Set(all).count, n, "duplicates: \(all.sorted())")
        XCTAssertEqual(h.addressFiles("mixed").count, n)
    }
}
