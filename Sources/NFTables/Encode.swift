// Turns Swift values into nfnetlink messages with libnftnl. Every libnftnl object lives only
// inside one function here and is freed in a defer.

import CNFTables
import NetTypes
import SystemKit

/// Scratch space for building one message at a time; messages are then copied out.
struct MessageWriter: ~Copyable {
    static let capacity = 1 << 18
    let buffer: UnsafeMutableRawPointer
    var bytes: [UInt8] = []

    init() {
        buffer = UnsafeMutableRawPointer.allocate(byteCount: MessageWriter.capacity, alignment: 16)
    }
    deinit { buffer.deallocate() }

    var cbuf: UnsafeMutablePointer<CChar> { buffer.assumingMemoryBound(to: CChar.self) }

    /// Builds a header for `type` and lets `payload` fill the message; appends it.
    mutating func message(_ type: Int, family: UInt8, flags: Int32, seq: UInt32,
                          _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        let nlh = nftnl_nlmsg_build_hdr(cbuf, UInt16(type), UInt16(family), UInt16(flags), seq)!
        payload(nlh)
        append(nlh)
    }

    mutating func append(_ nlh: UnsafeMutablePointer<nlmsghdr>) {
        let len = Int(nlh.pointee.nlmsg_len)
        precondition(len <= MessageWriter.capacity, "netlink message too large")
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(nlh), count: len))
    }
}

/// Message types newer than the installed kernel headers (linux/netfilter/nf_tables.h).
enum NFTMessage {
    static let destroyTable = 26
    static let destroySet = 29
    static let destroySetElem = 30
}

let NLM_REQUEST: Int32 = 0x1, NLM_ACK: Int32 = 0x4, NLM_EXCL: Int32 = 0x200
let NLM_CREATE: Int32 = 0x400, NLM_APPEND: Int32 = 0x800, NLM_DUMP: Int32 = 0x300

/// The userdata TLV nft uses for comments (type 0 = NFTNL_UDATA_*_COMMENT, NUL-terminated).
func commentTLV(_ comment: String) -> [UInt8] {
    let text = Array(comment.utf8.prefix(127)) + [0]  // NFTNL_UDATA_COMMENT_MAXLEN is 128
    return [0, UInt8(text.count)] + text
}

/// Reads the comment TLV (type 0) back out of nft-format userdata.
func commentFromTLV(_ data: [UInt8]) -> String? {
    var i = 0
    while i + 2 <= data.count {
        let type = data[i], len = Int(data[i + 1])
        guard i + 2 + len <= data.count else { return nil }
        if type == 0 {
            var v = Array(data[(i + 2)..<(i + 2 + len)])
            while v.last == 0 { v.removeLast() }
            return String(decoding: v, as: UTF8.self)
        }
        i += 2 + len
    }
    return nil
}

/// Key or data bytes of a set element: a single value at its own size, a concatenation with
/// every component padded to 4 bytes.
func encodeParts(_ parts: [KeyPart], _ types: [DataType]) throws -> [UInt8] {
    guard parts.count == types.count else {
        throw NFTError.nft(operation: "encode element", object: parts.map(\.description).joined(separator: " . "),
                       errno: 22, message: "expected \(types.count) components (\(types.map(\.rawValue).joined(separator: " . ")))")
    }
    if parts.count == 1 { return parts[0].bytes(exactLength: types[0].size) }
    var out: [UInt8] = []
    for (p, t) in zip(parts, types) { out += p.bytes(exactLength: roundUp4(t.size)) }
    return out
}

func udataU32(type: UInt8, _ v: UInt32) -> [UInt8] { [type, 4] + le32(v) }

extension DataType {
    /// nft's byte order of a key: 1 host endian, 2 big endian, 0 for concatenations.
    static func byteOrder(_ types: [DataType]) -> UInt32 {
        guard types.count == 1 else { return 0 }
        switch types[0] {
        case .mark, .ifname: return 1
        default: return 2
        }
    }
}

func keyLength(_ types: [DataType]) -> Int {
    types.count == 1 ? types[0].size : DataType.concatLength(types)
}

extension Batch.Operation {
    /// Appends this operation's messages; returns how many it wrote.
    func encode(into w: inout MessageWriter, nextSeq: () -> UInt32) throws -> Int {
        switch self {
        case .destroyTable(let t):
            let obj = nftnl_table_alloc()!
            defer { nftnl_table_free(obj) }
            nftnl_table_set_str(obj, UInt16(NFTNL_TABLE_NAME.rawValue), t.name)
            w.message(NFTMessage.destroyTable, family: t.family.nfproto, flags: 0, seq: nextSeq()) {
                nftnl_table_nlmsg_build_payload($0, obj)
            }
            return 1
        case .destroySet(let s):
            let obj = makeSet(s)
            defer { nftnl_set_free(obj) }
            w.message(NFTMessage.destroySet, family: s.table.family.nfproto, flags: 0, seq: nextSeq()) {
                nftnl_set_nlmsg_build_payload($0, obj)
            }
            return 1
        case .destroyElements(let s, let elements):
            return try encodeElements(s, elements, type: NFTMessage.destroySetElem, flags: 0, into: &w, nextSeq: nextSeq)
        case .addTable(let t), .deleteTable(let t):
            let isAdd = if case .addTable = self { true } else { false }
            let obj = nftnl_table_alloc()!
            defer { nftnl_table_free(obj) }
            nftnl_table_set_str(obj, UInt16(NFTNL_TABLE_NAME.rawValue), t.name)
            w.message(isAdd ? Int(NFT_MSG_NEWTABLE.rawValue) : Int(NFT_MSG_DELTABLE.rawValue),
                      family: t.family.nfproto, flags: isAdd ? NLM_CREATE : 0, seq: nextSeq()) {
                nftnl_table_nlmsg_build_payload($0, obj)
            }
            return 1
        case .addChain(let c), .deleteChain(let c), .flushChain(let c):
            let obj = nftnl_chain_alloc()!
            defer { nftnl_chain_free(obj) }
            nftnl_chain_set_str(obj, UInt16(NFTNL_CHAIN_TABLE.rawValue), c.table.name)
            nftnl_chain_set_str(obj, UInt16(NFTNL_CHAIN_NAME.rawValue), c.name)
            var type = NFT_MSG_DELCHAIN.rawValue, flags: Int32 = 0
            switch self {
            case .addChain:
                type = NFT_MSG_NEWCHAIN.rawValue
                flags = NLM_CREATE
                if let hook = c.hook {
                    nftnl_chain_set_u32(obj, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), hook.number)
                    nftnl_chain_set_s32(obj, UInt16(NFTNL_CHAIN_PRIO.rawValue), c.priority ?? 0)
                    nftnl_chain_set_str(obj, UInt16(NFTNL_CHAIN_TYPE.rawValue), (c.type ?? .filter).rawValue)
                    if let p = c.policy {
                        nftnl_chain_set_u32(obj, UInt16(NFTNL_CHAIN_POLICY.rawValue), UInt32(bitPattern: p.code))
                    }
                }
            case .flushChain:
                // A flush is a rule deletion with only table and chain set.
                let rule = nftnl_rule_alloc()!
                defer { nftnl_rule_free(rule) }
                nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_TABLE.rawValue), c.table.name)
                nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_CHAIN.rawValue), c.name)
                w.message(Int(NFT_MSG_DELRULE.rawValue), family: c.table.family.nfproto, flags: 0, seq: nextSeq()) {
                    nftnl_rule_nlmsg_build_payload($0, rule)
                }
                return 1
            default: break
            }
            w.message(Int(type), family: c.table.family.nfproto, flags: flags, seq: nextSeq()) {
                nftnl_chain_nlmsg_build_payload($0, obj)
            }
            return 1
        case .addRule(let r):
            let obj = nftnl_rule_alloc()!
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_TABLE.rawValue), r.chain.table.name)
            nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_CHAIN.rawValue), r.chain.name)
            for e in r.expressions { nftnl_rule_add_expr(obj, e.makeNftnl()) }
            if let comment = r.comment {
                let ud = commentTLV(comment)
                ud.withUnsafeBytes { _ = nftnl_rule_set_data(obj, UInt16(NFTNL_RULE_USERDATA.rawValue), $0.baseAddress, UInt32(ud.count)) }
            }
            w.message(Int(NFT_MSG_NEWRULE.rawValue), family: r.chain.table.family.nfproto,
                      flags: NLM_CREATE | NLM_APPEND, seq: nextSeq()) {
                nftnl_rule_nlmsg_build_payload($0, obj)
            }
            return 1
        case .deleteRule(let c, let handle):
            let obj = nftnl_rule_alloc()!
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_TABLE.rawValue), c.table.name)
            nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_CHAIN.rawValue), c.name)
            nftnl_rule_set_u64(obj, UInt16(NFTNL_RULE_HANDLE.rawValue), handle)
            w.message(Int(NFT_MSG_DELRULE.rawValue), family: c.table.family.nfproto, flags: 0, seq: nextSeq()) {
                nftnl_rule_nlmsg_build_payload($0, obj)
            }
            return 1
        case .addSet(let s), .deleteSet(let s), .flushSet(let s):
            let obj = makeSet(s)
            defer { nftnl_set_free(obj) }
            switch self {
            case .addSet:
                var flags = s.flags.rawValue
                if s.isMap { flags |= 0x8 }  // NFT_SET_MAP
                nftnl_set_set_u32(obj, UInt16(NFTNL_SET_FLAGS.rawValue), flags)
                // The kernel wants a batch-local id for every new set.
                nftnl_set_set_u32(obj, UInt16(NFTNL_SET_ID.rawValue), nextSeq())
                nftnl_set_set_u32(obj, UInt16(NFTNL_SET_KEY_TYPE.rawValue), DataType.concatID(s.keyType))
                nftnl_set_set_u32(obj, UInt16(NFTNL_SET_KEY_LEN.rawValue), UInt32(keyLength(s.keyType)))
                switch s.data {
                case .values(let types)?:
                    nftnl_set_set_u32(obj, UInt16(NFTNL_SET_DATA_TYPE.rawValue), DataType.concatID(types))
                    nftnl_set_set_u32(obj, UInt16(NFTNL_SET_DATA_LEN.rawValue), UInt32(keyLength(types)))
                case .verdict?:
                    nftnl_set_set_u32(obj, UInt16(NFTNL_SET_DATA_TYPE.rawValue), 0xffff_ff00)  // NFT_DATA_VERDICT
                case nil: break
                }
                // Byte order hints in set userdata, as nft writes them, so `nft list` prints
                // host-endian keys (ifname, mark) correctly.
                var ud = udataU32(type: 0, DataType.byteOrder(s.keyType))  // NFTNL_UDATA_SET_KEYBYTEORDER
                if case .values(let types)? = s.data {
                    ud += udataU32(type: 1, DataType.byteOrder(types))  // NFTNL_UDATA_SET_DATABYTEORDER
                }
                if let comment = s.comment {
                    var c = commentTLV(comment)
                    c[0] = 7  // NFTNL_UDATA_SET_COMMENT
                    ud += c
                }
                ud.withUnsafeBytes { _ = nftnl_set_set_data(obj, UInt16(NFTNL_SET_USERDATA.rawValue), $0.baseAddress, UInt32(ud.count)) }
                w.message(Int(NFT_MSG_NEWSET.rawValue), family: s.table.family.nfproto, flags: NLM_CREATE, seq: nextSeq()) {
                    nftnl_set_nlmsg_build_payload($0, obj)
                }
            case .deleteSet:
                w.message(Int(NFT_MSG_DELSET.rawValue), family: s.table.family.nfproto, flags: 0, seq: nextSeq()) {
                    nftnl_set_nlmsg_build_payload($0, obj)
                }
            default:
                w.message(Int(NFT_MSG_DELSETELEM.rawValue), family: s.table.family.nfproto, flags: 0, seq: nextSeq()) {
                    nftnl_set_elems_nlmsg_build_payload($0, obj)
                }
            }
            return 1
        case .addElements(let s, let elements, let exclusive):
            return try encodeElements(s, elements, type: Int(NFT_MSG_NEWSETELEM.rawValue),
                                      flags: NLM_CREATE | (exclusive ? NLM_EXCL : 0), into: &w, nextSeq: nextSeq)
        case .deleteElements(let s, let elements):
            return try encodeElements(s, elements, type: Int(NFT_MSG_DELSETELEM.rawValue), flags: 0,
                                      into: &w, nextSeq: nextSeq)
        }
    }
}

func makeSet(_ s: NFTSet) -> OpaquePointer {
    let obj = nftnl_set_alloc()!
    nftnl_set_set_str(obj, UInt16(NFTNL_SET_TABLE.rawValue), s.table.name)
    nftnl_set_set_str(obj, UInt16(NFTNL_SET_NAME.rawValue), s.name)
    nftnl_set_set_u32(obj, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(s.table.family.nfproto))
    return obj
}

/// Elements go out in chunks so no message outgrows the scratch buffer.
private func encodeElements(_ s: NFTSet, _ elements: [SetElement], type: Int, flags: Int32,
                            into w: inout MessageWriter, nextSeq: () -> UInt32) throws -> Int {
    let chunk = 256
    var count = 0
    var start = 0
    while start < elements.count {
        let slice = elements[start..<min(start + chunk, elements.count)]
        start += chunk
        let obj = makeSet(s)
        defer { nftnl_set_free(obj) }
        for e in slice {
            for raw in try rawElements(e, of: s) { nftnl_set_elem_add(obj, raw) }
        }
        w.message(type, family: s.table.family.nfproto, flags: flags, seq: nextSeq()) {
            nftnl_set_elems_nlmsg_build_payload($0, obj)
        }
        count += 1
    }
    return count
}

/// One Swift element as libnftnl elements: one, or two (start and end) in interval sets.
private func rawElements(_ e: SetElement, of s: NFTSet) throws -> [OpaquePointer] {
    func elem(_ key: [UInt8], end: Bool) -> OpaquePointer {
        let x = nftnl_set_elem_alloc()!
        key.withUnsafeBytes { _ = nftnl_set_elem_set(x, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32(key.count)) }
        if end { nftnl_set_elem_set_u32(x, UInt16(NFTNL_SET_ELEM_FLAGS), 1) }  // NFT_SET_ELEM_INTERVAL_END
        return x
    }
    var first: OpaquePointer
    var extra: [OpaquePointer] = []
    if s.flags.contains(.interval), e.key.count == 1 {
        let cidr: CIDR
        switch e.key[0] {
        case .prefix(let c): cidr = c.network
        case .address(let a): cidr = CIDR(address: a, prefixLength: a.family.bitWidth)!
        default: throw NFTError.nft(operation: "encode element", object: "\(s)", errno: 22,
                                message: "interval sets take addresses or prefixes")
        }
        first = elem(cidr.networkAddress.bytes, end: false)
        if let after = cidr.lastAddress.next { extra.append(elem(after.bytes, end: true)) }
    } else {
        first = elem(try encodeParts(e.key, s.keyType), end: false)
    }
    switch (e.value, s.data) {
    case (.data(let parts)?, .values(let types)?):
        let d = try encodeParts(parts, types)
        d.withUnsafeBytes { _ = nftnl_set_elem_set(first, UInt16(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32(d.count)) }
    case (.verdict(let v)?, .verdict?):
        nftnl_set_elem_set_u32(first, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: v.code))
        if let c = v.chain { nftnl_set_elem_set_str(first, UInt16(NFTNL_SET_ELEM_CHAIN), c) }
    case (nil, _):
        break
    default:
        nftnl_set_elem_free(first)
        for x in extra { nftnl_set_elem_free(x) }
        throw NFTError.nft(operation: "encode element", object: "\(s)", errno: 22,
                       message: "element value does not match the map's data type")
    }
    if let comment = e.comment {
        let ud = commentTLV(comment)
        ud.withUnsafeBytes { _ = nftnl_set_elem_set(first, UInt16(NFTNL_SET_ELEM_USERDATA), $0.baseAddress, UInt32(ud.count)) }
    }
    return [first] + extra
}
