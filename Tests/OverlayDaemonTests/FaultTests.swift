// overlayd when things go wrong: a daemon killed and restarted, a daemon gone for good whose
// lease runs out, two daemons racing for one subnet, a watch that fell behind a compaction.

import Foundation
import NetTypes
import Overlay
import OverlayStores
import TestSupport
import XCTest

final class FaultTests: XCTestCase {
    /// kill -9 and a restart: the same subnet and VTEP MAC, and not one ping lost between the
    /// other hosts, nor to the restarted host, across it.
    func testKill9AndRestartKeepsSubnetMACAndEveryPacket() throws {
        let w = try DaemonWorld.running(self, hosts: 3)
        try w.addPodAddresses()
        let (h1, h2, h3) = (w.hosts[0], w.hosts[1], w.hosts[2])
        let subnet = try h1.subnet(), mac = try h1.vtep().mac
        let ifindex = try h1.ipJSON("link", "show", "dev", "flannel.1").first?["ifindex"] as? Int

        let loops = try [PingLoop(w, from: h2, to: h3, count: 100), PingLoop(w, from: h3, to: h2, count: 100),
                         PingLoop(w, from: h2, to: h1, count: 100), PingLoop(w, from: h1, to: h3, count: 100)]
        usleep(1_000_000)
        h1.daemon?.killNow()
        usleep(500_000)
        try h1.start(w.storeArguments + ["--iface", "eth0"])
        try w.waitUntilReady([h1])
        for loop in loops {
            let (sent, received) = try loop.wait()
            XCTAssertEqual(sent, 100, loop.name)
            XCTAssertEqual(received, sent, "\(loop.name): lost \(sent - received) across the restart")
        }
        XCTAssertEqual(try h1.subnet(), subnet, "same subnet")
        XCTAssertEqual(try h1.vtep().mac, mac, "same VTEP MAC")
        XCTAssertEqual(try h1.ipJSON("link", "show", "dev", "flannel.1").first?["ifindex"] as? Int, ifindex,
                       "the device was kept, not re-created")
        XCTAssertEqual(try w.leases()["\(subnet)"]?.mac, mac)
        XCTAssertTrue(h1.log.contains("renewed our existing lease"), h1.log.suffix(2000).description)
        try w.waitForFullMesh()
        XCTAssertTrue(try w.ping(h3, h1).ok)
    }

    /// A daemon stopped for good with a 3 s TTL: its lease expires, and its route, neighbour
    /// and FDB entries vanish from the peers within a second of the expiry (not before it).
    func testAnExpiredLeaseLeavesThePeersWithinASecond() throws {
        let w = try DaemonWorld.running(self, hosts: 3, arguments: ["--subnet-lease-ttl", "3s"])
        let gone = w.hosts[2]
        let key = StoreLayout().leaseKey(SubnetKey(ipv4: try gone.subnet()))
        gone.daemon?.killNow()
        let killedAt = Date()
        guard let ttl = try w.withEmbeddedStore({ store in try await store.timeToLive(key) }) else {
            throw TestError("the stopped host's lease \(key) has no TTL")
        }
        let expiry = killedAt.addingTimeInterval(Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18)
        let survivors = Array(w.hosts.prefix(2))
        let expected = try survivors.map { try w.expectedPeer($0) }
        for h in survivors {
            let other = expected.first { $0.publicIP != h.publicIP }!
            try eventually("host \(h.index) without the expired peer", timeout: 8) { try h.hasExactly([other]) }
            let vanished = Date()
            XCTAssertLessThan(vanished.timeIntervalSince(expiry), 1.0, "host \(h.index): gone within 1 s of the expiry")
            XCTAssertGreaterThan(vanished.timeIntervalSince(expiry), -0.3, "host \(h.index): not before the lease expired")
        }
        XCTAssertEqual(Set(try w.leases().keys), Set(try survivors.map { "\(try $0.subnet())" }))
        // The survivors keep renewing their own 3 s leases.
        usleep(4_000_000)
        XCTAssertEqual(try w.leases().count, 2)
    }

    /// Two daemons started at the same instant, both told by their previous subnet.env to
    /// take 10.244.5.0/24, in a network with room for just two subnets: one wins it, the
    /// other takes the remaining one, and neither exits.
    func testTwoDaemonsStartedTogetherNeverHoldOneSubnet() throws {
        let w = try DaemonWorld(self, hosts: 2)
        try w.putConfig(#"{"Network": "10.244.0.0/16", "SubnetMin": "10.244.5.0", "SubnetMax": "10.244.6.0"}"#)
        for round in 1...3 {
            for h in w.hosts {
                try "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
                    .write(toFile: h.subnetFile, atomically: true, encoding: .utf8)
            }
            try w.startAll()
            try w.waitUntilReady()
            let subnets = try w.hosts.map { try $0.subnet() }
            XCTAssertEqual(Set(subnets), [CIDR("10.244.5.0/24")!, CIDR("10.244.6.0/24")!], "round \(round)")
            usleep(500_000)
            for h in w.hosts { XCTAssertTrue(h.daemon?.isRunning == true, "round \(round): host \(h.index) is running") }
            XCTAssertEqual(try w.leases().count, 2, "round \(round)")
            try w.waitForFullMesh()
            for h in w.hosts { h.daemon?.killNow() }
            // Free both subnets for the next round.
            try w.withEmbeddedStore { store in
                for entry in try await store.list(prefix: StoreLayout().subnetsPrefix).entries { _ = try await store.delete(entry.key) }
            }
        }
    }

    /// A daemon whose watch falls behind a compaction (stopped while a peer left and the
    /// history was compacted) lists again, drops the departed peer, and goes on watching.
    func testAWatchBehindACompactionListsAgainAndResumes() throws {
        let w = try DaemonWorld.running(self, hosts: 3)
        let (h1, h2, h3) = (w.hosts[0], w.hosts[1], w.hosts[2])
        let key = StoreLayout().leaseKey(SubnetKey(ipv4: try h3.subnet()))
        h1.daemon?.signal(SIGSTOP)
        h3.daemon?.killNow()
        try w.withEmbeddedStore { store in
            _ = try await store.delete(key)
            // One more change (outside the network's prefix), so that compacting to the
            // latest revision discards the deletion too.
            _ = try await store.update("/test/compaction-marker", text: "x", ttl: .none)
            let revision = try await store.list(prefix: "/").revision
            try await store.compact(revision: revision)
        }
        h1.daemon?.signal(SIGCONT)
        let peer2 = try w.expectedPeer(h2)
        try eventually("host 1 without host 3 after listing again", timeout: 5) { try h1.hasExactly([peer2]) }
        XCTAssertTrue(h1.log.contains("compaction"), String(h1.log.suffix(3000)))
        // The watch goes on: host 3 coming back reaches host 1.
        try h3.start(w.storeArguments + ["--iface", "eth0"])
        try w.waitUntilReady([h3])
        try w.waitForFullMesh()
    }

    /// A daemon cut off longer than its TTL (stopped) finds, when it comes back, that another
    /// host took its expired subnet meanwhile: it leaves that subnet to the other host, leases
    /// another one and moves its device and subnet.env there.
    func testADaemonBackFromALongGapNeverTakesASubnetAnotherHostHolds() throws {
        let w = try DaemonWorld(self, hosts: 3)
        try w.putConfig(basicConfig)
        let (h1, h2, h3) = (w.hosts[0], w.hosts[1], w.hosts[2])
        let ttl = ["--subnet-lease-ttl", "2s"]
        try w.startAll(ttl)   // h3 too, to be stopped: it joins later
        h3.daemon?.killNow()
        try w.waitUntilReady([h1, h2])
        let lost = try h1.subnet()
        h1.daemon?.signal(SIGSTOP)
        let key = StoreLayout().leaseKey(SubnetKey(ipv4: lost))
        try eventually("the stopped host's lease expired", timeout: 6) {
            try w.withEmbeddedStore { store in try await store.get(key) } == nil
        }
        // A new host whose previous subnet.env names that subnet takes it.
        try "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=\(lost.networkAddress.next!)/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
            .write(toFile: h3.subnetFile, atomically: true, encoding: .utf8)
        try h3.start(w.storeArguments + ttl + ["--iface", "eth0"])
        try w.waitUntilReady([h3])
        XCTAssertEqual(try h3.subnet(), lost)
        h1.daemon?.signal(SIGCONT)
        try eventually("host 1 on another subnet", timeout: 8) { try h1.subnet() != lost }
        XCTAssertEqual(try h3.subnet(), lost, "the subnet stays with the host that holds it")
        try w.waitUntilReady()
        XCTAssertEqual(try h1.vtepAddresses(), ["\(try h1.subnet().networkAddress)/32"], "the device moved too")
        XCTAssertEqual(Set(try w.leases().keys).count, 3)
        try w.waitForFullMesh()
        try w.addPodAddresses()
        XCTAssertTrue(try w.ping(h3, h1).ok)
        XCTAssertTrue(h1.log.contains("lost the lease"), String(h1.log.suffix(3000)))
    }
}
