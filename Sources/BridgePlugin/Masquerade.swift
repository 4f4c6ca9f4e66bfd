// ipMasq as nftables in the suite's table: one verdict-map element per container address
// (`<ip> : jump masq-<bridge>`, commented with its owner), one small chain per bridge, and a
// postrouting chain that looks the source address up in the maps. Adding the 1,000th
// container costs one element, and DEL/GC find elements by their owner comment alone.
//
//   table inet netlab {
//     map masq_v4 { type ipv4_addr : verdict }
//     map masq_v6 { type ipv6_addr : verdict }
//     chain masq_postrouting { type nat hook postrouting priority srcnat; policy accept;
//         ip saddr vmap @masq_v4
//         ip6 saddr vmap @masq_v6 }
//     chain masq-<bridge> { oifname "<bridge>" return; ip daddr 224.0.0.0/4 return;
//         ip6 daddr ff00::/8 return; masquerade }
//   }

import NFTables
import NetTypes
import PluginKit

public enum Masquerade {
    public static let table = SuiteFirewall.table
    public static let mapV4 = NFTSet(table: table, name: "masq_v4", keyType: [.ipv4Addr], data: .verdict)
    public static let mapV6 = NFTSet(table: table, name: "masq_v6", keyType: [.ipv6Addr], data: .verdict)
    public static let postrouting = Chain(table: table, name: "masq_postrouting", type: .nat,
                                          hook: .postrouting, priority: 100, policy: .accept)

    public static func map(_ family: IPAddress.Family) -> NFTSet { family == .v4 ? mapV4 : mapV6 }

    /// The per-bridge chain every element of that bridge jumps to.
    public static func chain(bridge: String) -> Chain { Chain(table: table, name: "masq-\(bridge)") }

    /// The batch of one ADD: table, maps and chains created if missing, the postrouting and
    /// bridge chains flushed and refilled (so concurrent ADDs leave them consistent), and each
    /// address's element replaced by one owned by `owner`.
    public static func addBatch(bridge: String, addresses: [IPAddress], owner: ElementOwner) -> Batch {
        var b = Batch()
        b.add(table)
        b.add(mapV4)
        b.add(mapV6)
        b.add(postrouting)
        let chain = chain(bridge: bridge)
        b.add(chain)
        b.flush(postrouting)
        b.add(Rule(chain: postrouting) { $0.verdictMap([.ipSaddr], map: mapV4.name) })
        b.add(Rule(chain: postrouting) { $0.verdictMap([.ip6Saddr], map: mapV6.name) })
        b.flush(chain)
        b.add(Rule(chain: chain) { $0.match(.oifname, .ifname(bridge)).return() })
        b.add(Rule(chain: chain) { $0.match(.ipDaddr, .prefix(CIDR("224.0.0.0/4")!)).return() })
        b.add(Rule(chain: chain) { $0.match(.ip6Daddr, .prefix(CIDR("ff00::/8")!)).return() })
        b.add(Rule(chain: chain) { $0.masquerade() })
        for a in addresses {
            let key = SetElement(key: [.address(a)])
            // A stale element left for this address (another owner) is replaced, atomically.
            b.destroyElements(map(a.family), [key])
            b.addElements(map(a.family), [element(a, bridge: bridge, owner: owner)])
        }
        return b
    }

    /// The batch of an ADD on a bridge whose layout exists already: only the elements. A
    /// chain or rule change makes the kernel wait for an RCU grace period at commit (~15 ms
    /// here), elements do not; the element's `jump masq-<bridge>` fails with ENOENT when the
    /// chain (made complete, atomically, by `addBatch`) or the maps are missing.
    public static func elementBatch(bridge: String, addresses: [IPAddress], owner: ElementOwner) -> Batch {
        var b = Batch()
        for a in addresses {
            b.destroyElements(map(a.family), [SetElement(key: [.address(a)])])
            b.addElements(map(a.family), [element(a, bridge: bridge, owner: owner)])
        }
        return b
    }

    /// Adds the container's elements: the element-only batch when the layout is there, else
    /// the full batch that creates (or repairs) table, maps and chains in the same transaction.
    public static func add(_ sock: NFTSocket, bridge: String, addresses: [IPAddress], owner: ElementOwner) throws {
        do {
            try sock.apply(elementBatch(bridge: bridge, addresses: addresses, owner: owner))
        } catch let e as NFTError where e.isNotFound {
            try sock.apply(addBatch(bridge: bridge, addresses: addresses, owner: owner))
        }
    }

    static func element(_ a: IPAddress, bridge: String, owner: ElementOwner) -> SetElement {
        SetElement(key: [.address(a)], value: .verdict(.jump(chain(bridge: bridge).name)), comment: owner.comment)
    }

    /// The maps whose elements carry owner comments: DEL (even without the container's
    /// result), ADD's rollback, CHECK and GC find and remove them through this.
    public static let owned = OwnedElements([mapV4, mapV6])

    /// Removes every element owned by `owner`.
    public static func removeOwned(by owner: ElementOwner, _ sock: NFTSocket) throws {
        try owned.removeOwned(by: owner, sock)
    }
}
