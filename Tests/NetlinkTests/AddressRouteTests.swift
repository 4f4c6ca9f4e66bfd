import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

final class AddressRouteTests: XCTestCase {
    func testAddressesIPv4AndIPv6() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "a0", peerName: "a1")
        let a0 = try s.requireLink(named: "a0")
        try s.setUp(a0.index)
        let v4 = CIDR("10.20.30.4/24")!, v6 = CIDR("fd00:20::4/64")!
        try s.addAddress(a0.index, v4, broadcast: v4.lastAddress)
        try s.addAddress(a0.index, v6, noDAD: true)
        try s.addAddress(a0.index, CIDR("10.99.0.1/32")!, scope: .host)

        let info = (world.ipJSON(ns[0], ["addr", "show", "dev", "a0"]).first?["addr_info"] as? [[String: Any]]) ?? []
        let j4 = try XCTUnwrap(info.first { $0["local"] as? String == "10.20.30.4" })
        XCTAssertEqual(j4["prefixlen"] as? Int, 24)
        XCTAssertEqual(j4["broadcast"] as? String, "10.20.30.255")
        let j6 = try XCTUnwrap(info.first { $0["local"] as? String == "fd00:20::4" })
        XCTAssertEqual(j6["prefixlen"] as? Int, 64)
        XCTAssertEqual(j6["nodad"] as? Bool, true)
        XCTAssertNil(j6["tentative"], "nodad addresses are never tentative")
        XCTAssertEqual(info.first { $0["local"] as? String == "10.99.0.1" }?["scope"] as? String, "host")

        let listed = try s.addresses(index: a0.index)
        XCTAssertTrue(listed.contains { $0.address == v4 && $0.broadcast == IPAddress("10.20.30.255") })
        XCTAssertTrue(listed.contains { $0.address == v6 && $0.isNoDAD })
        XCTAssertEqual(try s.addresses(index: a0.index, family: .v4).count, 2)
        XCTAssertTrue(try s.addresses(index: a0.index, family: .v6).allSatisfy { $0.family == .v6 })

        XCTAssertThrowsError(try s.addAddress(a0.index, v4)) { XCTAssertTrue(($0 as! NetlinkError).isAlreadyExists, "\($0)") }
        try s.deleteAddress(a0.index, v4)
        try s.deleteAddress(a0.index, v6)
        XCTAssertThrowsError(try s.deleteAddress(a0.index, v4)) { XCTAssertTrue(($0 as! NetlinkError).isNotFound, "\($0)") }
        let after = (world.ipJSON(ns[0], ["addr", "show", "dev", "a0"]).first?["addr_info"] as? [[String: Any]]) ?? []
        XCTAssertFalse(after.contains { $0["local"] as? String == "10.20.30.4" || $0["local"] as? String == "fd00:20::4" })
    }

    func testRoutes() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "r0", peerName: "r1")
        let r0 = try s.requireLink(named: "r0"), r1 = try s.requireLink(named: "r1")
        try s.setUp(r0.index); try s.setUp(r1.index)
        try s.addAddress(r0.index, CIDR("10.1.0.1/24")!)
        try s.addAddress(r0.index, CIDR("fd00:1::1/64")!, noDAD: true)

        try s.addRoute(Route(destination: CIDR("10.50.0.0/16")!, gateway: IPAddress("10.1.0.254")!, outputIndex: r0.index,
                             metric: 77, mtu: 1300))
        try s.addRoute(Route(destination: CIDR("10.60.0.0/16")!, gateway: IPAddress("192.168.77.1")!, outputIndex: r0.index,
                             onLink: true))
        try s.addRoute(Route(destination: CIDR("10.70.0.0/24")!, outputIndex: r0.index, scope: .link, table: 100))
        try s.addRoute(.defaultRoute(via: IPAddress("10.1.0.254")!, device: r0.index))
        try s.addRoute(.defaultRoute(via: IPAddress("fd00:1::fe")!, device: r0.index))
        try checkRoutesInKernel(world, ns[0])
        try checkRoutesReadBack(s, r0.index)

        // The kernel's errno and extended-ack text travel with the error.
        XCTAssertThrowsError(try s.addRoute(Route(destination: CIDR("10.61.0.0/16")!, gateway: IPAddress("192.168.78.1")!,
                                                  outputIndex: r0.index))) { e in
            let e = e as! NetlinkError
            XCTAssertEqual(e.operation, "add route")
            XCTAssertTrue(e.object.hasPrefix("10.61.0.0/16 via 192.168.78.1"), e.object)
            XCTAssertEqual(e.errno, Errno(ENETUNREACH), "\(e)")
            XCTAssertEqual(e.message, "Nexthop has invalid gateway", "\(e)")
        }

        // Duplicate add fails with EEXIST; replace changes the gateway.
        XCTAssertThrowsError(try s.addRoute(.defaultRoute(via: IPAddress("10.1.0.254")!, device: r0.index))) {
            XCTAssertTrue(($0 as! NetlinkError).isAlreadyExists, "\($0)")
        }
        try s.replaceRoute(.defaultRoute(via: IPAddress("10.1.0.253")!, device: r0.index))
        XCTAssertEqual(world.ipJSON(ns[0], ["-4", "route", "show", "default"]).map { $0["gateway"] as? String }, ["10.1.0.253"])

        try s.deleteRoute(Route(destination: CIDR("10.50.0.0/16")!, gateway: IPAddress("10.1.0.254")!, metric: 77))
        try s.deleteRoute(Route(destination: CIDR("10.70.0.0/24")!, table: 100))
        try s.deleteRoute(Route(destination: .defaultRoute(.v6), gateway: IPAddress("fd00:1::fe")!))
        XCTAssertThrowsError(try s.deleteRoute(Route(destination: CIDR("10.50.0.0/16")!))) {
            XCTAssertTrue(($0 as! NetlinkError).isNotFound, "\($0)")
        }
        XCTAssertNil(world.ipJSON(ns[0], ["-4", "route", "show"]).first { $0["dst"] as? String == "10.50.0.0/16" })
        XCTAssertTrue(world.ipJSON(ns[0], ["route", "show", "table", "100"]).isEmpty)
        XCTAssertNil(world.ipJSON(ns[0], ["-6", "route", "show"]).first { $0["dst"] as? String == "default" })
    }

    /// What `ip route` shows of the routes testRoutes adds.
    private func checkRoutesInKernel(_ world: TestWorld, _ ns: String) throws {
        let v4 = world.ipJSON(ns, ["-4", "route", "show"])
        let r50 = try XCTUnwrap(v4.first { $0["dst"] as? String == "10.50.0.0/16" }, "\(v4)")
        XCTAssertEqual(r50["gateway"] as? String, "10.1.0.254")
        XCTAssertEqual(r50["dev"] as? String, "r0")
        XCTAssertEqual(r50["metric"] as? Int, 77)
        XCTAssertEqual((r50["metrics"] as? [[String: Any]])?.first?["mtu"] as? Int, 1300)
        let r60 = try XCTUnwrap(v4.first { $0["dst"] as? String == "10.60.0.0/16" })
        XCTAssertTrue((r60["flags"] as? [String] ?? []).contains("onlink"))
        XCTAssertEqual(v4.first { $0["dst"] as? String == "default" }?["gateway"] as? String, "10.1.0.254")
        let t100 = world.ipJSON(ns, ["route", "show", "table", "100"])
        XCTAssertEqual(t100.first?["dst"] as? String, "10.70.0.0/24")
        XCTAssertEqual(t100.first?["scope"] as? String, "link")
        let v6 = world.ipJSON(ns, ["-6", "route", "show"])
        XCTAssertEqual(v6.first { $0["dst"] as? String == "default" }?["gateway"] as? String, "fd00:1::fe")
    }

    /// The same routes read back through the module.
    private func checkRoutesReadBack(_ s: RouteSocket, _ r0: Int32) throws {
        let listed = try s.routes(family: .v4)
        let m50 = try XCTUnwrap(listed.first { $0.destination == CIDR("10.50.0.0/16") })
        XCTAssertEqual(m50.gateway, IPAddress("10.1.0.254"))
        XCTAssertEqual(m50.outputIndex, r0)
        XCTAssertEqual(m50.metric, 77)
        XCTAssertEqual(m50.mtu, 1300)
        XCTAssertTrue(listed.first { $0.destination == CIDR("10.60.0.0/16") }?.onLink ?? false)
        XCTAssertTrue(listed.contains { $0.destination.isDefaultRoute && $0.gateway == IPAddress("10.1.0.254") })
        XCTAssertEqual(try s.routes(family: .v4, table: 100).map(\.destination), [CIDR("10.70.0.0/24")!])
        XCTAssertTrue(try s.routes(family: .v6).contains { $0.destination.isDefaultRoute && $0.gateway == IPAddress("fd00:1::fe") })
    }
}
