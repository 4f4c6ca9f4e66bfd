// The firewall plugin's objects in the suite's table `inet netlab`, beside bridge's masq_*
// and portmap's pm_* objects. A container is only ever set elements, each commented with its
// owner; the rules never depend on how many containers exist:
//
//   table inet netlab {
//     set fw_v4 { type ipv4_addr }                         # every container address (owned)
//     set fw_v6 { type ipv6_addr }
//     map fw_iso_from_v4 { type ipv4_addr . ifname : verdict }   # same-bridge containers:
//     map fw_iso_from_v6 { type ipv6_addr . ifname : verdict }   #   addr . bridge : jump fw-iso-<bridge>
//     set fw_iso_to_v4 { type ipv4_addr . ifname }               #   addr . bridge
//     set fw_iso_to_v6 { type ipv6_addr . ifname }
//     chain fw_forward { type filter hook forward priority filter; policy accept;
//         ip saddr . iifname vmap @fw_iso_from_v4
//         ip6 saddr . iifname vmap @fw_iso_from_v6
//         jump fw_admin
//         ip daddr @fw_v4 ct state established,related accept
//         ip saddr @fw_v4 accept
//         ip6 daddr @fw_v6 ct state established,related accept
//         ip6 saddr @fw_v6 accept }
//     chain fw_admin { }                                   # the administrator's; never written
//     chain fw-iso-<bridge> { oifname "<bridge>" return
//         ip daddr . oifname @fw_iso_to_v4 drop
//         ip6 daddr . oifname @fw_iso_to_v6 drop }
//   }
//
// Isolation: a packet from a same-bridge container, entering from its bridge, jumps to its
// bridge's chain; leaving by the same bridge it returns, leaving towards a same-bridge
// container of another bridge it is dropped. As in the reference, only bridges whose
// networks ask for it are isolated from each other.

import NFTables
import NetTypes
import PluginKit

public enum FirewallLayout {
    static let table = SuiteFirewall.table

    public static let acceptV4 = NFTSet(table: table, name: "fw_v4", keyType: [.ipv4Addr])
    public static let acceptV6 = NFTSet(table: table, name: "fw_v6", keyType: [.ipv6Addr])
    public static let isolatedFromV4 = NFTSet(table: table, name: "fw_iso_from_v4", keyType: [.ipv4Addr, .ifname], data: .verdict)
    public static let isolatedFromV6 = NFTSet(table: table, name: "fw_iso_from_v6", keyType: [.ipv6Addr, .ifname], data: .verdict)
    public static let isolatedToV4 = NFTSet(table: table, name: "fw_iso_to_v4", keyType: [.ipv4Addr, .ifname])
    public static let isolatedToV6 = NFTSet(table: table, name: "fw_iso_to_v6", keyType: [.ipv6Addr, .ifname])
    static let sets = [acceptV4, acceptV6, isolatedFromV4, isolatedFromV6, isolatedToV4, isolatedToV6]

    /// At the `filter` priority (0), after portmap's pm_forward (-150) has marked hairpin
    /// packets.
    public static let forward = Chain(table: table, name: "fw_forward", type: .filter, hook: .forward,
                                      priority: 0, policy: .accept)
    /// The administrator's override chain (the reference's CNI-ADMIN): created when missing,
    /// never flushed or written by the plugin, so rules put there survive every ADD.
    public static let admin = Chain(table: table, name: "fw_admin")

    /// The chain a same-bridge container's traffic jumps to.
    public static func isolationChain(bridge: String) -> Chain { Chain(table: table, name: "fw-iso-\(bridge)") }

    /// Every set whose elements carry owner comments: DEL (without the result), CHECK and GC
    /// find a container's elements through it.
    public static let owned = OwnedElements(sets)

    static func accept(_ f: IPAddress.Family) -> NFTSet { f == .v4 ? acceptV4 : acceptV6 }
    static func isolatedFrom(_ f: IPAddress.Family) -> NFTSet { f == .v4 ? isolatedFromV4 : isolatedFromV6 }
    static func isolatedTo(_ f: IPAddress.Family) -> NFTSet { f == .v4 ? isolatedToV4 : isolatedToV6 }

    /// The rules of `fw_forward`, in order.
    static var forwardRules: [Rule] {
        [Rule(chain: forward) { $0.verdictMap([.ipSaddr, .iifname], map: isolatedFromV4.name) },
         Rule(chain: forward) { $0.verdictMap([.ip6Saddr, .iifname], map: isolatedFromV6.name) },
         Rule(chain: forward) { $0.jump(admin.name) },
         Rule(chain: forward) { $0.match(.ipDaddr, inSet: acceptV4.name).ctState([.established, .related]).accept() },
         Rule(chain: forward) { $0.match(.ipSaddr, inSet: acceptV4.name).accept() },
         Rule(chain: forward) { $0.match(.ip6Daddr, inSet: acceptV6.name).ctState([.established, .related]).accept() },
         Rule(chain: forward) { $0.match(.ip6Saddr, inSet: acceptV6.name).accept() }]
    }

    /// The rules of one bridge's isolation chain.
    static func isolationRules(bridge: String) -> [Rule] {
        let chain = isolationChain(bridge: bridge)
        return [Rule(chain: chain) { $0.match(.oifname, .ifname(bridge)).return() },
                Rule(chain: chain) { $0.match([.ipDaddr, .oifname], inSet: isolatedToV4.name).drop() },
                Rule(chain: chain) { $0.match([.ip6Daddr, .oifname], inSet: isolatedToV6.name).drop() }]
    }

    /// One container's footprint: the elements it owns: each address in the accept set,
    /// and with a bridge (same-bridge policy) its two isolation elements.
    struct Footprint {
        var addresses: [IPAddress]
        var isolatedBridge: String?
        var owner: ElementOwner

        var elements: [(NFTSet, SetElement)] {
            addresses.flatMap { a -> [(NFTSet, SetElement)] in
                var out = [(accept(a.family), SetElement(key: [.address(a)], comment: owner.comment))]
                if let bridge = isolatedBridge {
                    let key: [KeyPart] = [.address(a), .ifname(bridge)]
                    let jump = SetElement.Value.verdict(.jump(isolationChain(bridge: bridge).name))
                    out.append((isolatedFrom(a.family), SetElement(key: key, value: jump, comment: owner.comment)))
                    out.append((isolatedTo(a.family), SetElement(key: key, comment: owner.comment)))
                }
                return out
            }
        }
    }

    /// Only the attachment's elements, each replacing a stale element of the same key (another
    /// owner), atomically. Fails with ENOENT when a set, or the bridge's isolation chain an
    /// element jumps to, is missing.
    static func elementBatch(_ a: Footprint) -> Batch {
        var b = Batch()
        addElements(a, into: &b)
        return b
    }

    /// The whole layout, created if missing, `fw_forward` (and the bridge's isolation chain)
    /// flushed and refilled so concurrent ADDs always leave them whole, then the elements.
    static func fullBatch(_ a: Footprint) -> Batch {
        var b = Batch()
        b.add(table)
        for s in sets { b.add(s) }
        b.add(admin)
        b.add(forward)
        b.flush(forward)
        for r in forwardRules { b.add(r) }
        if let bridge = a.isolatedBridge {
            b.add(isolationChain(bridge: bridge))
            b.flush(isolationChain(bridge: bridge))
            for r in isolationRules(bridge: bridge) { b.add(r) }
        }
        addElements(a, into: &b)
        return b
    }

    private static func addElements(_ a: Footprint, into b: inout Batch) {
        for (set, e) in a.elements {
            b.destroyElements(set, [SetElement(key: e.key)])
            b.addElements(set, [e])
        }
    }

    /// Adds the attachment's elements: the element-only batch when the layout exists (no chain
    /// change, so no RCU wait at commit), else the full batch. Either applies whole or not at
    /// all. The element batch succeeds on a chain someone emptied, so the chains are read
    /// back after it and rewritten whole when a rule is missing.
    static func add(_ sock: NFTSocket, _ a: Footprint) throws {
        do {
            try sock.apply(elementBatch(a))
            if try missingRule(sock, bridge: a.isolatedBridge) != nil { try sock.apply(fullBatch(a)) }
        } catch let e as NFTError where e.isNotFound {
            try sock.apply(fullBatch(a))
        }
    }

    /// What is missing from `fw_forward` (and the bridge's isolation chain), as a sentence;
    /// nil when the chains hold every rule.
    static func missingRule(_ sock: NFTSocket, bridge: String?) throws -> String? {
        let forwardText = try rules(sock, forward).map(\.summary)
        let used = [isolatedFromV4, isolatedFromV6, acceptV4, acceptV6].map { "set \($0.name)" } + [admin.name]
        if forwardText.count != forwardRules.count {
            return "chain \(forward) is missing or has \(forwardText.count) of its \(forwardRules.count) rules"
        }
        if let w = used.first(where: { w in !forwardText.contains { $0.contains(w) } }) {
            return "chain \(forward) has no rule using \(w)"
        }
        guard let bridge else { return nil }
        let chain = isolationChain(bridge: bridge)
        let count = try rules(sock, chain).count
        let want = isolationRules(bridge: bridge).count
        return count == want ? nil : "isolation chain \(chain) is missing or has \(count) of its \(want) rules"
    }

    /// The rules of `chain`; none when the chain or the table does not exist.
    private static func rules(_ sock: NFTSocket, _ chain: Chain) throws -> [RuleInfo] {
        do { return try sock.rules(chain: chain) } catch let e as NFTError where e.isNotFound { return [] }
    }
}
