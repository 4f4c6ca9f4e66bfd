// Set elements read back from the kernel, turned into Swift values.

import CNFTables
import NetTypes

struct RawElement {
    var key: [UInt8] = []
    var data: [UInt8]? = nil
    var verdict: Verdict? = nil
    var flags: UInt32 = 0
    var userdata: [UInt8] = []

    init(_ e: OpaquePointer) {
        func bytes(_ attr: some BinaryInteger) -> [UInt8]? {
            guard nftnl_set_elem_is_set(e, UInt16(attr)) else { return nil }
            var len: UInt32 = 0
            guard let p = nftnl_set_elem_get(e, UInt16(attr), &len) else { return nil }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
        }
        key = bytes(NFTNL_SET_ELEM_KEY) ?? []
        data = bytes(NFTNL_SET_ELEM_DATA)
        if nftnl_set_elem_is_set(e, UInt16(NFTNL_SET_ELEM_VERDICT)) {
            let code = Int32(bitPattern: nftnl_set_elem_get_u32(e, UInt16(NFTNL_SET_ELEM_VERDICT)))
            var chain: String?
            if let c = nftnl_set_elem_get_str(e, UInt16(NFTNL_SET_ELEM_CHAIN)) { chain = String(cString: c) }
            verdict = Verdict(code: code, chain: chain)
        }
        if nftnl_set_elem_is_set(e, UInt16(NFTNL_SET_ELEM_FLAGS)) {
            flags = nftnl_set_elem_get_u32(e, UInt16(NFTNL_SET_ELEM_FLAGS))
        }
        userdata = bytes(NFTNL_SET_ELEM_USERDATA) ?? []
    }
}

func decodePart(_ b: ArraySlice<UInt8>, _ t: DataType) -> KeyPart {
    let b = Array(b)
    switch t {
    case .ipv4Addr, .ipv6Addr: return .address(IPAddress(bytes: b.prefix(t.size)) ?? .v4Any)
    case .inetProto: return .proto(b.first ?? 0)
    case .inetService: return .port(b.count >= 2 ? UInt16(b[0]) << 8 | UInt16(b[1]) : 0)
    case .mark:
        return .mark(b.count >= 4 ? UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24 : 0)
    case .ifname: return .ifname(String(decoding: b.prefix { $0 != 0 }, as: UTF8.self))
    case .etherAddr: return decodeEther(b)
    }
}

func decodeParts(_ bytes: [UInt8], _ types: [DataType]) -> [KeyPart] {
    if types.count == 1 { return [decodePart(bytes[...], types[0])] }
    var out: [KeyPart] = []
    var off = 0
    for t in types {
        let n = roundUp4(t.size)
        guard off + n <= bytes.count else { break }
        out.append(decodePart(bytes[off..<(off + n)], t))
        off += n
    }
    return out
}

func decodeElements(_ raw: [RawElement], of set: NFTSet) -> [SetElement] {
    func value(_ r: RawElement) -> SetElement.Value? {
        if let v = r.verdict { return .verdict(v) }
        if let d = r.data, case .values(let types)? = set.data { return .data(decodeParts(d, types)) }
        return nil
    }
    guard set.flags.contains(.interval), set.keyType.count == 1,
          set.keyType[0] == .ipv4Addr || set.keyType[0] == .ipv6Addr else {
        return raw.map { SetElement(key: decodeParts($0.key, set.keyType), value: value($0), comment: commentFromTLV($0.userdata)) }
    }
    // Interval sets: pair every start with the smallest end above it.
    let intervalEnd = NFT_SET_ELEM_INTERVAL_END.rawValue
    let starts = raw.filter { $0.flags & intervalEnd == 0 }
    let ends = raw.filter { $0.flags & intervalEnd != 0 }.compactMap { IPAddress(bytes: $0.key) }.sorted()
    var out: [SetElement] = []
    for s in starts {
        guard let start = IPAddress(bytes: s.key) else { continue }
        let bits = start.family.bitWidth
        var prefix = 0
        if let end = ends.first(where: { $0 > start }), let last = end.previous {
            // The longest prefix whose last address is `last`.
            prefix = bits
            while prefix > 0, start.masked(prefix - 1) == start, start.filled(prefix - 1) <= last { prefix -= 1 }
        } else {
            prefix = bits
            while prefix > 0, start.masked(prefix - 1) == start { prefix -= 1 }
        }
        let key: KeyPart = prefix == bits ? .address(start) : .prefix(CIDR(address: start, prefixLength: prefix)!)
        out.append(SetElement(key: [key], value: value(s), comment: commentFromTLV(s.userdata)))
    }
    return out.sorted { $0.description < $1.description }
}
