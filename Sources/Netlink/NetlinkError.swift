// Errors of the Netlink module: the operation, the object it was applied to, the errno
// (kernel errnos are kept; libnl's own NLE_* codes are mapped back to errno) and the
// kernel's extended-ack message when it sent one.

import CNetlink
#if canImport(Glibc)
import Glibc
#endif

public struct NetlinkError: Error, Sendable, CustomStringConvertible {
    /// What was attempted ("add veth", "set mtu", "open netns").
    public var operation: String
    /// What it was attempted on ("veth0", "10.1.0.2/24 on ifindex 4").
    public var object: String
    /// A positive errno value (EEXIST, ENODEV, EBUSY, ...).
    public var errno: Int32
    /// The kernel's extended-ack message, or libnl's text when there was none.
    public var message: String?

    public init(operation: String, object: String, errno: Int32, message: String? = nil) {
        self.operation = operation
        self.object = object
        self.errno = errno
        self.message = message
    }

    public var isAlreadyExists: Bool { errno == EEXIST }
    /// ENODEV, ENOENT and ESRCH all mean "the thing is not there" for netlink requests
    /// (no such link, no such address/route, no such neighbour).
    public var isNotFound: Bool { errno == ENODEV || errno == ENOENT || errno == ESRCH || errno == EADDRNOTAVAIL }
    public var isBusy: Bool { errno == EBUSY }

    /// The symbolic errno name ("EEXIST") where known.
    public var errnoName: String { errnoNames[errno] ?? "errno \(errno)" }

    public var description: String {
        var s = "\(operation) \(object): \(errnoName) (\(String(cString: strerror(errno))))"
        if let message, !message.isEmpty { s += ": \(message)" }
        return s
    }
}

private let errnoNames: [Int32: String] = [
    EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF",
    EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST",
    ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EINVAL: "EINVAL", ENOSPC: "ENOSPC", ERANGE: "ERANGE",
    ENETUNREACH: "ENETUNREACH", EOPNOTSUPP: "EOPNOTSUPP", EADDRNOTAVAIL: "EADDRNOTAVAIL",
    EAFNOSUPPORT: "EAFNOSUPPORT", EMSGSIZE: "EMSGSIZE", ENOBUFS: "ENOBUFS",
    ENOTCONN: "ENOTCONN", EPROTO: "EPROTO", ENAMETOOLONG: "ENAMETOOLONG", ENOTEMPTY: "ENOTEMPTY",
]

/// Maps a libnl NLE_* code (positive or negative) to the nearest errno.
func errnoFromNLE(_ code: Int32) -> Int32 {
    switch abs(code) {
    case NLE_INTR: return EINTR
    case NLE_BAD_SOCK: return EBADF
    case NLE_AGAIN: return EAGAIN
    case NLE_NOMEM: return ENOMEM
    case NLE_EXIST: return EEXIST
    case NLE_INVAL: return EINVAL
    case NLE_RANGE: return ERANGE
    case NLE_MSGSIZE: return EMSGSIZE
    case NLE_OPNOTSUPP: return EOPNOTSUPP
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT
    case NLE_OBJ_NOTFOUND: return ENOENT
    case NLE_NOATTR, NLE_MISSING_ATTR: return EINVAL
    case NLE_NOADDR: return EADDRNOTAVAIL
    case NLE_BUSY: return EBUSY
    case NLE_NOACCESS: return EACCES
    case NLE_PERM: return EPERM
    case NLE_NODEV: return ENODEV
    case NLE_DUMP_INTR: return EINTR
    case NLE_MSG_TRUNC, NLE_MSG_OVERFLOW: return ENOBUFS
    default: return EIO
    }
}

/// Captures the errno and extended-ack text of the last NLMSG_ERROR the kernel sent on a
/// socket, so errors keep the kernel's errno instead of libnl's lossy NLE_* code.
final class ErrorCapture {
    var errno: Int32 = 0
    var message: String?
    func reset() { errno = 0; message = nil }
}

/// The nl_cb error callback: records errno and the NLMSGERR_ATTR_MSG text, then lets libnl
/// stop with its usual error code (NL_STOP).
let errorCaptureCallback: nl_recvmsg_err_cb_t = { _, err, arg in
    guard let err, let arg else { return Int32(NL_STOP.rawValue) }
    let capture = Unmanaged<ErrorCapture>.fromOpaque(arg).takeUnretainedValue()
    capture.errno = -err.pointee.error
    capture.message = extendedAckMessage(err)
    return Int32(NL_STOP.rawValue)
}

/// Reads NLMSGERR_ATTR_MSG from the TLVs after the echoed request (NLM_F_ACK_TLVS).
private func extendedAckMessage(_ err: UnsafeMutablePointer<nlmsgerr>) -> String? {
    let raw = UnsafeRawPointer(err)
    let header = (raw - 16).assumingMemoryBound(to: nlmsghdr.self).pointee  // the NLMSG_ERROR header
    let ackTLVs: UInt16 = 0x200, capped: UInt16 = 0x100
    guard header.nlmsg_flags & ackTLVs != 0 else { return nil }
    let echoed = header.nlmsg_flags & capped != 0 ? 16 : Int(err.pointee.msg.nlmsg_len)
    var offset = 4 + ((echoed + 3) & ~3)               // after `int error` and the echoed message
    let end = Int(header.nlmsg_len) - 16
    while offset + 4 <= end {
        let len = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        let type = raw.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3fff
        guard len >= 4, offset + len <= end else { break }
        if type == 1 {  // NLMSGERR_ATTR_MSG
            let bytes = UnsafeRawBufferPointer(start: raw + offset + 4, count: len - 4)
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        offset += (len + 3) & ~3
    }
    return nil
}
