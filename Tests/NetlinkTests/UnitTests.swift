@testable import Netlink
import CNetlink
import XCTest

/// Pure unit tests: no namespaces, no kernel.
final class NetlinkUnitTests: XCTestCase {
    func testNLECodesMapBackToErrno() {
        XCTAssertEqual(errnoFromNLE(-NLE_EXIST), EEXIST)
        XCTAssertEqual(errnoFromNLE(-NLE_OBJ_NOTFOUND), ENOENT)
        XCTAssertEqual(errnoFromNLE(-NLE_NODEV), ENODEV)
        XCTAssertEqual(errnoFromNLE(-NLE_BUSY), EBUSY)
        XCTAssertEqual(errnoFromNLE(NLE_PERM), EPERM)
        XCTAssertEqual(errnoFromNLE(-NLE_NOADDR), EADDRNOTAVAIL)
        XCTAssertEqual(errnoFromNLE(-9999), EIO)
    }

    func testErrorClassificationAndText() {
        let e = NetlinkError(operation: "add veth", object: "veth0 peer eth0", errno: EEXIST, message: "File exists")
        XCTAssertTrue(e.isAlreadyExists)
        XCTAssertFalse(e.isNotFound)
        XCTAssertEqual(e.description, "add veth veth0 peer eth0: EEXIST (File exists): File exists")
        for code in [ENODEV, ENOENT, ESRCH, EADDRNOTAVAIL] {
            XCTAssertTrue(NetlinkError(operation: "x", object: "y", errno: code).isNotFound, "\(code)")
        }
        XCTAssertTrue(NetlinkError(operation: "x", object: "y", errno: EBUSY).isBusy)
    }

    func testSysctlKeyForms() {
        XCTAssertEqual(Sysctl.procPath("net/ipv4/ip_forward"), "/proc/sys/net/ipv4/ip_forward")
        XCTAssertEqual(Sysctl.procPath("net.ipv4.conf.all.rp_filter"), "/proc/sys/net/ipv4/conf/all/rp_filter")
        XCTAssertEqual(Sysctl.procPath("/proc/sys/net/ipv6/conf/eth0/accept_dad"), "/proc/sys/net/ipv6/conf/eth0/accept_dad")
        XCTAssertEqual(Sysctl.procPath("net/ipv4/conf/eth0.100/forwarding"), "/proc/sys/net/ipv4/conf/eth0.100/forwarding")
    }

    func testNamedNamespacePaths() {
        XCTAssertEqual(NetworkNamespace.path(named: "blue"), "/run/netns/blue")
        XCTAssertEqual(NetworkNamespace.path(named: "/proc/1/ns/net"), "/proc/1/ns/net")
        XCTAssertThrowsError(try NetworkNamespace.create(named: "../evil")) { XCTAssertEqual(($0 as! NetlinkError).errno, EINVAL) }
    }
}
