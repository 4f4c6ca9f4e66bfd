import Foundation
import XCTest
import NetTypes
import SystemKit
@testable import IPAM

/// The network config around `ipam`, as the plugin receives it.
struct NetConf: Decodable {
    var name: String
    var ipam: IPAMConfig
}

func decodeIPAM(_ json: String) throws -> IPAMConfig {
    try JSONDecoder().decode(NetConf.self, from: Data(json.utf8)).ipam
}

func settings(_ json: String) throws -> IPAMSettings { try IPAMSettings(decodeIPAM(json)) }

/// Asserts that validation fails with `.invalidConfig` whose message contains `fragment`.
func assertConfigError(_ json: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try settings(json)
        XCTFail("config accepted, expected an error containing \"\(fragment)\"", file: file, line: line)
    } catch let e as IPAMError {
        guard case .invalidConfig(let msg) = e else { return XCTFail("wrong case \(e)", file: file, line: line) }
        XCTAssertEqual(e.cniCode, 7, file: file, line: line)
        XCTAssertTrue(msg.contains(fragment), "message \"\(msg)\" lacks \"\(fragment)\"", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

final class ConfigTests: XCTestCase {
    // The reference README's dual-stack example: two range sets, v4 (two ranges) and v6.
    func testRangesFormWithTwoRangeSets() throws {
        let json = """
        {"cniVersion": "1.0.0", "name": "mynet", "type": "bridge",
         "ipam": {
           "type": "host-local",
           "ranges": [
             [ {"subnet": "10.10.0.0/16", "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254"},
               {"subnet": "172.16.5.0/24"} ],
             [ {"subnet": "3ffe:ffff:0:01ff::/64", "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020"} ]
           ],
           "routes": [
             {"dst": "0.0.0.0/0"},
             {"dst": "192.168.0.0/16", "gw": "10.10.5.1"},
             {"dst": "3ffe:ffff:0:01ff::1/64"}
           ],
           "dataDir": "/run/my-orchestrator/container-ipam-state"
         }}
        """
        let raw = try decodeIPAM(json)
        XCTAssertEqual(raw.type, "host-local")
        XCTAssertEqual(raw.ranges?.count, 2)
        XCTAssertEqual(raw.ranges?[0][0], RangeConfig(subnet: "10.10.0.0/16", rangeStart: "10.10.1.20",
                                                       rangeEnd: "10.10.3.50", gateway: "10.10.0.254"))
        let s = try IPAMSettings(raw)
        XCTAssertEqual(s.rangeSets.count, 2)
        let v4 = s.rangeSets[0]
        XCTAssertEqual(v4.family, .v4)
        XCTAssertEqual(v4.ranges.count, 2)
        XCTAssertEqual(v4.ranges[0].subnet, CIDR("10.10.0.0/16"))
        XCTAssertEqual(v4.ranges[0].rangeStart, IPAddress("10.10.1.20"))
        XCTAssertEqual(v4.ranges[0].rangeEnd, IPAddress("10.10.3.50"))
        XCTAssertEqual(v4.ranges[0].gateway, IPAddress("10.10.0.254"))
        // Defaults of the second range: .1 gateway, .1 start, .254 end.
        XCTAssertEqual(v4.ranges[1].gateway, IPAddress("172.16.5.1"))
        XCTAssertEqual(v4.ranges[1].rangeStart, IPAddress("172.16.5.1"))
        XCTAssertEqual(v4.ranges[1].rangeEnd, IPAddress("172.16.5.254"))
        XCTAssertEqual(v4.description, "10.10.1.20-10.10.3.50,172.16.5.1-172.16.5.254")
        let v6 = s.rangeSets[1]
        XCTAssertEqual(v6.family, .v6)
        XCTAssertEqual(v6.ranges[0].rangeStart, IPAddress("3ffe:ffff:0:1ff::10"))
        XCTAssertEqual(v6.ranges[0].rangeEnd, IPAddress("3ffe:ffff:0:1ff::20"))
        XCTAssertEqual(v6.ranges[0].gateway, IPAddress("3ffe:ffff:0:1ff::1"))
        XCTAssertEqual(s.routes, [
            RouteConfig(dst: CIDR("0.0.0.0/0")!),
            RouteConfig(dst: CIDR("192.168.0.0/16")!, gw: IPAddress("10.10.5.1")),
            RouteConfig(dst: CIDR("3ffe:ffff:0:01ff::1/64")!),
        ])
        XCTAssertEqual(s.dataDir, "/run/my-orchestrator/container-ipam-state")
        XCTAssertNil(s.resolvConf)
    }

    // The reference README's legacy IPv4 example.
    func testLegacyIPv4Form() throws {
        let s = try settings("""
        {"name": "n", "ipam": {"type": "host-local", "subnet": "10.10.0.0/16",
          "rangeStart": "10.10.1.20", "rangeEnd": "10.10.3.50", "gateway": "10.10.0.254",
          "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}],
          "dataDir": "/var/my-orchestrator/container-ipam-state"}}
        """)
        XCTAssertEqual(s.rangeSets.count, 1)
        let r = s.rangeSets[0].ranges[0]
        XCTAssertEqual(r.description, "10.10.1.20-10.10.3.50")
        XCTAssertEqual(r.gateway, IPAddress("10.10.0.254"))
        XCTAssertEqual(s.routes.count, 2)
        XCTAssertEqual(s.routes[1].gw, IPAddress("10.10.5.1"))
        XCTAssertEqual(s.dataDir, "/var/my-orchestrator/container-ipam-state")
    }

    // The reference README's legacy IPv6 example with resolvConf.
    func testLegacyIPv6FormWithResolvConf() throws {
        let s = try settings("""
        {"name": "n", "ipam": {"type": "host-local", "subnet": "3ffe:ffff:0:01ff::/64",
          "rangeStart": "3ffe:ffff:0:01ff::0010", "rangeEnd": "3ffe:ffff:0:01ff::0020",
          "routes": [{"dst": "3ffe:ffff:0:01ff::1/64"}], "resolvConf": "/etc/resolv.conf"}}
        """)
        XCTAssertEqual(s.rangeSets[0].description, "3ffe:ffff:0:1ff::10-3ffe:ffff:0:1ff::20")
        XCTAssertEqual(s.resolvConf, "/etc/resolv.conf")
        XCTAssertEqual(s.dataDir, "/var/lib/cni/networks")
    }

    func testMinimalSubnetDefaults() throws {
        let s = try settings(#"{"name": "default", "ipam": {"type": "host-local", "subnet": "203.0.113.0/24"}}"#)
        let r = s.rangeSets[0].ranges[0]
        XCTAssertEqual(r.rangeStart, IPAddress("203.0.113.1"))
        XCTAssertEqual(r.rangeEnd, IPAddress("203.0.113.254"))
        XCTAssertEqual(r.gateway, IPAddress("203.0.113.1"))
        XCTAssertEqual(r.allocatableCount, 253)  // .2 … .254
        let v6 = try settings(#"{"name": "d", "ipam": {"subnet": "fd00::/120"}}"#).rangeSets[0].ranges[0]
        XCTAssertEqual(v6.rangeStart, IPAddress("fd00::1"))
        XCTAssertEqual(v6.rangeEnd, IPAddress("fd00::ff"))  // IPv6 has no broadcast
        XCTAssertEqual(v6.allocatableCount, 254)           // ::2 … ::ff
    }

    func testLegacyRangeComesBeforeRanges() throws {
        let s = try settings("""
        {"name": "n", "ipam": {"subnet": "10.1.0.0/24", "ranges": [[{"subnet": "fd01::/64"}]]}}
        """)
        XCTAssertEqual(s.rangeSets.map(\.family), [.v4, .v6])
    }

    func testRuntimeIPRangesComeFirst() throws {
        let s = try IPAMSettings(decodeIPAM(#"{"name": "n", "ipam": {"subnet": "10.1.0.0/24"}}"#),
                                 runtimeIPRanges: [[RangeConfig(subnet: "10.2.0.0/24")]])
        XCTAssertEqual(s.rangeSets.map { $0.ranges[0].subnet.description }, ["10.2.0.0/24", "10.1.0.0/24"])
    }

    func testValidationErrors() {
        assertConfigError(#"{"name": "n", "ipam": {"type": "host-local"}}"#, "no IP ranges specified")
        assertConfigError(#"{"name": "n", "ipam": {"ranges": [[]]}}"#, "range set 0 is empty")
        assertConfigError(#"{"name": "n", "ipam": {"ranges": [[{"rangeStart": "10.0.0.1"}]]}}"#, "\"subnet\" is missing")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0"}}"#, "is not a CIDR")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.5/24"}}"#, "has host bits set; for /24 the network address is 10.0.0.0")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/31"}}"#, "too small to allocate from")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "fd00::/127"}}"#, "too small")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"}}"#,
                          "rangeStart 10.0.1.5 is not in subnet 10.0.0.0/24")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "rangeEnd": "10.9.0.1"}}"#,
                          "rangeEnd 10.9.0.1 is not in subnet 10.0.0.0/24")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"}}"#,
                          "rangeStart 10.0.0.9 is after rangeEnd 10.0.0.3")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "gateway": "bogus"}}"#,
                          "gateway \"bogus\" is not an IP address")
        assertConfigError(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "gateway": "fd00::1"}}"#,
                          "is not of the family of subnet")
        assertConfigError(#"{"name": "n", "ipam": {"rangeStart": "10.0.0.2"}}"#, "no \"subnet\"")
        // One family per range set.
        assertConfigError(#"{"name": "n", "ipam": {"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}}"#,
                          "range set 0 mixes IPv4 and IPv6")
        // Overlaps inside a set and across sets.
        assertConfigError(#"{"name": "n", "ipam": {"ranges": [[{"subnet": "10.0.0.0/16"}, {"subnet": "10.0.5.0/24"}]]}}"#,
                          "range set 0: ranges 10.0.0.1-10.0.255.254 and 10.0.5.1-10.0.5.254 overlap")
        assertConfigError(#"{"name": "n", "ipam": {"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.100"}]]}}"#,
                          "range set 0 (10.0.0.1-10.0.0.254) overlaps with range set 1")
    }

    func testNonOverlappingRangesInOneSubnetAreAccepted() throws {
        let s = try settings("""
        {"name": "n", "ipam": {"ranges": [[
          {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.19"},
          {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.20", "rangeEnd": "10.0.0.29"}]]}}
        """)
        XCTAssertEqual(s.rangeSets[0].allocatableCount, 20)
    }

    func testBadRouteIsADecodingError() {
        XCTAssertThrowsError(try decodeIPAM(#"{"name": "n", "ipam": {"subnet": "10.0.0.0/24", "routes": [{"dst": "x"}]}}"#))
    }

    func testResolvConfParsing() throws {
        let text = """
        # generated
        ; also a comment
        nameserver 10.0.0.53
        nameserver 2001:db8::53
        domain example.com
        search a.example.com b.example.com
        search c.example.com
        options ndots:2 timeout:1
        options rotate
        sortlist 130.155.160.0/255.255.240.0
        nameserver
        """
        let dns = DNSSettings(resolvConf: text)
        XCTAssertEqual(dns.nameservers, ["10.0.0.53", "2001:db8::53"])
        XCTAssertEqual(dns.domain, "example.com")
        XCTAssertEqual(dns.search, ["a.example.com", "b.example.com", "c.example.com"])
        XCTAssertEqual(dns.options, ["ndots:2", "timeout:1", "rotate"])
        XCTAssertTrue(DNSSettings(resolvConf: "# nothing\n").isEmpty)

        let dir = try makeTempDir(self)
        let path = dir + "/resolv.conf"
        try "nameserver 192.0.2.1\r\nsearch x.test\n".write(toFile: path, atomically: true, encoding: .utf8)
        let fromFile = try DNSSettings(resolvConfPath: path)
        XCTAssertEqual(fromFile, DNSSettings(nameservers: ["192.0.2.1"], search: ["x.test"]))
        XCTAssertThrowsError(try DNSSettings(resolvConfPath: dir + "/missing")) { e in
            XCTAssertEqual((e as? IPAMError)?.cniCode, 5)
            XCTAssertEqual((e as? IPAMError)?.cniError.msg,
                           "ipam.resolvConf: open \(dir)/missing: ENOENT (No such file or directory)")
        }
    }
}

/// A fresh directory under the system temp dir, removed when the test ends.
func makeTempDir(_ test: XCTestCase? = nil) throws -> String {
    var tmp = NSTemporaryDirectory()
    while tmp.hasSuffix("/") { tmp.removeLast() }
    var template = Array((tmp + "/netlab-ipam-XXXXXX").utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard p != nil else { throw SystemError(operation: "mkdtemp", object: NSTemporaryDirectory(), errno: Errno.current) }
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    test?.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}
