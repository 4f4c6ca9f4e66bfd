// macspoofchk: frames entering the bridge from a container's host veth must carry the
// container's own source MAC; others are dropped before the bridge forwards or delivers them.
// One static rule in the suite's bridge-family table looks every frame up in two sets, so the
// 1,000th container costs two elements, like the first:
//
//   table bridge netlab {
//     set spoofchk_ports { type ifname }                    # host veths under check
//     set spoofchk_allowed { type ifname . ether_addr }     # host veth . container MAC
//     chain spoofchk { type filter hook prerouting priority -300; policy accept;
//         iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed drop
//             comment "netlab macspoofchk" }
//   }
//
// Both elements of a container carry its `ElementOwner` comment: DEL and GC find them from
// the container ID alone, also when the veth and the netns are gone.

import NFTables
import NetTypes
import PluginKit

public enum SpoofCheck {
    public static let table = SuiteFirewall.bridgeTable
    public static let ports = NFTSet(table: table, name: "spoofchk_ports", keyType: [.ifname])
    public static let allowed = NFTSet(table: table, name: "spoofchk_allowed", keyType: [.ifname, .etherAddr])
    /// Priority -300 (nft calls it `dstnat` in the bridge family): before any bridge filter
    /// (-200) sees the frame, as the reference plugin's PREROUTING chain.
    public static let chain = Chain(table: table, name: "spoofchk", type: .filter, hook: .prerouting,
                                    priority: -300, policy: .accept)

    /// The rule's comment: how the rule is found again (never by its printed text).
    public static let ruleComment = "netlab macspoofchk"

    public static var rule: Rule {
        Rule(chain: chain, comment: ruleComment) {
            $0.match(.iifname, inSet: ports.name)
                .match([.iifname, .etherSaddr], inSet: allowed.name, negate: true)
                .drop()
        }
    }

    /// The elements of one container: its host veth, and the pair (host veth, container MAC).
    static func elements(hostVeth: String, mac: MACAddress, owner: ElementOwner) -> [(NFTSet, SetElement)] {
        [(ports, SetElement(key: [.ifname(hostVeth)], comment: owner.comment)),
         (allowed, SetElement(key: [.ifname(hostVeth), .mac(mac)], comment: owner.comment))]
    }

    /// Only the container's elements; a stale element for the same veth name (another owner)
    /// is replaced. Fails with ENOENT when the table or a set is missing.
    public static func elementBatch(hostVeth: String, mac: MACAddress, owner: ElementOwner) -> Batch {
        var b = Batch()
        for (set, e) in elements(hostVeth: hostVeth, mac: mac, owner: owner) {
            b.destroyElements(set, [SetElement(key: e.key)])
            b.addElements(set, [e])
        }
        return b
    }

    /// The full batch: table, sets and chain created if missing, the chain flushed and given
    /// its one rule (so concurrent ADDs always leave it whole), then the elements.
    public static func addBatch(hostVeth: String, mac: MACAddress, owner: ElementOwner) -> Batch {
        var b = Batch()
        b.add(table)
        b.add(ports)
        b.add(allowed)
        b.add(chain)
        b.flush(chain)
        b.add(rule)
        for (set, e) in elements(hostVeth: hostVeth, mac: mac, owner: owner) {
            b.destroyElements(set, [SetElement(key: e.key)])
            b.addElements(set, [e])
        }
        return b
    }

    /// Adds the container's elements: the element-only batch when the layout exists (no
    /// chain change, so no RCU wait at commit), else the full batch in one transaction.
    public static func add(_ sock: NFTSocket, hostVeth: String, mac: MACAddress, owner: ElementOwner) throws {
        do {
            try sock.apply(elementBatch(hostVeth: hostVeth, mac: mac, owner: owner))
            // The element batch succeeds without the chain; make sure the rule is there.
            if try !hasRule(sock) { try sock.apply(addBatch(hostVeth: hostVeth, mac: mac, owner: owner)) }
        } catch let e as NFTError where e.isNotFound {
            try sock.apply(addBatch(hostVeth: hostVeth, mac: mac, owner: owner))
        }
    }

    /// True when the spoofchk chain exists and holds the lookup rule (found by its comment).
    public static func hasRule(_ sock: NFTSocket) throws -> Bool {
        let rules: [RuleInfo]
        do { rules = try sock.rules(chain: chain) } catch let e as NFTError where e.isNotFound { return false }
        return rules.contains { $0.comment == ruleComment }
    }

    /// The sets whose elements carry owner comments: DEL (even without the container's
    /// result), ADD's rollback, CHECK and GC find and remove them through this.
    public static let owned = OwnedElements([ports, allowed])

    /// Removes every element owned by `owner`.
    public static func removeOwned(by owner: ElementOwner, _ sock: NFTSocket) throws {
        try owned.removeOwned(by: owner, sock)
    }
}
