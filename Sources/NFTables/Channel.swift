// The nfnetlink socket under NFTSocket (nf_tables) and Conntrack (ctnetlink): opening it in a
// namespace, sending, reading acks, and reading a dump to its end. A dump the kernel marks
// interrupted (NLM_F_DUMP_INTR, a change committed while it was read) is read to its end, so
// nothing of it stays queued on the socket, and then started again through SystemKit's one
// retry rule (`NetlinkWire.retryingInterruptedDump`).

import CNFTables
import SystemKit
import Glibc

/// One libmnl socket. Not thread-safe: its owner serialises calls.
final class NetfilterChannel {
    private let nl: OpaquePointer
    private var seq: UInt32
    /// The `object` of socket-level errors ("nfnetlink", "ctnetlink").
    private let name: String
    private static let subsystem = "nftables"
    /// Large enough for any datagram the kernel sends on these sockets.
    private static let receiveBufferSize = 1 << 18
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: NetfilterChannel.receiveBufferSize, alignment: 16)
    /// Dumps started again after an interruption (for tests and diagnostics).
    private(set) var restartedDumps = 0

    /// Opens and binds the socket in the calling thread's namespace, or inside the netns at
    /// `namespacePath`. `bufferBytes` raises the socket buffers (root only, best effort).
    init(_ name: String, namespacePath: String?, bufferBytes: Int32? = nil) throws {
        self.name = name
        let open = { () throws(SystemError) -> SendableBox<OpaquePointer> in
            SendableBox(try NetfilterChannel.open(name))
        }
        nl = if let namespacePath { try Namespaces.run(inNetworkNamespaceAt: namespacePath, open).value } else { try open().value }
        seq = UInt32(truncatingIfNeeded: time(nil))
        let fd = mnl_socket_get_fd(nl)
        NetlinkWire.enableExtendedAck(fd: fd, capAck: true)
        if let bufferBytes { NetlinkWire.enlargeBuffers(fd: fd, bytes: bufferBytes) }
    }

    deinit {
        mnl_socket_close(nl)
        buffer.deallocate()
    }

    private static func open(_ name: String) throws(SystemError) -> OpaquePointer {
        guard let nl = mnl_socket_open2(NETLINK_NETFILTER, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw .nft(operation: "open socket", object: name, errno: errno)
        }
        guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let e = errno
            mnl_socket_close(nl)
            throw .nft(operation: "bind socket", object: name, errno: e)
        }
        return nl
    }

    func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    // MARK: sending and receiving

    func send(_ bytes: [UInt8], _ operation: String) throws(SystemError) {
        let n = try call(operation) { bytes.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) } }
        if n != bytes.count { throw .nft(operation: operation, object: name, errno: EMSGSIZE) }
    }

    /// Reads one datagram into `buffer`; returns its length.
    private func receive(_ operation: String) throws(SystemError) -> Int {
        try call(operation) { mnl_socket_recvfrom(nl, buffer, NetfilterChannel.receiveBufferSize) }
    }

    /// A libmnl call through SystemKit's syscall funnel (EINTR retried), its error marked as
    /// an nftables one.
    private func call(_ operation: String, _ body: () -> Int) throws(SystemError) -> Int {
        do {
            return try syscall(operation, name, body)
        } catch {
            var e = error
            e.subsystem = NetfilterChannel.subsystem
            throw e
        }
    }

    /// Calls `each` for every message of every datagram read, until it returns true.
    private func readMessages(_ operation: String,
                              _ each: (NetlinkMessageView) throws(SystemError) -> Bool) throws(SystemError) {
        while true {
            let n = try receive(operation)
            var offset = 0
            while offset + NetlinkWire.headerSize <= n {
                let message = NetlinkMessageView(UnsafeRawBufferPointer(start: buffer + offset, count: n - offset))
                guard let length = message.length else { break }  // malformed: the rest of the datagram is unusable
                if try each(message) { return }
                offset += (length + 3) & ~3
            }
        }
    }

    /// Reads until the message with sequence number `sentinel` and reports every NLMSG_ERROR
    /// on the way: its sequence number, errno (0 for an ack) and extended-ack text.
    func receiveAcks(until sentinel: UInt32, _ onAck: (UInt32, Int32, String?) -> Void) throws(SystemError) {
        try readMessages("receive") { message throws(SystemError) in
            if message.type == NetlinkWire.typeError {
                onAck(message.seq, message.errorCode, NetlinkWire.extendedAckMessage(message.bytes))
            }
            return message.seq == sentinel
        }
    }

    // MARK: dumps

    /// Sends the dump request `request(seq)` and returns what `parse` makes of the data
    /// messages of its answer. An interrupted dump is read to its end and sent again (a new
    /// sequence number, an empty result); after `NetlinkWire.dumpAttempts` the error is
    /// `.tryAgain`. A failure names `operation` and `object`.
    func dump<T>(_ operation: String, _ object: String, request: (UInt32) -> [UInt8],
                 parse: (UnsafeRawBufferPointer) -> [T]) throws(SystemError) -> [T] {
        var interrupted = false
        return try NetlinkWire.retryingInterruptedDump(
            operation, object, subsystem: NetfilterChannel.subsystem, isInterrupted: { _ in interrupted }
        ) { () throws(SystemError) -> [T] in
            if interrupted { restartedDumps += 1 }
            let seq = nextSeq()
            try send(request(seq), operation)
            // Parsed only once the whole answer is in: the shorter the dump takes, the less
            // likely a commit lands in the middle of it.
            var messages: [[UInt8]] = []
            interrupted = try receiveDump(seq, operation, object) { messages.append(Array($0)) }
            if interrupted { throw .nft(operation: operation, object: object, errno: EINTR) }
            return messages.flatMap { m in m.withUnsafeBytes { parse($0) } }
        }
    }

    /// Reads the answer to dump request `seq` to its end (NLMSG_DONE, or the NLMSG_ERROR that
    /// refuses it), handing each data message to `each` until one comes marked interrupted.
    /// Messages of other sequence numbers are left over from an abandoned request and
    /// skipped. Returns whether the dump was interrupted.
    private func receiveDump(_ seq: UInt32, _ operation: String, _ object: String,
                             _ each: (UnsafeRawBufferPointer) -> Void) throws(SystemError) -> Bool {
        var interrupted = false
        try readMessages(operation) { message throws(SystemError) in
            guard message.seq == seq else { return false }
            if message.flags & NetlinkWire.flagDumpInterrupted != 0 { interrupted = true }
            switch message.type {
            case NetlinkWire.typeDone, NetlinkWire.typeError:
                // Both carry an errno: 0 when the dump ended normally.
                let e = message.errorCode
                if e != 0 {
                    throw .nft(operation: operation, object: object, errno: e,
                               message: NetlinkWire.extendedAckMessage(message.bytes))
                }
                return true
            case NetlinkWire.typeNoop, NetlinkWire.typeOverrun:
                return false
            default:
                if !interrupted { each(message.bytes) }
                return false
            }
        }
        return interrupted
    }
}

/// One netlink message in a receive buffer (header fields read unaligned).
struct NetlinkMessageView {
    /// From the message's header to the end of the datagram (trimmed to the message once
    /// its length is known to fit).
    private(set) var bytes: UnsafeRawBufferPointer

    init(_ rest: UnsafeRawBufferPointer) {
        bytes = rest
        if let length { bytes = UnsafeRawBufferPointer(rebasing: rest[0..<length]) }
    }

    /// nlmsg_len, or nil when it is shorter than a header or longer than what was received.
    var length: Int? {
        guard bytes.count >= NetlinkWire.headerSize else { return nil }
        let n = Int(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        return n >= NetlinkWire.headerSize && n <= bytes.count ? n : nil
    }
    var type: UInt16 { bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
    var flags: UInt16 { bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }
    var seq: UInt32 { bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
    /// The positive errno of an NLMSG_ERROR or NLMSG_DONE payload (0: success or none).
    var errorCode: Int32 {
        guard bytes.count >= NetlinkWire.headerSize + 4 else { return 0 }
        return -bytes.loadUnaligned(fromByteOffset: NetlinkWire.headerSize, as: Int32.self)
    }
}
