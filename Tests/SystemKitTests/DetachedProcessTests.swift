// Subprocess.startDetached: the child is a session leader, its stdio is /dev/null, and a
// descriptor the caller left inheritable does not reach it. Runs without root.

import Glibc
import XCTest
import SystemKit

final class DetachedProcessTests: XCTestCase {
    func testDetachedChildHasItsOwnSessionAndNothingOfTheCallers() throws {
        let dir = "/tmp/systemkit-detached-\(getpid())"
        try Files.makeDirectories(dir)
        defer { XCTAssertNoThrow(try Files.removeTree(dir)) }
        // A pipe without close-on-exec: an ordinary spawn would hand it on.
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let leaked = fds[1]
        let script = """
            read -r _ _ _ _ _ sid _ < /proc/$$/stat
            echo "$$ $sid $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/2) $([ -e /proc/$$/fd/\(leaked) ] && echo leaked || echo closed)" > \(dir)/out
            """
        let pid = try Subprocess.startDetached("/bin/sh", arguments: ["-c", script], environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(try Processes.wait(pid), .exited(0))
        let out = try XCTUnwrap(try Files.readText(dir + "/out"))
        XCTAssertEqual(out, "\(pid) \(pid) /dev/null /dev/null closed\n")
    }

    func testMissingExecutableThrowsNamingIt() {
        XCTAssertThrowsError(try Subprocess.startDetached("/no/such/program", environment: [:])) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.operation, "posix_spawn")
            XCTAssertEqual(e?.object, "/no/such/program")
            XCTAssertEqual(e?.kind, .notFound)
        }
    }
}
