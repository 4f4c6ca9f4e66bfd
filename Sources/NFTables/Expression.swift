// Low-level nftables expressions, one case per kernel expression netlab uses. They mirror what
// `nft --debug=netlink` shows; `RuleBuilder` composes them the way nft does.

import CNFTables
import SystemKit
import Glibc

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

// Encoding into libnftnl: an expression is its libnftnl name and a list of attributes (plain
// data, so it can be compared and tested), set on a new libnftnl expression that the rule it
// is added to owns.

/// One attribute of a libnftnl expression (NFTNL_EXPR_*).
enum ExpressionAttribute: Hashable {
    case u32(UInt16, UInt32)
    case bytes(UInt16, [UInt8])
    case string(UInt16, String)
}

extension Expression {
    /// libnftnl's name for the expression and its attributes; registers left nil are omitted.
    var nftnlForm: (name: String, attributes: [ExpressionAttribute]) {
        typealias A = ExpressionAttribute
        func id(_ attribute: some BinaryInteger) -> UInt16 { UInt16(attribute) }
        func optional(_ attribute: some BinaryInteger, _ value: UInt32?) -> [A] { value.map { [.u32(id(attribute), $0)] } ?? [] }
        switch self {
        case .payload(let base, let offset, let length, let dreg):
            return ("payload", [.u32(id(NFTNL_EXPR_PAYLOAD_DREG), dreg), .u32(id(NFTNL_EXPR_PAYLOAD_BASE), base.rawValue),
                                .u32(id(NFTNL_EXPR_PAYLOAD_OFFSET), offset), .u32(id(NFTNL_EXPR_PAYLOAD_LEN), length)])
        case .meta(let key, let dreg):
            return ("meta", [.u32(id(NFTNL_EXPR_META_KEY), key.rawValue), .u32(id(NFTNL_EXPR_META_DREG), dreg)])
        case .metaSet(let key, let sreg):
            return ("meta", [.u32(id(NFTNL_EXPR_META_KEY), key.rawValue), .u32(id(NFTNL_EXPR_META_SREG), sreg)])
        case .cmp(let op, let sreg, let data):
            return ("cmp", [.u32(id(NFTNL_EXPR_CMP_SREG), sreg), .u32(id(NFTNL_EXPR_CMP_OP), op.rawValue),
                            .bytes(id(NFTNL_EXPR_CMP_DATA), data)])
        case .bitwise(let sreg, let dreg, let mask, let xor):
            return ("bitwise", [.u32(id(NFTNL_EXPR_BITWISE_SREG), sreg), .u32(id(NFTNL_EXPR_BITWISE_DREG), dreg),
                                .u32(id(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count)),
                                .bytes(id(NFTNL_EXPR_BITWISE_MASK), mask), .bytes(id(NFTNL_EXPR_BITWISE_XOR), xor)])
        case .lookup(let set, let sreg, let dreg, let invert):
            return ("lookup", [.string(id(NFTNL_EXPR_LOOKUP_SET), set), .u32(id(NFTNL_EXPR_LOOKUP_SREG), sreg)]
                        + optional(NFTNL_EXPR_LOOKUP_DREG, dreg)
                        + optional(NFTNL_EXPR_LOOKUP_FLAGS, invert ? NFT_LOOKUP_F_INV.rawValue : nil))
        case .immediate(let dreg, let data):
            return ("immediate", [.u32(id(NFTNL_EXPR_IMM_DREG), dreg), .bytes(id(NFTNL_EXPR_IMM_DATA), data)])
        case .immediateVerdict(let v):
            return ("immediate", [.u32(id(NFTNL_EXPR_IMM_DREG), Registers.verdict),
                                  .u32(id(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: v.code))]
                        + (v.chain.map { [.string(id(NFTNL_EXPR_IMM_CHAIN), $0)] } ?? []))
        case .nat(let type, let family, let addrMin, let addrMax, let protoMin, let protoMax, let flags):
            return ("nat", [.u32(id(NFTNL_EXPR_NAT_TYPE), type.rawValue), .u32(id(NFTNL_EXPR_NAT_FAMILY), UInt32(family))]
                        + optional(NFTNL_EXPR_NAT_REG_ADDR_MIN, addrMin) + optional(NFTNL_EXPR_NAT_REG_ADDR_MAX, addrMax)
                        + optional(NFTNL_EXPR_NAT_REG_PROTO_MIN, protoMin) + optional(NFTNL_EXPR_NAT_REG_PROTO_MAX, protoMax)
                        + optional(NFTNL_EXPR_NAT_FLAGS, flags == 0 ? nil : flags))
        case .masquerade(let protoMin, let protoMax, let flags):
            return ("masq", optional(NFTNL_EXPR_MASQ_REG_PROTO_MIN, protoMin) + optional(NFTNL_EXPR_MASQ_REG_PROTO_MAX, protoMax)
                        + optional(NFTNL_EXPR_MASQ_FLAGS, flags == 0 ? nil : flags))
        case .counter:
            return ("counter", [])
        case .fib(let flags, let result, let dreg):
            return ("fib", [.u32(id(NFTNL_EXPR_FIB_FLAGS), flags), .u32(id(NFTNL_EXPR_FIB_RESULT), result),
                            .u32(id(NFTNL_EXPR_FIB_DREG), dreg)])
        case .ct(let key, let dreg):
            return ("ct", [.u32(id(NFTNL_EXPR_CT_KEY), key), .u32(id(NFTNL_EXPR_CT_DREG), dreg)])
        }
    }

    /// Allocates and fills the libnftnl expression; the caller adds it to a rule (which frees it).
    func makeNftnl() throws(SystemError) -> OpaquePointer {
        let (name, attributes) = nftnlForm
        guard let e = nftnl_expr_alloc(name) else {
            throw .nft(operation: "build message", object: "\(name) expression", errno: ENOMEM)
        }
        do {
            for attribute in attributes { try Expression.set(attribute, on: e, name) }
        } catch {
            nftnl_expr_free(e)
            throw error
        }
        return e
    }

    private static func set(_ attribute: ExpressionAttribute, on e: OpaquePointer, _ name: String) throws(SystemError) {
        switch attribute {
        case .u32(let id, let v):
            nftnl_expr_set_u32(e, id, v)
        case .bytes(let id, let b):
            try setBytes(b, "\(name) attribute \(id)") { nftnl_expr_set(e, id, $0, $1) }
        case .string(let id, let s):
            try checkSet(nftnl_expr_set_str(e, id, s), "\(name) attribute \(id)")
        }
    }
}
