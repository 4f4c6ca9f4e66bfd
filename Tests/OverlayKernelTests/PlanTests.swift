// The desired entries and the diff, without a kernel.

import Netlink
import NetTypes
@testable import OverlayKernel
import SystemKit
import XCTest

final class PlanTests: XCTestCase {
    static let vtep: Int32 = 7, underlay: Int32 = 2

    let config = VTEPConfig(underlay: "eth0", publicIP: IPAddress("198.18.0.11")!, subnet: CIDR("10.244.1.0/24")!,
                            network: CIDR("10.244.0.0/16")!, mac: MACAddress("0e:00:00:00:00:01")!)
    let b = OverlayPeer(subnet: CIDR("10.244.2.0/24")!, publicIP: IPAddress("198.18.0.12")!, vtepMAC: MACAddress("0e:00:00:00:00:02")!)
    let c = OverlayPeer(subnet: CIDR("10.244.3.0/24")!, publicIP: IPAddress("203.0.113.13")!, vtepMAC: MACAddress("0e:00:00:00:00:03")!)

    func plan(_ config: VTEPConfig? = nil) -> Plan {
        Plan(config: config ?? self.config,
             links: OverlayLinks(vtep: Self.vtep, underlay: Self.underlay, underlaySubnets: [CIDR("198.18.0.0/24")!]))
    }

    /// The kernel holding exactly what the plan wants.
    func kernel(_ entries: [PeerEntries]) -> KernelEntries {
        KernelEntries(neighbours: entries.compactMap(\.neighbour), fdb: entries.compactMap(\.fdb), routes: entries.map(\.route))
    }

    func testAPeerGetsFlannelsThreeEntriesOnTheVTEP() {
        let e = plan().entries(for: b)
        XCTAssertEqual(e.neighbour, .permanent(index: Self.vtep, ip: IPAddress("10.244.2.0")!, mac: b.vtepMAC))
        XCTAssertEqual(e.fdb, .fdb(index: Self.vtep, mac: b.vtepMAC, dst: b.publicIP))
        XCTAssertEqual(e.route.gateway, IPAddress("10.244.2.0")!)
        XCTAssertEqual(e.route.outputIndex, Self.vtep)
        XCTAssertTrue(e.route.onLink)
        XCTAssertEqual(e.route.proto, OverlayRouteProtocol.number)
    }

    func testDirectRoutingOnlyForPeersOnTheUnderlaysSubnet() {
        var direct = config
        direct.directRouting = true
        let onSubnet = plan(direct).entries(for: b)
        XCTAssertNil(onSubnet.neighbour)
        XCTAssertNil(onSubnet.fdb)
        XCTAssertEqual(onSubnet.route.gateway, b.publicIP)
        XCTAssertEqual(onSubnet.route.outputIndex, Self.underlay)
        XCTAssertFalse(onSubnet.route.onLink)
        let elsewhere = plan(direct).entries(for: c)
        XCTAssertNotNil(elsewhere.neighbour, "203.0.113.13 is routed, not connected: through the tunnel")
    }

    func testFromNothingEntriesComeNeighbourAndFDBBeforeRoutes() {
        let p = plan()
        let (entries, conflicts) = p.desired([c, b])
        XCTAssertEqual(conflicts, [])
        let changes = p.changes(from: KernelEntries(), to: entries)
        XCTAssertEqual(changes, [.setNeighbour(entries[0].neighbour!), .setNeighbour(entries[1].neighbour!),
                                 .setFDB(entries[0].fdb!), .setFDB(entries[1].fdb!),
                                 .setRoute(entries[0].route), .setRoute(entries[1].route)])
        XCTAssertEqual(entries.map(\.peer), [b, c], "in subnet order")
    }

    func testAKernelThatIsRightGetsNoChange() {
        let p = plan()
        let entries = p.desired([b, c]).entries
        var current = kernel(entries)
        // What the kernel reports beyond what was asked: flags, kernel routes, learned entries.
        current.fdb = current.fdb.map { var n = $0; n.flags = Neighbour.flagSelf; return n }
        current.routes.append(Route(destination: CIDR("10.244.1.0/24")!, outputIndex: 3, scope: .link, proto: 2))
        current.neighbours.append(Neighbour(index: Self.vtep, family: .v4, ip: IPAddress("10.244.9.9")!, state: 0x02))
        XCTAssertEqual(p.changes(from: current, to: entries), [])
    }

    func testDepartedPeersGoRoutesFirstTheirEntriesLast() {
        let p = plan()
        let current = kernel(p.desired([b, c]).entries)
        let entries = p.desired([b]).entries
        let gone = p.entries(for: c)
        XCTAssertEqual(p.changes(from: current, to: entries),
                       [.removeRoute(gone.route), .removeNeighbour(gone.neighbour!),
                        .removeFDB(.fdb(index: Self.vtep, mac: c.vtepMAC))])
    }

    func testWrongEntriesAreReplacedInPlace() {
        let p = plan()
        let want = p.entries(for: b)
        var current = kernel([want])
        current.neighbours[0].mac = MACAddress("0e:ff:00:00:00:02")!
        current.fdb[0].ip = IPAddress("198.18.0.99")!
        current.routes[0].onLink = false
        XCTAssertEqual(p.changes(from: current, to: [want]),
                       [.setNeighbour(want.neighbour!), .setFDB(want.fdb!), .setRoute(want.route)])
    }

    func testStaleFDBEntriesGoByMACWithEveryDestination() {
        let p = plan()
        let zero = [IPAddress("198.18.0.98")!, IPAddress("198.18.0.99")!].map {
            Neighbour.fdb(index: Self.vtep, mac: .zero, dst: $0)
        }
        XCTAssertEqual(p.changes(from: KernelEntries(fdb: zero), to: []),
                       [.removeFDB(.fdb(index: Self.vtep, mac: .zero))])
    }

    func testEntriesThatAreNotTheOverlaysAreLeftAlone() {
        let p = plan()
        let others = KernelEntries(
            neighbours: [Neighbour.permanent(index: 3, ip: IPAddress("10.244.5.0")!, mac: b.vtepMAC),
                         Neighbour.permanent(index: Self.vtep, ip: IPAddress("192.0.2.1")!, mac: b.vtepMAC)],
            fdb: [Neighbour.fdb(index: 3, mac: c.vtepMAC, dst: c.publicIP)],
            routes: [Route(destination: CIDR("10.244.200.0/24")!, outputIndex: 3, proto: 3),
                     Route(destination: CIDR("192.0.2.0/24")!, outputIndex: Self.vtep, proto: 3),
                     Route(destination: CIDR("10.244.9.0/24")!, outputIndex: Self.vtep, table: 100, proto: 3)])
        XCTAssertEqual(p.changes(from: others, to: []), [])
        // Ours even without our protocol number: flannel's own routes on the VTEP.
        let flannels = Route(destination: CIDR("10.244.9.0/24")!, gateway: IPAddress("10.244.9.0")!,
                             outputIndex: Self.vtep, onLink: true, proto: 3)
        XCTAssertEqual(p.changes(from: KernelEntries(routes: [flannels]), to: []), [.removeRoute(flannels)])
    }

    func testPeersThatContradictTheConfigurationOrEachOtherAreLeftOut() {
        let p = plan()
        let me = OverlayPeer(subnet: config.subnet, publicIP: config.publicIP, vtepMAC: config.mac)
        let thief = OverlayPeer(subnet: config.subnet, publicIP: IPAddress("198.18.0.66")!, vtepMAC: MACAddress("0e:00:00:00:00:66")!)
        let outside = OverlayPeer(subnet: CIDR("10.99.0.0/24")!, publicIP: b.publicIP, vtepMAC: MACAddress("0e:00:00:00:00:99")!)
        let sameMAC = OverlayPeer(subnet: CIDR("10.244.4.0/24")!, publicIP: IPAddress("198.18.0.14")!, vtepMAC: b.vtepMAC)
        let v6 = OverlayPeer(subnet: CIDR("fd10::/64")!, publicIP: b.publicIP, vtepMAC: MACAddress("0e:00:00:00:00:06")!)
        let nowhere = OverlayPeer(subnet: CIDR("10.244.5.0/24")!, publicIP: IPAddress("0.0.0.0")!, vtepMAC: MACAddress("0e:00:00:00:00:05")!)
        let (entries, conflicts) = p.desired([me, thief, outside, b, sameMAC, v6, nowhere])
        XCTAssertEqual(entries.map(\.peer), [b])
        XCTAssertEqual(Set(conflicts.map(\.peer)), [thief, outside, sameMAC, v6, nowhere])
        XCTAssertEqual(conflicts.first { $0.peer == thief }?.reason, "subnet overlaps this host's 10.244.1.0/24")
    }

    func testConfigurationNamesMTUAndValidation() throws {
        XCTAssertEqual(config.name, "flannel.1")
        XCTAssertEqual(VTEPConfig.flannelName(vni: 4096, family: .v6), "flannel-v6.4096")
        XCTAssertEqual(config.deviceAddress, CIDR("10.244.1.0/32")!)
        XCTAssertEqual(VTEPConfig.deviceMTU(linkMTU: 1500, underlay: .v4), 1450)
        XCTAssertEqual(VTEPConfig.deviceMTU(linkMTU: 1500, underlay: .v6), 1430)
        XCTAssertEqual(VTEPConfig.deviceMTU(linkMTU: 9000, underlay: .v4), 8950)

        func refusal(_ change: (inout VTEPConfig) -> Void) -> String {
            var c = config
            change(&c)
            do { try c.validate(); return "accepted" } catch { return (error as? SystemError)?.message ?? "\(error)" }
        }
        XCTAssertEqual(refusal { _ in }, "accepted")
        XCTAssertTrue(refusal { $0.vni = 1 << 24 }.hasPrefix("VNI:"))
        XCTAssertTrue(refusal { $0.name = "flannel-v6.16777215" }.hasPrefix("name:"))
        XCTAssertTrue(refusal { $0.subnet = CIDR("10.99.0.0/24")! }.hasPrefix("subnet:"))
        XCTAssertTrue(refusal { $0.port = 0 }.hasPrefix("Port:"))
        XCTAssertTrue(refusal { $0.mac = .broadcast }.hasPrefix("VtepMAC:"))
        XCTAssertTrue(refusal { $0.mtu = 600; $0.subnet = CIDR("fd10::/64")!; $0.network = CIDR("fd10::/56")! }.hasPrefix("MTU:"))
    }

    func testMasqueradeRulesPerNetwork() {
        let m = OverlayMasquerade(networks: [CIDR("10.244.0.0/16")!, CIDR("fd10:244::/56")!])
        XCTAssertEqual(m.rules.compactMap(\.comment), [
            "10.244.0.0/16 internal", "10.244.0.0/16 multicast", "10.244.0.0/16 masquerade",
            "fd10:244::/56 internal", "fd10:244::/56 multicast", "fd10:244::/56 masquerade",
        ])
        XCTAssertTrue(m.rules.allSatisfy { $0.chain == OverlayMasquerade.chain })
    }
}
