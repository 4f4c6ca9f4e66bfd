// Three simulated hosts joined by an underlay bridge, a VTEP on each made by OverlayKernel:
// the device, the per-peer entries and the traffic, read back with ip/bridge/ping.

import Foundation
import NetTypes
import OverlayKernel
import SystemKit
import TestSupport
import XCTest

final class VTEPTests: XCTestCase {
    func testThreeHostsGetFlannelsDeviceAndEntries() throws {
        let world = try OverlayWorld.connected(self, hosts: 3)
        for host in world.hosts {
            let link = try host.link("flannel.1")
            let info = link["linkinfo"] as? [String: Any]
            let data = info?["info_data"] as? [String: Any]
            XCTAssertEqual(info?["info_kind"] as? String, "vxlan")
            XCTAssertEqual(data?["id"] as? Int, 1)
            XCTAssertEqual(data?["port"] as? Int, 8472)
            XCTAssertEqual(data?["local"] as? String, "\(host.publicIP)")
            XCTAssertEqual(data?["link"] as? String, "eth0")
            XCTAssertEqual(data?["learning"] as? Bool, false)
            XCTAssertEqual(link["mtu"] as? Int, 1450, "underlay 1500 minus 50")
            XCTAssertEqual(link["address"] as? String, "\(host.mac)")
            XCTAssertTrue((link["flags"] as? [String])?.contains("UP") == true)
            let addresses = try host.ipJSON("addr", "show", "dev", "flannel.1").first?["addr_info"] as? [[String: Any]] ?? []
            let v4 = addresses.filter { $0["family"] as? String == "inet" }.map { "\($0["local"]!)/\($0["prefixlen"]!)" }
            XCTAssertEqual(v4, ["10.244.\(host.index).0/32"])
            let acceptRA = host.exec("cat", "/proc/sys/net/ipv6/conf/flannel.1/accept_ra")
            XCTAssertEqual(acceptRA.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0", "\(acceptRA)")

            let peers = world.hosts.filter { $0.index != host.index }
            XCTAssertEqual(try host.neighbours("flannel.1"),
                           Dictionary(uniqueKeysWithValues: peers.map { ("\($0.subnet.networkAddress)", "\($0.mac)") }))
            XCTAssertEqual(try host.fdb("flannel.1"),
                           Dictionary(uniqueKeysWithValues: peers.map { ("\($0.mac)", ["\($0.publicIP)"]) }))
            let fdbEntries = try host.bridgeJSON("fdb", "show", "dev", "flannel.1")
            for e in fdbEntries {
                XCTAssertEqual(e["state"] as? String, "permanent", "\(e)")
                XCTAssertTrue((e["flags"] as? [String])?.contains("self") == true, "\(e)")
            }
            let routes = try host.routes()
            for p in peers {
                let r = routes["\(p.subnet)"]
                XCTAssertEqual(r?["gateway"] as? String, "\(p.subnet.networkAddress)")
                XCTAssertEqual(r?["dev"] as? String, "flannel.1")
                XCTAssertTrue((r?["flags"] as? [String])?.contains("onlink") == true, "\(String(describing: r))")
            }
        }
    }

    func testHostsReachEachOthersSubnetsThroughTheTunnel() throws {
        let world = try OverlayWorld.connected(self, hosts: 3)
        for a in world.hosts {
            let before = try a.txPackets("flannel.1")
            for b in world.hosts where b.index != a.index {
                assertSucceeds(world.pingPods(a, b), "host \(a.index) → \(b.index)")
            }
            XCTAssertGreaterThanOrEqual(try a.txPackets("flannel.1") - before, 2, "pings left through flannel.1")
        }
    }

    func testIPv6OverlayOnIPv6Underlay() throws {
        let world = try OverlayWorld(self, hosts: 2)
        try world.connectAll(v6: true)
        let (a, b) = (world.hosts[0], world.hosts[1])
        let link = try a.link("flannel-v6.1")
        XCTAssertEqual(link["mtu"] as? Int, 1430, "underlay 1500 minus 70")
        let data = (link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(data?["local6"] as? String, "\(a.publicIPv6)")
        XCTAssertEqual(try a.neighbours("flannel-v6.1"), ["\(b.subnetV6.networkAddress)": "\(b.macV6)"])
        XCTAssertEqual(try a.fdb("flannel-v6.1"), ["\(b.macV6)": ["\(b.publicIPv6)"]])
        let route = try a.routes(v6: true)["\(b.subnetV6)"]
        XCTAssertEqual(route?["gateway"] as? String, "\(b.subnetV6.networkAddress)")
        XCTAssertEqual(route?["dev"] as? String, "flannel-v6.1")
        assertSucceeds(world.pingPods(a, b, v6: true))
    }

    func testDirectRoutingUsesAPlainRouteViaThePeersPublicIP() throws {
        let world = try OverlayWorld(self, hosts: 3)
        try world.connectAll(directRouting: true)
        let a = world.hosts[0]
        let routes = try a.routes()
        for b in world.hosts.dropFirst() {
            let r = routes["\(b.subnet)"]
            XCTAssertEqual(r?["gateway"] as? String, "\(b.publicIP)")
            XCTAssertEqual(r?["dev"] as? String, "eth0")
            XCTAssertEqual("\(r?["protocol"] ?? "")", "\(OverlayRouteProtocol.number)")
        }
        XCTAssertEqual(try a.neighbours("flannel.1"), [:], "no tunnel entries for directly reached peers")
        XCTAssertEqual(try a.fdb("flannel.1"), [:])
        let before = try a.txPackets("flannel.1")
        assertSucceeds(world.pingPods(a, world.hosts[1]))
        XCTAssertEqual(try a.txPackets("flannel.1"), before, "nothing went through the tunnel")

        // Teardown takes the direct routes on the underlay with the device.
        try VTEP(a.config(directRouting: true), namespace: a.path).teardown()
        XCTAssertNil(try a.routes()["\(world.hosts[1].subnet)"])
        XCTAssertNotNil(try a.routes()["198.18.0.0/24"], "the underlay's own route stays")
    }

    func testRemovePeerAndTeardownAreQuietAboutWhatIsGone() throws {
        let world = try OverlayWorld(self, hosts: 3)
        let vteps = try world.connectAll()
        let (a, b, c) = (world.hosts[0], world.hosts[1], world.hosts[2])
        try vteps[0].removePeer(b.peer)
        try vteps[0].removePeer(b.peer)
        XCTAssertEqual(try a.neighbours("flannel.1"), ["\(c.subnet.networkAddress)": "\(c.mac)"])
        XCTAssertEqual(try a.fdb("flannel.1"), ["\(c.mac)": ["\(c.publicIP)"]])
        XCTAssertNil(try a.routes()["\(b.subnet)"])
        XCTAssertNotNil(try a.routes()["\(c.subnet)"])
        XCTAssertFalse(world.pingPods(a, b).ok)

        try vteps[0].addPeer(b.peer)
        assertSucceeds(world.pingPods(a, b))

        try vteps[0].teardown()
        XCTAssertFalse(try a.ipJSON("link", "show").contains { $0["ifname"] as? String == "flannel.1" })
        XCTAssertNil(try a.routes()["\(c.subnet)"])
        try vteps[0].teardown()
    }

    func testGBPAndLearningWhenAskedAndAChangeOfEitherRecreatesTheDevice() throws {
        let world = try OverlayWorld(self, hosts: 1)
        let host = world.hosts[0]
        var config = host.config()
        config.gbp = true
        config.learning = true
        try VTEP(config, namespace: host.path).ensure()
        func vxlanData() throws -> [String: Any]? {
            (try host.link("flannel.1")["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        }
        XCTAssertEqual(try vxlanData()?["gbp"] as? Bool, true)
        XCTAssertEqual(try vxlanData()?["learning"] as? Bool, true)

        config.gbp = false
        XCTAssertEqual(try VTEP(config, namespace: host.path).ensure().changes.first, .recreated(reason: "gbp on, want off"))
        XCTAssertNil(try vxlanData()?["gbp"])
        config.learning = false
        XCTAssertEqual(try VTEP(config, namespace: host.path).ensure().changes.first, .recreated(reason: "learning on, want off"))
        XCTAssertEqual(try vxlanData()?["learning"] as? Bool, false)
    }

    func testAPeerThisVTEPCannotTakeIsRefusedWithItsReason() throws {
        let world = try OverlayWorld(self, hosts: 2)
        let vteps = try world.connectAll()
        let outside = OverlayPeer(subnet: CIDR("10.99.0.0/24")!, publicIP: IPAddress("198.18.0.50")!,
                                  vtepMAC: MACAddress("0e:00:00:00:00:50")!)
        XCTAssertThrowsError(try vteps[0].addPeer(outside)) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .invalid)
            XCTAssertTrue("\(error)".contains("outside the network"), "\(error)")
        }
        let summary = try vteps[0].reconcile(world.peers(of: world.hosts[0]) + [outside])
        XCTAssertEqual(summary.conflicts.map(\.peer), [outside])
        XCTAssertEqual(summary.changes, [], "the accepted peers were already right")
    }
}
