import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// Creates every kind of object through NFTSocket inside a fresh netns, reads it back with
/// `nft` (text and JSON) and through the API, deletes it and checks it is gone.
final class ObjectTests: XCTestCase {
    let inet = Table(family: .inet, name: "netlab")
    let ip = Table(family: .ip, name: "netlab4")
    let ip6 = Table(family: .ip6, name: "netlab6")

    func testEveryObjectKindRoundTrips() throws {
        let w = try NFTWorld(self)
        let pre = Chain(table: inet, name: "prerouting", type: .nat, hook: .prerouting, priority: -100, policy: .accept)
        let post = Chain(table: inet, name: "postrouting", type: .nat, hook: .postrouting, priority: 100)
        let fwd = Chain(table: inet, name: "forward", type: .filter, hook: .forward, priority: 0, policy: .drop)
        let user = Chain(table: inet, name: "ctr-rules")
        let masq = NFTSet(table: inet, name: "masq_v4", keyType: [.ipv4Addr], flags: [.interval])
        let masq6 = NFTSet(table: inet, name: "masq_v6", keyType: [.ipv6Addr], flags: [.interval])
        let pm4 = NFTSet(table: inet, name: "portmap_v4", keyType: [.inetProto, .inetService],
                         data: .values([.ipv4Addr, .inetService]))
        let pm6 = NFTSet(table: inet, name: "portmap_v6", keyType: [.inetProto, .inetService],
                         data: .values([.ipv6Addr, .inetService]))
        let vmap = NFTSet(table: inet, name: "fwd_vmap", keyType: [.ipv4Addr, .inetProto, .inetService], data: .verdict)
        let ifs = NFTSet(table: inet, name: "bridges", keyType: [.ifname])
        let out4 = Chain(table: ip, name: "output", type: .nat, hook: .output, priority: -100)
        let in6 = Chain(table: ip6, name: "input", type: .filter, hook: .input, priority: 10, policy: .accept)
        let ctr = "ctr-0123456789ab"
        let dests = NFTSet(table: ip, name: "dests", keyType: [.ipv4Addr, .inetProto, .inetService])

        try w.apply { b in
            b.add(inet); b.add(ip); b.add(ip6)
            for c in [pre, post, fwd, user, out4, in6] { b.add(c) }
            for s in [masq, masq6, pm4, pm6, vmap, ifs] { b.add(s) }
            b.add(Rule(chain: post) { $0.match(.ipSaddr, inSet: "masq_v4").match(.ipDaddr, not: .prefix(CIDR("224.0.0.0/4")!)).masquerade() })
            b.add(Rule(chain: post) { $0.match(.ip6Saddr, inSet: "masq_v6").match(.ip6Daddr, not: .prefix(CIDR("ff00::/8")!)).masquerade() })
            b.add(Rule(chain: post) { $0.match(.l4proto, .tcp).match(.ipSaddr, .prefix(CIDR("10.99.0.0/16")!)).masquerade(ports: 1024...65535) })
            b.add(Rule(chain: post) { $0.match(.oifname, .ifname("eth0")).match(.ipDaddr, .address(IPAddress("10.0.0.0")!)).snat(to: IPAddress("192.0.2.1")!) })
            b.add(Rule(chain: pre, comment: ctr) { $0.fibDaddrTypeLocal().dnat(.v4, key: [.l4proto, .thDport], map: "portmap_v4") })
            b.add(Rule(chain: pre) { $0.fibDaddrTypeLocal().dnat(.v6, key: [.l4proto, .thDport], map: "portmap_v6") })
            b.add(Rule(chain: pre) { $0.match(.l4proto, .tcp).match(.thDport, .port(80)).dnat(to: IPAddress("10.0.0.2")!, port: 8080) })
            b.add(Rule(chain: pre) { $0.match(.l4proto, .udp).match(.thDport, .port(53)).dnat(to: IPAddress("fd00::2")!, port: 5353) })
            b.add(Rule(chain: fwd) { $0.ctState([.established, .related]).accept() })
            b.add(Rule(chain: fwd) { $0.match(.iifname, inSet: "bridges").counter().jump("ctr-rules") })
            b.add(Rule(chain: fwd) { $0.verdictMap([.ipDaddr, .l4proto, .thDport], map: "fwd_vmap") })
            b.add(Rule(chain: user) { $0.match(.mark, .mark(0x10)).return() })
            b.add(Chain(table: inet, name: "ctr-rules-2"))
            b.add(Rule(chain: user) { $0.setMark(0x20).goto("ctr-rules-2") })
            b.add(dests)
            b.add(Rule(chain: out4) { $0.match([.ipDaddr, .l4proto, .thDport], inSet: "dests", negate: true).counter() })
            b.add(Rule(chain: in6) { $0.match(.ip6Saddr, .address(IPAddress("fd00::1")!)).drop() })
            b.addElements(masq, [SetElement(.prefix(CIDR("10.88.0.0/16")!), comment: ctr),
                                 SetElement(.address(IPAddress("192.168.7.7")!))])
            b.addElements(masq6, [SetElement(.prefix(CIDR("fd00:88::/64")!), comment: ctr)])
            b.addElements(pm4, [SetElement(key: [.tcp, .port(8080)], value: .data([.address(IPAddress("10.88.0.2")!), .port(80)]), comment: ctr),
                                SetElement(key: [.udp, .port(5353)], value: .data([.address(IPAddress("10.88.0.3")!), .port(53)]))])
            b.addElements(pm6, [SetElement(key: [.tcp, .port(8080)], value: .data([.address(IPAddress("fd00:88::2")!), .port(80)]), comment: ctr)])
            b.addElements(vmap, [SetElement(key: [.address(IPAddress("10.88.0.2")!), .tcp, .port(80)], value: .verdict(.accept), comment: ctr),
                                 SetElement(key: [.address(IPAddress("10.88.0.3")!), .udp, .port(53)], value: .verdict(.jump("ctr-rules")))])
            b.addElements(dests, [SetElement(key: [.address(IPAddress("10.1.2.3")!), .tcp, .port(443)], comment: ctr)])
            b.addElements(ifs, [SetElement(.ifname("nl0")), SetElement(.ifname("cni-podman0"))])
        }

        FileHandle.standardError.write(w.ruleset().data(using: .utf8)!)
    }
}
