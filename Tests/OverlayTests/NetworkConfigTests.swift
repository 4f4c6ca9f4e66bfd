// flannel's network config: its defaults, and the bad configs refused with the field named.

import NetTypes
import Overlay
import XCTest

final class NetworkConfigTests: XCTestCase {
    private func config(_ json: String) throws -> NetworkConfig { try NetworkConfig(json: json) }

    /// Asserts that `json` is refused with `field` named and `words` in the message.
    private func assertRefused(_ json: String, field: String?, _ words: String..., line: UInt = #line) {
        XCTAssertThrowsError(try config(json), line: line) { error in
            guard let e = error as? FormatError else { return XCTFail("not a FormatError: \(error)", line: line) }
            XCTAssertEqual(e.field, field, "\(e)", line: line)
            XCTAssertEqual(e.document, "network config", line: line)
            for w in words { XCTAssertTrue(e.description.contains(w), "\"\(e)\" lacks \"\(w)\"", line: line) }
        }
    }

    func testDefaultsOfASlash16() throws {
        let c = try config(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan"}}"#)
        let v4 = try XCTUnwrap(c.ipv4)
        XCTAssertEqual(v4.network, CIDR("10.5.0.0/16"))
        XCTAssertEqual(v4.subnetLength, 24)
        XCTAssertEqual(v4.subnetMin, IPAddress("10.5.1.0"), "the first subnet is never handed out")
        XCTAssertEqual(v4.subnetMax, IPAddress("10.5.255.0"))
        XCTAssertNil(c.ipv6)
        XCTAssertEqual(c.backend, VXLANBackend())
        XCTAssertEqual(c.backend.vni, 1)
        XCTAssertEqual(c.backend.port, 8472)
        XCTAssertNil(c.backend.mtu)
    }

    func testSubnetLengthDefaultsFollowTheNetworkSize() throws {
        XCTAssertEqual(try config(#"{"Network": "10.0.0.0/22"}"#).ipv4?.subnetLength, 24)
        XCTAssertEqual(try config(#"{"Network": "10.0.0.0/23"}"#).ipv4?.subnetLength, 25)
        let small = try XCTUnwrap(try config(#"{"Network": "10.0.0.0/28"}"#).ipv4)
        XCTAssertEqual(small.subnetLength, 30)
        XCTAssertEqual(small.subnetMin, IPAddress("10.0.0.4"))
        XCTAssertEqual(small.subnetMax, IPAddress("10.0.0.12"))
        assertRefused(#"{"Network": "10.0.0.0/29"}"#, field: "Network", "too small", "/28")
    }

    func testNetworkHostBitsAreClearedAsFlannelParsesIt() throws {
        XCTAssertEqual(try config(#"{"Network": "10.5.7.9/16"}"#).ipv4?.network, CIDR("10.5.0.0/16"))
    }

    func testExplicitRangeAndBackend() throws {
        let c = try config("""
            {"Network": "10.0.0.0/8", "SubnetLen": 20, "SubnetMin": "10.10.0.0", "SubnetMax": "10.99.0.0",
             "EnableNFTables": true,
             "Backend": {"Type": "vxlan", "VNI": 42, "Port": 4789, "MTU": 1400, "GBP": true, "Learning": true,
                         "DirectRouting": true}}
            """)
        XCTAssertEqual(c.ipv4, SubnetRange(network: CIDR("10.0.0.0/8")!, subnetLength: 20,
                                           subnetMin: IPAddress("10.10.0.0")!, subnetMax: IPAddress("10.99.0.0")!))
        XCTAssertTrue(c.enableNFTables)
        XCTAssertEqual(c.backend.vni, 42)
        XCTAssertEqual(c.backend.port, 4789)
        XCTAssertEqual(c.backend.mtu, 1400)
        XCTAssertTrue(c.backend.gbp && c.backend.learning && c.backend.directRouting)
    }

    func testKeysMatchIgnoringCaseAsGoDoes() throws {
        // flannel's vxlan struct tags are lower case ("vni", "directRouting"); Go matches any case.
        let c = try config(#"{"network": "10.5.0.0/16", "backend": {"type": "vxlan", "vni": 7, "directRouting": true, "port": 0}}"#)
        XCTAssertEqual(c.ipv4?.network, CIDR("10.5.0.0/16"))
        XCTAssertEqual(c.backend.vni, 7)
        XCTAssertTrue(c.backend.directRouting)
        XCTAssertEqual(c.backend.port, 8472, "Port 0 means the kernel's VXLAN port")
    }

    func testIPv6Defaults() throws {
        let c = try config(#"{"EnableIPv6": true, "Network": "10.5.0.0/16", "IPv6Network": "fc00::/48"}"#)
        let v6 = try XCTUnwrap(c.ipv6)
        XCTAssertEqual(v6.subnetLength, 64)
        XCTAssertEqual(v6.subnetMin, IPAddress("fc00:0:0:1::"))
        XCTAssertEqual(v6.subnetMax, IPAddress("fc00:0:0:ffff::"))
        XCTAssertEqual(try config(#"{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fc00::/64"}"#).ipv6?.subnetLength, 66)
        XCTAssertNil(try config(#"{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fc00::/64"}"#).ipv4)
    }

    func testRefusedSubnetLengths() {
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetLen": 31}"#, field: "SubnetLen", "at most 30")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetLen": 17}"#, field: "SubnetLen", "at least 18", "four subnets")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetLen": -1}"#, field: "SubnetLen", "negative")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetLen": "24"}"#, field: "SubnetLen", "whole number")
        assertRefused(#"{"EnableIPv6": true, "Network": "10.5.0.0/16", "IPv6Network": "fc00::/48", "IPv6SubnetLen": 127}"#,
                      field: "IPv6SubnetLen", "at most 126")
    }

    func testRefusedRanges() {
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetMin": "10.6.0.0"}"#, field: "SubnetMin", "outside Network 10.5.0.0/16")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetMax": "10.4.255.0"}"#, field: "SubnetMax", "outside")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetMin": "10.5.1.128"}"#, field: "SubnetMin", "boundary", "overlap")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetMin": "10.5.9.0", "SubnetMax": "10.5.3.0"}"#,
                      field: "SubnetMin", "after SubnetMax 10.5.3.0")
        assertRefused(#"{"Network": "10.5.0.0/16", "SubnetMin": "fc00::"}"#, field: "SubnetMin", "not an IPv4 address")
        assertRefused(#"{"EnableIPv6": true, "Network": "10.5.0.0/16", "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fd00::"}"#,
                      field: "IPv6SubnetMin", "outside IPv6Network")
    }

    func testRefusedNetworks() {
        assertRefused(#"{"SubnetLen": 24}"#, field: "Network", "required when EnableIPv4")
        assertRefused(#"{"Network": "fc00::/48"}"#, field: "Network", "not an IPv4 prefix")
        assertRefused(#"{"Network": "10.5.0.0"}"#, field: "Network", "not an IPv4 prefix")
        assertRefused(#"{"Network": "10.5.0.0/16", "EnableIPv6": true}"#, field: "IPv6Network", "required when EnableIPv6")
        assertRefused(#"{"EnableIPv4": false}"#, field: "EnableIPv4", "both false")
        assertRefused(#"{"Network": "10.5.0.0/16", "EnableIPv4": "yes"}"#, field: "EnableIPv4", "true or false")
        assertRefused("Network=10.5.0.0/16", field: nil, "not valid JSON")
        assertRefused("[1, 2]", field: nil, "JSON object")
    }

    func testRefusedBackends() {
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "host-gw"}}"#, field: "Backend.Type",
                      "\"host-gw\" is not supported", "supported: vxlan")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "udp", "Port": 7890}}"#, field: "Backend.Type", "udp")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"VNI": 1}}"#, field: "Backend.Type", "required", "vxlan")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "VNI": 16777216}}"#, field: "Backend.VNI", "16777215")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "Port": 70000}}"#, field: "Backend.Port", "65535")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "MTU": 40}}"#, field: "Backend.MTU", "between 68")
        assertRefused(#"{"Network": "10.5.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48", "Backend": {"Type": "vxlan", "MTU": 1000}}"#,
                      field: "Backend.MTU", "1280")
        assertRefused(#"{"Network": "10.5.0.0/16", "Backend": "vxlan"}"#, field: "Backend", "JSON object")
    }

    func testTypeIsCaseInsensitiveAndNullBackendIsTheDefault() throws {
        XCTAssertEqual(try config(#"{"Network": "10.5.0.0/16", "Backend": {"Type": "VXLAN"}}"#).backend, VXLANBackend())
        XCTAssertEqual(try config(#"{"Network": "10.5.0.0/16", "Backend": null}"#).backend, VXLANBackend())
    }
}
