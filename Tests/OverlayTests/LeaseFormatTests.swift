// Lease keys and values against golden strings written the way flanneld writes them.

import NetTypes
import Overlay
import XCTest

final class LeaseFormatTests: XCTestCase {
    private let mac = MACAddress("0e:3b:4a:62:1d:7f")!
    private let mac6 = MACAddress("6a:10:22:0b:91:c4")!

    func testKeysAsFlannelWritesThem() {
        let layout = StoreLayout()
        let v4 = SubnetKey(ipv4: CIDR("10.5.1.0/24"))
        XCTAssertEqual(layout.leaseKey(v4), "/coreos.com/network/subnets/10.5.1.0-24")
        XCTAssertEqual(layout.configKey, "/coreos.com/network/config")
        let dual = SubnetKey(ipv4: CIDR("10.5.1.0/24"), ipv6: CIDR("fc00:0:0:1::/64"))
        XCTAssertEqual(layout.leaseKey(dual), "/coreos.com/network/subnets/10.5.1.0-24&fc00:0:0:1::-64")
        XCTAssertEqual(SubnetKey(ipv4: nil, ipv6: CIDR("fc00:0:0:2::/64")).text, "0.0.0.0-0&fc00:0:0:2::-64")
        XCTAssertEqual(StoreLayout(prefix: "/my/net/").leaseKey(v4), "/my/net/subnets/10.5.1.0-24")
    }

    func testKeysParseBack() {
        let layout = StoreLayout(prefix: "/custom")
        XCTAssertEqual(layout.subnets(ofKey: "/custom/subnets/10.5.1.0-24"), SubnetKey(ipv4: CIDR("10.5.1.0/24")))
        XCTAssertEqual(layout.subnets(ofKey: "/custom/subnets/10.5.1.0-24&fc00:0:0:1::-64"),
                       SubnetKey(ipv4: CIDR("10.5.1.0/24"), ipv6: CIDR("fc00:0:0:1::/64")))
        XCTAssertEqual(layout.subnets(ofKey: "/custom/subnets/0.0.0.0-0&fc00::-64"), SubnetKey(ipv4: nil, ipv6: CIDR("fc00::/64")))
        for bad in ["/custom/config", "/coreos.com/network/subnets/10.5.1.0-24", "/custom/subnets/10.5.1.0",
                    "/custom/subnets/10.5.1.7-24", "/custom/subnets/10.5.1.0-33", "/custom/subnets/fc00::-64",
                    "/custom/subnets/10.5.1.0-24&10.6.0.0-16", "/custom/subnets/0.0.0.0-0"] {
            XCTAssertNil(layout.subnets(ofKey: bad), bad)
        }
    }

    func testValueGoldenIPv4() throws {
        let attrs = LeaseAttributes(publicIP: IPAddress("192.168.1.10"), backendData: VXLANLeaseData(vni: 1, vtepMAC: mac))
        let golden = #"{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:3b:4a:62:1d:7f"}}"#
        XCTAssertEqual(attrs.json, golden)
        XCTAssertEqual(try LeaseAttributes(json: golden), attrs)
        XCTAssertEqual(try LeaseAttributes(json: golden).json, golden)
    }

    func testValueGoldenDualStack() throws {
        let attrs = LeaseAttributes(publicIP: IPAddress("192.168.1.10"), publicIPv6: IPAddress("fd00::10"),
                                    backendData: VXLANLeaseData(vni: 4096, vtepMAC: mac),
                                    backendV6Data: VXLANLeaseData(vni: 4096, vtepMAC: mac6))
        let golden = #"{"PublicIP":"192.168.1.10","PublicIPv6":"fd00::10","BackendType":"vxlan","#
            + #""BackendData":{"VNI":4096,"VtepMAC":"0e:3b:4a:62:1d:7f"},"BackendV6Data":{"VNI":4096,"VtepMAC":"6a:10:22:0b:91:c4"}}"#
        XCTAssertEqual(attrs.json, golden)
        XCTAssertEqual(try LeaseAttributes(json: golden), attrs)
    }

    func testValueGoldenIPv6Only() throws {
        // flanneld's PublicIP is a value type: a host without IPv4 writes 0.0.0.0.
        let attrs = LeaseAttributes(publicIP: nil, publicIPv6: IPAddress("fd00::10"), backendData: nil,
                                    backendV6Data: VXLANLeaseData(vni: 1, vtepMAC: mac6))
        let golden = #"{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::10","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"6a:10:22:0b:91:c4"}}"#
        XCTAssertEqual(attrs.json, golden)
        XCTAssertEqual(try LeaseAttributes(json: golden), attrs)
    }

    func testForeignValuesAreRead() throws {
        // Spacing, key case and another backend's data as other writers may leave them.
        let spaced = try LeaseAttributes(json: """
            { "publicip": "10.0.0.7", "BackendType": "vxlan", "BackendData": { "vni": 1, "vtepmac": "0E:3B:4A:62:1D:7F" } }
            """)
        XCTAssertEqual(spaced.publicIP, IPAddress("10.0.0.7"))
        XCTAssertEqual(spaced.backendData, VXLANLeaseData(vni: 1, vtepMAC: mac))
        let hostGW = try LeaseAttributes(json: #"{"PublicIP":"10.0.0.8","PublicIPv6":null,"BackendType":"host-gw","BackendData":{"Foo":[1,2]}}"#)
        XCTAssertEqual(hostGW.backendType, "host-gw")
        XCTAssertNil(hostGW.backendData)
    }

    func testBadValuesNameTheField() {
        let cases: [(String, String)] = [
            (#"{"PublicIP":"10.0.0.300","BackendType":"vxlan"}"#, "PublicIP"),
            (#"{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}"#, "PublicIPv6"),
            (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}"#, "BackendData.VtepMAC"),
            (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:3b:4a:62:1d:7f"}}"#, "BackendData.VNI"),
        ]
        for (json, field) in cases {
            XCTAssertThrowsError(try LeaseAttributes(json: json, document: "lease 10.5.1.0-24")) { error in
                XCTAssertEqual((error as? FormatError)?.field, field, json)
                XCTAssertTrue("\(error)".hasPrefix("lease 10.5.1.0-24: field \"\(field)\""), "\(error)")
            }
        }
        XCTAssertThrowsError(try LeaseAttributes(json: "nope"))
    }

    func testLeaseFromStoreEntry() throws {
        let layout = StoreLayout()
        let value = #"{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:3b:4a:62:1d:7f"}}"#
        let entry = StoreEntry(key: "/coreos.com/network/subnets/10.5.3.0-24", value: Array(value.utf8),
                               createRevision: 7, modRevision: 9)
        let lease = try XCTUnwrap(try Lease(entry, layout: layout))
        XCTAssertEqual(lease.subnets, SubnetKey(ipv4: CIDR("10.5.3.0/24")))
        XCTAssertEqual(lease.attributes.backendData?.vtepMAC, mac)
        XCTAssertEqual(lease.createRevision, 7)
        XCTAssertEqual(lease.modRevision, 9)
        XCTAssertNil(try Lease(StoreEntry(key: "/coreos.com/network/config", value: [], createRevision: 1, modRevision: 1),
                               layout: layout))
        let broken = StoreEntry(key: "/coreos.com/network/subnets/10.5.4.0-24", value: Array("{".utf8), createRevision: 1, modRevision: 1)
        XCTAssertThrowsError(try Lease(broken, layout: layout)) { XCTAssertTrue("\($0)".contains("lease 10.5.4.0-24")) }
    }
}
