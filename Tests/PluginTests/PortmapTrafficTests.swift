import Foundation
import XCTest
import TestSupport

/// The built `portmap` executable with hand-made prevResults, real TCP/UDP traffic through a
/// host netns, from an "outside" netns, a neighbour container, the container itself and the
/// host's own localhost.
final class PortmapTrafficTests: PortmapTestCase {
    func testEveryPathReachesThePublishedPortAndDelRemovesIt() throws {
        let c1 = pm.container("c1"), c2 = pm.container("c2")
        pm.serve(c1.netns, port: 80, name: "c1")
        let conf = pm.config(c1, [(8080, 80, "tcp", nil), (8080, 80, "udp", nil)])
        let add = pm.plugin("ADD", c1, conf)
        XCTAssertEqual(add.status, 0, add.description)
        // The result is prevResult passed on.
        XCTAssertEqual((add.jsonObject?["ips"] as? [Any])?.count, 2, add.stdout)

        // Outside → host underlay address, TCP and UDP, IPv4 and IPv6.
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080, udp: true)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV6, 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV6, 8080, udp: true)?.hasPrefix("c1 "), true)
        // Outside traffic keeps its source address (no SNAT).
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080), "c1 ::ffff:192.168.77.1")

        // Hairpin from a neighbour on the same bridge: masqueraded to the bridge address.
        for target in [PortmapWorld.hostUnderlayV4, PortmapWorld.bridgeV4] {
            XCTAssertEqual(pm.connect(from: c2.netns, target, 8080), "c1 ::ffff:10.88.0.1", "neighbour → \(target)")
            XCTAssertEqual(pm.connect(from: c2.netns, target, 8080, udp: true), "c1 ::ffff:10.88.0.1", "neighbour udp → \(target)")
        }
        XCTAssertEqual(pm.connect(from: c2.netns, PortmapWorld.bridgeV6, 8080), "c1 fd88::1")
        // The container itself through its own published port.
        XCTAssertEqual(pm.connect(from: c1.netns, PortmapWorld.hostUnderlayV4, 8080), "c1 ::ffff:10.88.0.1")
        XCTAssertEqual(pm.connect(from: c1.netns, PortmapWorld.bridgeV6, 8080, udp: true), "c1 fd88::1")
        // The host itself via localhost (route_localnet + masquerade) and via its own address.
        XCTAssertEqual(pm.connect(from: pm.host, "127.0.0.1", 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.host, "127.0.0.1", 8080, udp: true)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.host, PortmapWorld.hostUnderlayV4, 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(try world.exec(in: pm.host, ["sysctl", "-n", "net.ipv4.conf.\(pm.bridge).route_localnet"]).checked().stdout, "1\n")
        // [::1]:8080 is not mapped (no route_localnet for IPv6): a host listener there keeps it.
        let hostServer = pm.serve(pm.host, port: 8080, name: "hostself")
        XCTAssertEqual(pm.connect(from: pm.host, "::1", 8080)?.hasPrefix("hostself "), true)
        // …while IPv4 localhost and the host's addresses still go to the container.
        XCTAssertEqual(pm.connect(from: pm.host, "127.0.0.1", 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.host, PortmapWorld.hostUnderlayV6, 8080)?.hasPrefix("c1 "), true)
        pm.stop(hostServer)

        // CHECK passes while everything is there.
        let check = pm.plugin("CHECK", c1, conf)
        XCTAssertEqual(check.status, 0, check.description)

        // DEL without prevResult or mappings: found by the container ID alone.
        let del = pm.plugin("DEL", c1, pm.config(nil, []))
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(del.stdout, "")
        XCTAssertFalse(pm.elements().contains { $0.comment?.contains(c1.id) == true }, pm.ruleset())
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080), "still reachable after DEL")
        XCTAssertNil(pm.connect(from: c2.netns, PortmapWorld.bridgeV4, 8080))
        XCTAssertNil(pm.connect(from: pm.host, "127.0.0.1", 8080))
        // The table stays, valid and empty of elements.
        XCTAssertTrue(pm.elements().isEmpty, pm.ruleset())
        XCTAssertTrue(pm.ruleset().contains("chain portmap"), pm.ruleset())
        // A second DEL is fine; CHECK now fails.
        XCTAssertEqual(pm.plugin("DEL", c1, conf).status, 0)
        let bad = pm.plugin("CHECK", c1, conf)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains("8080"), bad.stdout)
    }

    func testHostIPLimitsTheMappingToOneAddress() {
        let c1 = pm.container("c1")
        pm.serve(c1.netns, port: 80, name: "c1")
        let add = pm.plugin("ADD", c1, pm.config(c1, [(9090, 80, "tcp", PortmapWorld.bridgeV4),
                                                      (9091, 80, "udp", PortmapWorld.hostUnderlayV6)]))
        XCTAssertEqual(add.status, 0, add.description)
        // The outside netns routes 10.88.0.0/24 through the host: the bridge address works…
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.bridgeV4, 9090), "c1 ::ffff:192.168.77.1")
        // …the underlay address of the same host does not.
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 9090))
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV6, 9091, udp: true), "c1 fd77::1")
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.bridgeV6, 9091, udp: true))
        // An IPv6 hostIP maps only the container's IPv6 address.
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 9091, udp: true))
    }

    func testSecondContainerOnTheSamePortIsRefusedAndChangesNothing() {
        let c1 = pm.container("c1"), c2 = pm.container("c2")
        pm.serve(c1.netns, port: 80, name: "c1")
        pm.serve(c2.netns, port: 80, name: "c2")
        XCTAssertEqual(pm.plugin("ADD", c1, pm.config(c1, [(8080, 80, "tcp", nil)])).status, 0)
        let before = pm.ruleset()
        let r = pm.plugin("ADD", c2, pm.config(c2, [(7070, 80, "tcp", nil), (8080, 80, "tcp", nil)]))
        XCTAssertNotEqual(r.status, 0, r.description)
        let msg = r.jsonObject?["msg"] as? String ?? ""
        XCTAssertTrue(msg.contains("8080/tcp") && msg.contains(c1.id), "error does not name the holder: \(r.stdout)")
        XCTAssertEqual(pm.ruleset(), before, "a refused ADD changed the ruleset")
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 7070))
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080)?.hasPrefix("c1 "), true)
        // Same port, other protocol: no conflict.
        XCTAssertEqual(pm.plugin("ADD", c2, pm.config(c2, [(8080, 80, "udp", nil)])).status, 0)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080, udp: true)?.hasPrefix("c2 "), true)
        // Repeating c1's ADD is no conflict with itself.
        let again = pm.plugin("ADD", c1, pm.config(c1, [(8080, 80, "tcp", nil)]))
        XCTAssertEqual(again.status, 0, again.description)
    }

    func testStaleUDPConntrackIsFlushedWhenThePortMovesToAnotherContainer() {
        let c1 = pm.container("c1"), c2 = pm.container("c2")
        pm.serve(c1.netns, port: 53, name: "c1")
        pm.serve(c2.netns, port: 53, name: "c2")
        XCTAssertEqual(pm.plugin("ADD", c1, pm.config(c1, [(5353, 53, "udp", nil)])).status, 0)
        // The same client socket (fixed source port) is one conntrack flow.
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 5353, udp: true, sourcePort: 40000)?.hasPrefix("c1 "), true)
        let ct = world.exec(in: pm.host, ["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"])
        XCTAssertEqual(pm.plugin("DEL", c1, pm.config(c1, [(5353, 53, "udp", nil)])).status, 0)
        XCTAssertEqual(pm.plugin("ADD", c2, pm.config(c2, [(5353, 53, "udp", nil)])).status, 0)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 5353, udp: true, sourcePort: 40000)?.hasPrefix("c2 "), true,
                       "stale flow still goes to c1 (conntrack before DEL: \(ct.stdout))")
    }
}
