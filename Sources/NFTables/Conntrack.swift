// Conntrack deletion over ctnetlink (NFNL_SUBSYS_CTNETLINK) with libmnl: dump the table of one
// address family, pick the entries whose original tuple matches, and delete each by its
// original tuple. Used by portmap so a stale UDP flow does not keep traffic away from a new
// container on the same host port.

import CNFTables
import SystemKit
#if canImport(Glibc)
import Glibc
#endif

/// Selects conntrack entries by their original (pre-NAT) direction.
public struct ConntrackFilter: Sendable, Hashable {
    /// IPPROTO_* of the flow (6 tcp, 17 udp, 132 sctp).
    public var proto: UInt8
    /// Destination port of the original direction (the host port a client connected to).
    public var destinationPort: UInt16
    public init(proto: UInt8, destinationPort: UInt16) {
        self.proto = proto
        self.destinationPort = destinationPort
    }
}

public enum Conntrack {
    private static let subsys: UInt16 = 1          // NFNL_SUBSYS_CTNETLINK
    private static let msgGet: UInt16 = 1          // IPCTNL_MSG_CT_GET
    private static let msgDelete: UInt16 = 2       // IPCTNL_MSG_CT_DELETE
    private static let ctaTupleOrig: UInt16 = 1
    private static let ctaTupleProto: UInt16 = 2
    private static let ctaProtoNum: UInt16 = 1
    private static let ctaProtoDstPort: UInt16 = 3

    /// Deletes every entry whose original tuple matches one of `filters`, in the namespace of the
    /// calling thread (or the netns at `namespacePath`). `families`: 0 (AF_UNSPEC, one walk over
    /// IPv4 and IPv6), 2 or 10. Returns how many entries were deleted; entries that vanish
    /// meanwhile are not an error. The dump walks the kernel's whole conntrack hash (shared by
    /// all namespaces), which costs milliseconds: call it only when stale flows matter.
    @discardableResult
    public static func delete(matching filters: [ConntrackFilter], families: [UInt8] = [0],
                              namespacePath: String? = nil) throws -> Int {
        guard !filters.isEmpty else { return 0 }
        let work = { () throws -> Int in
            guard let nl = mnl_socket_open(NETLINK_NETFILTER) else {
                throw NFTError.nft(operation: "open socket", object: "ctnetlink", errno: errno)
            }
            defer { mnl_socket_close(nl) }
            guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
                throw NFTError.nft(operation: "bind socket", object: "ctnetlink", errno: errno)
            }
            let wanted = Set(filters)
            var deleted = 0
            for family in families {
                let tuples = try dumpOriginalTuples(nl, family: family).filter { wanted.contains($0.filter) }
                for t in tuples {
                    let e = request(nl, type: msgDelete, family: t.family, flags: UInt16(NLM_F_ACK), payload: t.attribute)
                    if e == 0 { deleted += 1 } else if e != ENOENT {
                        throw NFTError.nft(operation: "delete conntrack entry", object: "proto \(t.filter.proto) dport \(t.filter.destinationPort)", errno: e)
                    }
                }
            }
            return deleted
        }
        if let namespacePath { return try Namespaces.run(inNetworkNamespaceAt: namespacePath, work) }
        return try work()
    }

    private struct OrigTuple {
        var family: UInt8
        var filter: ConntrackFilter
        /// The whole CTA_TUPLE_ORIG attribute, header included: sent back as the delete key.
        var attribute: [UInt8]
    }

    private static func header(type: UInt16, family: UInt8, flags: UInt16, seq: UInt32, payloadLength: Int) -> [UInt8] {
        var b: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v) { b += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v) { b += $0 } }
        u32(UInt32(16 + 4 + payloadLength))
        u16((subsys << 8) | type)
        u16(UInt16(NLM_F_REQUEST) | flags)
        u32(seq)
        u32(0)
        b += [family, 0 /* NFNETLINK_V0 */, 0, 0]
        return b
    }

    /// Sends one request and returns the errno of its ack (0 on success).
    private static func request(_ nl: OpaquePointer, type: UInt16, family: UInt8, flags: UInt16, payload: [UInt8]) -> Int32 {
        let seq = UInt32(truncatingIfNeeded: time(nil)) &+ UInt32.random(in: 0..<1_000_000)
        let msg = header(type: type, family: family, flags: flags, seq: seq, payloadLength: payload.count) + payload
        let sent = msg.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) }
        guard sent == msg.count else { return errno }
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { mnl_socket_recvfrom(nl, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return errno }
            var off = 0
            while off + 16 <= n {
                let len = Int(load32(buf, off))
                let t = load16(buf, off + 4)
                let s = load32(buf, off + 8)
                guard len >= 16 else { break }
                if t == 2 /* NLMSG_ERROR */ && s == seq { return -Int32(bitPattern: load32(buf, off + 16)) }
                off += (len + 3) & ~3
            }
        }
    }

    private static func dumpOriginalTuples(_ nl: OpaquePointer, family: UInt8) throws -> [OrigTuple] {
        let seq = UInt32(truncatingIfNeeded: time(nil)) &+ UInt32.random(in: 0..<1_000_000)
        let msg = header(type: msgGet, family: family, flags: UInt16(NLM_F_DUMP), seq: seq, payloadLength: 0)
        let sent = msg.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) }
        guard sent == msg.count else { throw NFTError.nft(operation: "dump conntrack", object: "family \(family)", errno: errno) }
        var out: [OrigTuple] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { mnl_socket_recvfrom(nl, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NFTError.nft(operation: "dump conntrack", object: "family \(family)", errno: errno)
            }
            var off = 0
            while off + 16 <= n {
                let len = Int(load32(buf, off))
                let t = load16(buf, off + 4)
                guard len >= 16, off + len <= n else { break }
                if t == 3 /* NLMSG_DONE */ { return out }
                if t == 2 /* NLMSG_ERROR */ {
                    let e = -Int32(bitPattern: load32(buf, off + 16))
                    if e != 0 { throw NFTError.nft(operation: "dump conntrack", object: "family \(family)", errno: e) }
                } else if let tuple = parseEntry(buf, family: buf[off + 16], from: off + 20, to: off + len) {
                    out.append(tuple)
                }
                off += (len + 3) & ~3
            }
        }
    }

    /// Iterates the attributes in [from, to): (type without flags, payload start, payload end, attr start).
    private static func attributes(_ b: [UInt8], _ from: Int, _ to: Int) -> [(UInt16, Int, Int, Int)] {
        var out: [(UInt16, Int, Int, Int)] = []
        var off = from
        while off + 4 <= to {
            let len = Int(load16(b, off))
            guard len >= 4, off + len <= to else { break }
            out.append((load16(b, off + 2) & 0x3fff, off + 4, off + len, off))
            off += (len + 3) & ~3
        }
        return out
    }

    private static func parseEntry(_ b: [UInt8], family: UInt8, from: Int, to: Int) -> OrigTuple? {
        guard let orig = attributes(b, from, to).first(where: { $0.0 == ctaTupleOrig }),
              let proto = attributes(b, orig.1, orig.2).first(where: { $0.0 == ctaTupleProto }) else { return nil }
        var num: UInt8?
        var dport: UInt16?
        for a in attributes(b, proto.1, proto.2) {
            if a.0 == ctaProtoNum, a.2 > a.1 { num = b[a.1] }
            if a.0 == ctaProtoDstPort, a.2 >= a.1 + 2 { dport = UInt16(b[a.1]) << 8 | UInt16(b[a.1 + 1]) }
        }
        guard let num, let dport else { return nil }
        let attrLen = Int(load16(b, orig.3))
        return OrigTuple(family: family, filter: ConntrackFilter(proto: num, destinationPort: dport),
                         attribute: Array(b[orig.3..<(orig.3 + attrLen)]) + [UInt8](repeating: 0, count: ((attrLen + 3) & ~3) - attrLen))
    }

    private static func load32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
    private static func load16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
}
