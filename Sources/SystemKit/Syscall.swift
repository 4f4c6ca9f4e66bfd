// The funnel every system call goes through: retries EINTR in one place and turns -1 + errno
// into a SystemError naming the call and its object.

import Glibc

/// Runs `call` (a system call returning -1 and setting errno on failure), retrying while it
/// fails with EINTR, and returns its result. A failure throws a SystemError naming
/// `operation` and `object`.
@discardableResult
@inline(__always)
public func syscall<R: FixedWidthInteger>(
    _ operation: String, _ object: @autoclosure () -> String,
    retryOnInterrupt: Bool = true, _ call: () -> R
) throws(SystemError) -> R {
    while true {
        let r = call()
        if r != -1 { return r }
        let e = Errno.current
        if e == .interrupted && retryOnInterrupt { continue }
        throw SystemError(operation: operation, object: object(), errno: e)
    }
}

/// For calls that return an errno instead of setting it (pthread_*, posix_spawn): 0 is
/// success, anything else the error.
@inline(__always)
public func syscallReturningErrno(
    _ operation: String, _ object: @autoclosure () -> String, _ call: () -> Int32
) throws(SystemError) {
    let rc = call()
    if rc != 0 { throw SystemError(operation: operation, object: object(), errno: Errno(rc)) }
}

/// For the few calls whose failure changes nothing for the caller (a best-effort close of a
/// descriptor that is being abandoned anyway). Named, so every such place says so.
@inline(__always)
public func ignoringFailure<R>(_ call: () -> R) { _ = call() }
