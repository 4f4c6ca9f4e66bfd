import Glibc
import XCTest
@testable import SystemKit

/// The syscall funnel, with the "system call" played by a closure: EINTR is retried in the
/// funnel, every other errno comes out as a SystemError naming the call and its object.
final class SyscallTests: XCTestCase {
    /// A call that fails with `errnos` in turn (setting errno, returning -1), then returns `result`.
    final class ScriptedCall {
        var errnos: [Int32]
        let result: Int32
        var calls = 0
        init(failing errnos: [Int32], then result: Int32) { self.errnos = errnos; self.result = result }
        func callAsFunction() -> Int32 {
            calls += 1
            guard !errnos.isEmpty else { return result }
            Glibc.errno = errnos.removeFirst()
            return -1
        }
    }

    func testInterruptedCallsAreRetriedUntilTheyComplete() throws {
        let call = ScriptedCall(failing: [EINTR, EINTR, EINTR], then: 42)
        XCTAssertEqual(try syscall("read", "fd 3") { call() }, 42)
        XCTAssertEqual(call.calls, 4)
    }

    func testOtherErrnosThrowWithOperationObjectAndKind() {
        let call = ScriptedCall(failing: [EINTR, ENOENT], then: 0)
        XCTAssertThrowsError(try syscall("open", "/nowhere/file") { call() }) { error in
            guard let e = error as? SystemError else { return XCTFail("not a SystemError: \(error)") }
            XCTAssertEqual(e.operation, "open")
            XCTAssertEqual(e.object, "/nowhere/file")
            XCTAssertEqual(e.errno, .noSuchFileOrDirectory)
            XCTAssertEqual(e.kind, .notFound)
            XCTAssertEqual(e.description, "open /nowhere/file: ENOENT (No such file or directory)")
        }
        XCTAssertEqual(call.calls, 2, "EINTR retried once, ENOENT not retried")

        let busy = ScriptedCall(failing: [EBUSY], then: 0)
        XCTAssertThrowsError(try syscall("umount", "/mnt") { busy() }) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .busy)
            XCTAssertEqual((error as? SystemError)?.isTransient, true)
        }
        XCTAssertEqual(busy.calls, 1)
    }

    func testInterruptIsNotRetriedWhenTheCallerSaysSo() {
        let call = ScriptedCall(failing: [EINTR], then: 0)
        XCTAssertThrowsError(try syscall("close", "fd 7", retryOnInterrupt: false) { call() }) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .interrupted)
            XCTAssertEqual((error as? SystemError)?.operation, "close")
        }
        XCTAssertEqual(call.calls, 1)
    }

    func testOnlyMinusOneIsAFailure() throws {
        // Results of other widths and negative values other than -1 pass through.
        XCTAssertEqual(try syscall("lseek", "f") { Int64(-2) }, -2)
        XCTAssertEqual(try syscall("read", "f") { Int(0) }, 0)
    }

    func testTheObjectIsOnlyBuiltOnFailure() throws {
        var built = 0
        func object() -> String { built += 1; return "x" }
        try syscall("noop", object()) { Int32(0) }
        XCTAssertEqual(built, 0)
        XCTAssertThrowsError(try syscall("fail", object()) { Glibc.errno = EIO; return Int32(-1) })
        XCTAssertEqual(built, 1)
    }

    func testCallsReturningTheErrno() {
        XCTAssertNoThrow(try syscallReturningErrno("pthread_create", "t") { 0 })
        XCTAssertThrowsError(try syscallReturningErrno("posix_spawn", "/bin/x") { EAGAIN }) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.errno, .tryAgain)
            XCTAssertEqual(e?.kind, .tryAgain)
            XCTAssertEqual(e?.object, "/bin/x")
        }
    }

    func testARealCallFailsWithItsErrno() {
        XCTAssertThrowsError(try FileDescriptor.open("/nonexistent-\(getpid())/x")) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.operation, "open")
            XCTAssertEqual(e?.object, "/nonexistent-\(getpid())/x")
            XCTAssertEqual(e?.kind, .notFound)
        }
    }
}
