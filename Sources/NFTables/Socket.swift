// The nf_tables socket: sends batches and reads the ruleset back.

import CNFTables
import NetTypes
import SystemKit

/// An nftables netlink socket, bound to the network namespace it was opened in. Usable from
/// any thread; calls are serialised.
public final class NFTSocket: @unchecked Sendable {
    private let channel: NetfilterChannel
    private let lock = Lock()
    /// Where the socket was opened (nil: the caller's namespace).
    public let namespacePath: String?
    /// Socket buffers: a batch of thousands of elements goes out as one write.
    private static let bufferBytes: Int32 = 8 << 20

    /// Opens the socket in the calling thread's namespace, or inside the netns at
    /// `namespacePath` (e.g. `/run/netns/x` or `/proc/PID/ns/net`).
    public init(namespacePath: String? = nil) throws {
        self.namespacePath = namespacePath
        channel = try NetfilterChannel("nfnetlink", namespacePath: namespacePath, bufferBytes: NFTSocket.bufferBytes)
    }

    /// How many dumps on this socket were started again after a concurrent change
    /// interrupted them.
    var restartedDumps: Int { lock.withLock { channel.restartedDumps } }

    // MARK: batches

    /// Applies every operation of the batch atomically. On failure nothing changed and the
    /// error names the first failing operation (its index in `batch.operations`).
    public func apply(_ batch: Batch) throws {
        guard !batch.isEmpty else { return }
        try lock.withLock {
            let (bytes, owners, beginSeq) = try encode(batch)
            try channel.send(bytes, "send batch")

            // Errors for the batch are queued before sendto returns; a GETGEN request after
            // it marks the end of what belongs to this batch.
            let sentinel = channel.nextSeq()
            var g = MessageWriter()
            g.message(NFT_MSG_GETGEN.rawValue, family: 0, seq: sentinel) { _ in }
            try channel.send(g.bytes, "send getgen")

            // Acks of this batch only (anything else is left from an abandoned request), the
            // first in batch order; positions count from the begin message (wrapping).
            var failures: [(position: UInt32, seq: UInt32, errno: Int32, message: String?)] = []
            try channel.receiveAcks(until: sentinel) { seq, errno, message in
                let position = seq &- beginSeq
                if errno != 0 && position < sentinel &- beginSeq { failures.append((position, seq, errno, message)) }
            }
            guard let f = failures.min(by: { $0.position < $1.position }) else { return }
            if let i = owners[f.seq] {
                let names = batch.operations[i].names
                throw NFTError.nft(operation: names.operation, object: names.object, errno: f.errno,
                                   index: i, message: f.message)
            }
            throw NFTError.nft(operation: "apply batch", object: f.seq == beginSeq ? "batch begin" : "batch",
                               errno: f.errno, message: f.message)
        }
    }

    /// The batch as nfnetlink messages, which operation each sequence number belongs to, and
    /// the sequence number of the batch's begin message.
    private func encode(_ batch: Batch) throws -> (bytes: [UInt8], owners: [UInt32: Int], beginSeq: UInt32) {
        var w = MessageWriter()
        var owners: [UInt32: Int] = [:]
        let beginSeq = channel.nextSeq()
        w.append(nftnl_batch_begin(w.cbuf, beginSeq)!)
        for (i, op) in batch.operations.enumerated() {
            try op.encode(into: &w) {
                let s = channel.nextSeq()
                owners[s] = i
                return s
            }
        }
        w.append(nftnl_batch_end(w.cbuf, channel.nextSeq())!)
        return (w.bytes, owners, beginSeq)
    }

    // MARK: dumps

    /// Sends a dump request (`build` fills its payload) and returns what `parse` makes of
    /// each reply message; interrupted dumps are started again (see NetfilterChannel.dump).
    private func dump<T>(_ type: UInt32, family: UInt8, build: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in },
                         what: String, object: String,
                         parse: (UnsafePointer<nlmsghdr>) -> [T]) throws(SystemError) -> [T] {
        try lock.withLock { () throws(SystemError) -> [T] in
            try channel.dump(what, object, request: { seq in
                var w = MessageWriter()
                w.message(type, family: family, flags: NetlinkWire.flagDump, seq: seq, build)
                return w.bytes
            }, parse: { message in
                parse(message.baseAddress!.assumingMemoryBound(to: nlmsghdr.self))
            })
        }
    }

    /// Every table in the namespace (all families).
    public func tables() throws -> [Table] {
        try dump(NFT_MSG_GETTABLE.rawValue, family: 0, what: "list tables", object: "ruleset") { nlh in
            let t = nftnl_table_alloc()!
            defer { nftnl_table_free(t) }
            guard nftnl_table_nlmsg_parse(nlh, t) >= 0,
                  let fam = Family(nfproto: nftnl_table_get_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue))),
                  let name = nftnl_table_get_str(t, UInt16(NFTNL_TABLE_NAME.rawValue)) else { return [] }
            return [Table(family: fam, name: String(cString: name))]
        }
    }

    /// The chains of a table, with hook, type, priority and policy for base chains.
    public func chains(table: Table) throws -> [Chain] {
        try dump(NFT_MSG_GETCHAIN.rawValue, family: table.family.nfproto, what: "list chains", object: "\(table)") {
            chain($0, of: table).map { [$0] } ?? []
        }
    }

    /// The rules of a chain in order, with their handles and comments.
    public func rules(chain: Chain) throws -> [RuleInfo] {
        try withRule(in: chain) { filter throws(SystemError) in
            try dump(NFT_MSG_GETRULE.rawValue, family: chain.table.family.nfproto,
                     build: { nftnl_rule_nlmsg_build_payload($0, filter) }, what: "list rules", object: "\(chain)") {
                rule($0, in: chain).map { [$0] } ?? []
            }
        }
    }

    /// The names of the sets and maps of a table.
    public func setNames(table: Table) throws -> [String] {
        try withObject(nftnl_set_alloc, nftnl_set_free) { filter throws(SystemError) in
            try checkSet(nftnl_set_set_str(filter, UInt16(NFTNL_SET_TABLE.rawValue), table.name), "table name")
            return try setNames(table, filter: filter)
        }
    }

    private func setNames(_ table: Table, filter: OpaquePointer) throws(SystemError) -> [String] {
        try dump(NFT_MSG_GETSET.rawValue, family: table.family.nfproto,
                 build: { nftnl_set_nlmsg_build_payload($0, filter) }, what: "list sets", object: "\(table)") { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            guard nftnl_set_nlmsg_parse(nlh, s) >= 0,
                  let tn = nftnl_set_get_str(s, UInt16(NFTNL_SET_TABLE.rawValue)), String(cString: tn) == table.name,
                  let n = nftnl_set_get_str(s, UInt16(NFTNL_SET_NAME.rawValue)) else { return [] }
            return [String(cString: n)]
        }
    }

    /// The elements of a set or map, decoded with the set's key and data types; in interval
    /// sets each start/end pair comes back as one `.prefix` element.
    public func elements(of set: NFTSet) throws -> [SetElement] {
        let raw = try withSet(set) { filter throws(SystemError) in try dump(NFT_MSG_GETSETELEM.rawValue, family: set.table.family.nfproto,
                           build: { nftnl_set_elems_nlmsg_build_payload($0, filter) },
                           what: "list elements", object: "\(set)") { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            guard nftnl_set_elems_nlmsg_parse(nlh, s) >= 0 else { return [RawElement]() }
            let iter = nftnl_set_elems_iter_create(s)!
            defer { nftnl_set_elems_iter_destroy(iter) }
            var out: [RawElement] = []
            while let e = nftnl_set_elems_iter_next(iter) { out.append(RawElement(e)) }
            return out
        } }
        return decodeElements(raw, of: set)
    }
}

// MARK: reading dumped objects

/// A chain of `table` from a NEWCHAIN message; nil for another table's chain.
private func chain(_ nlh: UnsafePointer<nlmsghdr>, of table: Table) -> Chain? {
    let c = nftnl_chain_alloc()!
    defer { nftnl_chain_free(c) }
    func attr(_ a: nftnl_chain_attr) -> UInt16 { UInt16(a.rawValue) }
    guard nftnl_chain_nlmsg_parse(nlh, c) >= 0,
          let tn = nftnl_chain_get_str(c, attr(NFTNL_CHAIN_TABLE)), String(cString: tn) == table.name,
          let name = nftnl_chain_get_str(c, attr(NFTNL_CHAIN_NAME)) else { return nil }
    var chain = Chain(table: table, name: String(cString: name))
    guard nftnl_chain_is_set(c, attr(NFTNL_CHAIN_HOOKNUM)) else { return chain }
    let num = nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_HOOKNUM))
    chain.hook = table.family == .netdev ? .ingress : Hook.allCases.first { $0.number == num && $0 != .ingress }
    chain.priority = nftnl_chain_get_s32(c, attr(NFTNL_CHAIN_PRIO))
    if let ty = nftnl_chain_get_str(c, attr(NFTNL_CHAIN_TYPE)) {
        chain.type = ChainType(rawValue: String(cString: ty))
    }
    if nftnl_chain_is_set(c, attr(NFTNL_CHAIN_POLICY)) {
        chain.policy = Verdict(code: Int32(bitPattern: nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_POLICY))), chain: nil)
    }
    return chain
}

/// A rule of `chain` from a NEWRULE message; nil for another chain's rule.
private func rule(_ nlh: UnsafePointer<nlmsghdr>, in chain: Chain) -> RuleInfo? {
    let r = nftnl_rule_alloc()!
    defer { nftnl_rule_free(r) }
    func attr(_ a: nftnl_rule_attr) -> UInt16 { UInt16(a.rawValue) }
    guard nftnl_rule_nlmsg_parse(nlh, r) >= 0,
          let cn = nftnl_rule_get_str(r, attr(NFTNL_RULE_CHAIN)), String(cString: cn) == chain.name,
          let tn = nftnl_rule_get_str(r, attr(NFTNL_RULE_TABLE)), String(cString: tn) == chain.table.name
    else { return nil }
    var userdata: [UInt8] = []
    var len: UInt32 = 0
    if let p = nftnl_rule_get_data(r, attr(NFTNL_RULE_USERDATA), &len) {
        userdata = Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
    }
    return RuleInfo(chain: chain, handle: nftnl_rule_get_u64(r, attr(NFTNL_RULE_HANDLE)),
                    comment: commentFromTLV(userdata), userdata: userdata, summary: summary(of: r))
}

/// libnftnl's text for a rule's expressions, for people and test diagnostics.
private func summary(of rule: OpaquePointer) -> String {
    var text = [CChar](repeating: 0, count: 8192)
    // A rendering longer than the buffer is cut short, which only shortens the text.
    ignoringFailure { nftnl_rule_snprintf(&text, text.count, rule, UInt32(NFTNL_OUTPUT_DEFAULT.rawValue), 0) }
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
