// flannel's --ip-masq in the table `inet netlab-overlay`: pods reach outside the cluster
// network only masqueraded, keep their address inside it, and the table goes at teardown.

import Foundation
import NFTables
import NetTypes
import OverlayKernel
import TestSupport
import XCTest

final class MasqueradeTests: XCTestCase {
    func testTrafficLeavingTheClusterIsMasqueradedAndClusterTrafficIsNot() throws {
        let world = try OverlayWorld.connected(self, hosts: 2)
        let (a, b) = (world.hosts[0], world.hosts[1])
        // The underlay's bridge address: it has no route back to the cluster network.
        let outside = IPAddress("198.18.0.254")!
        XCTAssertFalse(world.ping(from: a, source: a.podAddress, to: outside).ok, "without masquerade no way back")

        let socket = try NFTSocket(namespacePath: a.path)
        let masquerade = OverlayMasquerade(networks: [OverlayWorld.network, OverlayWorld.networkV6])
        XCTAssertTrue(try masquerade.ensure(socket))
        XCTAssertFalse(try masquerade.ensure(socket), "a second ensure changes nothing")
        let listing = try must(["ip", "netns", "exec", a.netns, "nft", "list", "table", "inet", "netlab-overlay"]).stdout
        for line in ["type nat hook postrouting priority srcnat; policy accept;",
                     "ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return",
                     "ip saddr 10.244.0.0/16 ip daddr 224.0.0.0/4 return",
                     "ip saddr 10.244.0.0/16 masquerade fully-random",
                     "ip6 saddr fd10:244::/56 ip6 daddr fd10:244::/56 return",
                     "ip6 saddr fd10:244::/56 ip6 daddr ff00::/8 return",
                     "ip6 saddr fd10:244::/56 masquerade fully-random"] {
            XCTAssertTrue(listing.contains(line), "missing `\(line)` in\n\(listing)")
        }

        assertSucceeds(world.ping(from: a, source: a.podAddress, to: outside), "masqueraded to the underlay")

        // b counts packets that arrive with a's pod address as their source.
        let probe = """
            table inet probe {
                chain input { type filter hook input priority 0; ip saddr \(a.podAddress) counter; }
            }
            """
        assertSucceeds(runCommand(["ip", "netns", "exec", b.netns, "nft", "-f", "-"], stdin: probe))
        assertSucceeds(world.pingPods(a, b))
        let counter = try must(["ip", "netns", "exec", b.netns, "nft", "list", "table", "inet", "probe"]).stdout
        XCTAssertTrue(counter.contains("counter packets 1 "), "cluster traffic kept its source address:\n\(counter)")

        try OverlayMasquerade.remove(socket)
        XCTAssertFalse(try socket.tables().contains(OverlayMasquerade.table))
        try OverlayMasquerade.remove(socket)
    }
}
