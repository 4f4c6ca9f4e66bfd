import XCTest
import NetTypes

final class IPAddressTests: XCTestCase {
    func testParsesAndFormatsIPv4() {
        XCTAssertEqual(IPAddress("10.22.0.5"), .v4(0x0a16_0005))
        XCTAssertEqual(IPAddress("10.22.0.5")?.description, "10.22.0.5")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "a.b.c.d", "1..2.3", " 1.2.3.4"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
    }

    func testParsesAndFormatsIPv6Canonically() {
        let cases: [(String, String)] = [
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("fe80::", "fe80::"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ]
        for (input, canonical) in cases {
            XCTAssertEqual(IPAddress(input)?.description, canonical, input)
        }
        for bad in [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::1", "fe80::1%eth0"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
    }

    func testBytesRoundTrip() {
        for s in ["192.168.1.200", "2001:db8::abcd:1"] {
            let ip = IPAddress(s)!
            XCTAssertEqual(IPAddress(bytes: ip.bytes), ip)
        }
        XCTAssertEqual(IPAddress("1.2.3.4")!.bytes, [1, 2, 3, 4])
    }

    func testArithmetic() {
        XCTAssertEqual(IPAddress("10.0.0.255")!.next, IPAddress("10.0.1.0"))
        XCTAssertEqual(IPAddress("10.0.1.0")!.previous, IPAddress("10.0.0.255"))
        XCTAssertNil(IPAddress("255.255.255.255")!.next)
        XCTAssertEqual(IPAddress("::ffff:ffff:ffff:ffff")!.next, IPAddress("0:0:0:1::"))
        XCTAssertEqual(IPAddress("0:0:0:1::")!.previous, IPAddress("::ffff:ffff:ffff:ffff"))
        XCTAssertEqual(IPAddress("10.0.0.1")!.distance(to: IPAddress("10.0.1.1")!), 256)
        XCTAssertEqual(IPAddress("2001:db8::10")!.distance(to: IPAddress("2001:db8::1")!), -15)
        XCTAssertNil(IPAddress("10.0.0.1")!.distance(to: IPAddress("::1")!))
        XCTAssertTrue(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
    }

    func testClassification() {
        XCTAssertTrue(IPAddress("127.0.0.53")!.isLoopback)
        XCTAssertTrue(IPAddress("::1")!.isLoopback)
        XCTAssertTrue(IPAddress("fe80::1")!.isLinkLocal)
        XCTAssertTrue(IPAddress("169.254.1.1")!.isLinkLocal)
        XCTAssertFalse(IPAddress("10.1.1.1")!.isLinkLocal)
    }
}

final class CIDRTests: XCTestCase {
    func testParsingKeepsHostBits() {
        let c = CIDR("10.22.0.5/16")!
        XCTAssertEqual(c.address, IPAddress("10.22.0.5"))
        XCTAssertEqual(c.prefixLength, 16)
        XCTAssertEqual(c.network.description, "10.22.0.0/16")
        XCTAssertEqual(c.lastAddress, IPAddress("10.22.255.255"))
        XCTAssertEqual(c.netmask, IPAddress("255.255.0.0"))
        XCTAssertEqual(c.size, 65536)
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "::/129", "10.0.0.0/", "/24", "10.0.0.0/2a"] {
            XCTAssertNil(CIDR(bad), bad)
        }
    }

    func testContainment() {
        let net = CIDR("10.1.0.0/16")!
        XCTAssertTrue(net.contains(IPAddress("10.1.200.3")!))
        XCTAssertFalse(net.contains(IPAddress("10.2.0.1")!))
        XCTAssertFalse(net.contains(IPAddress("::1")!))
        XCTAssertTrue(net.contains(CIDR("10.1.4.0/24")!))
        XCTAssertFalse(net.contains(CIDR("10.0.0.0/8")!))
        XCTAssertTrue(net.overlaps(CIDR("10.0.0.0/8")!))
        XCTAssertFalse(net.overlaps(CIDR("10.2.0.0/16")!))
        let v6 = CIDR("2001:db8:1::/64")!
        XCTAssertTrue(v6.contains(IPAddress("2001:db8:1::ffff")!))
        XCTAssertEqual(v6.lastAddress, IPAddress("2001:db8:1:0:ffff:ffff:ffff:ffff"))
        XCTAssertEqual(v6.size, Int64.max)
    }

    func testCodableRoundTrip() throws {
        struct Box: Codable, Equatable { var c: CIDR; var ip: IPAddress; var mac: MACAddress }
        let json = #"{"c":"10.1.2.3\/24","ip":"2001:db8::1","mac":"0a:58:0a:01:02:03"}"#
        let box = try JSONDecoder().decode(Box.self, from: Data(json.utf8))
        XCTAssertEqual(box.c, CIDR("10.1.2.3/24"))
        let again = try JSONDecoder().decode(Box.self, from: try JSONEncoder().encode(box))
        XCTAssertEqual(again, box)
        XCTAssertThrowsError(try JSONDecoder().decode(Box.self, from: Data(#"{"c":"nope","ip":"1.1.1.1","mac":"00:00:00:00:00:00"}"#.utf8)))
    }
}

final class MACAddressTests: XCTestCase {
    func testParseAndFormat() {
        XCTAssertEqual(MACAddress("0A:58:0a:01:02:03")?.description, "0a:58:0a:01:02:03")
        XCTAssertEqual(MACAddress("0a-58-0a-01-02-03")?.description, "0a:58:0a:01:02:03")
        XCTAssertNil(MACAddress("0a:58:0a:01:02"))
        XCTAssertNil(MACAddress("0a:58:0a:01:02:zz"))
        XCTAssertTrue(MACAddress("01:00:5e:00:00:01")!.isMulticast)
        XCTAssertEqual(MACAddress.derived(from: IPAddress("10.1.2.3")!)?.description, "0a:58:0a:01:02:03")
    }
}
