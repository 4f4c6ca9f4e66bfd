import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// Every builder form against nft itself: the same rule is added once as nft text (by the
/// `nft` command) and once through RuleBuilder, into twin tables with the same sets; the
/// kernel's expression dumps of both must be identical.
final class EquivalenceTests: XCTestCase {
    typealias Build = @Sendable (RuleBuilder) -> RuleBuilder

    func testBuilderMatchesNftForEveryForm() throws {
        let w = try NFTWorld(self)
        let (ref, refChains) = Self.tables("ref"), (ours, ourChains) = Self.tables("ours")
        try w.apply { b in
            for (t, chains) in [(ref, refChains), (ours, ourChains)] {
                b.add(t)
                for name in Self.chainNames { b.add(chains[name]!) }
                Self.addSets(t, &b)
            }
        }
        var batch = Batch()
        for (chain, text, build) in Self.cases {
            let r = w.world.exec(in: w.ns, ["nft", "add rule inet ref \(chain) \(text)"])
            XCTAssertTrue(r.ok, "nft rejected \(text): \(r)")
            batch.add(Rule(chain: ourChains[chain]!, build))
        }
        try w.sock.apply(batch)

        for name in Self.chainNames {
            let theirs = try w.sock.rules(chain: refChains[name]!)
            let mine = try w.sock.rules(chain: ourChains[name]!)
            let texts = Self.cases.filter { $0.0 == name }.map(\.1)
            XCTAssertEqual(theirs.count, texts.count, name)
            XCTAssertEqual(mine.count, texts.count, name)
            for (text, (t, m)) in zip(texts, zip(theirs, mine)) {
                XCTAssertEqual(expressions(m.summary), expressions(t.summary), "\(name): \(text)")
                XCTAssertFalse(expressions(t.summary).isEmpty)
            }
        }
        // nft renders both tables' rules identically.
        let text = w.ruleset()
        let refPart = text.components(separatedBy: "table inet ours")[0].components(separatedBy: "table inet ref")[1]
        let ourPart = text.components(separatedBy: "table inet ours")[1]
        XCTAssertEqual(lines(refPart).filter { !$0.hasPrefix("elements") }, lines(ourPart).filter { !$0.hasPrefix("elements") })
    }

    static let chainNames = ["pre", "post", "filt", "ctr-rules-2", "ctr-rules"]

    static func tables(_ name: String) -> (Table, [String: Chain]) {
        let t = Table(family: .inet, name: name)
        return (t, [
            "pre": Chain(table: t, name: "pre", type: .nat, hook: .prerouting, priority: -100, policy: .accept),
            "post": Chain(table: t, name: "post", type: .nat, hook: .postrouting, priority: 100, policy: .accept),
            "filt": Chain(table: t, name: "filt", type: .filter, hook: .forward, priority: 0, policy: .accept),
            "ctr-rules": Chain(table: t, name: "ctr-rules"),
            "ctr-rules-2": Chain(table: t, name: "ctr-rules-2"),
        ])
    }

    /// The sets and maps the cases refer to, in table `t`.
    static func addSets(_ t: Table, _ b: inout Batch) {
        b.add(NFTSet(table: t, name: "masq_v4", keyType: [.ipv4Addr], flags: [.interval]))
        b.add(NFTSet(table: t, name: "masq_v6", keyType: [.ipv6Addr], flags: [.interval]))
        b.add(NFTSet(table: t, name: "portmap_v4", keyType: [.inetProto, .inetService], data: .values([.ipv4Addr, .inetService])))
        b.add(NFTSet(table: t, name: "portmap_v6", keyType: [.inetProto, .inetService], data: .values([.ipv6Addr, .inetService])))
        b.add(NFTSet(table: t, name: "fwd_vmap", keyType: [.ipv4Addr, .inetProto, .inetService], data: .verdict))
        b.add(NFTSet(table: t, name: "dests", keyType: [.ipv4Addr, .inetProto, .inetService]))
        b.add(NFTSet(table: t, name: "hostmap", keyType: [.ipv4Addr, .inetProto, .inetService],
                     data: .values([.ipv4Addr, .inetService])))
        b.add(NFTSet(table: t, name: "hostmap6", keyType: [.ipv6Addr, .inetProto, .inetService],
                     data: .values([.ipv6Addr, .inetService])))
        b.add(NFTSet(table: t, name: "bridges", keyType: [.ifname]))
        b.add(NFTSet(table: t, name: "hairpin", keyType: [.ipv4Addr, .ifname]))
    }

    /// (chain, nft text, the same through the builder)
    static let cases: [(String, String, Build)] = [
        ("post", "ip saddr @masq_v4 ip daddr != 224.0.0.0/4 masquerade",
         { $0.match(.ipSaddr, inSet: "masq_v4").match(.ipDaddr, not: .prefix(CIDR("224.0.0.0/4")!)).masquerade() }),
        ("post", "ip6 saddr @masq_v6 ip6 daddr != ff00::/8 masquerade",
         { $0.match(.ip6Saddr, inSet: "masq_v6").match(.ip6Daddr, not: .prefix(CIDR("ff00::/8")!)).masquerade() }),
        ("post", "meta l4proto tcp ip saddr 10.99.0.0/16 masquerade to :1024-65535",
         { $0.match(.l4proto, .tcp).match(.ipSaddr, .prefix(CIDR("10.99.0.0/16")!)).masquerade(ports: 1024...65535) }),
        ("post", "ip saddr 10.99.0.0/20 ip saddr != @masq_v4 counter",
         { $0.match(.ipSaddr, .prefix(CIDR("10.99.0.0/20")!)).match(.ipSaddr, inSet: "masq_v4", negate: true).counter() }),
        ("post", "oifname \"eth0\" ip daddr 10.0.0.1 snat ip to 192.0.2.1",
         { $0.match(.oifname, .ifname("eth0")).match(.ipDaddr, .address(a4("10.0.0.1"))).snat(to: a4("192.0.2.1")) }),
        ("post", "oifname != \"cni0\" meta l4proto tcp ip6 saddr fd00::/64 snat ip6 to [fd00::9]:99",
         { $0.match(.oifname, not: .ifname("cni0")).match(.l4proto, .tcp).match(.ip6Saddr, .prefix(CIDR("fd00::/64")!)).snat(to: a4("fd00::9"), port: 99) }),
        ("pre", "fib daddr type local dnat ip to meta l4proto . th dport map @portmap_v4",
         { $0.fibDaddrTypeLocal().dnat(.v4, key: [.l4proto, .thDport], map: "portmap_v4") }),
        ("pre", "fib daddr type local dnat ip6 to meta l4proto . th dport map @portmap_v6",
         { $0.fibDaddrTypeLocal().dnat(.v6, key: [.l4proto, .thDport], map: "portmap_v6") }),
        ("pre", "dnat ip to ip daddr . meta l4proto . th dport map @hostmap",
         { $0.dnat(.v4, key: [.ipDaddr, .l4proto, .thDport], map: "hostmap") }),
        ("pre", "dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostmap6",
         { $0.dnat(.v6, key: [.ip6Daddr, .l4proto, .thDport], map: "hostmap6") }),
        ("pre", "tcp dport 80 dnat ip to 10.0.0.2:8080",
         { $0.match(.l4proto, .tcp).match(.thDport, .port(80)).dnat(to: a4("10.0.0.2"), port: 8080) }),
        ("pre", "udp sport 53 dnat ip6 to [fd00::2]:5353",
         { $0.match(.l4proto, .udp).match(.thSport, .port(53)).dnat(to: a4("fd00::2"), port: 5353) }),
        ("pre", "ip daddr 10.1.1.1 dnat ip to 10.0.0.3",
         { $0.match(.ipDaddr, .address(a4("10.1.1.1"))).dnat(to: a4("10.0.0.3")) }),
        ("filt", "ct state established,related accept", { $0.ctState([.established, .related]).accept() }),
        ("filt", "ct state invalid drop", { $0.ctState(.invalid).drop() }),
        ("filt", "iifname @bridges counter jump ctr-rules",
         { $0.match(.iifname, inSet: "bridges").counter().jump("ctr-rules") }),
        ("filt", "iifname \"nl0\" oifname != \"nl0\" accept",
         { $0.match(.iifname, .ifname("nl0")).match(.oifname, not: .ifname("nl0")).accept() }),
        ("filt", "ip daddr . meta l4proto . th dport vmap @fwd_vmap",
         { $0.verdictMap([.ipDaddr, .l4proto, .thDport], map: "fwd_vmap") }),
        ("filt", "ip daddr . meta l4proto . th dport @dests accept",
         { $0.match([.ipDaddr, .l4proto, .thDport], inSet: "dests").accept() }),
        ("filt", "ip6 saddr fd00::1 drop", { $0.match(.ip6Saddr, .address(a4("fd00::1"))).drop() }),
        ("ctr-rules", "meta mark 0x10 return", { $0.match(.mark, .mark(0x10)).return() }),
        ("ctr-rules", "meta mark set 0x20 goto ctr-rules-2", { $0.setMark(0x20).goto("ctr-rules-2") }),
        ("ctr-rules", "meta l4proto udp counter", { $0.match(.l4proto, .udp).counter() }),
        ("post", "meta mark and 0x00004000 == 0x00004000 masquerade", { $0.matchMark(allOf: 0x4000).masquerade() }),
        ("pre", "meta nfproto ipv6 ip6 daddr != ::1 counter",
         { $0.match(family: .v6).match(.ip6Daddr, not: .address(a4("::1"))).counter() }),
        ("pre", "meta nfproto ipv4 meta l4proto tcp counter", { $0.match(family: .v4).match(.l4proto, .tcp).counter() }),
        ("filt", "ct status dnat ip daddr . iifname @hairpin meta mark set meta mark or 0x00004000",
         { $0.ctStatus(.dnat).match([.ipDaddr, .iifname], inSet: "hairpin").setMark(or: 0x4000) }),
    ]

    /// The expression lines of libnftnl's rule rendering (the first line names table and chain).
    private func expressions(_ summary: String) -> [String] {
        lines(summary).filter { $0.hasPrefix("[") }
    }
}

private func a4(_ s: String) -> IPAddress { IPAddress(s)! }
