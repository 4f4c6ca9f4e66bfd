// The one error type of the system layer: what was attempted, on what, the errno, the
// kernel's own words when it sent some, and a category callers branch on. Netlink and
// nftables failures are SystemErrors too (their modules name the subsystem), so every layer
// above asks "is it gone / does it exist / should the caller retry" the same way.

/// A failed system call, netlink request or nftables batch.
public struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What callers branch on. Derived from the errno unless the failing layer knows better
    /// (a netns path that holds no namespace is `.namespaceGone`, whatever the errno).
    public enum Kind: String, Sendable, Hashable {
        /// The object is not there (ENOENT, ENODEV, ESRCH, ENXIO, EADDRNOTAVAIL).
        case notFound
        /// The object exists already (EEXIST).
        case exists
        /// The object is in use (EBUSY).
        case busy
        /// A transient condition: the same call may succeed later (EAGAIN, an interrupted
        /// dump that kept being interrupted).
        case tryAgain
        /// Not allowed (EPERM, EACCES, EROFS).
        case permission
        /// A network namespace path that no longer holds a namespace.
        case namespaceGone
        /// Out of space, memory or descriptors (ENOSPC, EDQUOT, ENOMEM, EMFILE, ENFILE, ENOBUFS).
        case exhausted
        /// The request itself is wrong (EINVAL, ERANGE, EMSGSIZE, ENAMETOOLONG).
        case invalid
        /// Not supported by this kernel (EOPNOTSUPP, EAFNOSUPPORT).
        case unsupported
        /// Anything else.
        case other

        public init(_ errno: Errno) {
            switch errno {
            case .noSuchFileOrDirectory, .noSuchDevice, .noSuchProcess, .noSuchDeviceOrAddress,
                 .addressNotAvailable: self = .notFound
            case .exists: self = .exists
            case .busy: self = .busy
            case .tryAgain: self = .tryAgain
            case .notPermitted, .permissionDenied, .readOnlyFileSystem: self = .permission
            case .noSpace, .quotaExceeded, .noMemory, .tooManyOpenFiles, .tooManyOpenFilesInSystem,
                 .noBufferSpace: self = .exhausted
            case .invalidArgument, .outOfRange, .messageTooLong, .nameTooLong: self = .invalid
            case .notSupported, .addressFamilyNotSupported: self = .unsupported
            default: self = .other
            }
        }
    }

    /// What was attempted ("open", "add veth", "list tables").
    public var operation: String
    /// What it was attempted on ("/var/lib/cni/networks/n/10.1.0.2", "veth0", "inet netlab").
    public var object: String
    /// The errno the kernel or the C library reported.
    public var errno: Errno
    /// The category callers branch on.
    public var kind: Kind
    /// The kernel's extended-ack text (netlink) or a library's own words, when there are some.
    public var message: String?
    /// Which subsystem failed, printed as a prefix ("nftables"); nil for plain system calls.
    public var subsystem: String?
    /// For a batch: the index of the operation that failed.
    public var index: Int?

    public init(operation: String, object: String, errno: Errno, kind: Kind? = nil,
                message: String? = nil, subsystem: String? = nil, index: Int? = nil) {
        self.operation = operation
        self.object = object
        self.errno = errno
        self.kind = kind ?? Kind(errno)
        self.message = message
        self.subsystem = subsystem
        self.index = index
    }

    /// The same, from a raw errno value.
    public init(operation: String, object: String, errno: Int32, kind: Kind? = nil,
                message: String? = nil, subsystem: String? = nil, index: Int? = nil) {
        self.init(operation: operation, object: object, errno: Errno(errno), kind: kind,
                  message: message, subsystem: subsystem, index: index)
    }

    public var isNotFound: Bool { kind == .notFound || kind == .namespaceGone }
    public var isAlreadyExists: Bool { kind == .exists }
    /// Whether the caller may retry the same call later (CNI code 11).
    public var isTransient: Bool { kind == .tryAgain || kind == .busy }

    /// "nftables: add element inet netlab map pm_v4: EEXIST (File exists) (batch operation #2): kernel text"
    public var description: String {
        var s = subsystem.map { "\($0): " } ?? ""
        s += object.isEmpty ? operation : "\(operation) \(object)"
        s += ": \(errno)"
        if let index { s += " (batch operation #\(index))" }
        if let message, !message.isEmpty { s += ": \(message)" }
        return s
    }
}
