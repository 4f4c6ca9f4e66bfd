// The nftables objects netlab manages, as plain Swift values. libnftnl objects are built from
// these only while a batch is encoded (Encode.swift) and never escape the module.

import NetTypes

/// An nftables address family (NFPROTO_*).
public enum Family: String, Sendable, Hashable, CaseIterable {
    case ip, ip6, inet, bridge, netdev

    var nfproto: UInt8 {
        switch self {
        case .ip: 2
        case .ip6: 10
        case .inet: 1
        case .bridge: 7
        case .netdev: 5
        }
    }

    init?(nfproto: UInt32) {
        guard let f = Family.allCases.first(where: { UInt32($0.nfproto) == nfproto }) else { return nil }
        self = f
    }
}

public struct Table: Sendable, Hashable, CustomStringConvertible {
    public var family: Family
    public var name: String
    public init(family: Family, name: String) {
        self.family = family
        self.name = name
    }
    public var description: String { "\(family) \(name)" }
}

public enum ChainType: String, Sendable, Hashable {
    case filter, nat, route
}

public enum Hook: String, Sendable, Hashable, CaseIterable {
    case prerouting, input, forward, output, postrouting, ingress

    var number: UInt32 {
        switch self {
        case .prerouting: 0
        case .input: 1
        case .forward: 2
        case .output: 3
        case .postrouting: 4
        case .ingress: 0
        }
    }
}

/// A verdict, for rules (`accept`, `jump x`) and for the data of verdict maps.
public enum Verdict: Sendable, Hashable, CustomStringConvertible {
    case accept, drop, `return`, `continue`
    case jump(String)
    case goto(String)

    /// NF_ACCEPT/NF_DROP or NFT_JUMP/NFT_GOTO/NFT_RETURN/NFT_CONTINUE.
    var code: Int32 {
        switch self {
        case .drop: 0
        case .accept: 1
        case .continue: -1
        case .return: -5
        case .jump: -3
        case .goto: -4
        }
    }
    var chain: String? {
        switch self {
        case .jump(let c), .goto(let c): c
        default: nil
        }
    }
    init?(code: Int32, chain: String?) {
        switch code {
        case 0: self = .drop
        case 1: self = .accept
        case -1: self = .continue
        case -5: self = .return
        case -3: self = .jump(chain ?? "")
        case -4: self = .goto(chain ?? "")
        default: return nil
        }
    }
    public var description: String {
        switch self {
        case .accept: "accept"
        case .drop: "drop"
        case .return: "return"
        case .continue: "continue"
        case .jump(let c): "jump \(c)"
        case .goto(let c): "goto \(c)"
        }
    }
}

/// A chain. Base chains have a type, hook and priority; regular chains have none.
public struct Chain: Sendable, Hashable, CustomStringConvertible {
    public var table: Table
    public var name: String
    public var type: ChainType?
    public var hook: Hook?
    public var priority: Int32?
    /// Base chains only: `.accept` or `.drop`.
    public var policy: Verdict?

    /// A regular chain (target of jump/goto).
    public init(table: Table, name: String) {
        self.table = table
        self.name = name
    }

    /// A base chain attached to a hook.
    public init(table: Table, name: String, type: ChainType, hook: Hook, priority: Int32,
                policy: Verdict? = nil) {
        self.table = table
        self.name = name
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
    }

    public var isBaseChain: Bool { hook != nil }
    public var description: String { "\(table)/\(name)" }
}

/// nft's data types for set keys and map data (the ids nft stores in NFTA_SET_KEY_TYPE).
public enum DataType: String, Sendable, Hashable, CaseIterable {
    case ipv4Addr = "ipv4_addr"
    case ipv6Addr = "ipv6_addr"
    case etherAddr = "ether_addr"
    case inetProto = "inet_proto"
    case inetService = "inet_service"
    case mark
    case ifname

    var id: UInt32 {
        switch self {
        case .ipv4Addr: 7
        case .ipv6Addr: 8
        case .etherAddr: 9
        case .inetProto: 12
        case .inetService: 13
        case .mark: 19
        case .ifname: 41
        }
    }
    /// Bytes of one value (before the 4-byte register alignment of concatenations).
    var size: Int {
        switch self {
        case .ipv4Addr: 4
        case .ipv6Addr: 16
        case .etherAddr: 6
        case .inetProto: 1
        case .inetService: 2
        case .mark: 4
        case .ifname: 16
        }
    }
    static func concatID(_ types: [DataType]) -> UInt32 {
        types.reduce(UInt32(0)) { ($0 << 6) | $1.id }
    }
    static func concatLength(_ types: [DataType]) -> Int {
        types.reduce(0) { $0 + roundUp4($1.size) }
    }
}

func roundUp4(_ n: Int) -> Int { (n + 3) & ~3 }

/// What a map maps to.
public enum MapData: Sendable, Hashable {
    case values([DataType])
    case verdict
}

/// A named set or map.
public struct NFTSet: Sendable, Hashable, CustomStringConvertible {
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let constant = Flags(rawValue: 0x2)   // NFT_SET_CONSTANT
        public static let interval = Flags(rawValue: 0x4)   // NFT_SET_INTERVAL
        public static let timeout = Flags(rawValue: 0x10)   // NFT_SET_TIMEOUT
    }

    public var table: Table
    public var name: String
    public var keyType: [DataType]
    /// nil for a set; the data of a map otherwise.
    public var data: MapData?
    public var flags: Flags
    /// Shown by `nft list` as the set's `comment`.
    public var comment: String?

    public init(table: Table, name: String, keyType: [DataType], data: MapData? = nil, flags: Flags = [],
                comment: String? = nil) {
        self.table = table
        self.name = name
        self.keyType = keyType
        self.data = data
        self.flags = flags
        self.comment = comment
    }

    public var isMap: Bool { data != nil }
    public var description: String { "\(table) \(isMap ? "map" : "set") \(name)" }
}

/// One component of a set key or of map data.
public enum KeyPart: Sendable, Hashable, CustomStringConvertible {
    case address(IPAddress)
    /// An interval-set key covering a prefix.
    case prefix(CIDR)
    case proto(UInt8)
    case port(UInt16)
    case mark(UInt32)
    case ifname(String)
    /// An Ethernet address (`ether_addr`), see KeyPart+Ether.swift.
    case mac(MACAddress)

    public static let tcp = KeyPart.proto(6)
    public static let udp = KeyPart.proto(17)
    public static let sctp = KeyPart.proto(132)

    public var description: String {
        switch self {
        case .address(let a): "\(a)"
        case .prefix(let c): "\(c)"
        case .proto(let p): p == 6 ? "tcp" : p == 17 ? "udp" : "\(p)"
        case .port(let p): "\(p)"
        case .mark(let m): "0x\(String(m, radix: 16))"
        case .ifname(let n): "\"\(n)\""
        case .mac(let m): "\(m)"
        }
    }
}

/// An element of a set or map.
public struct SetElement: Sendable, Hashable, CustomStringConvertible {
    public enum Value: Sendable, Hashable {
        case data([KeyPart])
        case verdict(Verdict)
    }
    public var key: [KeyPart]
    /// For maps: what the key maps to.
    public var value: Value?
    /// Stored as the element's userdata (NFTNL_UDATA_SET_ELEM_COMMENT); `nft list` shows it.
    public var comment: String?

    public init(key: [KeyPart], value: Value? = nil, comment: String? = nil) {
        self.key = key
        self.value = value
        self.comment = comment
    }
    public init(_ key: KeyPart..., comment: String? = nil) {
        self.init(key: key, comment: comment)
    }

    public var description: String {
        var s = key.map(\.description).joined(separator: " . ")
        if let comment { s += " comment \"\(comment)\"" }
        switch value {
        case .data(let d)?: s += " : " + d.map(\.description).joined(separator: " . ")
        case .verdict(let v)?: s += " : \(v)"
        case nil: break
        }
        return s
    }
}

/// A rule: the chain it lives in, its expressions (see `RuleBuilder`), an optional comment
/// (rule userdata, shown by `nft list`), and its handle once the kernel has assigned one.
public struct Rule: Sendable, Hashable {
    public var chain: Chain
    public var expressions: [Expression]
    public var comment: String?
    public var handle: UInt64?

    public init(chain: Chain, expressions: [Expression], comment: String? = nil, handle: UInt64? = nil) {
        self.chain = chain
        self.expressions = expressions
        self.comment = comment
        self.handle = handle
    }
    public init(chain: Chain, comment: String? = nil, _ build: (RuleBuilder) -> RuleBuilder) {
        self.init(chain: chain, expressions: build(RuleBuilder(family: chain.table.family)).expressions,
                  comment: comment)
    }
}

/// A rule as read back from the kernel.
public struct RuleInfo: Sendable, Hashable {
    public var chain: Chain
    public var handle: UInt64
    public var comment: String?
    /// The raw rule userdata (TLVs in nft's format).
    public var userdata: [UInt8]
    /// libnftnl's rendering of the expressions, as `nft --debug=netlink` prints them: for
    /// people and test diagnostics. A rule is found by its handle or comment, never by this text.
    public var summary: String
}
