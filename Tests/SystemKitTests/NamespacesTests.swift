import Glibc
import XCTest
@testable import SystemKit

final class NamespacesTests: XCTestCase {
    func testAMissingPathOrAPlainFileIsANamespaceThatIsGone() throws {
        let dir = try makeTemporaryDirectory()
        XCTAssertThrowsError(try Namespaces.open(dir + "/missing")) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.kind, .namespaceGone)
            XCTAssertEqual(e?.isNotFound, true)
            XCTAssertEqual(e?.object, dir + "/missing")
        }
        // What is left of /run/netns/NAME after its bind mount went away: an empty file.
        try Files.writeAtomically(dir + "/stale", [UInt8]())
        XCTAssertFalse(Namespaces.isNamespaceFile(dir + "/stale"))
        XCTAssertThrowsError(try Namespaces.open(dir + "/stale")) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .namespaceGone)
        }
        XCTAssertTrue(Namespaces.isNamespaceFile("/proc/self/ns/net"))
        XCTAssertNoThrow(try Namespaces.open("/proc/self/ns/net"))
    }

    /// The inode of the calling thread's network namespace.
    func threadNetns() throws -> ino_t {
        try XCTUnwrap(Files.status("/proc/thread-self/ns/net")).st_ino
    }

    func testEnteringANamespaceHappensOnAnotherThreadAndNeverMovesTheCaller_needsRoot() throws {
        try XCTSkipUnless(geteuid() == 0, "setns and unshare need CAP_SYS_ADMIN; run as root")
        let mine = try threadNetns()
        let caller = Threads.currentID
        // A new netns on a dedicated thread: the thread ends there, the caller stays home.
        let fresh = try Threads.run { () throws -> ino_t in
            try Namespaces.unshareNetwork()
            return try threadNetns()
        }
        XCTAssertNotEqual(fresh, mine)
        XCTAssertEqual(try threadNetns(), mine)
        // Entering a namespace by path runs the body on another thread, inside it.
        let (inside, tid) = try Namespaces.run(inNetworkNamespaceAt: "/proc/self/ns/net") {
            (try threadNetns(), Threads.currentID)
        }
        XCTAssertEqual(inside, mine)
        XCTAssertNotEqual(tid, caller)
        // An error inside is rethrown, and the caller is still where it was.
        struct Inside: Error {}
        XCTAssertThrowsError(try Namespaces.run(inNetworkNamespaceAt: "/proc/self/ns/net") { throw Inside() }) { error in
            XCTAssertTrue(error is Inside, "\(error)")
        }
        XCTAssertEqual(try threadNetns(), mine)
        XCTAssertThrowsError(try Namespaces.run(inNetworkNamespaceAt: "/nonexistent/netns") { 1 }) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .namespaceGone)
        }
    }
}
