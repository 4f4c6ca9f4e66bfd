// IP addresses as values: parsing, formatting and the arithmetic IPAM and routing need.
// Pure Swift, no Foundation; shared by every module.

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, Comparable {
    case v4(UInt32)
    /// 128 bits, high half first.
    case v6(UInt64, UInt64)

    public enum Family: Sendable, Hashable {
        case v4, v6
        /// Address length in bits.
        public var bitWidth: Int { self == .v4 ? 32 : 128 }
        /// The Linux address family constant (AF_INET = 2, AF_INET6 = 10).
        public var linuxAF: Int32 { self == .v4 ? 2 : 10 }
    }

    public var family: Family {
        if case .v4 = self { return .v4 }
        return .v6
    }
    public var isV4: Bool { family == .v4 }
    public var isV6: Bool { family == .v6 }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` compression and an
    /// embedded IPv4 tail). A zone suffix (`%eth0`) is rejected.
    public init?(_ text: some StringProtocol) {
        let s = String(text)
        if s.contains(":") {
            guard let v = IPAddress.parseV6(s) else { return nil }
            self = v
        } else {
            guard let v = IPAddress.parseV4(s) else { return nil }
            self = .v4(v)
        }
    }

    /// Network-order bytes (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let v):
            return [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
        case .v6(let hi, let lo):
            var out: [UInt8] = []
            out.reserveCapacity(16)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((hi >> UInt64(shift)) & 0xff)) }
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((lo >> UInt64(shift)) & 0xff)) }
            return out
        }
    }

    /// Builds an address from 4 or 16 network-order bytes.
    public init?(bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        if b.count == 4 {
            self = .v4(b.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) })
        } else if b.count == 16 {
            let hi = b[0..<8].reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
            let lo = b[8..<16].reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
            self = .v6(hi, lo)
        } else {
            return nil
        }
    }

    // MARK: arithmetic

    /// The address `n` steps after (or before, for negative `n`) this one; nil on overflow.
    public func advanced(by n: Int64) -> IPAddress? {
        switch self {
        case .v4(let v):
            let r = Int64(v) + n
            guard r >= 0, r <= Int64(UInt32.max) else { return nil }
            return .v4(UInt32(r))
        case .v6(let hi, let lo):
            if n >= 0 {
                let (nlo, carry) = lo.addingReportingOverflow(UInt64(n))
                if carry {
                    let (nhi, o) = hi.addingReportingOverflow(1)
                    return o ? nil : .v6(nhi, nlo)
                }
                return .v6(hi, nlo)
            } else {
                let (nlo, borrow) = lo.subtractingReportingOverflow(UInt64(-n))
                if borrow {
                    let (nhi, o) = hi.subtractingReportingOverflow(1)
                    return o ? nil : .v6(nhi, nlo)
                }
                return .v6(hi, nlo)
            }
        }
    }

    public var next: IPAddress? { advanced(by: 1) }
    public var previous: IPAddress? { advanced(by: -1) }

    /// Applies a prefix mask: keeps the first `prefix` bits, zeroes the rest.
    public func masked(_ prefix: Int) -> IPAddress {
        switch self {
        case .v4(let v):
            let mask: UInt32 = prefix <= 0 ? 0 : (prefix >= 32 ? .max : ~(UInt32.max >> UInt32(prefix)))
            return .v4(v & mask)
        case .v6(let hi, let lo):
            let (mhi, mlo) = IPAddress.v6Mask(prefix)
            return .v6(hi & mhi, lo & mlo)
        }
    }

    /// Sets every bit after the first `prefix` bits (the broadcast address of a v4 subnet).
    public func filled(_ prefix: Int) -> IPAddress {
        switch self {
        case .v4(let v):
            let host: UInt32 = prefix <= 0 ? .max : (prefix >= 32 ? 0 : UInt32.max >> UInt32(prefix))
            return .v4(v | host)
        case .v6(let hi, let lo):
            let (mhi, mlo) = IPAddress.v6Mask(prefix)
            return .v6(hi | ~mhi, lo | ~mlo)
        }
    }

    /// Signed distance `other - self` when it fits in Int64 and the families match.
    public func distance(to other: IPAddress) -> Int64? {
        switch (self, other) {
        case (.v4(let a), .v4(let b)):
            return Int64(b) - Int64(a)
        case (.v6(let ah, let al), .v6(let bh, let bl)):
            if ah == bh {
                if bl >= al { return bl - al <= UInt64(Int64.max) ? Int64(bl - al) : nil }
                return al - bl <= UInt64(Int64.max) ? -Int64(al - bl) : nil
            }
            // Differing high halves: only representable when the gap is small.
            if bh == ah &+ 1, bh > ah {
                let gap = (UInt64.max - al) &+ bl &+ 1
                return gap <= UInt64(Int64.max) && bl < al ? Int64(gap) : nil
            }
            if ah == bh &+ 1, ah > bh {
                let gap = (UInt64.max - bl) &+ al &+ 1
                return gap <= UInt64(Int64.max) && al < bl ? -Int64(gap) : nil
            }
            return nil
        default:
            return nil
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): return x < y
        case (.v6(let xh, let xl), .v6(let yh, let yl)): return xh < yh || (xh == yh && xl < yl)
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    // MARK: well-known addresses

    public static let v4Any = IPAddress.v4(0)
    public static let v6Any = IPAddress.v6(0, 0)
    public static let v4Loopback = IPAddress.v4(0x7f00_0001)
    public static let v6Loopback = IPAddress.v6(0, 1)

    public var isLoopback: Bool {
        switch self {
        case .v4(let v): return v >> 24 == 127
        case .v6(let hi, let lo): return hi == 0 && lo == 1
        }
    }
    public var isUnspecified: Bool { self == .v4Any || self == .v6Any }
    /// IPv6 link-local (fe80::/10) or IPv4 link-local (169.254/16).
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let v): return v >> 16 == 0xa9fe
        case .v6(let hi, _): return hi >> 54 == 0x3fa
        }
    }

    // MARK: private helpers

    static func v6Mask(_ prefix: Int) -> (UInt64, UInt64) {
        let p = max(0, min(128, prefix))
        let hi: UInt64 = p >= 64 ? .max : (p == 0 ? 0 : ~(UInt64.max >> UInt64(p)))
        let lp = p - 64
        let lo: UInt64 = lp <= 0 ? 0 : (lp >= 64 ? .max : ~(UInt64.max >> UInt64(lp)))
        return (hi, lo)
    }

    static func parseV4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = UInt32(p), n <= 255 else { return nil }
            // Leading zeros are ambiguous (octal in some parsers): refuse them like Go does.
            if p.count > 1 && p.first == "0" { return nil }
            v = (v << 8) | n
        }
        return v
    }

    static func parseV6(_ s: String) -> IPAddress? {
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var sawDoubleColon = false
        let halves = s.components(separatedByString: "::")
        guard halves.count <= 2 else { return nil }
        func parseGroups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4Tail && i == fields.count - 1 && f.contains(".") {
                    guard let v4 = parseV4(String(f)) else { return nil }
                    out.append(UInt16(v4 >> 16)); out.append(UInt16(v4 & 0xffff))
                    continue
                }
                guard !f.isEmpty, f.count <= 4, let g = UInt16(f, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        if halves.count == 2 {
            sawDoubleColon = true
            guard let a = parseGroups(halves[0], allowV4Tail: false),
                  let b = parseGroups(halves[1], allowV4Tail: true) else { return nil }
            groups = a; tailGroups = b
            guard groups.count + tailGroups.count <= 7 else { return nil }
        } else {
            guard let a = parseGroups(halves[0], allowV4Tail: true), a.count == 8 else { return nil }
            groups = a
        }
        if sawDoubleColon {
            groups += Array(repeating: 0, count: 8 - groups.count - tailGroups.count) + tailGroups
        }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<4 { hi = (hi << 16) | UInt64(groups[i]) }
        for i in 4..<8 { lo = (lo << 16) | UInt64(groups[i]) }
        return .v6(hi, lo)
    }
}

extension IPAddress: CustomStringConvertible {
    /// Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed).
    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        case .v6(let hi, let lo):
            var g: [UInt16] = []
            for i in stride(from: 48, through: 0, by: -16) { g.append(UInt16((hi >> UInt64(i)) & 0xffff)) }
            for i in stride(from: 48, through: 0, by: -16) { g.append(UInt16((lo >> UInt64(i)) & 0xffff)) }
            // IPv4-mapped ::ffff:a.b.c.d
            if hi == 0 && (lo >> 32) == 0xffff {
                return "::ffff:" + IPAddress.v4(UInt32(lo & 0xffff_ffff)).description
            }
            var bestStart = -1, bestLen = 0, curStart = -1, curLen = 0
            for (i, x) in g.enumerated() {
                if x == 0 {
                    if curStart < 0 { curStart = i; curLen = 0 }
                    curLen += 1
                    if curLen > bestLen { bestStart = curStart; bestLen = curLen }
                } else {
                    curStart = -1
                }
            }
            if bestLen < 2 { bestStart = -1 }
            var out = ""
            var i = 0
            while i < 8 {
                if i == bestStart {
                    out += "::"
                    i += bestLen
                    continue
                }
                if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
                out += String(g[i], radix: 16)
                i += 1
            }
            return out
        }
    }
}

extension IPAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = IPAddress(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "invalid IP address \"\(s)\"")
        }
        self = v
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension String {
    /// Splits on a multi-character separator (no Foundation).
    func components(separatedByString sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}
