// Turns Swift values into nfnetlink messages with libnftnl. Every libnftnl object lives only
// inside one function here and is freed in a defer.

import CNFTables
import NetTypes
import SystemKit
import Glibc

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
    mutating func message(_ type: UInt32, family: UInt8, flags: UInt16 = 0, seq: UInt32,
                          _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        let nlh = nftnl_nlmsg_build_hdr(cbuf, UInt16(type), UInt16(family), flags, seq)!
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
    static let destroyTable: UInt32 = 26
    static let destroySet: UInt32 = 29
    static let destroySetElem: UInt32 = 30
}

/// Userdata TLV types nft writes (libnftnl/udata.h). Rules and elements keep their comment
/// under type 0 (NFTNL_UDATA_RULE_COMMENT, NFTNL_UDATA_SET_ELEM_COMMENT).
enum UserdataType {
    static let comment = UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)
    static let setKeyByteOrder = UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue)
    static let setDataByteOrder = UInt8(NFTNL_UDATA_SET_DATABYTEORDER.rawValue)
    static let setComment = UInt8(NFTNL_UDATA_SET_COMMENT.rawValue)
}

/// The userdata TLV nft uses for comments (NUL-terminated text, at most
/// NFTNL_UDATA_COMMENT_MAXLEN bytes with the NUL).
func commentTLV(_ comment: String, type: UInt8 = UserdataType.comment) -> [UInt8] {
    let text = Array(comment.utf8.prefix(Int(NFTNL_UDATA_COMMENT_MAXLEN) - 1)) + [0]
    return [type, UInt8(text.count)] + text
}

/// Reads the comment TLV back out of nft-format userdata.
func commentFromTLV(_ data: [UInt8]) -> String? {
    var i = 0
    while i + 2 <= data.count {
        let type = data[i], len = Int(data[i + 1])
        guard i + 2 + len <= data.count else { return nil }
        if type == UserdataType.comment {
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
func encodeParts(_ parts: [KeyPart], _ types: [DataType]) throws(SystemError) -> [UInt8] {
    guard parts.count == types.count else {
        throw NFTError.nft(operation: "encode element", object: parts.map(\.description).joined(separator: " . "),
                       errno: EINVAL, message: "expected \(types.count) components (\(types.map(\.rawValue).joined(separator: " . ")))")
    }
    if parts.count == 1 { return parts[0].bytes(exactLength: types[0].size) }
    var out: [UInt8] = []
    for (p, t) in zip(parts, types) { out += p.bytes(exactLength: roundUp4(t.size)) }
    return out
}

func udataU32(type: UInt8, _ v: UInt32) -> [UInt8] { [type, 4] + le32(v) }

extension DataType {
    /// nft's byte order of a key (its enum byteorder): host endian for marks and interface
    /// names, big endian for the rest, "invalid" for concatenations.
    static func byteOrder(_ types: [DataType]) -> UInt32 {
        let invalid: UInt32 = 0, hostEndian: UInt32 = 1, bigEndian: UInt32 = 2
        guard types.count == 1 else { return invalid }
        switch types[0] {
        case .mark, .ifname: return hostEndian
        default: return bigEndian
        }
    }
}

func keyLength(_ types: [DataType]) -> Int {
    types.count == 1 ? types[0].size : DataType.concatLength(types)
}

/// What callers of the encoder pass along: the message buffer and the sequence numbers.
typealias NextSeq = () -> UInt32

extension Batch.Operation {
    /// Appends this operation's messages.
    func encode(into w: inout MessageWriter, nextSeq: NextSeq) throws(SystemError) {
        let create = NetlinkWire.flagCreate
        switch self {
        case .addTable(let t): try encodeTable(t, NFT_MSG_NEWTABLE.rawValue, flags: create, &w, nextSeq)
        case .deleteTable(let t): try encodeTable(t, NFT_MSG_DELTABLE.rawValue, &w, nextSeq)
        case .destroyTable(let t): try encodeTable(t, NFTMessage.destroyTable, &w, nextSeq)
        case .addChain(let c): try encodeChain(c, NFT_MSG_NEWCHAIN.rawValue, flags: create, &w, nextSeq)
        case .deleteChain(let c): try encodeChain(c, NFT_MSG_DELCHAIN.rawValue, &w, nextSeq)
        // A flush is a rule deletion with only table and chain set.
        case .flushChain(let c): try encodeRuleDeletion(c, handle: nil, &w, nextSeq)
        case .addRule(let r): try encodeRule(r, &w, nextSeq)
        case .deleteRule(let c, let handle): try encodeRuleDeletion(c, handle: handle, &w, nextSeq)
        case .addSet(let s): try encodeNewSet(s, &w, nextSeq)
        case .deleteSet(let s): try encodeSet(s, NFT_MSG_DELSET.rawValue, &w, nextSeq)
        case .destroySet(let s): try encodeSet(s, NFTMessage.destroySet, &w, nextSeq)
        case .flushSet(let s): try encodeSetFlush(s, &w, nextSeq)
        case .addElements(let s, let elements, let exclusive):
            try encodeElements(s, elements, NFT_MSG_NEWSETELEM.rawValue,
                               flags: create | (exclusive ? NetlinkWire.flagExclusive : 0), &w, nextSeq)
        case .deleteElements(let s, let elements):
            try encodeElements(s, elements, NFT_MSG_DELSETELEM.rawValue, &w, nextSeq)
        case .destroyElements(let s, let elements):
            try encodeElements(s, elements, NFTMessage.destroySetElem, &w, nextSeq)
        }
    }
}

// MARK: libnftnl objects

/// Fails when a libnftnl setter could not store a value (it copies strings and bytes; -1
/// means that copy could not be allocated), so a message never goes out without it.
func checkSet(_ rc: Int32, _ attribute: @autoclosure () -> String) throws(SystemError) {
    if rc < 0 { throw .nft(operation: "build message", object: attribute(), errno: ENOMEM) }
}

/// Sets a bytes attribute through one of libnftnl's `*_set_data` functions.
func setBytes(_ bytes: [UInt8], _ attribute: @autoclosure () -> String,
              _ setter: (UnsafeRawPointer?, UInt32) -> Int32) throws(SystemError) {
    try checkSet(bytes.withUnsafeBytes { setter($0.baseAddress, UInt32($0.count)) }, attribute())
}

/// Runs `body` with a new libnftnl object, freed afterwards.
func withObject<R>(_ alloc: () -> OpaquePointer?, _ free: (OpaquePointer) -> Void,
                   _ body: (OpaquePointer) throws(SystemError) -> R) throws(SystemError) -> R {
    guard let obj = alloc() else { throw .nft(operation: "build message", object: "libnftnl object", errno: ENOMEM) }
    defer { free(obj) }
    return try body(obj)
}

func withSet<R>(_ s: NFTSet, _ body: (OpaquePointer) throws(SystemError) -> R) throws(SystemError) -> R {
    try withObject(nftnl_set_alloc, nftnl_set_free) { obj throws(SystemError) in
        try checkSet(nftnl_set_set_str(obj, UInt16(NFTNL_SET_TABLE.rawValue), s.table.name), "table name")
        try checkSet(nftnl_set_set_str(obj, UInt16(NFTNL_SET_NAME.rawValue), s.name), "set name")
        nftnl_set_set_u32(obj, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(s.table.family.nfproto))
        return try body(obj)
    }
}

/// A rule object naming its table and chain (and nothing else yet).
func withRule<R>(in c: Chain, _ body: (OpaquePointer) throws(SystemError) -> R) throws(SystemError) -> R {
    try withObject(nftnl_rule_alloc, nftnl_rule_free) { obj throws(SystemError) in
        try checkSet(nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_TABLE.rawValue), c.table.name), "table name")
        try checkSet(nftnl_rule_set_str(obj, UInt16(NFTNL_RULE_CHAIN.rawValue), c.name), "chain name")
        return try body(obj)
    }
}

// MARK: one function per object kind

private func encodeTable(_ t: Table, _ type: UInt32, flags: UInt16 = 0,
                         _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withObject(nftnl_table_alloc, nftnl_table_free) { obj throws(SystemError) in
        try checkSet(nftnl_table_set_str(obj, UInt16(NFTNL_TABLE_NAME.rawValue), t.name), "table name")
        w.message(type, family: t.family.nfproto, flags: flags, seq: nextSeq()) { nftnl_table_nlmsg_build_payload($0, obj) }
    }
}

/// A chain; with `flags` (a NEWCHAIN) a base chain also gets its hook, priority, type and policy.
private func encodeChain(_ c: Chain, _ type: UInt32, flags: UInt16 = 0,
                         _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withObject(nftnl_chain_alloc, nftnl_chain_free) { obj throws(SystemError) in
        func attr(_ a: nftnl_chain_attr) -> UInt16 { UInt16(a.rawValue) }
        try checkSet(nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_TABLE), c.table.name), "table name")
        try checkSet(nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_NAME), c.name), "chain name")
        if type == NFT_MSG_NEWCHAIN.rawValue, let hook = c.hook {
            nftnl_chain_set_u32(obj, attr(NFTNL_CHAIN_HOOKNUM), hook.number)
            nftnl_chain_set_s32(obj, attr(NFTNL_CHAIN_PRIO), c.priority ?? 0)
            try checkSet(nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_TYPE), (c.type ?? .filter).rawValue), "chain type")
            if let p = c.policy { nftnl_chain_set_u32(obj, attr(NFTNL_CHAIN_POLICY), UInt32(bitPattern: p.code)) }
        }
        w.message(type, family: c.table.family.nfproto, flags: flags, seq: nextSeq()) { nftnl_chain_nlmsg_build_payload($0, obj) }
    }
}

/// Appended at the end of its chain, with its comment as nft-format userdata.
private func encodeRule(_ r: Rule, _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withRule(in: r.chain) { obj throws(SystemError) in
        for e in r.expressions { nftnl_rule_add_expr(obj, try e.makeNftnl()) }
        if let comment = r.comment {
            try setBytes(commentTLV(comment), "rule comment") {
                nftnl_rule_set_data(obj, UInt16(NFTNL_RULE_USERDATA.rawValue), $0, $1)
            }
        }
        w.message(NFT_MSG_NEWRULE.rawValue, family: r.chain.table.family.nfproto,
                  flags: NetlinkWire.flagCreate | NetlinkWire.flagAppend, seq: nextSeq()) {
            nftnl_rule_nlmsg_build_payload($0, obj)
        }
    }
}

/// Deletes the rule with `handle`, or every rule of the chain without one.
private func encodeRuleDeletion(_ c: Chain, handle: UInt64?, _ w: inout MessageWriter,
                                _ nextSeq: NextSeq) throws(SystemError) {
    try withRule(in: c) { obj throws(SystemError) in
        if let handle { nftnl_rule_set_u64(obj, UInt16(NFTNL_RULE_HANDLE.rawValue), handle) }
        w.message(NFT_MSG_DELRULE.rawValue, family: c.table.family.nfproto, seq: nextSeq()) {
            nftnl_rule_nlmsg_build_payload($0, obj)
        }
    }
}

/// A set message naming only the set (deletions).
private func encodeSet(_ s: NFTSet, _ type: UInt32, _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withSet(s) { obj in
        w.message(type, family: s.table.family.nfproto, seq: nextSeq()) { nftnl_set_nlmsg_build_payload($0, obj) }
    }
}

private func encodeNewSet(_ s: NFTSet, _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withSet(s) { obj throws(SystemError) in
        func attr(_ a: nftnl_set_attr) -> UInt16 { UInt16(a.rawValue) }
        nftnl_set_set_u32(obj, attr(NFTNL_SET_FLAGS), s.flags.rawValue | (s.isMap ? NFT_SET_MAP.rawValue : 0))
        // The kernel wants a batch-local id for every new set.
        nftnl_set_set_u32(obj, attr(NFTNL_SET_ID), nextSeq())
        nftnl_set_set_u32(obj, attr(NFTNL_SET_KEY_TYPE), DataType.concatID(s.keyType))
        nftnl_set_set_u32(obj, attr(NFTNL_SET_KEY_LEN), UInt32(keyLength(s.keyType)))
        switch s.data {
        case .values(let types)?:
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_TYPE), DataType.concatID(types))
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_LEN), UInt32(keyLength(types)))
        case .verdict?:
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT.rawValue)
        case nil: break
        }
        try setBytes(setUserdata(s), "set userdata") { nftnl_set_set_data(obj, attr(NFTNL_SET_USERDATA), $0, $1) }
        w.message(NFT_MSG_NEWSET.rawValue, family: s.table.family.nfproto, flags: NetlinkWire.flagCreate, seq: nextSeq()) {
            nftnl_set_nlmsg_build_payload($0, obj)
        }
    }
}

/// Byte order hints and comment in set userdata, as nft writes them, so `nft list` prints
/// host-endian keys (ifname, mark) correctly.
private func setUserdata(_ s: NFTSet) -> [UInt8] {
    var ud = udataU32(type: UserdataType.setKeyByteOrder, DataType.byteOrder(s.keyType))
    if case .values(let types)? = s.data {
        ud += udataU32(type: UserdataType.setDataByteOrder, DataType.byteOrder(types))
    }
    if let comment = s.comment { ud += commentTLV(comment, type: UserdataType.setComment) }
    return ud
}

/// A flush is an element deletion naming no element.
private func encodeSetFlush(_ s: NFTSet, _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    try withSet(s) { obj in
        w.message(NFT_MSG_DELSETELEM.rawValue, family: s.table.family.nfproto, seq: nextSeq()) {
            nftnl_set_elems_nlmsg_build_payload($0, obj)
        }
    }
}

/// Elements go out in chunks so no message outgrows the scratch buffer.
private func encodeElements(_ s: NFTSet, _ elements: [SetElement], _ type: UInt32, flags: UInt16 = 0,
                            _ w: inout MessageWriter, _ nextSeq: NextSeq) throws(SystemError) {
    let chunk = 256
    var start = 0
    while start < elements.count {
        let slice = elements[start..<min(start + chunk, elements.count)]
        start += chunk
        try withSet(s) { obj throws(SystemError) in
            // Each element belongs to the set object once added, and is freed with it.
            for e in slice {
                for raw in try rawElements(e, of: s) { nftnl_set_elem_add(obj, raw) }
            }
            w.message(type, family: s.table.family.nfproto, flags: flags, seq: nextSeq()) {
                nftnl_set_elems_nlmsg_build_payload($0, obj)
            }
        }
    }
}

// MARK: set elements

/// One Swift element as libnftnl elements: one, or two (start and end) in interval sets.
/// The value and the comment go on the first.
private func rawElements(_ e: SetElement, of s: NFTSet) throws(SystemError) -> [OpaquePointer] {
    let keys = try elementKeys(e, of: s)
    let value = try elementValue(e, of: s)
    var out: [OpaquePointer] = []
    do {
        for (key, isEnd) in keys {
            let x = try newElement(s)
            out.append(x)
            try setBytes(key, "element key") { nftnl_set_elem_set(x, UInt16(NFTNL_SET_ELEM_KEY), $0, $1) }
            if isEnd { nftnl_set_elem_set_u32(x, UInt16(NFTNL_SET_ELEM_FLAGS), NFT_SET_ELEM_INTERVAL_END.rawValue) }
        }
        try setValue(value, comment: e.comment, on: out[0])
    } catch {
        for x in out { nftnl_set_elem_free(x) }
        throw error
    }
    return out
}

private func newElement(_ s: NFTSet) throws(SystemError) -> OpaquePointer {
    guard let x = nftnl_set_elem_alloc() else { throw .nft(operation: "encode element", object: "\(s)", errno: ENOMEM) }
    return x
}

/// The key bytes of an element, with whether each ends an interval: in interval sets an
/// address or prefix becomes its start and the address after its end.
private func elementKeys(_ e: SetElement, of s: NFTSet) throws(SystemError) -> [(bytes: [UInt8], isEnd: Bool)] {
    guard s.flags.contains(.interval), e.key.count == 1 else { return [(try encodeParts(e.key, s.keyType), false)] }
    let cidr: CIDR
    switch e.key[0] {
    case .prefix(let c): cidr = c.network
    case .address(let a): cidr = CIDR(address: a, prefixLength: a.family.bitWidth)!
    default: throw .nft(operation: "encode element", object: "\(s)", errno: EINVAL,
                        message: "interval sets take addresses or prefixes")
    }
    var keys = [(cidr.networkAddress.bytes, false)]
    if let after = cidr.lastAddress.next { keys.append((after.bytes, true)) }
    return keys
}

private enum ElementValue {
    case none
    case data([UInt8])
    case verdict(Verdict)
}

private func elementValue(_ e: SetElement, of s: NFTSet) throws(SystemError) -> ElementValue {
    switch (e.value, s.data) {
    case (.data(let parts)?, .values(let types)?): return .data(try encodeParts(parts, types))
    case (.verdict(let v)?, .verdict?): return .verdict(v)
    case (nil, _): return .none
    default:
        throw .nft(operation: "encode element", object: "\(s)", errno: EINVAL,
                   message: "element value does not match the map's data type")
    }
}

private func setValue(_ value: ElementValue, comment: String?, on x: OpaquePointer) throws(SystemError) {
    switch value {
    case .data(let d):
        try setBytes(d, "element data") { nftnl_set_elem_set(x, UInt16(NFTNL_SET_ELEM_DATA), $0, $1) }
    case .verdict(let v):
        nftnl_set_elem_set_u32(x, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: v.code))
        if let c = v.chain { try checkSet(nftnl_set_elem_set_str(x, UInt16(NFTNL_SET_ELEM_CHAIN), c), "verdict chain") }
    case .none:
        break
    }
    if let comment {
        try setBytes(commentTLV(comment), "element comment") { nftnl_set_elem_set(x, UInt16(NFTNL_SET_ELEM_USERDATA), $0, $1) }
    }
}
