// portmap's objects in the suite table `inet netlab`: maps keyed by protocol and host port
// (and host address), hairpin sets, and the chains that use them. Rules never depend on how
// many containers exist; a container is only ever map/set elements.

import NetTypes
import NFTables
import PluginKit

public enum PortmapLayout {
    static let table = SuiteFirewall.table

    public static let anyV4 = NFTSet(table: table, name: "pm_v4", keyType: [.inetProto, .inetService],
                                     data: .values([.ipv4Addr, .inetService]))
    public static let hostIPV4 = NFTSet(table: table, name: "pm_hostip_v4", keyType: [.ipv4Addr, .inetProto, .inetService],
                                        data: .values([.ipv4Addr, .inetService]))
    public static let anyV6 = NFTSet(table: table, name: "pm_v6", keyType: [.inetProto, .inetService],
                                     data: .values([.ipv6Addr, .inetService]))
    public static let hostIPV6 = NFTSet(table: table, name: "pm_hostip_v6", keyType: [.ipv6Addr, .inetProto, .inetService],
                                        data: .values([.ipv6Addr, .inetService]))
    /// Container address . the host interface it is reached through (its bridge).
    public static let hairpinV4 = NFTSet(table: table, name: "pm_hairpin_v4", keyType: [.ipv4Addr, .ifname])
    public static let hairpinV6 = NFTSet(table: table, name: "pm_hairpin_v6", keyType: [.ipv6Addr, .ifname])

    public static let maps = [anyV4, hostIPV4, anyV6, hostIPV6]
    public static let sets = [hairpinV4, hairpinV6]
    public static let all = maps + sets

    static let prerouting = Chain(table: table, name: "pm_prerouting", type: .nat, hook: .prerouting, priority: -100)
    static let output = Chain(table: table, name: "pm_output", type: .nat, hook: .output, priority: -100)
    static let postrouting = Chain(table: table, name: "pm_postrouting", type: .nat, hook: .postrouting, priority: 100)
    /// Marks hairpin packets: only the forward hook knows both the input interface and the
    /// DNATed destination (postrouting has no input interface for forwarded packets).
    static let forward = Chain(table: table, name: "pm_forward", type: .filter, hook: .forward, priority: -150)
    static let portmap = Chain(table: table, name: "portmap")
    static let chains = [prerouting, output, forward, postrouting, portmap]

    static func map(for m: Mapping) -> NFTSet {
        switch (m.family, m.hostIP != nil) {
        case (.v4, false): anyV4
        case (.v4, true): hostIPV4
        case (.v6, false): anyV6
        case (.v6, true): hostIPV6
        }
    }

    /// `[hostIP .] protocol . hostPort`: what two containers may not share.
    static func key(_ m: Mapping) -> [KeyPart] {
        var key: [KeyPart] = [.proto(m.proto), .port(m.hostPort)]
        if let h = m.hostIP { key.insert(.address(h), at: 0) }
        return key
    }

    static func element(_ m: Mapping, owner: ElementOwner) -> SetElement {
        SetElement(key: key(m), value: .data([.address(m.containerIP), .port(m.containerPort)]), comment: owner.comment)
    }

    /// Reads a map element back as a mapping.
    static func mapping(from e: SetElement) -> Mapping? {
        guard case .data(let d)? = e.value, d.count == 2, case .address(let cip) = d[0], case .port(let cport) = d[1]
        else { return nil }
        var k = e.key
        var hostIP: IPAddress?
        if k.count == 3, case .address(let h) = k[0] { hostIP = h; k.removeFirst() }
        guard k.count == 2, case .proto(let p) = k[0], case .port(let hp) = k[1] else { return nil }
        return Mapping(proto: p, hostPort: hp, hostIP: hostIP, containerIP: cip, containerPort: cport)
    }

    /// Table, maps, sets and chains (all idempotent adds), then every portmap chain flushed
    /// and refilled, all inside the caller's batch: the layout is rewritten atomically with the
    /// elements, so concurrent first ADDs cannot duplicate rules.
    static func ensure(into b: inout Batch, conditionsV4: [Condition], conditionsV6: [Condition], masqBit: Int) {
        let bit = UInt32(1) << UInt32(masqBit)
        b.add(table)
        for s in all { b.add(s) }
        for c in chains { b.add(c); b.flush(c) }
        for hook in [prerouting, output] {
            for (fam, conds) in [(IPAddress.Family.v4, conditionsV4), (.v6, conditionsV6)] {
                b.add(Rule(chain: hook) { r in
                    var r = r.match(family: fam).fibDaddrTypeLocal()
                    // IPv6 has no route_localnet: a DNATed packet from ::1 could never leave
                    // the host, so [::1]:port stays the host's own.
                    if hook == output && fam == .v6 { r = r.match(.ip6Daddr, not: .address(IPAddress("::1")!)) }
                    for c in conds { r = apply(c, r, fam) }
                    return r.jump(portmap.name)
                })
            }
        }
        b.add(Rule(chain: portmap) { $0.dnat(.v4, key: [.ipDaddr, .l4proto, .thDport], map: hostIPV4.name) })
        b.add(Rule(chain: portmap) { $0.match(family: .v4).dnat(.v4, key: [.l4proto, .thDport], map: anyV4.name) })
        b.add(Rule(chain: portmap) { $0.dnat(.v6, key: [.ip6Daddr, .l4proto, .thDport], map: hostIPV6.name) })
        b.add(Rule(chain: portmap) { $0.match(family: .v6).dnat(.v6, key: [.l4proto, .thDport], map: anyV6.name) })
        // Hairpin: a container (or a neighbour on its bridge) reaching a published port comes
        // back into the same bridge; masquerade so the reply returns through the host.
        // Marked in pm_forward (`meta mark set meta mark | BIT`), masqueraded in pm_postrouting.
        b.add(Rule(chain: forward) { $0.ctStatus(.dnat).match([.ipDaddr, .iifname], inSet: hairpinV4.name).setMark(or: bit) })
        b.add(Rule(chain: forward) { $0.ctStatus(.dnat).match([.ip6Daddr, .iifname], inSet: hairpinV6.name).setMark(or: bit) })
        b.add(Rule(chain: postrouting) { $0.matchMark(allOf: bit).masquerade() })
        // The host itself through 127.0.0.0/8 (route_localnet on the bridge): masquerade, only
        // towards containers that have mappings.
        b.add(Rule(chain: postrouting) {
            $0.ctStatus(.dnat).match(.ipSaddr, .prefix(CIDR("127.0.0.0/8")!))
                .match([.ipDaddr, .oifname], inSet: hairpinV4.name).masquerade()
        })
    }

    private static func apply(_ c: Condition, _ r: RuleBuilder, _ fam: IPAddress.Family) -> RuleBuilder {
        let op: CmpOp = c.negated ? .neq : .eq
        switch c.kind {
        case .source(let p): return r.match(fam == .v4 ? .ipSaddr : .ip6Saddr, .prefix(p), op)
        case .destination(let p): return r.match(fam == .v4 ? .ipDaddr : .ip6Daddr, .prefix(p), op)
        case .inInterface(let n): return r.match(.iifname, .ifname(n), op)
        }
    }
}
