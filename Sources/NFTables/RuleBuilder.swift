// A rule builder that emits the expression sequences nft itself generates (compare with
// `nft --debug=netlink add rule …`), so `nft list ruleset` shows our rules in nft's own words.

import CNFTables
import NetTypes

/// A packet field a rule can match on or use as part of a set/map key.
public enum Field: Sendable, Hashable {
    case ipSaddr, ipDaddr, ip6Saddr, ip6Daddr
    /// `meta l4proto`
    case l4proto
    /// `th sport` / `th dport` (transport header, any protocol with ports).
    case thSport, thDport
    case iifname, oifname
    /// `meta mark`
    case mark
    /// `meta nfproto`
    case nfproto
    /// `ether saddr` / `ether daddr` (link-layer header; bridge and netdev tables).
    case etherSaddr, etherDaddr

    var length: Int {
        switch self {
        case .ipSaddr, .ipDaddr, .mark: 4
        case .ip6Saddr, .ip6Daddr, .iifname, .oifname: 16
        case .l4proto, .nfproto: 1
        case .thSport, .thDport: 2
        case .etherSaddr, .etherDaddr: 6
        }
    }

    /// The network family this field needs (for the `meta nfproto` dependency in inet tables).
    var addressFamily: IPAddress.Family? {
        switch self {
        case .ipSaddr, .ipDaddr: .v4
        case .ip6Saddr, .ip6Daddr: .v6
        default: nil
        }
    }

    func load(into reg: Register) -> Expression {
        switch self {
        case .ipSaddr: .payload(base: .network, offset: 12, length: 4, dreg: reg)
        case .ipDaddr: .payload(base: .network, offset: 16, length: 4, dreg: reg)
        case .ip6Saddr: .payload(base: .network, offset: 8, length: 16, dreg: reg)
        case .ip6Daddr: .payload(base: .network, offset: 24, length: 16, dreg: reg)
        case .thSport: .payload(base: .transport, offset: 0, length: 2, dreg: reg)
        case .thDport: .payload(base: .transport, offset: 2, length: 2, dreg: reg)
        case .l4proto: .meta(.l4proto, dreg: reg)
        case .nfproto: .meta(.nfproto, dreg: reg)
        case .iifname: .meta(.iifname, dreg: reg)
        case .oifname: .meta(.oifname, dreg: reg)
        case .mark: .meta(.mark, dreg: reg)
        case .etherSaddr, .etherDaddr: etherLoad(into: reg)
        }
    }
}

/// Conntrack states for `ct state`.
public struct CTState: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let invalid = CTState(rawValue: 1)
    public static let established = CTState(rawValue: 2)
    public static let related = CTState(rawValue: 4)
    public static let new = CTState(rawValue: 8)
    public static let untracked = CTState(rawValue: 64)
}

/// Builds a rule's expressions. Each method returns a new builder, so rules read left to
/// right like nft syntax:
///
///     RuleBuilder(family: .inet).match(.ipSaddr, inSet: "masq_v4")
///         .match(.ipDaddr, not: .prefix(CIDR("224.0.0.0/4")!)).masquerade()
public struct RuleBuilder: Sendable, Hashable {
    public let family: Family
    public private(set) var expressions: [Expression] = []
    private var nfprotoChecked: Set<IPAddress.Family> = []

    public init(family: Family) {
        self.family = family
    }

    private func adding(_ exprs: [Expression]) -> RuleBuilder {
        var c = self
        c.expressions += exprs
        return c
    }

    /// In inet tables nft guards address matches with `meta nfproto ipv4/ipv6`; so do we.
    private func withDependencies(_ fields: [Field]) -> RuleBuilder {
        var c = self
        guard family == .inet else { return c }
        for f in fields {
            guard let af = f.addressFamily, !c.nfprotoChecked.contains(af) else { continue }
            c.nfprotoChecked.insert(af)
            c.expressions += [.meta(.nfproto, dreg: 1), .cmp(.eq, sreg: 1, data: [af.nfproto])]
        }
        return c
    }

    /// Loads `fields` as one concatenation starting at register 1 (4-byte words, as nft does).
    /// Returns the expressions and the number of 32-bit words used.
    static func loadConcatenation(_ fields: [Field]) -> ([Expression], Int) {
        var word = 0
        var out: [Expression] = []
        for f in fields {
            out.append(f.load(into: Registers.forWord(word)))
            word += roundUp4(f.length) / 4
        }
        return (out, word)
    }

    // MARK: matches

    /// `field == value` (or `field != value`); a `.prefix` value matches the whole prefix.
    public func match(_ field: Field, _ value: KeyPart, _ op: CmpOp = .eq) -> RuleBuilder {
        let c = withDependencies([field])
        if case .prefix(let cidr) = value, cidr.prefixLength < cidr.family.bitWidth,
           case .payload(let base, let offset, _, _) = field.load(into: 1) {
            // Byte-aligned prefixes load only the prefix bytes, as nft does.
            if cidr.prefixLength % 8 == 0 {
                let n = cidr.prefixLength / 8
                return c.adding([.payload(base: base, offset: offset, length: UInt32(n), dreg: 1),
                                 .cmp(op, sreg: 1, data: Array(cidr.networkAddress.bytes.prefix(n)))])
            }
            let n = field.length
            let mask = CIDR(address: cidr.netmask, prefixLength: cidr.family.bitWidth)!.address.bytes
            return c.adding([field.load(into: 1),
                             .bitwise(sreg: 1, dreg: 1, mask: mask, xor: [UInt8](repeating: 0, count: n)),
                             .cmp(op, sreg: 1, data: cidr.networkAddress.bytes)])
        }
        return c.adding([field.load(into: 1), .cmp(op, sreg: 1, data: value.bytes(exactLength: field.length))])
    }

    /// `field != value`
    public func match(_ field: Field, not value: KeyPart) -> RuleBuilder { match(field, value, .neq) }

    /// `meta nfproto ipv4` / `meta nfproto ipv6`: only packets of that family (address
    /// matches that follow need no check of their own).
    public func match(family: IPAddress.Family) -> RuleBuilder {
        var c = adding([.meta(.nfproto, dreg: 1), .cmp(.eq, sreg: 1, data: [family.nfproto])])
        c.nfprotoChecked.insert(family)
        return c
    }

    /// `meta mark and BITS == BITS`: every bit of `bits` is set in the packet's mark.
    public func matchMark(allOf bits: UInt32) -> RuleBuilder {
        adding([.meta(.mark, dreg: 1),
                .bitwise(sreg: 1, dreg: 1, mask: le32(bits), xor: le32(0)),
                .cmp(.eq, sreg: 1, data: le32(bits))])
    }

    /// `a . b . c @set` (or `!= @set` with `negate`).
    public func match(_ fields: [Field], inSet set: String, negate: Bool = false) -> RuleBuilder {
        let (loads, _) = RuleBuilder.loadConcatenation(fields)
        return withDependencies(fields).adding(loads + [.lookup(set: set, sreg: 1, dreg: nil, invert: negate)])
    }

    public func match(_ field: Field, inSet set: String, negate: Bool = false) -> RuleBuilder {
        match([field], inSet: set, negate: negate)
    }

    /// `a . b vmap @map`: the verdict comes from a verdict map.
    public func verdictMap(_ fields: [Field], map: String) -> RuleBuilder {
        let (loads, _) = RuleBuilder.loadConcatenation(fields)
        return withDependencies(fields).adding(loads + [.lookup(set: map, sreg: 1, dreg: Registers.verdict, invert: false)])
    }

    /// `ct state s1,s2` (any of the states).
    public func ctState(_ states: CTState) -> RuleBuilder {
        adding(RuleBuilder.anyBitSet(.ct(key: NFT_CT_STATE.rawValue, dreg: 1), states.rawValue))
    }

    /// Loads a 32-bit value and tests it against `bits`: `[load] & bits != 0`, as nft
    /// encodes flag matches (`ct state`, `ct status`).
    static func anyBitSet(_ load: Expression, _ bits: UInt32) -> [Expression] {
        [load, .bitwise(sreg: 1, dreg: 1, mask: le32(bits), xor: le32(0)), .cmp(.neq, sreg: 1, data: le32(0))]
    }

    /// `fib daddr type local`
    public func fibDaddrTypeLocal() -> RuleBuilder {
        let routeTypeLocal: UInt32 = 2  // RTN_LOCAL
        return adding([.fib(flags: NFTA_FIB_F_DADDR.rawValue, result: NFT_FIB_RESULT_ADDRTYPE.rawValue, dreg: 1),
                       .cmp(.eq, sreg: 1, data: le32(routeTypeLocal))])
    }

    // MARK: statements

    /// `meta mark set VALUE`
    public func setMark(_ mark: UInt32) -> RuleBuilder {
        adding([.immediate(dreg: 1, data: le32(mark)), .metaSet(.mark, sreg: 1)])
    }

    /// `meta mark set meta mark or BITS`: the packet's mark keeps its bits and gains `bits`
    /// (nft's encoding: load, `(mark & ~BITS) ^ BITS`, set).
    public func setMark(or bits: UInt32) -> RuleBuilder {
        adding([.meta(.mark, dreg: 1),
                .bitwise(sreg: 1, dreg: 1, mask: le32(~bits), xor: le32(bits)),
                .metaSet(.mark, sreg: 1)])
    }

    public func counter() -> RuleBuilder { adding([.counter]) }

    public func verdict(_ v: Verdict) -> RuleBuilder { adding([.immediateVerdict(v)]) }
    public func accept() -> RuleBuilder { verdict(.accept) }
    public func drop() -> RuleBuilder { verdict(.drop) }
    public func `return`() -> RuleBuilder { verdict(.return) }
    public func jump(_ chain: String) -> RuleBuilder { verdict(.jump(chain)) }
    public func goto(_ chain: String) -> RuleBuilder { verdict(.goto(chain)) }

    /// `dnat to ADDR[:PORT]` (`dnat ip6 to [ADDR]:PORT` for IPv6).
    public func dnat(to address: IPAddress, port: UInt16? = nil) -> RuleBuilder {
        nat(.dnat, address, port)
    }

    /// `snat to ADDR[:PORT]`
    public func snat(to address: IPAddress, port: UInt16? = nil) -> RuleBuilder {
        nat(.snat, address, port)
    }

    private func nat(_ type: NATType, _ address: IPAddress, _ port: UInt16?) -> RuleBuilder {
        var exprs: [Expression] = [.immediate(dreg: 1, data: address.bytes)]
        if let port { exprs.append(.immediate(dreg: 2, data: be16(port))) }
        exprs.append(.nat(type, family: address.family.nfproto, addrMin: 1, addrMax: nil,
                          protoMin: port == nil ? nil : 2, protoMax: nil,
                          flags: port == nil ? 0 : NATFlag.protoSpecified))
        return adding(exprs)
    }

    /// `dnat ip to KEY map @MAP` where the map's data is `ipv4_addr . inet_service`
    /// (or `ipv6_addr . inet_service` for `.v6`), e.g. KEY = `meta l4proto . th dport`.
    public func dnat(_ family: IPAddress.Family, key: [Field], map: String) -> RuleBuilder {
        let (loads, _) = RuleBuilder.loadConcatenation(key)
        let addrWords = family == .v4 ? 1 : 4
        let proto = Registers.forWord(addrWords)
        // nft 1.0.6 encodes the same statement two ways: with an address in the key it sends
        // explicit ranges (max = min) and NF_NAT_RANGE_MAP_IPS|PROTO_SPECIFIED; otherwise
        // only the minimums. Both mean the same to the kernel; we mirror nft byte for byte.
        let ranged = key.contains { $0.addressFamily != nil }
        return withDependencies(key).adding(loads + [
            .lookup(set: map, sreg: 1, dreg: 1, invert: false),
            .nat(.dnat, family: family.nfproto, addrMin: 1, addrMax: ranged ? 1 : nil,
                 protoMin: proto, protoMax: ranged ? proto : nil,
                 flags: ranged ? NATFlag.mapIPs | NATFlag.protoSpecified : 0),
        ])
    }

    /// `masquerade` or `masquerade to :MIN-MAX` (needs a transport protocol match before it).
    public func masquerade(ports: ClosedRange<UInt16>? = nil) -> RuleBuilder {
        guard let ports else { return adding([.masquerade(protoMin: nil, protoMax: nil, flags: 0)]) }
        return adding([.immediate(dreg: 1, data: be16(ports.lowerBound)),
                       .immediate(dreg: 2, data: be16(ports.upperBound)),
                       .masquerade(protoMin: 1, protoMax: 2, flags: NATFlag.protoSpecified)])
    }

    /// Appends a raw expression (for what the builder does not cover).
    public func expression(_ e: Expression) -> RuleBuilder { adding([e]) }
}

/// NF_NAT_RANGE_* flags of nat and masquerade expressions (linux/netfilter/nf_nat.h).
enum NATFlag {
    static let mapIPs: UInt32 = 0x1          // NF_NAT_RANGE_MAP_IPS
    static let protoSpecified: UInt32 = 0x2  // NF_NAT_RANGE_PROTO_SPECIFIED
}

extension IPAddress.Family {
    /// NFPROTO_IPV4 / NFPROTO_IPV6, what `meta nfproto` loads.
    var nfproto: UInt8 { self == .v4 ? Family.ip.nfproto : Family.ip6.nfproto }
}

/// A 32-bit value as registers hold marks and flags: host byte order (little endian on the
/// machines netlab supports).
func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
/// A 16-bit value in network byte order (ports).
func be16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

extension KeyPart {
    /// The value's bytes as the kernel stores them (addresses and ports in network order,
    /// marks in host order, interface names NUL-padded to IFNAMSIZ).
    var rawBytes: [UInt8] {
        switch self {
        case .address(let a): a.bytes
        case .prefix(let c): c.networkAddress.bytes
        case .proto(let p): [p]
        case .port(let p): be16(p)
        case .mark(let m): le32(m)
        case .ifname(let n):
            Array(Array(n.utf8).prefix(15)) + [UInt8](repeating: 0, count: 16 - min(15, n.utf8.count))
        case .mac(let m): m.bytes
        }
    }

    func bytes(exactLength n: Int) -> [UInt8] {
        let b = rawBytes
        return b.count >= n ? Array(b.prefix(n)) : b + [UInt8](repeating: 0, count: n - b.count)
    }
}
