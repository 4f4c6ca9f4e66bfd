// flannel's --ip-masq in nftables, in a table of the overlay's own (the suite never edits a
// table it did not create): traffic from the cluster network to outside it is masqueraded,
// traffic inside the cluster network and to multicast groups is not.
//
//   table inet netlab-overlay {
//     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//       ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return
//       ip saddr 10.244.0.0/16 ip daddr 224.0.0.0/4 return
//       ip saddr 10.244.0.0/16 masquerade fully-random
//       (the same with ip6 and ff00::/8 for an IPv6 network)
//     }
//   }

import NFTables
import NetTypes

public struct OverlayMasquerade: Sendable, Hashable {
    public static let table = Table(family: .inet, name: "netlab-overlay")
    /// srcnat priority, as the suite's other NAT chains.
    public static let chain = Chain(table: table, name: "postrouting", type: .nat, hook: .postrouting,
                                    priority: 100, policy: .accept)
    /// NF_NAT_RANGE_PROTO_RANDOM_FULLY: flannel masquerades with random source ports.
    static let randomFully: UInt32 = 0x10

    /// The cluster networks (an IPv4 one, an IPv6 one, or both).
    public var networks: [CIDR]

    public init(networks: [CIDR]) {
        self.networks = networks.map(\.network)
    }

    /// The rules in chain order; each comment names what the rule is for, and the comments
    /// are how `ensure` recognises a chain that is already right.
    public var rules: [Rule] {
        networks.flatMap { n -> [Rule] in
            let v4 = n.family == .v4
            let (source, destination): (Field, Field) = v4 ? (.ipSaddr, .ipDaddr) : (.ip6Saddr, .ip6Daddr)
            let multicast = CIDR(v4 ? "224.0.0.0/4" : "ff00::/8")!
            let fromCluster = { (b: RuleBuilder) in b.match(source, .prefix(n)) }
            return [
                Rule(chain: Self.chain, comment: "\(n) internal") { fromCluster($0).match(destination, .prefix(n)).return() },
                Rule(chain: Self.chain, comment: "\(n) multicast") { fromCluster($0).match(destination, .prefix(multicast)).return() },
                Rule(chain: Self.chain, comment: "\(n) masquerade") {
                    fromCluster($0).expression(.masquerade(protoMin: nil, protoMax: nil, flags: Self.randomFully))
                },
            ]
        }
    }

    /// Makes the table hold exactly these rules, in one atomic batch, unless its chain holds
    /// them already; returns whether it changed anything.
    @discardableResult
    public func ensure(_ socket: NFTSocket) throws -> Bool {
        if try isInPlace(socket) { return false }
        var batch = Batch()
        // add + delete + add: the table exists whatever was there, and its old content goes
        // in the same transaction that installs the new.
        batch.add(Self.table)
        batch.delete(Self.table)
        batch.add(Self.table)
        batch.add(Self.chain)
        for rule in rules { batch.add(rule) }
        try socket.apply(batch)
        return true
    }

    private func isInPlace(_ socket: NFTSocket) throws -> Bool {
        guard try socket.tables().contains(Self.table),
              try socket.chains(table: Self.table) == [Self.chain] else { return false }
        return try socket.rules(chain: Self.chain).map(\.comment) == rules.map(\.comment)
    }

    /// Deletes the table; an absent table is no error.
    public static func remove(_ socket: NFTSocket) throws {
        var batch = Batch()
        batch.destroy(table)
        try socket.apply(batch)
    }
}
