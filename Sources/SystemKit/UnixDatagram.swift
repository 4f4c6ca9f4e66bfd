// One datagram to a unix socket by path: how a service tells systemd it is ready
// (`READY=1` to $NOTIFY_SOCKET, sd_notify(3)'s protocol) without linking libsystemd.

import Glibc

public enum UnixDatagram {
    /// Sends `message` as one datagram to the unix socket at `path`; a path starting with
    /// "@" names a socket in the abstract namespace (the "@" stands for the leading NUL).
    public static func send(_ message: [UInt8], to path: String) throws(SystemError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let isAbstract = pathBytes.first == UInt8(ascii: "@")
        if isAbstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A filesystem path needs room for its terminating NUL; an abstract name does not.
        guard !pathBytes.isEmpty, pathBytes.count + (isAbstract ? 0 : 1) <= capacity else {
            throw SystemError(operation: "sendto", object: path, errno: .nameTooLong)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (isAbstract ? 0 : 1))
        let fd = try syscall("socket(AF_UNIX, SOCK_DGRAM)", path) {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        try FileDescriptor(rawValue: fd).closeAfter { () throws(SystemError) in
            try syscall("sendto", path) {
                message.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &address) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                            Glibc.sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), sa, length)
                        }
                    }
                }
            }
        }
    }
}
