import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

/// Two containers on a bridge in a "host" netns, built only through the module, reach each other.
final class TrafficTests: XCTestCase {
    func testContainersOnABridgeReachEachOther() throws {
        let (world, ns) = try makeWorld(self, ["host", "ctrA", "ctrB"])
        let host = try RouteSocket(namespace: world.path(ns[0]))
        try host.addBridge(name: "nlbr0", mtu: 1500)
        let br = try host.requireLink(named: "nlbr0")
        try host.addAddress(br.index, CIDR("10.88.0.1/24")!, broadcast: IPAddress("10.88.0.255")!)
        try host.addAddress(br.index, CIDR("fd88::1/64")!, noDAD: true)
        try host.setUp(br.index)
        try Sysctl.set("net/ipv4/ip_forward", "1", namespace: world.path(ns[0]))

        let containers = [(ns[1], "vethA", "10.88.0.2", "fd88::2"), (ns[2], "vethB", "10.88.0.3", "fd88::3")]
        for (ctr, hostSide, v4, v6) in containers {
            let ctrNS = try NetworkNamespace.open(path: world.path(ctr))
            try host.addVethPair(name: hostSide, peerName: "eth0", peerNamespace: ctrNS)
            let h = try host.requireLink(named: hostSide)
            try host.setMaster(h.index, master: br.index)
            try host.setHairpin(h.index, true)
            try host.setUp(h.index)
            let c = try RouteSocket(namespace: ctrNS)
            let eth0 = try c.requireLink(named: "eth0")
            try Sysctl.set("net/ipv6/conf/eth0/accept_dad", "0", namespace: world.path(ctr))
            try c.addAddress(eth0.index, CIDR("\(v4)/24")!, broadcast: IPAddress("10.88.0.255")!)
            try c.addAddress(eth0.index, CIDR("\(v6)/64")!, noDAD: true)
            try c.setUp(eth0.index)
            try c.addRoute(.defaultRoute(via: IPAddress("10.88.0.1")!, device: eth0.index))
            try c.addRoute(.defaultRoute(via: IPAddress("fd88::1")!, device: eth0.index))
        }
        XCTAssertEqual(world.ipJSON(ns[1], ["route", "show", "default"]).first?["gateway"] as? String, "10.88.0.1")

        let a2b = world.exec(in: ns[1], ["ping", "-c1", "-W1", "10.88.0.3"])
        XCTAssertTrue(a2b.ok, "\(a2b)")
        let b2a = world.exec(in: ns[2], ["ping", "-c1", "-W1", "10.88.0.2"])
        XCTAssertTrue(b2a.ok, "\(b2a)")
        let a2gw = world.exec(in: ns[1], ["ping", "-c1", "-W1", "10.88.0.1"])
        XCTAssertTrue(a2gw.ok, "\(a2gw)")
        let v6 = world.exec(in: ns[1], ["ping", "-6", "-c1", "-W1", "fd88::3"])
        XCTAssertTrue(v6.ok, "\(v6)")

        // Take one container off the bridge: traffic stops.
        let vethB = try host.requireLink(named: "vethB")
        try host.deleteLink(vethB.index)
        XCTAssertNil(world.links(ns[2])["eth0"])
        XCTAssertFalse(world.exec(in: ns[1], ["ping", "-c1", "-W1", "10.88.0.3"]).ok)
    }
}
