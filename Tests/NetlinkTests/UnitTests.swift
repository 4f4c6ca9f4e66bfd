@testable import Netlink
import CNetlink
import NetTypes
import SystemKit
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
        XCTAssertTrue(NetlinkError(operation: "x", object: "y", errno: EBUSY).kind == .busy)
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
        XCTAssertThrowsError(try NetworkNamespace.create(named: "../evil")) { XCTAssertEqual(($0 as! NetlinkError).errno, Errno(EINVAL)) }
    }
}

/// Golden bytes of the requests the module builds by hand (little-endian host). NLM_F_REQUEST
/// and the sequence number are added by libnl when the message is sent.
final class NetlinkMessageTests: XCTestCase {
    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    private func le32(_ v: Int) -> [UInt8] { le16(v & 0xffff) + le16(v >> 16) }
    private func header(len: Int, type: Int, flags: Int) -> [UInt8] { le32(len) + le16(type) + le16(flags) + le32(0) + le32(0) }
    private func ifinfo(family: UInt8, index: Int) -> [UInt8] { [family, 0] + le16(0) + le32(index) + le32(0) + le32(0) }
    private func attr(_ type: Int, _ payload: [UInt8]) -> [UInt8] {
        let padded = payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
        return le16(4 + payload.count) + le16(type) + padded
    }

    func testBridgeRequest() throws {
        let m = try RouteSocket.bridgeRequest(name: "br0", mtu: 1450, mac: MACAddress("02:00:00:00:00:01")!, vlanFiltering: true)
        let body = ifinfo(family: 0, index: 0)
            + attr(3, Array("br0".utf8) + [0])
            + attr(4, le32(1450))
            + attr(1, [2, 0, 0, 0, 0, 1])
            + attr(18 | 0x8000, attr(1, Array("bridge".utf8) + [0]) + attr(2 | 0x8000, attr(7, [1])))
        XCTAssertEqual(m.bytes, header(len: 16 + body.count, type: 16, flags: 0x400 | 0x200 | 0x4) + body)
    }

    func testBridgePortAndVLANRequests() throws {
        let port = try RouteSocket.bridgePortRequest(7) { try $0.put(4, u8: 1); try $0.put(33, u8: 0) }
        let pbody = ifinfo(family: 7, index: 7) + attr(12 | 0x8000, attr(4, [1]) + attr(33, [0]))
        XCTAssertEqual(port.bytes, header(len: 16 + pbody.count, type: 19, flags: 0x4) + pbody)

        let vlan = try RouteSocket.bridgeVLANRequest(19, 9, vid: 42, pvid: true, untagged: true)
        let vbody = ifinfo(family: 7, index: 9) + attr(26 | 0x8000, attr(2, le16(6) + le16(42)))
        XCTAssertEqual(vlan.bytes, header(len: 16 + vbody.count, type: 19, flags: 0x4) + vbody)
    }

    /// An attribute that does not fit fails the build with EMSGSIZE; nothing half-built is
    /// left to send.
    func testOversizedRequestFailsInsteadOfTruncating() throws {
        XCTAssertThrowsError(try RouteSocket.bridgePortRequest(7) { try $0.put(4, bytes: [UInt8](repeating: 1, count: 1 << 16)) }) {
            let e = $0 as? SystemError
            XCTAssertEqual(e?.errno, .messageTooLong, "\($0)")
            XCTAssertEqual(e?.operation, "build netlink message")
        }
        let m = try NetlinkMessage(type: RTM.setLink, flags: 0)
        XCTAssertThrowsError(try m.nest(IFLA.linkinfo) { try m.put(IFLA.infoKind, string: String(repeating: "x", count: 1 << 16)) }) {
            XCTAssertEqual(($0 as? SystemError)?.errno, .messageTooLong, "\($0)")
        }
        // A request that fits is unaffected.
        XCTAssertNoThrow(try RouteSocket.bridgePortRequest(7) { try $0.put(4, bytes: [UInt8](repeating: 1, count: 512)) })
    }
}
