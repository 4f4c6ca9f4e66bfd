import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

final class LinkTests: XCTestCase {
    func testVethPeerCreatedDirectlyInOtherNamespace() throws {
        let (world, ns) = try makeWorld(self, ["host", "ctr"])
        let host = try RouteSocket(namespace: world.path(ns[0]))
        let ctrNS = try NetworkNamespace.open(path: world.path(ns[1]))
        let mac = MACAddress("02:00:00:00:00:01")!, peerMAC = MACAddress("02:00:00:00:00:02")!
        try host.addVethPair(name: "vh0", peerName: "eth0", peerNamespace: ctrNS, mtu: 1400, mac: mac, peerMAC: peerMAC)

        let hostLinks = world.links(ns[0]), ctrLinks = world.links(ns[1])
        XCTAssertNotNil(hostLinks["vh0"])
        XCTAssertNil(hostLinks["eth0"], "peer must never appear in the host netns")
        let eth0 = try XCTUnwrap(ctrLinks["eth0"])
        XCTAssertEqual(eth0["mtu"] as? Int, 1400)
        XCTAssertEqual(eth0["address"] as? String, "02:00:00:00:00:02")
        XCTAssertEqual(hostLinks["vh0"]?["address"] as? String, "02:00:00:00:00:01")

        let link = try XCTUnwrap(host.link(named: "vh0"))
        XCTAssertEqual(link.kind, "veth")
        XCTAssertEqual(link.mtu, 1400)
        XCTAssertEqual(link.mac, mac)
        XCTAssertEqual(link.peerIndex.map(Int.init), eth0["ifindex"] as? Int)
        XCTAssertEqual(try host.link(index: link.index)?.name, "vh0")
        XCTAssertTrue(try host.links().contains { $0.name == "vh0" })

        try host.deleteLink(link.index)
        XCTAssertNil(try host.link(named: "vh0"))
        XCTAssertNil(world.links(ns[0])["vh0"])
        XCTAssertNil(world.links(ns[1])["eth0"], "deleting one end removes the peer")
    }

    func testLinkAttributeChanges() throws {
        let (world, ns) = try makeWorld(self, ["host", "other"])
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "va", peerName: "vb")
        let a = try s.requireLink(named: "va")
        try s.setMTU(a.index, 1333)
        try s.setMAC(a.index, MACAddress("02:11:22:33:44:55")!)
        try s.setPromiscuous(a.index, true)
        try s.setUp(a.index)
        var j = try XCTUnwrap(world.linkDetails(ns[0], "va"))
        XCTAssertEqual(j["mtu"] as? Int, 1333)
        XCTAssertEqual(j["address"] as? String, "02:11:22:33:44:55")
        XCTAssertEqual(j["promiscuity"] as? Int, 1)
        XCTAssertTrue((j["flags"] as? [String] ?? []).contains("UP"))
        XCTAssertTrue(try s.link(index: a.index)!.isUp)

        try s.setDown(a.index)
        try s.setPromiscuous(a.index, false)
        try s.rename(a.index, to: "va-renamed")
        j = try XCTUnwrap(world.linkDetails(ns[0], "va-renamed"))
        XCTAssertFalse((j["flags"] as? [String] ?? []).contains("UP"))
        XCTAssertEqual(j["promiscuity"] as? Int, 0)
        XCTAssertEqual(j["ifindex"] as? Int, Int(a.index))

        // Move to another namespace.
        try s.moveToNamespace(a.index, try NetworkNamespace.open(path: world.path(ns[1])))
        XCTAssertNil(world.links(ns[0])["va-renamed"])
        XCTAssertNotNil(world.links(ns[1])["va-renamed"])
        try s.deleteLink(named: "vb")
        XCTAssertNil(world.links(ns[1])["va-renamed"])
    }

    func testBridgeMasterHairpinIsolatedAndVLAN() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addBridge(name: "br0", mtu: 1450, mac: MACAddress("02:aa:00:00:00:01")!)
        let br = try s.requireLink(named: "br0")
        XCTAssertEqual(br.kind, "bridge")
        let bj = try XCTUnwrap(world.linkDetails(ns[0], "br0"))
        XCTAssertEqual(bj["mtu"] as? Int, 1450)
        XCTAssertEqual(bj["address"] as? String, "02:aa:00:00:00:01")
        let info = (bj["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(info?["vlan_filtering"] as? Int, 0)

        try s.addVethPair(name: "p0", peerName: "p0peer")
        let p0 = try s.requireLink(named: "p0")
        try s.setMaster(p0.index, master: br.index)
        XCTAssertEqual(try s.link(index: p0.index)?.masterIndex, br.index)
        XCTAssertEqual(world.linkDetails(ns[0], "p0")?["master"] as? String, "br0")

        try s.setHairpin(p0.index, true)
        try s.setIsolated(p0.index, true)
        var slave = (world.linkDetails(ns[0], "p0")?["linkinfo"] as? [String: Any])?["info_slave_data"] as? [String: Any]
        XCTAssertEqual(slave?["hairpin"] as? Bool, true)
        XCTAssertEqual(slave?["isolated"] as? Bool, true)
        try s.setHairpin(p0.index, false)
        try s.setIsolated(p0.index, false)
        slave = (world.linkDetails(ns[0], "p0")?["linkinfo"] as? [String: Any])?["info_slave_data"] as? [String: Any]
        XCTAssertEqual(slave?["hairpin"] as? Bool, false)
        XCTAssertEqual(slave?["isolated"] as? Bool, false)


        try s.setMaster(p0.index, master: nil)
        XCTAssertNil(try s.link(index: p0.index)?.masterIndex)
        XCTAssertNil(world.linkDetails(ns[0], "p0")?["master"])
        try s.deleteLink(br.index)
        XCTAssertNil(world.links(ns[0])["br0"])
    }

    /// VLAN filtering needs CONFIG_BRIDGE_VLAN_FILTERING; skipped where the kernel refuses it.
    func testBridgeVLANFilteringAndPortVLAN() throws {
        let (world, ns) = try makeWorld(self)
        guard try KernelFeatures.bridgeVLANFiltering(in: ns[0]) else { throw XCTSkip(KernelFeatures.noBridgeVLANFiltering) }
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addBridge(name: "br0", vlanFiltering: true)
        let br = try s.requireLink(named: "br0")
        let info = (world.linkDetails(ns[0], "br0")?["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        XCTAssertEqual(info?["vlan_filtering"] as? Int, 1)
        try s.addVethPair(name: "p0", peerName: "p0peer")
        let p0 = try s.requireLink(named: "p0")
        try s.setMaster(p0.index, master: br.index)
        try s.addBridgeVLAN(p0.index, vid: 42, pvid: true, untagged: true)
        let vlans = try runCommand(["bridge", "-n", ns[0], "-j", "vlan", "show", "dev", "p0"]).checkedJSONArray()
        let entries = vlans.first?["vlans"] as? [[String: Any]] ?? []
        let v42 = try XCTUnwrap(entries.first { $0["vlan"] as? Int == 42 }, "\(vlans)")
        XCTAssertEqual(Set(v42["flags"] as? [String] ?? []), ["PVID", "Egress Untagged"])
        try s.deleteBridgeVLAN(p0.index, vid: 42)
        let after = try runCommand(["bridge", "-n", ns[0], "-j", "vlan", "show", "dev", "p0"]).checkedJSONArray()
        XCTAssertFalse((after.first?["vlans"] as? [[String: Any]] ?? []).contains { $0["vlan"] as? Int == 42 })
    }

    func testVXLAN() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addVethPair(name: "under0", peerName: "under1")
        let under = try s.requireLink(named: "under0")
        try s.addAddress(under.index, CIDR("192.0.2.1/24")!)
        try s.addVXLAN(VXLANSpec(name: "vx0", vni: 4242, local: IPAddress("192.0.2.1")!, underlayIndex: under.index,
                                 port: 8472, learning: false, ttl: 17, mtu: 1450, mac: MACAddress("02:bb:00:00:00:01")!))
        let l = try XCTUnwrap(try s.link(named: "vx0"))
        XCTAssertEqual(l.kind, "vxlan")
        let j = try XCTUnwrap(world.linkDetails(ns[0], "vx0"))
        XCTAssertEqual(j["mtu"] as? Int, 1450)
        XCTAssertEqual(j["address"] as? String, "02:bb:00:00:00:01")
        let d = try XCTUnwrap((j["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any])
        XCTAssertEqual(d["id"] as? Int, 4242)
        XCTAssertEqual(d["local"] as? String, "192.0.2.1")
        XCTAssertEqual(d["port"] as? Int, 8472)
        XCTAssertEqual(d["link"] as? String, "under0")
        XCTAssertEqual(d["learning"] as? Bool, false)
        XCTAssertEqual(d["ttl"] as? Int, 17)
        XCTAssertEqual(d["l2miss"] as? Bool ?? false, false)
        XCTAssertEqual(d["l3miss"] as? Bool ?? false, false)
        try s.deleteLink(named: "vx0")
        XCTAssertNil(world.links(ns[0])["vx0"])
    }

    func testErrorsNameOperationObjectAndErrno() throws {
        let (world, ns) = try makeWorld(self)
        let s = try RouteSocket(namespace: world.path(ns[0]))
        try s.addBridge(name: "brx")
        XCTAssertThrowsError(try s.addBridge(name: "brx")) { e in
            let e = e as! NetlinkError
            XCTAssertTrue(e.isAlreadyExists, "\(e)")
            XCTAssertEqual(e.errno.name, "EEXIST")
            XCTAssertEqual(e.operation, "add bridge")
            XCTAssertEqual(e.object, "brx")
        }
        XCTAssertThrowsError(try s.addVethPair(name: "brx", peerName: "zz")) { e in
            XCTAssertTrue((e as! NetlinkError).isAlreadyExists, "\(e)")
        }
        XCTAssertThrowsError(try s.deleteLink(named: "nonexistent0")) { e in
            XCTAssertTrue((e as! NetlinkError).isNotFound, "\(e)")
        }
        XCTAssertThrowsError(try s.setMTU(99999, 1400)) { e in
            XCTAssertEqual((e as! NetlinkError).errno, Errno(ENODEV), "\(e)")
        }
        XCTAssertNil(try s.link(named: "nonexistent0"))
        // The kernel's extended ack text travels with the error where the kernel sends one.
        let br = try s.requireLink(named: "brx")
        XCTAssertThrowsError(try s.setMaster(br.index, master: br.index)) { e in
            let e = e as! NetlinkError
            XCTAssertNotEqual(e.errno.rawValue, 0)
            XCTAssertFalse(e.description.isEmpty)
        }
    }
}
