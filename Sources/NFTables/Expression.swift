// Low-level nftables expressions, one case per kernel expression netlab uses. They mirror what
// `nft --debug=netlink` shows; `RuleBuilder` composes them the way nft does.

import CNFTables

/// A register: 0 is the verdict register, 1...4 the 16-byte registers, 8...23 the 4-byte ones.
public typealias Register = UInt32

enum Registers {
    static let verdict: Register = 0
    /// nft's choice for the register holding the 32-bit word `word` of a concatenation:
    /// `reg 1` for word 0, `reg 2..4` on 16-byte boundaries, `reg 9..` otherwise.
    static func forWord(_ word: Int) -> Register {
        if word == 0 { return 1 }
        if word % 4 == 0 { return Register(1 + word / 4) }
        return Register(8 + word)
    }
}

public enum PayloadBase: UInt32, Sendable, Hashable {
    case link = 0, network = 1, transport = 2
}

public enum MetaKey: UInt32, Sendable, Hashable {
    case len = 0, `protocol` = 1, mark = 3, iif = 4, oif = 5, iifname = 6, oifname = 7
    case nfproto = 15, l4proto = 16
}

public enum CmpOp: UInt32, Sendable, Hashable {
    case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5
}

public enum NATType: UInt32, Sendable, Hashable {
    case snat = 0, dnat = 1
}

public enum Expression: Sendable, Hashable {
    case payload(base: PayloadBase, offset: UInt32, length: UInt32, dreg: Register)
    case meta(MetaKey, dreg: Register)
    case metaSet(MetaKey, sreg: Register)
    case cmp(CmpOp, sreg: Register, data: [UInt8])
    /// dreg = (sreg & mask) ^ xor over `mask.count` bytes.
    case bitwise(sreg: Register, dreg: Register, mask: [UInt8], xor: [UInt8])
    /// Lookup in a named set; with `dreg` (0 for verdict maps) a map lookup.
    case lookup(set: String, sreg: Register, dreg: Register?, invert: Bool)
    case immediate(dreg: Register, data: [UInt8])
    case immediateVerdict(Verdict)
    /// `family` is the NFPROTO of the addresses (2 or 10); nil registers are omitted.
    case nat(NATType, family: UInt8, addrMin: Register?, addrMax: Register?, protoMin: Register?,
             protoMax: Register?, flags: UInt32)
    case masquerade(protoMin: Register?, protoMax: Register?, flags: UInt32)
    case counter
    /// fib with NFTA_FIB_F_* flags and an NFT_FIB_RESULT_* result.
    case fib(flags: UInt32, result: UInt32, dreg: Register)
    /// ct load of an NFT_CT_* key.
    case ct(key: UInt32, dreg: Register)
}

// Encoding into libnftnl: the expression object is owned by the rule it is added to.
extension Expression {
    /// Allocates and fills the libnftnl expression; the caller adds it to a rule (which frees it).
    func makeNftnl() -> OpaquePointer {
        func new(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name)! }
        func bytes(_ e: OpaquePointer, _ attr: some BinaryInteger, _ b: [UInt8]) {
            b.withUnsafeBytes { _ = nftnl_expr_set(e, UInt16(attr), $0.baseAddress, UInt32(b.count)) }
        }
        func u32(_ e: OpaquePointer, _ attr: some BinaryInteger, _ v: UInt32) { nftnl_expr_set_u32(e, UInt16(attr), v) }
        switch self {
        case .payload(let base, let offset, let length, let dreg):
            let e = new("payload")
            u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg)
            u32(e, NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            u32(e, NFTNL_EXPR_PAYLOAD_LEN, length)
            return e
        case .meta(let key, let dreg):
            let e = new("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_DREG, dreg)
            return e
        case .metaSet(let key, let sreg):
            let e = new("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_SREG, sreg)
            return e
        case .cmp(let op, let sreg, let data):
            let e = new("cmp")
            u32(e, NFTNL_EXPR_CMP_SREG, sreg)
            u32(e, NFTNL_EXPR_CMP_OP, op.rawValue)
            bytes(e, NFTNL_EXPR_CMP_DATA, data)
            return e
        case .bitwise(let sreg, let dreg, let mask, let xor):
            let e = new("bitwise")
            u32(e, NFTNL_EXPR_BITWISE_SREG, sreg)
            u32(e, NFTNL_EXPR_BITWISE_DREG, dreg)
            u32(e, NFTNL_EXPR_BITWISE_LEN, UInt32(mask.count))
            bytes(e, NFTNL_EXPR_BITWISE_MASK, mask)
            bytes(e, NFTNL_EXPR_BITWISE_XOR, xor)
            return e
        case .lookup(let set, let sreg, let dreg, let invert):
            let e = new("lookup")
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
            u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg)
            if let dreg { u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg) }
            if invert { u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 1) }  // NFT_LOOKUP_F_INV
            return e
        case .immediate(let dreg, let data):
            let e = new("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, dreg)
            bytes(e, NFTNL_EXPR_IMM_DATA, data)
            return e
        case .immediateVerdict(let v):
            let e = new("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, Registers.verdict)
            u32(e, NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: v.code))
            if let c = v.chain { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_IMM_CHAIN), c) }
            return e
        case .nat(let type, let family, let addrMin, let addrMax, let protoMin, let protoMax, let flags):
            let e = new("nat")
            u32(e, NFTNL_EXPR_NAT_TYPE, type.rawValue)
            u32(e, NFTNL_EXPR_NAT_FAMILY, UInt32(family))
            if let addrMin { u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addrMin) }
            if let addrMax { u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, addrMax) }
            if let protoMin { u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, protoMin) }
            if let protoMax { u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, protoMax) }
            if flags != 0 { u32(e, NFTNL_EXPR_NAT_FLAGS, flags) }
            return e
        case .masquerade(let protoMin, let protoMax, let flags):
            let e = new("masq")
            if let protoMin { u32(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN, protoMin) }
            if let protoMax { u32(e, NFTNL_EXPR_MASQ_REG_PROTO_MAX, protoMax) }
            if flags != 0 { u32(e, NFTNL_EXPR_MASQ_FLAGS, flags) }
            return e
        case .counter:
            return new("counter")
        case .fib(let flags, let result, let dreg):
            let e = new("fib")
            u32(e, NFTNL_EXPR_FIB_FLAGS, flags)
            u32(e, NFTNL_EXPR_FIB_RESULT, result)
            u32(e, NFTNL_EXPR_FIB_DREG, dreg)
            return e
        case .ct(let key, let dreg):
            let e = new("ct")
            u32(e, NFTNL_EXPR_CT_KEY, key)
            u32(e, NFTNL_EXPR_CT_DREG, dreg)
            return e
        }
    }
}
