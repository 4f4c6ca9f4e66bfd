// macvlan and ipvlan links: the requests' golden bytes, and the kernel's answer read back
// with `ip -d -j link` and through the module itself.

@testable import Netlink
import Foundation
import NetTypes
import TestSupport
import SystemKit
import XCTest

final class ChildLinkRequestTests: XCTestCase {
    private func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    private func le32(_ v: Int) -> [UInt8] { le16(v & 0xffff) + le16(v >> 16) }
    private func header(len: Int) -> [UInt8] { le32(len) + le16(16) + le16(0x400 | 0x200 | 0x4) + le32(0) + le32(0) }
    private func attr(_ type: Int, _ payload: [UInt8]) -> [UInt8] {
        let padded = payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
        return le16(4 + payload.count) + le16(type) + padded
    }
    private let ifinfo: [UInt8] = [UInt8](repeating: 0, count: 16)

    func testMacvlanRequest() throws {
        let spec = MacvlanSpec(name: "eth0", parentIndex: 7, mode: .vepa, mtu: 1400, mac: MACAddress("02:00:00:00:00:09")!,
                               broadcastQueueLength: 100)
        let body = ifinfo
            + attr(3, Array("eth0".utf8) + [0])      // IFLA_IFNAME
            + attr(5, le32(7))                       // IFLA_LINK
            + attr(4, le32(1400))                    // IFLA_MTU
            + attr(1, [2, 0, 0, 0, 0, 9])            // IFLA_ADDRESS
            + attr(28, le32(42))                     // IFLA_NET_NS_FD
            + attr(18 | 0x8000, attr(1, Array("macvlan".utf8) + [0])
                   + attr(2 | 0x8000, attr(1, le32(2)) + attr(7, le32(100))))
        XCTAssertEqual(try RouteSocket.macvlanRequest(spec, namespaceFD: 42).bytes, header(len: 16 + body.count) + body)
    }

    func testIpvlanRequestWithoutNamespaceOrOptionalAttributes() throws {
        let spec = IpvlanSpec(name: "iv0", parentIndex: 3, mode: .l3s)
        let body = ifinfo
            + attr(3, Array("iv0".utf8) + [0])
            + attr(5, le32(3))
            + attr(18 | 0x8000, attr(1, Array("ipvlan".utf8) + [0]) + attr(2 | 0x8000, attr(1, le16(2))))
        XCTAssertEqual(try RouteSocket.ipvlanRequest(spec, namespaceFD: nil).bytes, header(len: 16 + body.count) + body)
    }

    func testModeNames() {
        XCTAssertEqual(MacvlanMode.allCases.map(\.name), ["private", "vepa", "bridge", "passthru", "source"])
        XCTAssertEqual(MacvlanMode(name: "passthru"), .passthru)
        XCTAssertNil(MacvlanMode(name: "l2"))
        XCTAssertEqual(IpvlanMode.allCases.map(\.name), ["l2", "l3", "l3s"])
        XCTAssertEqual(IpvlanMode(name: "l3s")?.rawValue, 2)
        XCTAssertNil(IpvlanMode(name: "bridge"))
    }
}

final class ChildLinkKernelTests: XCTestCase {
    /// `ip -d -j link show dev NAME` in `ns`; fails the test when `ip` fails.
    func details(_ ns: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        let r = runCommand(["ip", "-n", ns, "-d", "-j", "link", "show", "dev", name])
        guard r.ok, let l = r.jsonArray?.first else {
            XCTFail("ip -d link show \(name) in \(ns): \(r)", file: file, line: line)
            return [:]
        }
        return l
    }

    /// A "host" netns with a veth `par0` as the parent, and a container netns: the netns names,
    /// a socket in each, the container's namespace and the parent.
    func parentAndContainer() throws -> ([String], RouteSocket, NetworkNamespace, RouteSocket, Link) {
        let (world, ns) = try makeWorld(self, ["host", "ctr"])
        let host = try RouteSocket(namespace: world.path(ns[0]))
        let ctrNS = try NetworkNamespace.open(path: world.path(ns[1]))
        try host.addVethPair(name: "par0", peerName: "par1")
        return (ns, host, ctrNS, try RouteSocket(namespace: ctrNS), try host.requireLink(named: "par0"))
    }

    func testMacvlanCreatedInAnotherNamespaceInEveryMode() throws {
        let (ns, host, ctrNS, ctr, parent) = try parentAndContainer()
        let modes: [MacvlanMode] = [.bridge, .private, .vepa, .passthru, .source]
        for mode in modes {
            let name = "mv-\(mode.name)"
            let mac = mode == .passthru ? nil : MACAddress("02:00:00:00:01:0\(mode.rawValue % 10)")!
            try host.addMacvlan(MacvlanSpec(name: name, parentIndex: parent.index, mode: mode, mtu: 1400, mac: mac,
                                            broadcastQueueLength: 64), namespace: ctrNS)
            XCTAssertNil(try host.link(named: name), "\(mode.name): never in the parent's netns")
            let j = details(ns[1], name)
            let info = j["linkinfo"] as? [String: Any] ?? [:]
            XCTAssertEqual(info["info_kind"] as? String, "macvlan")
            XCTAssertEqual((info["info_data"] as? [String: Any])?["mode"] as? String, mode.name)
            XCTAssertEqual((info["info_data"] as? [String: Any])?["bcqueuelen"] as? Int, 64)
            XCTAssertEqual(j["mtu"] as? Int, 1400)
            XCTAssertEqual(j["link_index"] as? Int, Int(parent.index), "the parent, in the other netns")
            if let mac { XCTAssertEqual(j["address"] as? String, "\(mac)") }
            XCTAssertEqual(try ctr.macvlanMode(named: name), mode)
            XCTAssertEqual(try ctr.link(named: name)?.linkIndex, parent.index)
            XCTAssertNil(try ctr.ipvlanMode(named: name), "a macvlan is no ipvlan")
            try ctr.deleteLink(named: name)
        }
        XCTAssertNil(try ctr.macvlanMode(named: "nosuch0"))
        XCTAssertNil(try host.macvlanMode(named: "par0"), "a veth is no macvlan")
    }

    func testMacvlanErrorsCarryTheKernelsWords() throws {
        let (world, ns) = try makeWorld(self, ["host"])
        let host = try RouteSocket(namespace: world.path(ns[0]))
        try host.addVethPair(name: "par0", peerName: "par1")
        let parent = try host.requireLink(named: "par0")
        try host.addMacvlan(MacvlanSpec(name: "mv0", parentIndex: parent.index, mode: .bridge))
        XCTAssertThrowsError(try host.addMacvlan(MacvlanSpec(name: "mv0", parentIndex: parent.index, mode: .bridge))) {
            XCTAssertTrue(($0 as? SystemError)?.isAlreadyExists == true, "\($0)")
        }
        XCTAssertThrowsError(try host.addMacvlan(MacvlanSpec(name: "mv1", parentIndex: 9999, mode: .bridge))) {
            XCTAssertTrue("\($0)".contains("add macvlan mv1 on ifindex 9999"), "\($0)")
        }
    }

    func testIpvlanCreatedAndReadBackOrRefusedAsUnsupported() throws {
        let (ns, host, ctrNS, ctr, parent) = try parentAndContainer()
        do {
            try host.addIpvlan(IpvlanSpec(name: "iv-l2", parentIndex: parent.index, mode: .l2), namespace: ctrNS)
        } catch let e as SystemError where e.errno == .notSupported {
            XCTAssertTrue("\(e)".contains("add ipvlan iv-l2"), "\(e)")
            throw XCTSkip("kernel without ipvlan (\(e)); the refusal is checked")
        }
        try ctr.deleteLink(named: "iv-l2")
        for mode in IpvlanMode.allCases {
            let name = "iv-\(mode.name)"
            try host.addIpvlan(IpvlanSpec(name: name, parentIndex: parent.index, mode: mode, mtu: 1300), namespace: ctrNS)
            let j = details(ns[1], name)
            let info = j["linkinfo"] as? [String: Any] ?? [:]
            XCTAssertEqual(info["info_kind"] as? String, "ipvlan")
            XCTAssertEqual((info["info_data"] as? [String: Any])?["mode"] as? String, mode.name)
            XCTAssertEqual(j["mtu"] as? Int, 1300)
            XCTAssertEqual(try ctr.ipvlanMode(named: name), mode)
            XCTAssertNil(try ctr.macvlanMode(named: name))
            try ctr.deleteLink(named: name)
        }
    }
}
