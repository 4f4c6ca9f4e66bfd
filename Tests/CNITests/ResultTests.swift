// Results: decoding the spec's example results of each version, encoding per version, and
// conversion up and down.

import XCTest
@testable import CNI
import NetTypes

final class ResultTests: XCTestCase {
    func json(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8)) }

    /// The shape of the spec 0.3.1 / 0.4.0 example result (IPs carry "version").
    let legacyExample = """
    {
      "cniVersion": "0.4.0",
      "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55"},
        {"name": "veth3243", "mac": "55:44:33:22:11:11"},
        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
      ],
      "ips": [
        {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2},
        {"version": "6", "address": "2001:db8::5/64", "gateway": "2001:db8::1", "interface": 2}
      ],
      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "2001:db8::1"}],
      "dns": {"nameservers": ["10.1.0.1"], "domain": "example.com", "search": ["example.com"], "options": ["ndots:2"]}
    }
    """

    /// The spec 1.1.0 shape with the fields it added to interfaces and routes.
    let v110Example = """
    {
      "cniVersion": "1.1.0",
      "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55", "mtu": 1500},
        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue", "mtu": 1450,
         "socketPath": "/run/vhost.sock", "pciID": "0000:00:1f.6"}
      ],
      "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1}],
      "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400, "advmss": 1360, "priority": 100,
                  "table": 52, "scope": 0}],
      "dns": {"nameservers": ["10.1.0.1"]}
    }
    """

    func testDecodeLegacyExampleAcceptsIPVersion() throws {
        for v in ["0.3.0", "0.3.1", "0.4.0"] {
            let text = legacyExample.replacingOccurrences(of: "\"0.4.0\"", with: "\"\(v)\"")
            let r = try CNIResult.decode(Array(text.utf8))
            XCTAssertEqual(r.cniVersion, v)
            XCTAssertEqual(r.interfaces.count, 3)
            XCTAssertEqual(r.interfaces[2].sandbox, "/var/run/netns/blue")
            XCTAssertEqual(r.interfaces[2].macAddress, MACAddress("99:88:77:66:55:44"))
            XCTAssertEqual(r.interfaces[0].sandbox, nil)
            XCTAssertEqual(r.ips[0].address, CIDR("10.1.0.5/16"))
            XCTAssertEqual(r.ips[0].gateway, IPAddress("10.1.0.1"))
            XCTAssertEqual(r.ips[0].interface, 2)
            XCTAssertEqual(r.ips[1].version, "6")
            XCTAssertEqual(r.routes[0].dst, CIDR("0.0.0.0/0"))
            XCTAssertNil(r.routes[0].gw)
            XCTAssertEqual(r.routes[1].gw, IPAddress("2001:db8::1"))
            XCTAssertEqual(r.dns.nameservers, ["10.1.0.1"])
            XCTAssertEqual(r.dns.domain, "example.com")
            XCTAssertEqual(r.dns.search, ["example.com"])
            XCTAssertEqual(r.dns.options, ["ndots:2"])
        }
    }

    func testLegacyRoundTripIsExact() throws {
        let r = try CNIResult.decode(Array(legacyExample.utf8))
        XCTAssertEqual(try r.json(version: "0.4.0"), try json(legacyExample))
    }

    func testDecode110ExampleAndRoundTrip() throws {
        let r = try CNIResult.decode(Array(v110Example.utf8))
        XCTAssertEqual(r.interfaces[1].mtu, 1450)
        XCTAssertEqual(r.interfaces[1].socketPath, "/run/vhost.sock")
        XCTAssertEqual(r.interfaces[1].pciID, "0000:00:1f.6")
        XCTAssertEqual(r.routes[0].mtu, 1400)
        XCTAssertEqual(r.routes[0].advmss, 1360)
        XCTAssertEqual(r.routes[0].priority, 100)
        XCTAssertEqual(r.routes[0].table, 52)
        XCTAssertEqual(r.routes[0].scope, 0)
        XCTAssertEqual(try r.json(version: "1.1.0"), try json(v110Example))
    }

    func testDown110To100DropsOnly110Fields() throws {
        let r = try CNIResult.decode(Array(v110Example.utf8))
        let out = try r.json(version: "1.0.0")
        XCTAssertEqual(out["cniVersion"], "1.0.0")
        XCTAssertEqual(out["interfaces"]?.arrayValue?[1],
                       ["name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"])
        XCTAssertEqual(out["routes"], [["dst": "0.0.0.0/0", "gw": "10.1.0.1"]])
        XCTAssertEqual(out["ips"], [["address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1]])
        XCTAssertNil(out["ips"]?.arrayValue?[0]["version"])
    }

    func testDown110To030KeepsEverything030Has() throws {
        let r = try CNIResult.decode(Array(v110Example.utf8))
        let out = try r.json(version: "0.3.0")
        XCTAssertEqual(out, try json("""
        {"cniVersion": "0.3.0",
         "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}],
         "ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1}],
         "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
         "dns": {"nameservers": ["10.1.0.1"]}}
        """))
        // And back up: the 0.3.0 bytes decode to the same result minus the 1.1 fields.
        let back = try CNIResult.decode(out.serialized())
        XCTAssertEqual(back.ips, r.ips)
        XCTAssertEqual(back.interfaces.map(\.name), ["cni0", "eth0"])
        XCTAssertNil(back.interfaces[1].mtu)
    }

    func testUpFromLegacyDropsVersionField() throws {
        let r = try CNIResult.decode(Array(legacyExample.utf8))
        for v in ["1.0.0", "1.1.0"] {
            let out = try r.converted(to: v).json(version: v)
            XCTAssertEqual(out["cniVersion"]?.stringValue, v)
            for ip in out["ips"]?.arrayValue ?? [] { XCTAssertNil(ip["version"]) }
            XCTAssertEqual(out["ips"]?.arrayValue?.count, 2)
            XCTAssertEqual(out["dns"], try json(legacyExample)["dns"])
        }
        for v in ["0.3.0", "0.3.1", "0.4.0"] {
            let out = try r.json(version: v)
            XCTAssertEqual(out["ips"]?.arrayValue?.map { $0["version"]?.stringValue }, ["4", "6"])
        }
    }

    func testUnsupportedVersionsAreCode1() {
        for v in ["0.2.0", "0.1.0", "2.0.0", "", "abc"] {
            XCTAssertThrowsError(try CNIResult().converted(to: v)) { XCTAssertEqual(($0 as? CNIError)?.code, 1, v) }
            XCTAssertThrowsError(try CNIResult().encoded(version: v)) { XCTAssertEqual(($0 as? CNIError)?.code, 1, v) }
        }
        let old = #"{"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/16"}}"#
        XCTAssertThrowsError(try CNIResult.decode(Array(old.utf8))) { XCTAssertEqual(($0 as? CNIError)?.code, 1) }
    }

    func testMalformedAndInvalidResults() {
        XCTAssertThrowsError(try CNIResult.decode(Array("{\"cniVersion\":".utf8))) {
            XCTAssertEqual(($0 as? CNIError)?.code, 6)
        }
        // Missing required field (ips[].address) -> 7, naming the field.
        XCTAssertThrowsError(try CNIResult.decode(Array(#"{"cniVersion":"1.0.0","ips":[{"gateway":"10.0.0.1"}]}"#.utf8))) {
            let e = $0 as? CNIError
            XCTAssertEqual(e?.code, 7)
            XCTAssertTrue(e?.msg.contains("ips[0].address") ?? false, e?.msg ?? "")
        }
        // Wrong type -> 6.
        XCTAssertThrowsError(try CNIResult.decode(Array(#"{"cniVersion":"1.0.0","ips":"x"}"#.utf8))) {
            XCTAssertEqual(($0 as? CNIError)?.code, 6)
        }
        // A "version" that contradicts the address, a bad CIDR, an index out of range -> 7.
        for bad in [#"{"cniVersion":"0.4.0","ips":[{"version":"6","address":"10.0.0.2/24"}]}"#,
                    #"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.300/24"}]}"#,
                    #"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","interface":3}]}"#] {
            XCTAssertThrowsError(try CNIResult.decode(Array(bad.utf8))) { XCTAssertEqual(($0 as? CNIError)?.code, 7, bad) }
        }
    }

    func testDecodeWithExpectedVersionLabelsUnversionedResult() throws {
        let r = try CNIResult.decode(Array(#"{"ips":[{"address":"10.0.0.2/24"}]}"#.utf8), version: "0.3.1")
        XCTAssertEqual(r.cniVersion, "0.3.1")
        XCTAssertEqual(String(decoding: try r.encoded(), as: UTF8.self),
                       #"{"cniVersion":"0.3.1","ips":[{"address":"10.0.0.2/24","version":"4"}]}"#)
    }

    func testEmptyResultEncodesOnlyVersion() throws {
        XCTAssertEqual(String(decoding: try CNIResult(cniVersion: "1.0.0").encoded(), as: UTF8.self),
                       #"{"cniVersion":"1.0.0"}"#)
    }

    func testCodableThroughJSONEncoder() throws {
        let r = try CNIResult.decode(Array(v110Example.utf8))
        let data = try JSONEncoder().encode(r)
        XCTAssertEqual(try JSONDecoder().decode(CNIResult.self, from: data), r)
    }

    func testVersionNegotiation() {
        XCTAssertEqual(CNIVersion.negotiate(["0.3.1", "0.4.0", "1.0.0", "1.1.0"]), "1.1.0")
        XCTAssertEqual(CNIVersion.negotiate(["0.2.0", "0.4.0", "9.9.9"]), "0.4.0")
        XCTAssertNil(CNIVersion.negotiate(["0.1.0", "0.2.0"]))
        XCTAssertTrue(CNIVersion("0.10.0")! > CNIVersion("0.4.0")!)
    }
}
