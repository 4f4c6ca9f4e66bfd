// The one mapping from system and kernel failures to CNI errors, used by every plugin and by
// the runtime side: a runtime acts on the code, a person reads msg and details.

import SystemKit

extension CNIError {
    /// A SystemError as a CNI error, chosen by its kind:
    /// - `.namespaceGone` → 3 (unknown container): the container's netns is not there;
    /// - `.tryAgain`, `.busy` → 11 (try again later): the same request may succeed later;
    /// - failures of files → 5 (I/O failure);
    /// - anything else → 999.
    /// `msg` names the context, operation, object and errno; `details` carries the kernel's
    /// own words (extended ack) when it sent some.
    public init(_ e: SystemError, context: String? = nil) {
        let code: Code
        switch e.kind {
        case .namespaceGone: code = .unknownContainer
        case .tryAgain, .busy: code = .tryAgainLater
        default: code = e.subsystem == nil && Self.fileOperations.contains(e.operation) ? .ioFailure : .internal
        }
        let prefix = context.map { "\($0): " } ?? ""
        self.init(code: code, msg: prefix + "\(e)", details: e.message ?? "")
    }

    /// Runs `body`; a SystemError it throws becomes a CNIError with `context`.
    public static func mapping<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as SystemError {
            throw CNIError(e, context: context)
        }
    }

    /// The system-layer operations that touch files (their failures are CNI code 5).
    private static let fileOperations: Set<String> = [
        "open", "read", "write", "fsync", "fstat", "fchmod", "close", "rename to", "mkdir", "unlink",
        "rmdir", "opendir", "readdir", "lstat", "stat", "flock(LOCK_EX)",
    ]
}
