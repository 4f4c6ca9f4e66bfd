// One rtnetlink socket (libnl nl_sock), bound to the namespace it was opened in and usable
// from any thread afterwards (requests are serialised by a lock). Every request funnels through
// `perform`, every dump through `dump`; both turn libnl results into NetlinkError with the
// kernel's errno.

import CNetlink
import NetTypes
import SystemKit
import Glibc

public final class RouteSocket: @unchecked Sendable {
    let sock: OpaquePointer
    let capture = ErrorCapture()
    /// Serialises requests: one libnl socket carries one request/answer exchange at a time.
    private let lock = Lock()
    /// Dumps started again because a concurrent change interrupted them (guarded by `lock`).
    private var restarts = 0
    /// The namespace path this socket was opened in, nil for the caller's own.
    public let namespacePath: String?

    /// Opens a socket in the calling thread's network namespace.
    public convenience init() throws {
        try self.init(openedIn: nil)
    }

    /// Opens a socket inside the netns at `path` (or named under /run/netns); it keeps
    /// talking to that namespace from whatever thread uses it.
    public convenience init(namespace path: String) throws {
        try self.init(openedIn: NetworkNamespace.path(named: path))
    }

    public convenience init(namespace: NetworkNamespace) throws {
        let sock = try withNetworkNamespace(namespace) { try SendableBox(RouteSocket.connect(namespace.path)) }
        self.init(sock: sock.value, path: namespace.path)
    }

    private convenience init(openedIn path: String?) throws {
        let sock: OpaquePointer
        if let path {
            sock = try withNetworkNamespace(path) { try SendableBox(RouteSocket.connect(path)) }.value
        } else {
            sock = try RouteSocket.connect("current netns")
        }
        self.init(sock: sock, path: path)
    }

    private init(sock: OpaquePointer, path: String?) {
        self.sock = sock
        self.namespacePath = path
        nl_socket_modify_err_cb(sock, NL_CB_CUSTOM, errorCaptureCallback,
                                Unmanaged.passUnretained(capture).toOpaque())
    }

    deinit { nl_socket_free(sock) }

    private static func connect(_ where_: String) throws(SystemError) -> OpaquePointer {
        guard let s = nl_socket_alloc() else {
            throw NetlinkError(operation: "allocate netlink socket", object: where_, errno: .noMemory)
        }
        let rc = nl_connect(s, NETLINK_ROUTE)
        if rc < 0 {
            nl_socket_free(s)
            throw NetlinkError(operation: "connect netlink socket", object: where_, errno: errnoFromNLE(rc))
        }
        NetlinkWire.enableExtendedAck(fd: nl_socket_get_fd(s))
        return s
    }

    /// Runs one libnl call and converts a negative result into a NetlinkError, preferring the
    /// errno the kernel sent over libnl's NLE_* code.
    @discardableResult
    func perform(_ operation: String, _ object: @autoclosure () -> String,
                 _ call: () -> Int32) throws(SystemError) -> Int32 {
        try attempt(operation, object(), call).get()
    }

    /// Like `perform` for a look-up: a missing object is an answer (false), not an error.
    func performIfPresent(_ operation: String, _ object: @autoclosure () -> String,
                          _ call: () -> Int32) throws(SystemError) -> Bool {
        switch attempt(operation, object(), call) {
        case .success: return true
        case .failure(let e) where e.isNotFound: return false
        case .failure(let e): throw e
        }
    }

    private func attempt(_ operation: String, _ object: @autoclosure () -> String,
                         _ call: () -> Int32) -> Result<Int32, SystemError> {
        lock.withLock {
            capture.reset()
            let rc = call()
            return rc < 0 ? .failure(makeError(operation, object(), rc)) : .success(rc)
        }
    }

    func makeError(_ operation: String, _ object: String, _ rc: Int32) -> NetlinkError {
        let e = capture.errno != 0 ? capture.errno : errnoFromNLE(rc)
        let msg = capture.message ?? (capture.errno != 0 ? nil : String(cString: nl_geterror(rc)))
        return NetlinkError(operation: operation, object: object, errno: e, message: msg)
    }

    /// Dumps one kind of rtnetlink object and returns what `read` makes of each (nil: left
    /// out). The dump starts again while a concurrent change interrupts it. libnl reads an
    /// interrupted dump to its end before it reports NLE_DUMP_INTR, so nothing stale is left
    /// on the socket; each attempt fills a new cache, so nothing stale is left in the result
    /// either (libnl's own nl_cache_refill restarts into the same cache, forever).
    func list<T>(_ request: DumpRequest, family: Int32, _ read: (OpaquePointer) -> T?) throws(SystemError) -> [T] {
        let cache = try dump(request, family: family)
        defer { nl_cache_free(cache) }
        var out: [T] = []
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            if let item = read(o) { out.append(item) }
            obj = nl_cache_get_next(o)
        }
        return out
    }

    private func dump(_ request: DumpRequest, family: Int32) throws(SystemError) -> OpaquePointer {
        let object = namespacePath ?? "current netns"
        return try lock.withLock { () throws(SystemError) -> OpaquePointer in
            var interrupted = false
            return try NetlinkWire.retryingInterruptedDump(
                request.operation, object, subsystem: nil, isInterrupted: { _ in interrupted }
            ) { () throws(SystemError) -> OpaquePointer in
                if interrupted { restarts += 1 }
                capture.reset()
                let (cache, rc) = dumpOnce(request, family: family)
                if let cache { return cache }
                interrupted = abs(rc) == NLE_DUMP_INTR
                throw makeError(request.operation, object, rc)
            }
        }
    }

    /// One dump request and its answer, picked up into a new cache: the cache, or libnl's
    /// error code (the cache freed).
    private func dumpOnce(_ request: DumpRequest, family: Int32) -> (cache: OpaquePointer?, rc: Int32) {
        var cache: OpaquePointer?
        var rc = nl_cache_alloc_name(request.cache, &cache)
        guard rc >= 0, let cache else { return (nil, rc < 0 ? rc : -NLE_NOMEM) }
        // Every rtnetlink request header starts with its family byte.
        var header = [UInt8](repeating: 0, count: request.headerSize)
        header[0] = UInt8(truncatingIfNeeded: family)
        rc = header.withUnsafeMutableBytes { nl_send_simple(sock, request.type, RTM.dump, $0.baseAddress, $0.count) }
        if rc >= 0 { rc = nl_cache_pickup(sock, cache) }
        if rc >= 0 { return (cache, rc) }
        nl_cache_free(cache)
        return (nil, rc)
    }

    /// How many dumps on this socket were started again after an interruption.
    var restartedDumps: Int { lock.withLock { restarts } }

    /// Sends a hand-built request and waits for the kernel's ack.
    func send(_ operation: String, _ object: @autoclosure () -> String, _ msg: NetlinkMessage) throws(SystemError) {
        let m = msg.take()
        try perform(operation, object()) { nl_send_sync(sock, m) }
    }
}

/// What one rtnetlink dump asks for: the libnl cache type that parses the answer, the
/// request's message type and the size of its fixed header.
struct DumpRequest {
    let operation: String
    let cache: String
    let type: Int32
    let headerSize: Int

    static let links = DumpRequest(operation: "list links", cache: "route/link", type: RTM.getLink,
                                   headerSize: MemoryLayout<ifinfomsg>.size)
    static let addresses = DumpRequest(operation: "list addresses", cache: "route/addr", type: RTM.getAddress,
                                       headerSize: MemoryLayout<ifaddrmsg>.size)
    static let routes = DumpRequest(operation: "list routes", cache: "route/route", type: RTM.getRoute,
                                    headerSize: MemoryLayout<rtmsg>.size)
    static let neighbours = DumpRequest(operation: "list neighbours", cache: "route/neigh", type: RTM.getNeighbour,
                                        headerSize: MemoryLayout<ndmsg>.size)
}

/// Checks what a libnl setter returned (a negative NLE_* code for a value it refuses), so a
/// request is never sent without an attribute the caller asked for.
func checkSetter(_ operation: String, _ object: @autoclosure () -> String, _ attribute: String,
                 _ call: () -> Int32) throws(SystemError) {
    let rc = call()
    guard rc < 0 else { return }
    throw NetlinkError(operation: operation, object: object(), errno: errnoFromNLE(rc),
                       message: "\(attribute): \(String(cString: nl_geterror(rc)))")
}

/// An nl_msg under construction (RTM_* request with a fixed header and attributes); freed in
/// deinit unless handed to the socket. Every append is checked: a message that does not fit
/// throws before anything is sent, so the kernel never sees a truncated request.
final class NetlinkMessage {
    private var msg: OpaquePointer?
    private let type: Int32

    init(type: Int32, flags: Int32) throws(SystemError) {
        self.type = type
        guard let m = nlmsg_alloc_simple(type, flags | Int32(NetlinkWire.flagAck)) else {
            throw NetlinkError(operation: "build netlink message", object: "type \(type)", errno: .noMemory)
        }
        msg = m
    }
    deinit { if let msg { nlmsg_free(msg) } }

    func take() -> OpaquePointer? { defer { msg = nil }; return msg }

    /// The message as it stands (header included), for golden-byte tests.
    var bytes: [UInt8] {
        guard let msg, let h = nlmsg_hdr(msg) else { return [] }
        return Array(UnsafeRawBufferPointer(start: h, count: Int(h.pointee.nlmsg_len)))
    }

    func append<H>(_ header: H) throws(SystemError) {
        var h = header
        let rc = withUnsafeMutableBytes(of: &h) { nlmsg_append(msg, $0.baseAddress, $0.count, Int32(NLMSG_ALIGNTO)) }
        try check(rc, "header")
    }
    func put(_ type: Int32, bytes: [UInt8]) throws(SystemError) {
        try check(bytes.withUnsafeBytes { nla_put(msg, type, Int32($0.count), $0.baseAddress) }, "attribute \(type)")
    }
    func put(_ type: Int32, u8 v: UInt8) throws(SystemError) { try check(nla_put_u8(msg, type, v), "attribute \(type)") }
    func put(_ type: Int32, u16 v: UInt16) throws(SystemError) { try check(nla_put_u16(msg, type, v), "attribute \(type)") }
    func put(_ type: Int32, u32 v: UInt32) throws(SystemError) { try check(nla_put_u32(msg, type, v), "attribute \(type)") }
    func put(_ type: Int32, string v: String) throws(SystemError) {
        try check(nla_put_string(msg, type, v), "attribute \(type)")
    }
    func nest(_ type: Int32, _ body: () throws -> Void) throws {
        guard let n = nla_nest_start(msg, type | Int32(NetlinkWire.attrNested)) else {
            throw failure(-NLE_NOMEM, "nested attribute \(type)")
        }
        try body()
        try check(nla_nest_end(msg, n), "nested attribute \(type)")
    }

    private func check(_ rc: Int32, _ what: @autoclosure () -> String) throws(SystemError) {
        if rc < 0 { throw failure(rc, what()) }
    }

    /// libnl answers NLE_NOMEM when the message has no room left: the request is too large.
    private func failure(_ rc: Int32, _ what: String) -> SystemError {
        let tooLarge = abs(rc) == NLE_NOMEM
        return NetlinkError(operation: "build netlink message", object: "type \(type) \(what)",
                            errno: tooLarge ? .messageTooLong : Errno(errnoFromNLE(rc)),
                            message: tooLarge ? "the request does not fit in one netlink message" : nil)
    }
}

// MARK: nl_addr conversion

/// An owned nl_addr, released in deinit.
final class NLAddr {
    let ptr: OpaquePointer
    init(_ ip: IPAddress, prefixLength: Int? = nil) throws(SystemError) {
        let bytes = ip.bytes
        guard let p = bytes.withUnsafeBytes({ nl_addr_build(ip.family.linuxAF, $0.baseAddress, $0.count) }) else {
            throw NetlinkError(operation: "build address", object: "\(ip)", errno: .noMemory)
        }
        ptr = p
        nl_addr_set_prefixlen(p, Int32(prefixLength ?? ip.family.bitWidth))
    }
    init(_ mac: MACAddress) throws(SystemError) {
        guard let p = mac.bytes.withUnsafeBytes({ nl_addr_build(AF_LLC, $0.baseAddress, 6) }) else {
            throw NetlinkError(operation: "build address", object: "\(mac)", errno: .noMemory)
        }
        ptr = p
    }
    deinit { nl_addr_put(ptr) }

    /// Hands the nl_addr to `body`, keeping it alive until `body` returns (libnl setters take
    /// their own reference).
    func pass<R>(_ body: (OpaquePointer) -> R) -> R {
        withExtendedLifetime(self) { body(ptr) }
    }
}

func ipAddress(_ a: OpaquePointer?) -> IPAddress? {
    guard let a, let p = nl_addr_get_binary_addr(a) else { return nil }
    let n = Int(nl_addr_get_len(a))
    guard n == 4 || n == 16 else { return nil }
    return IPAddress(bytes: UnsafeRawBufferPointer(start: p, count: n))
}

func cidr(_ a: OpaquePointer?) -> CIDR? {
    guard let a, let ip = ipAddress(a) else { return nil }
    return CIDR(address: ip, prefixLength: Int(nl_addr_get_prefixlen(a)))
}

func macAddress(_ a: OpaquePointer?) -> MACAddress? {
    guard let a, nl_addr_get_len(a) == 6, let p = nl_addr_get_binary_addr(a) else { return nil }
    return MACAddress(bytes: UnsafeRawBufferPointer(start: p, count: 6))
}
