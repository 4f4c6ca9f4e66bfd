// Errors of the Netlink module are SystemErrors; this file maps libnl's NLE_* codes back to
// errno and captures the errno and extended-ack text the kernel sent.

import CNetlink
import SystemKit
import Glibc

/// Netlink failures are SystemErrors: operation, object, errno (kernel errnos are kept;
/// libnl's own NLE_* codes are mapped back to errno), the kernel's extended-ack text.
public typealias NetlinkError = SystemError

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

/// The NLMSGERR_ATTR_MSG text after the echoed request (NLM_F_ACK_TLVS).
private func extendedAckMessage(_ err: UnsafeMutablePointer<nlmsgerr>) -> String? {
    // libnl hands us the payload; the NLMSG_ERROR header sits right before it.
    let message = UnsafeRawPointer(err) - NetlinkWire.headerSize
    let length = Int(message.loadUnaligned(as: UInt32.self))
    return NetlinkWire.extendedAckMessage(UnsafeRawBufferPointer(start: message, count: length))
}
