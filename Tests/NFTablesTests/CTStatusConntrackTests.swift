import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// `ct status` matches against nft's own encoding, and conntrack deletion by original
/// protocol + destination port inside a test netns.
final class CTStatusConntrackTests: XCTestCase {
    func testCTStatusMatchesNftEncoding() throws {
        let w = try NFTWorld(self)
        let ref = Table(family: .inet, name: "ref"), ours = Table(family: .inet, name: "ours")
        func post(_ t: Table) -> Chain { Chain(table: t, name: "post", type: .nat, hook: .postrouting, priority: 100, policy: .accept) }
        try w.apply { b in
            for t in [ref, ours] {
                b.add(t); b.add(post(t))
                b.add(NFTSet(table: t, name: "hp", keyType: [.ipv4Addr, .ifname]))
            }
        }
        let cases: [(String, (RuleBuilder) -> RuleBuilder)] = [
            ("ct status dnat masquerade", { $0.ctStatus(.dnat).masquerade() }),
            ("ct status dnat ip saddr 127.0.0.0/8 ip daddr . oifname @hp masquerade",
             { $0.ctStatus(.dnat).match(.ipSaddr, .prefix(CIDR("127.0.0.0/8")!)).match([.ipDaddr, .oifname], inSet: "hp").masquerade() }),
            ("ct status snat,dnat counter", { $0.ctStatus([.snat, .dnat]).counter() }),
        ]
        try w.assertSameExpressions(refPrefix: "inet ref post", refChain: post(ref), ourChain: post(ours), cases)
    }

    func testConntrackDeleteRemovesOnlyMatchingFlows() throws {
        let w = try NFTWorld(self)
        // A conntrack-using rule makes the netns track flows.
        let t = Table(family: .inet, name: "ct")
        let out = Chain(table: t, name: "out", type: .filter, hook: .output, priority: 0, policy: .accept)
        try w.apply { b in
            b.add(t); b.add(out)
            b.add(Rule(chain: out) { $0.ctState(.new).counter() })
        }
        let send = """
        import socket
        for port in (5000, 5001):
            for fam, a in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                s = socket.socket(fam, socket.SOCK_DGRAM); s.sendto(b"x", (a, port)); s.close()
        """
        try w.world.exec(in: w.ns, ["python3", "-c", send]).checked()
        /// The UDP flows towards `port` (IPv4 and IPv6); throws when `conntrack` fails.
        func flows(_ port: Int) throws -> Int {
            var n = 0
            for fam in ["ipv4", "ipv6"] {
                let r = try w.world.exec(in: w.ns, ["conntrack", "-L", "-f", fam, "-p", "udp", "--orig-port-dst", String(port)]).checked()
                n += r.stdout.split(separator: "\n").filter { $0.contains("dport=\(port)") }.count
            }
            return n
        }
        XCTAssertEqual(try flows(5000), 2)
        XCTAssertEqual(try flows(5001), 2)
        let deleted = try Conntrack.delete(matching: [ConntrackFilter(proto: 17, destinationPort: 5000)],
                                           namespacePath: w.world.path(w.ns))
        XCTAssertEqual(deleted, 2)
        XCTAssertEqual(try flows(5000), 0)
        XCTAssertEqual(try flows(5001), 2)
        // Nothing left to delete is no error.
        XCTAssertEqual(try Conntrack.delete(matching: [ConntrackFilter(proto: 17, destinationPort: 5000)],
                                            namespacePath: w.world.path(w.ns)), 0)
    }
}
