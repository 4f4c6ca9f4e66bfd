// The suite's nftables layout in one place, and how an element is traced back to the
// container that caused it.
//
// Every plugin writes into the table `inet netlab` (link-layer rules: `bridge netlab`, see
// Ownership+Bridge.swift; never anyone else's table) and adds
// its chains/sets idempotently in the same batch as its elements. Every element a container
// causes carries a comment naming its owner, so DEL and GC find it from the container ID
// alone, without the container's result.

import CNI
import NFTables

public enum SuiteFirewall {
    /// The suite's own table. Nothing in the suite touches any other table.
    public static let table = Table(family: .inet, name: "netlab")
}

/// The owner of an nftables element: network, container ID and interface name, stored in the
/// element comment as `<network> <containerID> <ifname>` (nft limits comments to 128 bytes;
/// a long network name is shortened to a stable hash so the ID always fits whole).
public struct ElementOwner: Hashable, Sendable, CustomStringConvertible {
    public var network: String
    public var containerID: String
    public var ifName: String

    public init(network: String, containerID: String, ifName: String) {
        self.network = network
        self.containerID = containerID
        self.ifName = ifName
    }

    static let maxComment = 127

    /// The network as written in comments: itself, or `#<hash>` when the comment would not fit.
    var networkTag: String {
        let plain = "\(network) \(containerID) \(ifName)"
        if plain.utf8.count <= ElementOwner.maxComment { return network }
        return "#" + ElementOwner.fnv1a(network)
    }

    public var comment: String { "\(networkTag) \(containerID) \(ifName)" }
    public var description: String { comment }

    /// The owner of what `request` (ADD, DEL, CHECK) makes: its network, container and interface.
    public init(_ request: CNIRequest) {
        self.init(network: request.config.name, containerID: request.containerID, ifName: request.ifName)
    }

    /// True when a comment was written by this owner.
    public func owns(_ comment: String?) -> Bool { comment == self.comment }

    /// Parses a comment written by `comment`; nil for comments of other shapes.
    public static func parse(_ comment: String?) -> (networkTag: String, containerID: String, ifName: String)? {
        guard let parts = comment?.split(separator: " ", omittingEmptySubsequences: false), parts.count == 3 else {
            return nil
        }
        return (String(parts[0]), String(parts[1]), String(parts[2]))
    }

    /// True when `comment` belongs to `network` (whatever container): used by GC.
    public static func comment(_ comment: String?, belongsTo network: String) -> Bool {
        guard let p = parse(comment) else { return false }
        let tag = ElementOwner(network: network, containerID: p.containerID, ifName: p.ifName).networkTag
        return p.networkTag == tag
    }

    /// GC's test: true for a comment of `network` whose attachment (container ID, interface)
    /// is not in `valid`. Comments of other networks and of other shapes are never stale.
    public static func isStale(network: String, valid: [Attachment]) -> @Sendable (String?) -> Bool {
        let validPairs = Set(valid)
        return { comment in
            guard ElementOwner.comment(comment, belongsTo: network), let p = ElementOwner.parse(comment) else { return false }
            return !validPairs.contains(Attachment(containerID: p.containerID, ifname: p.ifName))
        }
    }

    /// A stable 64-bit hash of `s` (FNV-1a) as 16 hex digits: a name that must fit a
    /// length limit (a comment, an interface name) shortened the same way every time.
    public static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
