// errno values with Swift names, and the symbolic name of each ("ENOENT") for messages.
// One table for the whole package: nothing else spells an errno as a number.

import Glibc

/// A POSIX errno value. Compare with the named constants (`Errno.notFound`), never with
/// literal numbers.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ raw: Int32) { self.rawValue = raw }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(Glibc.errno) }

    public static let notPermitted = Errno(EPERM)
    public static let noSuchFileOrDirectory = Errno(ENOENT)
    public static let noSuchProcess = Errno(ESRCH)
    public static let interrupted = Errno(EINTR)
    public static let ioError = Errno(EIO)
    public static let noSuchDeviceOrAddress = Errno(ENXIO)
    public static let badFileDescriptor = Errno(EBADF)
    public static let tryAgain = Errno(EAGAIN)
    public static let noMemory = Errno(ENOMEM)
    public static let permissionDenied = Errno(EACCES)
    public static let busy = Errno(EBUSY)
    public static let exists = Errno(EEXIST)
    public static let crossDevice = Errno(EXDEV)
    public static let noSuchDevice = Errno(ENODEV)
    public static let notDirectory = Errno(ENOTDIR)
    public static let isDirectory = Errno(EISDIR)
    public static let invalidArgument = Errno(EINVAL)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)
    public static let noSpace = Errno(ENOSPC)
    public static let readOnlyFileSystem = Errno(EROFS)
    public static let brokenPipe = Errno(EPIPE)
    public static let outOfRange = Errno(ERANGE)
    public static let nameTooLong = Errno(ENAMETOOLONG)
    public static let notEmpty = Errno(ENOTEMPTY)
    public static let loop = Errno(ELOOP)
    public static let protocolError = Errno(EPROTO)
    public static let messageTooLong = Errno(EMSGSIZE)
    public static let notSupported = Errno(EOPNOTSUPP)
    public static let addressFamilyNotSupported = Errno(EAFNOSUPPORT)
    public static let addressNotAvailable = Errno(EADDRNOTAVAIL)
    public static let networkUnreachable = Errno(ENETUNREACH)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let notConnected = Errno(ENOTCONN)
    public static let timedOut = Errno(ETIMEDOUT)
    public static let quotaExceeded = Errno(EDQUOT)
    public static let noChild = Errno(ECHILD)

    /// "ENOENT", or "errno N" for a value without a name here.
    public var name: String { Errno.names[rawValue] ?? "errno \(rawValue)" }

    /// The C library's text ("No such file or directory").
    public var text: String {
        // glibc's strerror returns a static string for every known errno.
        guard let p = strerror(rawValue) else { return name }
        return String(cString: p)
    }

    /// "ENOENT (No such file or directory)".
    public var description: String { "\(name) (\(text))" }

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO",
        ENXIO: "ENXIO", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM",
        EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST", EXDEV: "EXDEV", ENODEV: "ENODEV",
        ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENFILE: "ENFILE",
        EMFILE: "EMFILE", ENOSPC: "ENOSPC", EROFS: "EROFS", EPIPE: "EPIPE", ERANGE: "ERANGE",
        ENAMETOOLONG: "ENAMETOOLONG", ENOTEMPTY: "ENOTEMPTY", ELOOP: "ELOOP", EPROTO: "EPROTO",
        EMSGSIZE: "EMSGSIZE", EOPNOTSUPP: "EOPNOTSUPP", EAFNOSUPPORT: "EAFNOSUPPORT",
        EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETUNREACH: "ENETUNREACH", ENOBUFS: "ENOBUFS",
        ENOTCONN: "ENOTCONN", ETIMEDOUT: "ETIMEDOUT", EDQUOT: "EDQUOT",
    ]
}
