import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

// The objects the test builds.
private let inet = Table(family: .inet, name: "netlab")
private let ip = Table(family: .ip, name: "netlab4")
private let ip6 = Table(family: .ip6, name: "netlab6")
private let pre = Chain(table: inet, name: "prerouting", type: .nat, hook: .prerouting, priority: -100, policy: .accept)
private let post = Chain(table: inet, name: "postrouting", type: .nat, hook: .postrouting, priority: 100, policy: .accept)
private let fwd = Chain(table: inet, name: "forward", type: .filter, hook: .forward, priority: 0, policy: .drop)
private let user = Chain(table: inet, name: "ctr-rules")
private let masq = NFTSet(table: inet, name: "masq_v4", keyType: [.ipv4Addr], flags: [.interval])
private let masq6 = NFTSet(table: inet, name: "masq_v6", keyType: [.ipv6Addr], flags: [.interval])
private let pm4 = NFTSet(table: inet, name: "portmap_v4", keyType: [.inetProto, .inetService],
                         data: .values([.ipv4Addr, .inetService]))
private let pm6 = NFTSet(table: inet, name: "portmap_v6", keyType: [.inetProto, .inetService],
                         data: .values([.ipv6Addr, .inetService]))
private let vmap = NFTSet(table: inet, name: "fwd_vmap", keyType: [.ipv4Addr, .inetProto, .inetService], data: .verdict)
private let ifs = NFTSet(table: inet, name: "bridges", keyType: [.ifname])
private let out4 = Chain(table: ip, name: "output", type: .nat, hook: .output, priority: -100)
private let in6 = Chain(table: ip6, name: "input", type: .filter, hook: .input, priority: 10, policy: .accept)
private let ctr = "ctr-0123456789ab"
private let dests = NFTSet(table: ip, name: "dests", keyType: [.ipv4Addr, .inetProto, .inetService])

/// Creates every kind of object through NFTSocket inside a fresh netns, reads it back with
/// `nft` (text and JSON) and through the API, deletes it and checks it is gone.
final class ObjectTests: XCTestCase {
    func testEveryObjectKindRoundTrips() throws {
        let w = try NFTWorld(self)
        try build(w)
        try checkNftView(w)
        try checkAPIView(w)
        try deletePieceByPiece(w)
    }

    /// Every kind of object, one batch.
    private func build(_ w: NFTWorld) throws {
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
    }

    /// nft's own rendering of what we built (text without element blocks, elements as JSON).
    private func checkNftView(_ w: NFTWorld) throws {
        XCTAssertEqual(withoutElements(w.ruleset()), lines(expectedRuleset))

        let elems = try w.jsonElements()
        XCTAssertEqual(elems["inet netlab masq_v4"], [
            #""192.168.7.7""#,
            #"{"elem":{"comment":"ctr-0123456789ab","val":{"prefix":{"addr":"10.88.0.0","len":16}}}}"#])
        XCTAssertEqual(elems["inet netlab masq_v6"], [
            #"{"elem":{"comment":"ctr-0123456789ab","val":{"prefix":{"addr":"fd00:88::","len":64}}}}"#])
        XCTAssertEqual(elems["inet netlab portmap_v4"], [
            #"[{"concat":["udp",5353]},{"concat":["10.88.0.3",53]}]"#,
            #"[{"elem":{"comment":"ctr-0123456789ab","val":{"concat":["tcp",8080]}}},{"concat":["10.88.0.2",80]}]"#])
        XCTAssertEqual(elems["inet netlab portmap_v6"], [
            #"[{"elem":{"comment":"ctr-0123456789ab","val":{"concat":["tcp",8080]}}},{"concat":["fd00:88::2",80]}]"#])
        XCTAssertEqual(elems["inet netlab fwd_vmap"], [
            #"[{"concat":["10.88.0.3","udp",53]},{"jump":{"target":"ctr-rules"}}]"#,
            #"[{"elem":{"comment":"ctr-0123456789ab","val":{"concat":["10.88.0.2","tcp",80]}}},{"accept":null}]"#])
        XCTAssertEqual(elems["inet netlab bridges"], [#""cni-podman0""#, #""nl0""#])
        XCTAssertEqual(elems["ip netlab4 dests"], [
            #"{"elem":{"comment":"ctr-0123456789ab","val":{"concat":["10.1.2.3","tcp",443]}}}"#])
    }

    /// The same state read back through the API.
    private func checkAPIView(_ w: NFTWorld) throws {
        XCTAssertEqual(Set(try w.sock.tables()), [inet, ip, ip6])
        let chains = try w.sock.chains(table: inet)
        XCTAssertEqual(Set(chains), [pre, post, fwd, user, Chain(table: inet, name: "ctr-rules-2")])
        XCTAssertEqual(try w.sock.chains(table: ip6), [in6])
        let preRules = try w.sock.rules(chain: pre)
        XCTAssertEqual(preRules.count, 4)
        XCTAssertEqual(preRules.first?.comment, ctr)
        XCTAssertEqual(preRules.dropFirst().map(\.comment), [nil, nil, nil])
        XCTAssertEqual(Set(preRules.map(\.handle)).count, 4)
        XCTAssertTrue(preRules[0].summary.contains("lookup reg 1 set portmap_v4 dreg 1"), preRules[0].summary)
        XCTAssertEqual(Set(try w.sock.elements(of: masq)), [
            SetElement(.prefix(CIDR("10.88.0.0/16")!), comment: ctr), SetElement(.address(IPAddress("192.168.7.7")!))])
        XCTAssertEqual(try w.sock.elements(of: masq6), [SetElement(.prefix(CIDR("fd00:88::/64")!), comment: ctr)])
        XCTAssertEqual(Set(try w.sock.elements(of: pm4)), [
            SetElement(key: [.tcp, .port(8080)], value: .data([.address(IPAddress("10.88.0.2")!), .port(80)]), comment: ctr),
            SetElement(key: [.udp, .port(5353)], value: .data([.address(IPAddress("10.88.0.3")!), .port(53)]))])
        XCTAssertEqual(Set(try w.sock.elements(of: vmap)), [
            SetElement(key: [.address(IPAddress("10.88.0.2")!), .tcp, .port(80)], value: .verdict(.accept), comment: ctr),
            SetElement(key: [.address(IPAddress("10.88.0.3")!), .udp, .port(53)], value: .verdict(.jump("ctr-rules")))])
        XCTAssertEqual(Set(try w.sock.elements(of: ifs)), [SetElement(.ifname("nl0")), SetElement(.ifname("cni-podman0"))])
        XCTAssertEqual(Set(try w.sock.setNames(table: inet)), ["masq_v4", "masq_v6", "portmap_v4", "portmap_v6", "fwd_vmap", "bridges"])
    }

    /// Delete piece by piece, then the tables; nothing is left.
    private func deletePieceByPiece(_ w: NFTWorld) throws {
        let before = try w.sock.rules(chain: post)
        try w.apply { b in
            b.deleteRule(post, handle: before[3].handle)
            b.deleteElements(pm4, [SetElement(key: [.udp, .port(5353)])])
            b.deleteElements(masq, [SetElement(.address(IPAddress("192.168.7.7")!))])
            b.flush(fwd)
            b.flush(ifs)
        }
        XCTAssertEqual(try w.sock.rules(chain: post).map(\.handle), before.prefix(3).map(\.handle))
        XCTAssertEqual(try w.sock.elements(of: pm4).count, 1)
        XCTAssertEqual(try w.sock.elements(of: masq), [SetElement(.prefix(CIDR("10.88.0.0/16")!), comment: ctr)])
        XCTAssertEqual(try w.sock.rules(chain: fwd).count, 0)
        XCTAssertEqual(try w.sock.elements(of: ifs), [])
        XCTAssertFalse(w.ruleset().contains("oifname \"eth0\""))
        try w.apply { b in
            b.delete(vmap)
            b.delete(Chain(table: ip6, name: "input"))
        }
        XCTAssertFalse(w.ruleset().contains("fwd_vmap"))
        XCTAssertFalse(w.ruleset().contains("chain input"))
        try w.apply { b in b.delete(inet); b.delete(ip); b.delete(ip6) }
        XCTAssertEqual(try w.sock.tables(), [])
        XCTAssertEqual(lines(w.ruleset()), [])
    }
}

private let expectedRuleset = """
        table inet netlab {
        set masq_v4 {
        type ipv4_addr
        flags interval
        }
        set masq_v6 {
        type ipv6_addr
        flags interval
        }
        map portmap_v4 {
        type inet_proto . inet_service : ipv4_addr . inet_service
        }
        map portmap_v6 {
        type inet_proto . inet_service : ipv6_addr . inet_service
        }
        map fwd_vmap {
        type ipv4_addr . inet_proto . inet_service : verdict
        }
        set bridges {
        type ifname
        }
        chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local dnat ip to meta l4proto . th dport map @portmap_v4 comment "ctr-0123456789ab"
        fib daddr type local dnat ip6 to meta l4proto . th dport map @portmap_v6
        tcp dport 80 dnat ip to 10.0.0.2:8080
        udp dport 53 dnat ip6 to [fd00::2]:5353
        }
        chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr @masq_v4 ip daddr != 224.0.0.0/4 masquerade
        ip6 saddr @masq_v6 ip6 daddr != ff00::/8 masquerade
        meta l4proto tcp ip saddr 10.99.0.0/16 masquerade to :1024-65535
        oifname "eth0" ip daddr 10.0.0.0 snat ip to 192.0.2.1
        }
        chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname @bridges counter packets 0 bytes 0 jump ctr-rules
        ip daddr . meta l4proto . th dport vmap @fwd_vmap
        }
        chain ctr-rules {
        meta mark 0x00000010 return
        meta mark set 0x00000020 goto ctr-rules-2
        }
        chain ctr-rules-2 {
        }
        }
        table ip netlab4 {
        set dests {
        type ipv4_addr . inet_proto . inet_service
        }
        chain output {
        type nat hook output priority -100; policy accept;
        ip daddr . meta l4proto . th dport != @dests counter packets 0 bytes 0
        }
        }
        table ip6 netlab6 {
        chain input {
        type filter hook input priority filter + 10; policy accept;
        ip6 saddr fd00::1 drop
        }
        }
    """
