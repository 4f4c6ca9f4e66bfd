// What every netlink socket of the package shares, whichever library drives it (libnl for
// rtnetlink, libmnl for nftables): the protocol constants by name, asking the kernel for
// extended acks, reading the ack's text, and retrying a dump the kernel marks interrupted.

import Glibc

public enum NetlinkWire {
    // Socket options (linux/netlink.h).
    public static let solNetlink: Int32 = 270           // SOL_NETLINK
    public static let optCapAck: Int32 = 10             // NETLINK_CAP_ACK
    public static let optExtendedAck: Int32 = 11        // NETLINK_EXT_ACK
    public static let soSendBufferForce: Int32 = 32     // SO_SNDBUFFORCE
    public static let soReceiveBufferForce: Int32 = 33  // SO_RCVBUFFORCE

    // Message types and flags.
    public static let headerSize = 16                   // sizeof(struct nlmsghdr)
    public static let typeNoop: UInt16 = 1              // NLMSG_NOOP
    public static let typeError: UInt16 = 2             // NLMSG_ERROR
    public static let typeDone: UInt16 = 3              // NLMSG_DONE
    public static let typeOverrun: UInt16 = 4           // NLMSG_OVERRUN
    public static let flagRequest: UInt16 = 0x1         // NLM_F_REQUEST
    public static let flagMulti: UInt16 = 0x2           // NLM_F_MULTI
    public static let flagAck: UInt16 = 0x4             // NLM_F_ACK
    public static let flagDumpInterrupted: UInt16 = 0x10 // NLM_F_DUMP_INTR
    public static let flagCapped: UInt16 = 0x100        // NLM_F_CAPPED (on acks)
    public static let flagAckTLVs: UInt16 = 0x200       // NLM_F_ACK_TLVS (on acks)
    public static let flagDump: UInt16 = 0x300          // NLM_F_ROOT | NLM_F_MATCH
    // Modifiers of NEW requests (same bits as the ack/dump flags above, other meaning).
    public static let flagReplace: UInt16 = 0x100       // NLM_F_REPLACE
    public static let flagExclusive: UInt16 = 0x200     // NLM_F_EXCL
    public static let flagCreate: UInt16 = 0x400        // NLM_F_CREATE
    public static let flagAppend: UInt16 = 0x800        // NLM_F_APPEND
    public static let attrNested: UInt16 = 0x8000       // NLA_F_NESTED
    public static let attrTypeMask: UInt16 = 0x3fff     // NLA_TYPE_MASK (without NESTED, NET_BYTEORDER)
    public static let errorAttrMessage: UInt16 = 1      // NLMSGERR_ATTR_MSG

    /// How often a dump interrupted by a concurrent change is started again before the caller
    /// is told to try later.
    public static let dumpAttempts = 10

    /// Turns on extended acks (the kernel's error text) and, with `capAck`, acks without the
    /// echoed request. Both are optional features: an old kernel just sends plainer acks.
    public static func enableExtendedAck(fd: Int32, capAck: Bool = false) {
        var on: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        if capAck { ignoringFailure { setsockopt(fd, solNetlink, optCapAck, &on, size) } }
        ignoringFailure { setsockopt(fd, solNetlink, optExtendedAck, &on, size) }
    }

    /// Raises the socket's buffers beyond rmem_max/wmem_max (root only; best effort: the
    /// defaults still work, a large dump just takes more reads).
    public static func enlargeBuffers(fd: Int32, bytes: Int32) {
        var size = bytes
        let len = socklen_t(MemoryLayout<Int32>.size)
        ignoringFailure { setsockopt(fd, SOL_SOCKET, soSendBufferForce, &size, len) }
        ignoringFailure { setsockopt(fd, SOL_SOCKET, soReceiveBufferForce, &size, len) }
    }

    /// The NLMSGERR_ATTR_MSG text of an NLMSG_ERROR message (`message` starts at its nlmsghdr),
    /// or nil when the kernel sent none.
    public static func extendedAckMessage(_ message: UnsafeRawBufferPointer) -> String? {
        guard message.count >= headerSize + 4 + headerSize else { return nil }
        let flags = message.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        let length = min(Int(message.loadUnaligned(fromByteOffset: 0, as: UInt32.self)), message.count)
        guard flags & flagAckTLVs != 0 else { return nil }
        // After the header: int error, then the echoed request (only its header when capped).
        var offset = headerSize + 4
        if flags & flagCapped != 0 {
            offset += headerSize
        } else {
            let echoed = Int(message.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += (echoed + 3) & ~3
        }
        while offset + 4 <= length {
            let attrLength = Int(message.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = message.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & attrTypeMask
            guard attrLength >= 4, offset + attrLength <= length else { break }
            if type == errorAttrMessage {
                let text = UnsafeRawBufferPointer(rebasing: message[(offset + 4)..<(offset + attrLength)])
                return String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
            }
            offset += (attrLength + 3) & ~3
        }
        return nil
    }

    /// Runs a dump, starting it again while it fails because a concurrent change interrupted
    /// it (`isInterrupted` says which errors mean that). After `dumpAttempts` tries the error
    /// becomes `.tryAgain` with a message a person understands.
    public static func retryingInterruptedDump<T>(
        _ operation: String, _ object: String, subsystem: String?,
        isInterrupted: (SystemError) -> Bool = { $0.errno == .interrupted },
        _ dump: () throws(SystemError) -> T
    ) throws(SystemError) -> T {
        var attempt = 1
        while true {
            do {
                return try dump()
            } catch where isInterrupted(error) {
                guard attempt < dumpAttempts else {
                    throw SystemError(
                        operation: operation, object: object, errno: error.errno, kind: .tryAgain,
                        message: "the kernel's state kept changing while it was read (\(dumpAttempts) attempts); try again later",
                        subsystem: subsystem)
                }
                attempt += 1
            }
        }
    }
}
