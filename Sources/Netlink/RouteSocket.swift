// One rtnetlink socket (libnl nl_sock), bound to the namespace it was opened in and usable
// from any thread afterwards (requests are serialised by a lock). Every request funnels through `perform`,
// which turns libnl results into NetlinkError with the kernel's errno.

import CNetlink
import NetTypes
import SystemKit
#if canImport(Glibc)
import Glibc
#endif

public final class RouteSocket: @unchecked Sendable {
    let sock: OpaquePointer
    let capture = ErrorCapture()
    /// Serialises requests: one libnl socket carries one request/answer exchange at a time.
    private let lock = SocketLock()
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

    private static func connect(_ where_: String) throws -> OpaquePointer {
        guard let s = nl_socket_alloc() else {
            throw NetlinkError(operation: "allocate netlink socket", object: where_, errno: ENOMEM)
        }
        let rc = nl_connect(s, NETLINK_ROUTE)
        if rc < 0 {
            nl_socket_free(s)
            throw NetlinkError(operation: "connect netlink socket", object: where_, errno: errnoFromNLE(rc))
        }
        // Ask the kernel for extended ack messages (NETLINK_EXT_ACK = 11, SOL_NETLINK = 270).
        var one: Int32 = 1
        _ = setsockopt(nl_socket_get_fd(s), 270, 11, &one, socklen_t(MemoryLayout<Int32>.size))
        return s
    }

    /// Runs one libnl call and converts a negative result into a NetlinkError, preferring the
    /// errno the kernel sent over libnl's NLE_* code.
    @discardableResult
    func perform(_ operation: String, _ object: @autoclosure () -> String, _ call: () -> Int32) throws -> Int32 {
        lock.lock(); defer { lock.unlock() }
        capture.reset()
        let rc = call()
        guard rc < 0 else { return rc }
        throw makeError(operation, object(), rc)
    }

    func makeError(_ operation: String, _ object: String, _ rc: Int32) -> NetlinkError {
        let e = capture.errno != 0 ? capture.errno : errnoFromNLE(rc)
        let msg = capture.message ?? (capture.errno != 0 ? nil : String(cString: nl_geterror(rc)))
        return NetlinkError(operation: operation, object: object, errno: e, message: msg)
    }

    /// Runs a dump, retrying when a concurrent change interrupted it (NLE_DUMP_INTR).
    func dump(_ operation: String, _ object: String, _ call: () -> Int32) throws {
        lock.lock(); defer { lock.unlock() }
        var attempt = 0
        while true {
            capture.reset()
            let rc = call()
            if rc >= 0 { return }
            if abs(rc) == NLE_DUMP_INTR && attempt < 5 { attempt += 1; continue }
            throw makeError(operation, object, rc)
        }
    }

    /// Sends a hand-built request and waits for the kernel's ack.
    func send(_ operation: String, _ object: @autoclosure () -> String, _ msg: NetlinkMessage) throws {
        let m = msg.take()
        try perform(operation, object()) { nl_send_sync(sock, m) }
    }

    /// Iterates over the objects of a freshly dumped cache, freeing the cache afterwards.
    func forEach(_ cache: OpaquePointer?, _ body: (OpaquePointer) -> Void) {
        guard let cache else { return }
        defer { nl_cache_free(cache) }
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            body(o)
            obj = nl_cache_get_next(o)
        }
    }
}

final class SocketLock {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func lock() { pthread_mutex_lock(m) }
    func unlock() { pthread_mutex_unlock(m) }
}

/// An nl_msg under construction (RTM_* request with a fixed header and attributes); freed in
/// deinit unless handed to the socket.
final class NetlinkMessage {
    private var msg: OpaquePointer?
    private var nests: [UnsafeMutablePointer<nlattr>] = []

    init(type: Int32, flags: Int32) {
        msg = nlmsg_alloc_simple(type, flags | 0x4 /* NLM_F_ACK */)
    }
    deinit { if let msg { nlmsg_free(msg) } }

    func take() -> OpaquePointer? { defer { msg = nil }; return msg }

    /// The message as it stands (header included), for golden-byte tests.
    var bytes: [UInt8] {
        guard let msg, let h = nlmsg_hdr(msg) else { return [] }
        return Array(UnsafeRawBufferPointer(start: h, count: Int(h.pointee.nlmsg_len)))
    }

    func append<H>(_ header: H) {
        var h = header
        _ = withUnsafeMutableBytes(of: &h) { nlmsg_append(msg, $0.baseAddress, $0.count, 4) }
    }
    func put(_ type: Int32, bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { nla_put(msg, type, Int32($0.count), $0.baseAddress) }
    }
    func put(_ type: Int32, u8 v: UInt8) { _ = nla_put_u8(msg, type, v) }
    func put(_ type: Int32, u16 v: UInt16) { _ = nla_put_u16(msg, type, v) }
    func put(_ type: Int32, u32 v: UInt32) { _ = nla_put_u32(msg, type, v) }
    func put(_ type: Int32, string v: String) { _ = nla_put_string(msg, type, v) }
    func nest(_ type: Int32, _ body: () -> Void) {
        guard let n = nla_nest_start(msg, type | 0x8000 /* NLA_F_NESTED */) else { return }
        body()
        _ = nla_nest_end(msg, n)
    }
}

// MARK: nl_addr conversion

/// An owned nl_addr, released in deinit.
final class NLAddr {
    let ptr: OpaquePointer
    init?(_ ip: IPAddress, prefixLength: Int? = nil) {
        let bytes = ip.bytes
        guard let p = bytes.withUnsafeBytes({ nl_addr_build(ip.family.linuxAF, $0.baseAddress, $0.count) }) else { return nil }
        ptr = p
        nl_addr_set_prefixlen(p, Int32(prefixLength ?? ip.family.bitWidth))
    }
    init?(_ mac: MACAddress) {
        guard let p = mac.bytes.withUnsafeBytes({ nl_addr_build(AF_LLC, $0.baseAddress, 6) }) else { return nil }
        ptr = p
    }
    deinit { nl_addr_put(ptr) }
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
