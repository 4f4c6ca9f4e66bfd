// Conntrack deletion over ctnetlink (NFNL_SUBSYS_CTNETLINK) with libmnl: dump the table of one
// address family, pick the entries whose original tuple matches, and delete each by its
// original tuple. Used by portmap so a stale UDP flow does not keep traffic away from a new
// container on the same host port.

import SystemKit
import Glibc

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
    private static let nfnetlinkV0: UInt8 = 0      // NFNETLINK_V0
    /// struct nfgenmsg: family, version, resource id.
    private static let nfgenmsgSize = 4

    /// Deletes every entry whose original tuple matches one of `filters`, in the namespace of the
    /// calling thread (or the netns at `namespacePath`). `families`: 0 (AF_UNSPEC, one walk over
    /// IPv4 and IPv6), 2 or 10. Returns how many entries were deleted; entries that vanish
    /// meanwhile are not an error. The dump walks the kernel's whole conntrack hash (shared by
    /// all namespaces), which costs milliseconds: call it only when stale flows matter.
    @discardableResult
    public static func delete(matching filters: [ConntrackFilter], families: [UInt8] = [0],
                              namespacePath: String? = nil) throws -> Int {
        guard !filters.isEmpty else { return 0 }
        // The socket is bound to the namespace it is opened in; requests need no further switch.
        let channel = try NetfilterChannel("ctnetlink", namespacePath: namespacePath)
        let wanted = Set(filters)
        var deleted = 0
        for family in families {
            for t in try dumpOriginalTuples(channel, family: family) where wanted.contains(t.filter) {
                if try deleteEntry(channel, t) { deleted += 1 }
            }
        }
        return deleted
    }

    private struct OrigTuple {
        var family: UInt8
        var filter: ConntrackFilter
        /// The whole CTA_TUPLE_ORIG attribute, header included: sent back as the delete key.
        var attribute: [UInt8]
    }

    private static func message(type: UInt16, family: UInt8, flags: UInt16, seq: UInt32, payload: [UInt8] = []) -> [UInt8] {
        var b: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v) { b += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v) { b += $0 } }
        u32(UInt32(NetlinkWire.headerSize + nfgenmsgSize + payload.count))
        u16((subsys << 8) | type)
        u16(NetlinkWire.flagRequest | flags)
        u32(seq)
        u32(0)
        b += [family, nfnetlinkV0, 0, 0]
        return b + payload
    }

    /// Deletes one entry by its original tuple; false when it was gone already.
    private static func deleteEntry(_ channel: NetfilterChannel, _ t: OrigTuple) throws(SystemError) -> Bool {
        let seq = channel.nextSeq()
        try channel.send(message(type: msgDelete, family: t.family, flags: NetlinkWire.flagAck, seq: seq,
                                 payload: t.attribute), "delete conntrack entry")
        var result: (errno: Int32, message: String?) = (0, nil)
        try channel.receiveAcks(until: seq) { s, e, text in if s == seq { result = (e, text) } }
        if result.errno == 0 { return true }
        if result.errno == ENOENT { return false }
        throw NFTError.nft(operation: "delete conntrack entry",
                           object: "proto \(t.filter.proto) dport \(t.filter.destinationPort)",
                           errno: result.errno, message: result.message)
    }

    private static func dumpOriginalTuples(_ channel: NetfilterChannel, family: UInt8) throws(SystemError) -> [OrigTuple] {
        try channel.dump("dump conntrack", "family \(family)", request: { seq in
            message(type: msgGet, family: family, flags: NetlinkWire.flagDump, seq: seq)
        }, parse: { m in
            let b = Array(m)
            let start = NetlinkWire.headerSize + nfgenmsgSize
            guard b.count >= start else { return [] }
            return parseEntry(b, family: b[NetlinkWire.headerSize], from: start, to: b.count).map { [$0] } ?? []
        })
    }

    /// Iterates the attributes in [from, to): (type without flags, payload start, payload end, attr start).
    private static func attributes(_ b: [UInt8], _ from: Int, _ to: Int) -> [(UInt16, Int, Int, Int)] {
        var out: [(UInt16, Int, Int, Int)] = []
        var off = from
        while off + 4 <= to {
            let len = Int(load16(b, off))
            guard len >= 4, off + len <= to else { break }
            out.append((load16(b, off + 2) & NetlinkWire.attrTypeMask, off + 4, off + len, off))
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

    private static func load16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
}
