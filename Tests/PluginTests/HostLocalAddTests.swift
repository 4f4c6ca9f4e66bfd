// host-local ADD, run as a runtime runs it: the result JSON in each spec version, the state
// files it leaves, requested addresses, DNS, exhaustion and config errors.

import Foundation
import XCTest
import TestSupport

final class HostLocalAddTests: XCTestCase {
    func testResultFor100HasNoIPVersionAndNoInterfaceIndex() {
        let h = HostLocalHarness(self)
        let r = h.run("ADD", h.config(#""subnet": "10.22.0.0/24""#))
        XCTAssertEqual(r.status, 0, "\(r)")
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "1.0.0", "ips": [{"address": "10.22.0.2/24", "gateway": "10.22.0.1"}]}
            """#)
    }

    func testResultFor031CarriesIPVersion() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.23.0.0/24"}], [{"subnet": "fd23::/64"}]]"#, version: "0.3.1")
        let r = h.run("ADD", conf)
        XCTAssertEqual(r.status, 0, "\(r)")
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "0.3.1", "ips": [
              {"version": "4", "address": "10.23.0.2/24", "gateway": "10.23.0.1"},
              {"version": "6", "address": "fd23::2/64", "gateway": "fd23::1"}]}
            """#)
    }

    func testResultFor110() {
        let h = HostLocalHarness(self)
        let r = h.run("ADD", h.config(#""subnet": "10.24.0.0/16", "gateway": "10.24.255.254""#, version: "1.1.0"))
        XCTAssertEqual(r.status, 0, "\(r)")
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "1.1.0", "ips": [{"address": "10.24.0.1/16", "gateway": "10.24.255.254"}]}
            """#)
    }

    func testDualStackGivesOneAddressPerFamily() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.25.0.0/24"}], [{"subnet": "fd25::/120", "rangeStart": "fd25::10"}]]"#)
        let a = h.run("ADD", conf, id: "c1")
        let b = h.run("ADD", conf, id: "c2")
        XCTAssertEqual(a.hostLocalAddresses, ["10.25.0.2/24", "fd25::10/120"], "\(a)")
        XCTAssertEqual(b.hostLocalAddresses, ["10.25.0.3/24", "fd25::11/120"], "\(b)")
        XCTAssertEqual(h.addressFiles(), ["10.25.0.2", "10.25.0.3", "fd25::10", "fd25::11"])
        XCTAssertEqual(h.read("last_reserved_ip.0"), "10.25.0.3")
        XCTAssertEqual(h.read("last_reserved_ip.1"), "fd25::11")
    }

    func testLegacyFormWithRangeGatewayAndRoutes() {
        let h = HostLocalHarness(self)
        let conf = h.config(#"""
            "subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254",
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}]
            """#)
        let r = h.run("ADD", conf)
        XCTAssertEqual(r.status, 0, "\(r)")
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "1.0.0", "ips": [{"address": "10.10.1.20/16", "gateway": "10.10.0.254"}],
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}]}
            """#)
        XCTAssertEqual(h.run("ADD", conf, id: "ctr2").hostLocalAddresses, ["10.10.1.21/16"])
    }

    func testSecondRangeOfASetIsUsedWhenTheFirstIsFull() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.26.0.0/24", "rangeStart": "10.26.0.10", "rangeEnd": "10.26.0.11", "gateway": "10.26.0.254"}, {"subnet": "172.16.26.0/24"}]]"#)
        let got = (1...3).map { h.run("ADD", conf, id: "c\($0)") }
        XCTAssertEqual(got.map(\.stdout).map { hostLocalJSON($0).map { _ in "ok" } ?? $0 }, ["ok", "ok", "ok"])
        XCTAssertEqual(got.flatMap(\.hostLocalAddresses), ["10.26.0.10/24", "10.26.0.11/24", "172.16.26.2/24"])
        let gws = got.compactMap { ($0.jsonObject?["ips"] as? [[String: Any]])?.first?["gateway"] as? String }
        XCTAssertEqual(gws, ["10.26.0.254", "10.26.0.254", "172.16.26.1"])
    }

    func testStateFilesHoldContainerIDAndInterface() throws {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.27.0.0/24""#, name: "files")
        XCTAssertEqual(h.run("ADD", conf, id: "ctr-a", ifname: "eth0").status, 0)
        XCTAssertEqual(h.run("ADD", conf, id: "ctr-b", ifname: "net1").status, 0)
        XCTAssertEqual(h.files("files"), ["lock", "last_reserved_ip.0", "10.27.0.2", "10.27.0.3"])
        XCTAssertEqual(h.read("10.27.0.2", network: "files"), "ctr-a\r\neth0")
        XCTAssertEqual(h.read("10.27.0.3", network: "files"), "ctr-b\r\nnet1")
        XCTAssertEqual(h.read("last_reserved_ip.0", network: "files"), "10.27.0.3")
    }

    func testDNSFromResolvConf() throws {
        let h = HostLocalHarness(self)
        let resolv = h.dataDir + "/resolv.conf"
        try """
            # generated for the test
            nameserver 10.27.0.53
            nameserver fd27::53
            domain example.test
            search a.example.test b.example.test
            options ndots:2 timeout:1
            ; a comment
            sortlist 10.0.0.0
            """.write(toFile: resolv, atomically: true, encoding: .utf8)
        let r = h.run("ADD", h.config(#""subnet": "10.28.0.0/24", "resolvConf": "\#(resolv)""#))
        XCTAssertEqual(r.status, 0, "\(r)")
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "1.0.0", "ips": [{"address": "10.28.0.2/24", "gateway": "10.28.0.1"}],
             "dns": {"nameservers": ["10.27.0.53", "fd27::53"], "domain": "example.test",
                     "search": ["a.example.test", "b.example.test"], "options": ["ndots:2", "timeout:1"]}}
            """#)
    }

    func testMissingResolvConfFailsBeforeReserving() {
        let h = HostLocalHarness(self)
        let missing = h.dataDir + "/no-such-resolv.conf"
        let r = h.run("ADD", h.config(#""subnet": "10.29.0.0/24", "resolvConf": "\#(missing)""#))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.cniCode, 5, "\(r)")
        XCTAssertTrue(r.cniMessage.contains(missing), r.cniMessage)
        XCTAssertEqual(h.addressFiles(), [])
    }

    // MARK: requested addresses

    func testRequestedIPFromCNIArgs() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.30.0.0/24""#)
        let r = h.run("ADD", conf, args: "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.30.0.77")
        XCTAssertEqual(r.hostLocalAddresses, ["10.30.0.77/24"], "\(r)")
        XCTAssertEqual(h.read("10.30.0.77"), "ctr1\r\neth0")
        // The round robin cursor follows the requested address.
        XCTAssertEqual(h.run("ADD", conf, id: "ctr2").hostLocalAddresses, ["10.30.0.78/24"])
    }

    func testRequestedIPFromArgsCNIIPs() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.31.0.0/24"}], [{"subnet": "fd31::/64"}]]"#,
                            extra: #""args": {"cni": {"ips": ["10.31.0.40", "fd31::40"]}}"#)
        let r = h.run("ADD", conf)
        XCTAssertEqual(r.hostLocalAddresses, ["10.31.0.40/24", "fd31::40/64"], "\(r)")
    }

    func testRequestedIPFromRuntimeConfig() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.32.0.0/24""#, extra: #""runtimeConfig": {"ips": ["10.32.0.99/24"]}"#)
        let r = h.run("ADD", conf)
        XCTAssertEqual(r.hostLocalAddresses, ["10.32.0.99/24"], "\(r)")
        XCTAssertEqual(h.addressFiles(), ["10.32.0.99"])
    }

    func testRequestedIPHeldByAnotherContainerIsCode11NamingTheHolder() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.33.0.0/24""#)
        XCTAssertEqual(h.run("ADD", conf, id: "holder", args: "IP=10.33.0.5").status, 0)
        let r = h.run("ADD", conf, id: "second", args: "IP=10.33.0.5")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.cniCode, 11, "\(r)")
        XCTAssertTrue(r.cniMessage.contains("10.33.0.5") && r.cniMessage.contains("holder"), r.cniMessage)
        XCTAssertEqual(h.read("10.33.0.5"), "holder\r\neth0")
    }

    func testRequestedIPOutsideEveryRangeIsCode7() {
        let h = HostLocalHarness(self)
        let r = h.run("ADD", h.config(#""subnet": "10.34.0.0/24""#), args: "IP=10.99.0.5")
        XCTAssertEqual(r.cniCode, 7, "\(r)")
        XCTAssertTrue(r.cniMessage.contains("10.99.0.5"), r.cniMessage)
        XCTAssertEqual(h.addressFiles(), [])
    }

    func testRequestingTheGatewayOrTwoAddressesInOneSetIsCode7() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.34.0.0/24""#)
        let gw = h.run("ADD", conf, args: "IP=10.34.0.1")
        XCTAssertEqual(gw.cniCode, 7, "\(gw)")
        XCTAssertTrue(gw.cniMessage.contains("gateway"), gw.cniMessage)
        let two = h.run("ADD", conf, args: "IP=10.34.0.5,10.34.0.6")
        XCTAssertEqual(two.cniCode, 7, "\(two)")
        XCTAssertTrue(two.cniMessage.contains("10.34.0.5") && two.cniMessage.contains("10.34.0.6"), two.cniMessage)
        let garbage = h.run("ADD", conf, args: "IP=ten.dot")
        XCTAssertEqual(garbage.cniCode, 7, "\(garbage)")
        XCTAssertEqual(h.addressFiles(), [])
    }

    func testIPRangesCapabilityComesBeforeConfiguredRanges() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.35.0.0/24""#,
                            extra: #""runtimeConfig": {"ipRanges": [[{"subnet": "10.36.0.0/24", "rangeStart": "10.36.0.100"}]]}"#)
        let r = h.run("ADD", conf)
        XCTAssertEqual(r.hostLocalAddresses, ["10.36.0.100/24", "10.35.0.2/24"], "\(r)")
    }

    // MARK: failures

    func testExhaustionIsCode11WithExitOne() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.37.0.0/30""#)
        XCTAssertEqual(h.run("ADD", conf, id: "c1").hostLocalAddresses, ["10.37.0.2/30"])
        let r = h.run("ADD", conf, id: "c2")
        XCTAssertEqual(r.status, 1)
        assertHostLocalJSON(r.stdout, equals: #"""
            {"cniVersion": "1.0.0", "code": 11,
             "msg": "no IP addresses available in range set 0 (10.37.0.1-10.37.0.2): all 1 allocatable address is in use; release unused containers or widen the range"}
            """#)
        XCTAssertEqual(h.addressFiles(), ["10.37.0.2"])
    }

    func testFailureInSecondSetReleasesTheFirstSetsAddress() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.38.0.0/24"}], [{"subnet": "fd38::/120", "rangeStart": "fd38::5", "rangeEnd": "fd38::5"}]]"#)
        XCTAssertEqual(h.run("ADD", conf, id: "c1").hostLocalAddresses, ["10.38.0.2/24", "fd38::5/120"])
        let r = h.run("ADD", conf, id: "c2")
        XCTAssertEqual(r.cniCode, 11, "\(r)")
        XCTAssertTrue(r.cniMessage.contains("range set 1"), r.cniMessage)
        XCTAssertEqual(h.addressFiles(), ["10.38.0.2", "fd38::5"])
    }

    func testBadConfigsAreCode7WithAHelpfulMessage() {
        let h = HostLocalHarness(self)
        let cases: [(ipam: String, mentions: [String])] = [
            (#""routes": []"#, ["no IP ranges", "ipam.ranges", "ipam.subnet"]),
            (#""subnet": "10.39.0.5/24""#, ["host bits", "10.39.0.0/24"]),
            (#""subnet": "10.39.0.0/24", "rangeStart": "10.40.0.1""#, ["rangeStart", "10.40.0.1", "not in subnet"]),
            (#""subnet": "10.39.0.0/31""#, ["too small"]),
            (#""subnet": "not-a-cidr""#, ["not-a-cidr", "CIDR"]),
            (#""ranges": [[{"subnet": "10.39.0.0/24"}, {"subnet": "fd39::/64"}]]"#, ["mixes IPv4 and IPv6"]),
            (#""ranges": [[{"subnet": "10.39.0.0/24"}], [{"subnet": "10.39.0.0/25"}]]"#, ["overlaps"]),
            (#""ranges": [[]]"#, ["range set 0 is empty"]),
            (#""rangeStart": "10.39.0.3""#, ["no \"subnet\""]),
            (#""subnet": "10.39.0.0/24", "routes": [{"dst": "everywhere"}]"#, ["routes[0].dst", "everywhere"]),
        ]
        for c in cases {
            let r = h.run("ADD", h.config(c.ipam))
            XCTAssertEqual(r.status, 1, c.ipam)
            XCTAssertEqual(r.cniCode, 7, "\(c.ipam): \(r)")
            XCTAssertEqual(r.jsonObject?["cniVersion"] as? String, "1.0.0")
            for m in c.mentions {
                XCTAssertTrue(r.cniMessage.contains(m), "\(c.ipam): message \"\(r.cniMessage)\" lacks \"\(m)\"")
            }
        }
        // No ipam object at all, and a network name that would leave the data directory.
        let noIPAM = h.run("ADD", #"{"cniVersion": "1.0.0", "name": "net", "type": "bridge"}"#)
        XCTAssertEqual(noIPAM.cniCode, 7, "\(noIPAM)")
        XCTAssertTrue(noIPAM.cniMessage.contains("ipam"), noIPAM.cniMessage)
        let escape = h.run("ADD", h.config(#""subnet": "10.39.0.0/24""#, name: "../escape"))
        XCTAssertEqual(escape.cniCode, 7, "\(escape)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.dataDir + "/../escape"))
        // Not JSON is code 6; a field of the wrong type is code 6 too.
        XCTAssertEqual(h.run("ADD", "{\"cniVersion\": ").cniCode, 6)
        XCTAssertEqual(h.run("ADD", h.config(#""subnet": 10"#)).cniCode, 6)
        XCTAssertEqual(h.addressFiles(), [])
    }

    func testAddTwiceForOneAttachmentFails() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""subnet": "10.41.0.0/24""#)
        XCTAssertEqual(h.run("ADD", conf).status, 0)
        let again = h.run("ADD", conf)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.cniMessage.contains("already allocated") && again.cniMessage.contains("10.41.0.2"), "\(again)")
        XCTAssertEqual(h.addressFiles(), ["10.41.0.2"])
        // Another interface of the same container is a different attachment.
        XCTAssertEqual(h.run("ADD", conf, ifname: "net1").hostLocalAddresses, ["10.41.0.3/24"])
    }
}
