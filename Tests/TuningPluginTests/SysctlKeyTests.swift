import XCTest
import CNI
@testable import TuningPlugin

/// Which sysctl keys the tuning plugin accepts and the path each one names.
final class SysctlKeyTests: XCTestCase {
    func testNetworkKeysResolveBelowProcSysNet() throws {
        XCTAssertEqual(try SysctlKey("net.core.somaxconn", ifName: "eth0").path, "net/core/somaxconn")
        XCTAssertEqual(try SysctlKey("net.ipv4.conf.IFNAME.arp_filter", ifName: "eth0").path, "net/ipv4/conf/eth0/arp_filter")
        // An interface name with a dot (a VLAN) stays one component.
        XCTAssertEqual(try SysctlKey("net.ipv6.conf.IFNAME.mtu", ifName: "eth0.100").components,
                       ["net", "ipv6", "conf", "eth0.100", "mtu"])
    }

    func testEverythingElseIsCode7NamingTheKey() {
        for key in ["kernel.hostname", "net", "", ".net.core", "net.", "net..core", "net/core/somaxconn",
                    "net.ipv4.conf/../../../kernel/hostname", "../net.core.x", "vm.swappiness", "net.core.a\u{0}b",
                    "NET.core.somaxconn"] {
            XCTAssertThrowsError(try SysctlKey(key, ifName: "eth0"), key) { e in
                let err = e as? CNIError
                XCTAssertEqual(err?.code, .invalidNetworkConfig, key)
                XCTAssertTrue(err?.msg.contains("\"\(key)\"") ?? false, "\(key): \(String(describing: err))")
            }
        }
    }

    func testKeysNamingOnePathMustAgree() throws {
        let same = try SysctlKey.resolve(["net.ipv4.conf.eth0.arp_filter": "1", "net.ipv4.conf.IFNAME.arp_filter": "1"], ifName: "eth0")
        XCTAssertEqual(same.count, 1)
        XCTAssertThrowsError(try SysctlKey.resolve(["net.ipv4.conf.eth0.arp_filter": "1", "net.ipv4.conf.IFNAME.arp_filter": "0"],
                                                   ifName: "eth0"))
        XCTAssertThrowsError(try SysctlKey.resolve(["net.core.somaxconn": "1\n2"], ifName: "eth0"))
    }

    func testValuesCompareAcrossWhiteSpace() {
        XCTAssertTrue(SysctlKey.sameValue("0 1000", "0\t1000"))
        XCTAssertTrue(SysctlKey.sameValue("4096", "4096"))
        XCTAssertFalse(SysctlKey.sameValue("1", "0"))
        XCTAssertFalse(SysctlKey.sameValue("0 1000", "0 100"))
    }
}
