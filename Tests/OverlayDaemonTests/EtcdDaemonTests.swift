// overlayd on a real etcd (Debian's etcd-server), which listens on the underlay bridge's
// address inside the underlay netns, so the daemons reach it across the simulated network
// as they would reach a cluster's etcd.

import Foundation
import NetTypes
import Overlay
import TestSupport
import XCTest

/// etcd in the world's underlay netns, on 198.18.0.254:2379, data in the world's directory.
final class UnderlayEtcd {
    static let binary = "/usr/bin/etcd"
    static let clientURL = "http://198.18.0.254:2379"
    private let world: DaemonWorld
    private var process: StartedProcess?
    private var starts = 0

    init(_ world: DaemonWorld) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestError("\(Self.binary) is missing: scripts/setup.sh installs Debian's etcd-server")
        }
        self.world = world
        try start()
        world.storeArguments = ["--etcd-endpoints", Self.clientURL]
    }

    /// Starts etcd (again, on the same data after `stop`) and waits until it is healthy.
    func start() throws {
        starts += 1
        let peer = "http://127.0.0.1:2380"
        let p = try StartedProcess(["/usr/sbin/ip", "netns", "exec", world.underlay, Self.binary,
                                    "--name", "t", "--data-dir", world.directory + "/etcd",
                                    "--listen-client-urls", Self.clientURL, "--advertise-client-urls", Self.clientURL,
                                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                    "--initial-cluster", "t=\(peer)", "--initial-cluster-state", "new",
                                    "--logger", "zap", "--log-level", "warn"],
                                   log: world.directory + "/etcd.\(starts).log")
        world.own(p)
        process = p
        try eventually("etcd healthy\n\(p.output.suffix(2000))", timeout: 20) {
            runCommand(["ip", "netns", "exec", world.underlay, "curl", "-s", "--max-time", "1", Self.clientURL + "/health"])
                .stdout.contains("\"health\":\"true\"")
        }
    }

    /// Stops etcd by its PID, keeping its data.
    func stop() { process?.stop() }
}

final class EtcdDaemonTests: XCTestCase {
    /// The three-host overlay with etcd as the store: distinct subnets, every peer's entries,
    /// traffic, and the lease table read from etcd.
    func testThreeHostsOnEtcd() throws {
        let w = try DaemonWorld(self, hosts: 3)
        _ = try UnderlayEtcd(w)
        try w.putConfig(basicConfig)
        XCTAssertEqual(w.overlayd(["config", "get"]).stdout, basicConfig + "\n")
        try w.startAll()
        try w.waitUntilReady()
        let subnets = try w.hosts.map { try $0.subnet() }
        XCTAssertEqual(Set(subnets).count, 3, "\(subnets)")
        try w.waitForFullMesh()
        try w.addPodAddresses()
        for a in w.hosts {
            for b in w.hosts where a !== b { XCTAssertTrue(try w.ping(a, b).ok, "ping \(a.index) → \(b.index)") }
        }
        XCTAssertTrue(try w.tcpReaches(w.hosts[1], w.hosts[0]))
        let leases = try w.leases()
        XCTAssertEqual(Set(leases.keys), Set(subnets.map { "\($0)" }))
        for h in w.hosts { XCTAssertEqual(leases["\(try h.subnet())"]?.mac, try h.vtep().mac) }
    }

    /// etcd stopped for a while: traffic between the hosts keeps flowing (the kernel is left
    /// alone), and when etcd is back every daemon resumes its watch (a host that died
    /// meanwhile leaves the others once its lease runs out) and its renewals (the living
    /// hosts' short leases outlast several TTLs).
    func testAnEtcdOutageStopsNoTrafficAndWatchesAndRenewalsResume() throws {
        let w = try DaemonWorld(self, hosts: 3)
        let etcd = try UnderlayEtcd(w)
        try w.putConfig(basicConfig)
        try w.startAll(["--subnet-lease-ttl", "4s"])
        try w.waitUntilReady()
        try w.waitForFullMesh()
        try w.addPodAddresses()
        let (h1, h2, h3) = (w.hosts[0], w.hosts[1], w.hosts[2])
        let loops = try [PingLoop(w, from: h1, to: h2, count: 120), PingLoop(w, from: h2, to: h3, count: 120)]
        usleep(500_000)
        etcd.stop()
        h3.daemon?.killNow()
        usleep(4_000_000)
        try etcd.start()
        for loop in loops {
            let (sent, received) = try loop.wait()
            XCTAssertEqual(received, sent, "\(loop.name): lost \(sent - received) during the outage")
        }
        let expected = try [h1, h2].map { try w.expectedPeer($0) }
        for h in [h1, h2] {
            let other = expected.first { $0.publicIP != h.publicIP }!
            try eventually("host \(h.index) without the dead host", timeout: 15) { try h.hasExactly([other]) }
        }
        usleep(5_000_000)   // more than a TTL: only renewals keep the living hosts' leases
        XCTAssertEqual(Set(try w.leases().keys), Set(try [h1, h2].map { "\(try $0.subnet())" }))
        XCTAssertEqual(h1.healthz().code, 200)
        XCTAssertTrue(try w.ping(h1, h2).ok)
    }
}
