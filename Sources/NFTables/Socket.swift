// The nfnetlink socket: sends batches and reads the ruleset back.

import CNFTables
import NetTypes
import SystemKit
#if canImport(Glibc)
import Glibc
#endif

/// An nftables netlink socket, bound to the network namespace it was opened in. Usable from
/// any thread; calls are serialised.
public final class NFTSocket: @unchecked Sendable {
    private let nl: OpaquePointer
    private let portID: UInt32
    private var seq: UInt32
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Where the socket was opened (nil: the caller's namespace).
    public let namespacePath: String?

    /// Opens the socket in the calling thread's namespace, or inside the netns at
    /// `namespacePath` (e.g. `/run/netns/x` or `/proc/PID/ns/net`).
    public init(namespacePath: String? = nil) throws {
        self.namespacePath = namespacePath
        let open: () throws -> OpaquePointer = {
            guard let nl = mnl_socket_open(NETLINK_NETFILTER) else {
                throw NFTError.nft(operation: "open socket", object: "nfnetlink", errno: errno)
            }
            guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
                let e = errno
                mnl_socket_close(nl)
                throw NFTError.nft(operation: "bind socket", object: "nfnetlink", errno: e)
            }
            return nl
        }
        let sock: OpaquePointer
        if let namespacePath {
            let box = try Namespaces.run(inNetworkNamespaceAt: namespacePath) { SocketBox(try open()) }
            sock = box.nl
        } else {
            sock = try open()
        }
        nl = sock
        portID = mnl_socket_get_portid(sock)
        seq = UInt32(truncatingIfNeeded: time(nil))
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        let fd = mnl_socket_get_fd(sock)
        var on: Int32 = 1
        _ = setsockopt(fd, 270 /* SOL_NETLINK */, 10 /* NETLINK_CAP_ACK */, &on, 4)
        _ = setsockopt(fd, 270, 11 /* NETLINK_EXT_ACK */, &on, 4)
        var size: Int32 = 8 << 20
        _ = setsockopt(fd, SOL_SOCKET, 32 /* SO_SNDBUFFORCE */, &size, 4)
        _ = setsockopt(fd, SOL_SOCKET, 33 /* SO_RCVBUFFORCE */, &size, 4)
    }

    deinit {
        mnl_socket_close(nl)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    private func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    // MARK: batches

    /// Applies every operation of the batch atomically. On failure nothing changed and the
    /// error names the first failing operation (its index in `batch.operations`).
    public func apply(_ batch: Batch) throws {
        guard !batch.isEmpty else { return }
        try locked {
            var w = MessageWriter()
            // seq -> operation index
            var owners: [UInt32: Int] = [:]
            let beginSeq = nextSeq()
            w.append(nftnl_batch_begin(w.cbuf, beginSeq)!)
            for (i, op) in batch.operations.enumerated() {
                _ = try op.encode(into: &w) {
                    let s = nextSeq()
                    owners[s] = i
                    return s
                }
            }
            let endSeq = nextSeq()
            w.append(nftnl_batch_end(w.cbuf, endSeq)!)
            try send(w.bytes, what: "send batch")

            // Errors for the batch are queued before sendto returns; a GETGEN request after
            // it marks the end of what belongs to this batch.
            let sentinel = nextSeq()
            var g = MessageWriter()
            g.message(Int(NFT_MSG_GETGEN.rawValue), family: 0, flags: 0, seq: sentinel) { _ in }
            try send(g.bytes, what: "send getgen")

            var failures: [(seq: UInt32, errno: Int32, message: String?)] = []
            try receive(until: sentinel) { seq, errno, message in
                if errno != 0 { failures.append((seq, errno, message)) }
            }
            guard let f = failures.min(by: { $0.seq < $1.seq }) else { return }
            if let i = owners[f.seq] {
                let names = batch.operations[i].names
                throw NFTError.nft(operation: names.operation, object: names.object, errno: f.errno,
                               index: i, message: f.message)
            }
            throw NFTError.nft(operation: "apply batch", object: f.seq == beginSeq ? "batch begin" : "batch",
                           errno: f.errno, message: f.message)
        }
    }

    private func send(_ bytes: [UInt8], what: String) throws {
        let n = bytes.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            throw NFTError.nft(operation: what, object: "nfnetlink", errno: n < 0 ? errno : EMSGSIZE)
        }
    }

    /// Reads messages until an ack/reply with `sentinel`; reports every NLMSG_ERROR seen.
    private func receive(until sentinel: UInt32, _ onAck: (UInt32, Int32, String?) -> Void) throws {
        let size = 1 << 18
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = mnl_socket_recvfrom(nl, buf, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw NFTError.nft(operation: "receive", object: "nfnetlink", errno: errno)
            }
            var off = 0
            var done = false
            while off + 16 <= n {
                let h = buf.advanced(by: off).loadUnaligned(as: nlmsghdr.self)
                let len = Int(h.nlmsg_len)
                guard len >= 16, off + len <= n else { break }
                if h.nlmsg_type == 2 /* NLMSG_ERROR */ {
                    let err = -buf.advanced(by: off + 16).loadUnaligned(as: Int32.self)
                    onAck(h.nlmsg_seq, err, extAckMessage(buf.advanced(by: off), len, flags: h.nlmsg_flags))
                }
                if h.nlmsg_seq == sentinel { done = true }
                off += (len + 3) & ~3
            }
            if done { return }
        }
    }

    // MARK: dumps

    /// Sends a dump request and hands every reply message to `each`.
    private func dump(_ type: Int, family: UInt8, build: (UnsafeMutablePointer<nlmsghdr>) -> Void,
                      what: String, object: String, each: (UnsafePointer<nlmsghdr>) -> Void) throws {
        try locked {
            let s = nextSeq()
            var w = MessageWriter()
            w.message(type, family: family, flags: NLM_ACK | NLM_DUMP, seq: s, build)
            try send(w.bytes, what: what)
            let size = 1 << 18
            let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buf.deallocate() }
            try withoutActuallyEscaping(each) { each in
            let box = DumpBox(each)
            try withExtendedLifetime(box) {
                while true {
                    let n = mnl_socket_recvfrom(nl, buf, size)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw NFTError.nft(operation: what, object: object, errno: errno)
                    }
                    let ctx = Unmanaged.passUnretained(box).toOpaque()
                    let rc = mnl_cb_run(buf, n, s, portID, { nlh, data in
                        Unmanaged<DumpBox>.fromOpaque(data!).takeUnretainedValue().each(nlh!)
                        return MNL_CB_OK
                    }, ctx)
                    if rc < 0 { throw NFTError.nft(operation: what, object: object, errno: errno) }
                    if rc == MNL_CB_STOP { return }
                }
            }
            }
        }
    }

    /// Every table in the namespace (all families).
    public func tables() throws -> [Table] {
        var out: [Table] = []
        try dump(Int(NFT_MSG_GETTABLE.rawValue), family: 0, build: { _ in }, what: "list tables", object: "ruleset") { nlh in
            let t = nftnl_table_alloc()!
            defer { nftnl_table_free(t) }
            guard nftnl_table_nlmsg_parse(nlh, t) >= 0,
                  let fam = Family(nfproto: nftnl_table_get_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue))),
                  let name = nftnl_table_get_str(t, UInt16(NFTNL_TABLE_NAME.rawValue)) else { return }
            out.append(Table(family: fam, name: String(cString: name)))
        }
        return out
    }

    /// The chains of a table, with hook, type, priority and policy for base chains.
    public func chains(table: Table) throws -> [Chain] {
        var out: [Chain] = []
        try dump(Int(NFT_MSG_GETCHAIN.rawValue), family: table.family.nfproto, build: { _ in },
                 what: "list chains", object: "\(table)") { nlh in
            let c = nftnl_chain_alloc()!
            defer { nftnl_chain_free(c) }
            guard nftnl_chain_nlmsg_parse(nlh, c) >= 0,
                  let tn = nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue)), String(cString: tn) == table.name,
                  let name = nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_NAME.rawValue)) else { return }
            var chain = Chain(table: table, name: String(cString: name))
            if nftnl_chain_is_set(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)) {
                let num = nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue))
                chain.hook = table.family == .netdev ? .ingress : Hook.allCases.first { $0.number == num && $0 != .ingress }
                chain.priority = nftnl_chain_get_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue))
                if let ty = nftnl_chain_get_str(c, UInt16(NFTNL_CHAIN_TYPE.rawValue)) {
                    chain.type = ChainType(rawValue: String(cString: ty))
                }
                if nftnl_chain_is_set(c, UInt16(NFTNL_CHAIN_POLICY.rawValue)) {
                    chain.policy = Verdict(code: Int32(bitPattern: nftnl_chain_get_u32(c, UInt16(NFTNL_CHAIN_POLICY.rawValue))), chain: nil)
                }
            }
            out.append(chain)
        }
        return out
    }

    /// The rules of a chain in order, with their handles and comments.
    public func rules(chain: Chain) throws -> [RuleInfo] {
        var out: [RuleInfo] = []
        let filter = nftnl_rule_alloc()!
        defer { nftnl_rule_free(filter) }
        nftnl_rule_set_str(filter, UInt16(NFTNL_RULE_TABLE.rawValue), chain.table.name)
        nftnl_rule_set_str(filter, UInt16(NFTNL_RULE_CHAIN.rawValue), chain.name)
        try dump(Int(NFT_MSG_GETRULE.rawValue), family: chain.table.family.nfproto,
                 build: { nftnl_rule_nlmsg_build_payload($0, filter) }, what: "list rules", object: "\(chain)") { nlh in
            let r = nftnl_rule_alloc()!
            defer { nftnl_rule_free(r) }
            guard nftnl_rule_nlmsg_parse(nlh, r) >= 0,
                  let cn = nftnl_rule_get_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue)), String(cString: cn) == chain.name,
                  let tn = nftnl_rule_get_str(r, UInt16(NFTNL_RULE_TABLE.rawValue)), String(cString: tn) == chain.table.name
            else { return }
            var ud: [UInt8] = []
            var len: UInt32 = 0
            if let p = nftnl_rule_get_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), &len) {
                ud = Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
            }
            var text = [CChar](repeating: 0, count: 8192)
            _ = nftnl_rule_snprintf(&text, text.count, r, UInt32(NFTNL_OUTPUT_DEFAULT.rawValue), 0)
            out.append(RuleInfo(chain: chain, handle: nftnl_rule_get_u64(r, UInt16(NFTNL_RULE_HANDLE.rawValue)),
                                comment: commentFromTLV(ud), userdata: ud,
                                summary: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
        }
        return out
    }

    /// The names of the sets and maps of a table.
    public func setNames(table: Table) throws -> [String] {
        var out: [String] = []
        let filter = nftnl_set_alloc()!
        defer { nftnl_set_free(filter) }
        nftnl_set_set_str(filter, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
        try dump(Int(NFT_MSG_GETSET.rawValue), family: table.family.nfproto,
                 build: { nftnl_set_nlmsg_build_payload($0, filter) }, what: "list sets", object: "\(table)") { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            guard nftnl_set_nlmsg_parse(nlh, s) >= 0,
                  let tn = nftnl_set_get_str(s, UInt16(NFTNL_SET_TABLE.rawValue)), String(cString: tn) == table.name,
                  let n = nftnl_set_get_str(s, UInt16(NFTNL_SET_NAME.rawValue)) else { return }
            out.append(String(cString: n))
        }
        return out
    }

    /// The elements of a set or map, decoded with the set's key and data types; in interval
    /// sets each start/end pair comes back as one `.prefix` element.
    public func elements(of set: NFTSet) throws -> [SetElement] {
        var raw: [RawElement] = []
        let filter = makeSet(set)
        defer { nftnl_set_free(filter) }
        try dump(Int(NFT_MSG_GETSETELEM.rawValue), family: set.table.family.nfproto,
                 build: { nftnl_set_elems_nlmsg_build_payload($0, filter) }, what: "list elements", object: "\(set)") { nlh in
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            guard nftnl_set_elems_nlmsg_parse(nlh, s) >= 0 else { return }
            let iter = nftnl_set_elems_iter_create(s)!
            defer { nftnl_set_elems_iter_destroy(iter) }
            while let e = nftnl_set_elems_iter_next(iter) {
                raw.append(RawElement(e))
            }
        }
        return decodeElements(raw, of: set)
    }
}

private final class SocketBox: @unchecked Sendable {
    let nl: OpaquePointer
    init(_ nl: OpaquePointer) { self.nl = nl }
}

private final class DumpBox {
    let each: (UnsafePointer<nlmsghdr>) -> Void
    init(_ each: @escaping (UnsafePointer<nlmsghdr>) -> Void) { self.each = each }
}

/// The NLMSGERR_ATTR_MSG string of an extended ack (capped acks: TLVs follow the header).
private func extAckMessage(_ p: UnsafeMutableRawPointer, _ len: Int, flags: UInt16) -> String? {
    guard flags & 0x200 != 0 /* NLM_F_ACK_TLVS */ else { return nil }
    var off = 16 + 4
    if flags & 0x100 != 0 { off += 16 } else {
        let inner = Int(p.advanced(by: off).loadUnaligned(as: UInt32.self))
        off += (inner + 3) & ~3
    }
    while off + 4 <= len {
        let alen = Int(p.advanced(by: off).loadUnaligned(as: UInt16.self))
        let atype = p.advanced(by: off + 2).loadUnaligned(as: UInt16.self) & 0x3fff
        guard alen >= 4, off + alen <= len else { break }
        if atype == 1 /* NLMSGERR_ATTR_MSG */ {
            let bytes = UnsafeRawBufferPointer(start: p.advanced(by: off + 4), count: alen - 4)
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        off += (alen + 3) & ~3
    }
    return nil
}
