// Conntrack status matches, as `nft --debug=netlink add rule … ct status dnat …` generates
// them: `[ ct load status => reg 1 ] [ bitwise reg 1 = (reg 1 & 0x20) ^ 0 ] [ cmp neq reg 1 0 ]`.

import CNFTables

/// Conntrack status bits (IPS_*) for `ct status`.
public struct CTStatus: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let expected = CTStatus(rawValue: 0x1)
    public static let seenReply = CTStatus(rawValue: 0x2)
    public static let assured = CTStatus(rawValue: 0x4)
    public static let confirmed = CTStatus(rawValue: 0x8)
    public static let snat = CTStatus(rawValue: 0x10)
    public static let dnat = CTStatus(rawValue: 0x20)
}

extension RuleBuilder {
    /// `ct status s1,s2` (any of the bits set), e.g. `ct status dnat`.
    public func ctStatus(_ status: CTStatus) -> RuleBuilder {
        RuleBuilder.anyBitSet(.ct(key: NFT_CT_STATUS.rawValue, dreg: 1), status.rawValue)
            .reduce(self) { $0.expression($1) }
    }
}
