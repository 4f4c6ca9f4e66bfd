import Glibc
import XCTest
@testable import SystemKit

final class ErrnoTests: XCTestCase {
    func testKindsFollowTheErrno() {
        XCTAssertEqual(SystemError.Kind(.noSuchFileOrDirectory), .notFound)
        XCTAssertEqual(SystemError.Kind(.noSuchDevice), .notFound)
        XCTAssertEqual(SystemError.Kind(.exists), .exists)
        XCTAssertEqual(SystemError.Kind(.busy), .busy)
        XCTAssertEqual(SystemError.Kind(.tryAgain), .tryAgain)
        XCTAssertEqual(SystemError.Kind(.permissionDenied), .permission)
        XCTAssertEqual(SystemError.Kind(.readOnlyFileSystem), .permission)
        XCTAssertEqual(SystemError.Kind(.noSpace), .exhausted)
        XCTAssertEqual(SystemError.Kind(.tooManyOpenFiles), .exhausted)
        XCTAssertEqual(SystemError.Kind(.invalidArgument), .invalid)
        XCTAssertEqual(SystemError.Kind(.notSupported), .unsupported)
        XCTAssertEqual(SystemError.Kind(.ioError), .other)
    }

    func testDescriptionNamesCallObjectAndErrno() {
        let e = SystemError(operation: "open", object: "/x", errno: ENOENT)
        XCTAssertEqual(e.description, "open /x: ENOENT (No such file or directory)")
        let n = SystemError(operation: "add element", object: "inet netlab map pm_v4", errno: EEXIST,
                            message: "kernel says", subsystem: "nftables", index: 2)
        XCTAssertEqual(n.description, "nftables: add element inet netlab map pm_v4: EEXIST (File exists) (batch operation #2): kernel says")
        XCTAssertEqual(Errno(9999).name, "errno 9999")
    }

    func testExplicitKindWins() {
        let e = SystemError(operation: "open netns", object: "/run/netns/x", errno: ENOENT, kind: .namespaceGone)
        XCTAssertEqual(e.kind, .namespaceGone)
        XCTAssertTrue(e.isNotFound)
    }
}
