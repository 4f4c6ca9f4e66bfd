import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

final class NeighbourSysctlTests: XCTestCase {
    func testPermanentARPAndNDPEntries() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "n0", peerName: "n1")
        let n0 = try s.requireLink(named: "n0")
        try s.setUp(n0.index)
        let mac4 = MACAddress("02:00:00:00:04:04")!, mac6 = MACAddress("02:00:00:00:06:06")!
        try s.addNeighbour(.permanent(index: n0.index, ip: IPAddress("10.9.0.9")!, mac: mac4))
        try s.addNeighbour(.permanent(index: n0.index, ip: IPAddress("fd00:9::9")!, mac: mac6))

        let shown = world.ipJSON(ns[0], ["neigh", "show", "dev", "n0"])
        let e4 = try XCTUnwrap(shown.first { $0["dst"] as? String == "10.9.0.9" }, "\(shown)")
        XCTAssertEqual(e4["lladdr"] as? String, "02:00:00:00:04:04")
        XCTAssertEqual(e4["state"] as? [String], ["PERMANENT"])
        XCTAssertEqual(shown.first { $0["dst"] as? String == "fd00:9::9" }?["lladdr"] as? String, "02:00:00:00:06:06")

        let v4 = try s.neighbours(family: .v4, index: n0.index)
        XCTAssertTrue(v4.contains { $0.ip == IPAddress("10.9.0.9") && $0.mac == mac4 && $0.state == Neighbour.permanent })
        XCTAssertTrue(try s.neighbours(family: .v6, index: n0.index).contains { $0.ip == IPAddress("fd00:9::9") && $0.mac == mac6 })

        XCTAssertThrowsError(try s.addNeighbour(.permanent(index: n0.index, ip: IPAddress("10.9.0.9")!, mac: mac4))) {
            XCTAssertTrue(($0 as! NetlinkError).isAlreadyExists, "\($0)")
        }
        try s.addNeighbour(.permanent(index: n0.index, ip: IPAddress("10.9.0.9")!, mac: mac6), mode: .replace)
        XCTAssertEqual(world.ipJSON(ns[0], ["neigh", "show", "10.9.0.9", "dev", "n0"]).first?["lladdr"] as? String, "02:00:00:00:06:06")

        try s.deleteNeighbour(.permanent(index: n0.index, ip: IPAddress("10.9.0.9")!, mac: mac6))
        try s.deleteNeighbour(Neighbour(index: n0.index, family: .v6, ip: IPAddress("fd00:9::9")!))
        XCTAssertThrowsError(try s.deleteNeighbour(Neighbour(index: n0.index, family: .v4, ip: IPAddress("10.9.0.9")!))) {
            XCTAssertTrue(($0 as! NetlinkError).isNotFound, "\($0)")
        }
        XCTAssertTrue(world.ipJSON(ns[0], ["neigh", "show", "dev", "n0"]).filter { ($0["state"] as? [String]) == ["PERMANENT"] }.isEmpty)
    }

    func testBridgeFDBEntriesOnVXLANAndBridgePort() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVXLAN(VXLANSpec(name: "vx1", vni: 7, local: IPAddress("192.0.2.7")!, port: 4789))
        let vx = try s.requireLink(named: "vx1")
        try s.addBridge(name: "brf")
        let br = try s.requireLink(named: "brf")
        try s.addVethPair(name: "fp0", peerName: "fp1")
        let fp0 = try s.requireLink(named: "fp0")
        try s.setMaster(fp0.index, master: br.index)

        let peerMAC = MACAddress("02:00:00:00:aa:01")!
        try s.addNeighbour(.fdb(index: vx.index, mac: peerMAC, dst: IPAddress("192.0.2.8")!))
        // Head-end replication: the all-zero MAC with several destinations.
        try s.addNeighbour(.fdb(index: vx.index, mac: .zero, dst: IPAddress("192.0.2.8")!), mode: .append)
        try s.addNeighbour(.fdb(index: vx.index, mac: .zero, dst: IPAddress("192.0.2.9")!), mode: .append)
        let portMAC = MACAddress("02:00:00:00:bb:01")!
        try s.addNeighbour(.fdb(index: fp0.index, mac: portMAC, self: false, master: true))

        let fdb = try runCommand(["bridge", "-n", ns[0], "-j", "fdb", "show"]).checkedJSONArray()
        let e = try XCTUnwrap(fdb.first { $0["mac"] as? String == "02:00:00:00:aa:01" && $0["ifname"] as? String == "vx1" }, "\(fdb)")
        XCTAssertEqual(e["dst"] as? String, "192.0.2.8")
        XCTAssertEqual(e["state"] as? String, "permanent")
        XCTAssertTrue((e["flags"] as? [String] ?? []).contains("self"))
        let zeros = fdb.filter { $0["mac"] as? String == "00:00:00:00:00:00" && $0["ifname"] as? String == "vx1" }
        XCTAssertEqual(Set(zeros.compactMap { $0["dst"] as? String }), ["192.0.2.8", "192.0.2.9"])
        let p = try XCTUnwrap(fdb.first { $0["mac"] as? String == "02:00:00:00:bb:01" && $0["ifname"] as? String == "fp0" }, "\(fdb)")
        XCTAssertEqual(p["master"] as? String, "brf")

        let listed = try s.neighbours(family: .bridge, index: vx.index)
        XCTAssertTrue(listed.contains { $0.mac == peerMAC && $0.ip == IPAddress("192.0.2.8") })
        XCTAssertEqual(Set(listed.filter { $0.mac == .zero }.compactMap(\.ip)), [IPAddress("192.0.2.8")!, IPAddress("192.0.2.9")!])
        XCTAssertTrue(try s.neighbours(family: .bridge, index: fp0.index).contains { $0.mac == portMAC })

        try s.deleteNeighbour(.fdb(index: vx.index, mac: peerMAC, dst: IPAddress("192.0.2.8")!))
        try s.deleteNeighbour(.fdb(index: vx.index, mac: .zero, dst: IPAddress("192.0.2.9")!))
        try s.deleteNeighbour(.fdb(index: fp0.index, mac: portMAC, self: false, master: true))
        let after = try runCommand(["bridge", "-n", ns[0], "-j", "fdb", "show"]).checkedJSONArray()
        XCTAssertFalse(after.contains { $0["mac"] as? String == "02:00:00:00:aa:01" })
        XCTAssertFalse(after.contains { $0["mac"] as? String == "02:00:00:00:bb:01" })
        XCTAssertEqual(after.filter { $0["mac"] as? String == "00:00:00:00:00:00" && $0["ifname"] as? String == "vx1" }
            .compactMap { $0["dst"] as? String }, ["192.0.2.8"])
    }

    func testSysctlsAreWrittenInTheNamespace() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "sy0", peerName: "sy1")
        let outside = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        let settings: [(String, String)] = [
            ("net/ipv4/ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
            ("net/ipv4/conf/sy0/rp_filter", "2"), ("net/ipv4/conf/sy0/route_localnet", "1"),
            ("net/ipv6/conf/sy0/accept_dad", "0"), ("net/ipv4/conf/sy0/arp_notify", "1"),
            ("net/ipv4/conf/sy0/proxy_arp", "1"), ("net/ipv4/neigh/sy0/gc_stale_time", "77"),
        ]
        for (k, v) in settings {
            try Sysctl.set(k, v, namespace: world.path(ns[0]))
            let path = "/proc/sys/" + (k.contains("/") ? k : k.replacingOccurrences(of: ".", with: "/"))
            XCTAssertEqual(try world.exec(in: ns[0], ["cat", path]).checked().stdout.trimmingCharacters(in: .whitespacesAndNewlines), v, k)
            XCTAssertEqual(try Sysctl.get(k, namespace: ns[0]), v, k)
        }
        XCTAssertEqual(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8), outside,
                       "the machine's own namespace is untouched")
        XCTAssertThrowsError(try Sysctl.set("net/ipv4/conf/nosuchdev/rp_filter", "1", namespace: ns[0])) {
            XCTAssertEqual(($0 as! NetlinkError).errno, Errno(ENOENT))
        }
    }
}
