// The one mapping from system and kernel failures to CNI errors, used by every plugin and by
// the runtime side: a runtime acts on the code, a person reads msg and details.

import SystemKit

extension CNIError {
    /// A SystemError as a CNI error, chosen by its kind:
    /// - `.namespaceGone` → 3 (unknown container): the container's netns is not there;
    /// - `.tryAgain`, `.busy` → 11 (try again later): the same request may succeed later;
    /// - failures of files (a plain system call on a path: open, read, write, fsync, rename,
    ///   mkdir, unlink, flock, ...) → 5 (I/O failure);
    /// - anything else → 999.
    /// `msg` is `context: ` followed by the error (operation, object, errno, the kernel's text);
    /// `details` carries the kernel's own words (extended ack) when it sent some.
    public init(_ e: SystemError, context: String? = nil) {
        let prefix = context.map { "\($0): " } ?? ""
        self.init(code: Self.code(for: e), msg: prefix + "\(e)", details: e.message ?? "")
    }

    /// The CNI code of a SystemError (see `init(_:context:)`).
    public static func code(for e: SystemError) -> Code {
        switch e.kind {
        case .namespaceGone: return .unknownContainer
        case .tryAgain, .busy: return .tryAgainLater
        default: return e.isFileOperation ? .ioFailure : .internal
        }
    }

    /// Runs `body`; a SystemError it throws becomes a CNIError with `context`. Other errors
    /// pass unchanged.
    public static func mapping<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as SystemError {
            throw CNIError(e, context: context)
        }
    }
}

extension SystemError {
    /// The system-layer operations that act on files (SystemKit's `Files`, `FileDescriptor`,
    /// `FileLock`). Netlink and nftables failures carry a subsystem or their own operation
    /// names, so they never count as file operations.
    static let fileOperations: Set<String> = [
        "open", "read", "write", "fsync", "fstat", "fchmod", "close", "rename to", "mkdir", "unlink",
        "rmdir", "opendir", "readdir", "lstat", "stat", "flock(LOCK_EX)",
    ]

    /// True for a failed system call on a file (CNI code 5).
    var isFileOperation: Bool { subsystem == nil && Self.fileOperations.contains(operation) }
}
