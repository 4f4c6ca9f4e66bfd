import Foundation
import Glibc
import XCTest
@testable import SystemKit

final class SubprocessTests: XCTestCase {
    func run(_ script: String, _ args: [String] = [], environment: [String: String] = [:],
             stdin: [UInt8] = []) throws -> Subprocess.Output {
        try Subprocess.run("/bin/sh", arguments: ["-c", script, "sh"] + args, environment: environment, stdin: stdin)
    }

    func testExitCodes() throws {
        XCTAssertEqual(try run("exit 0").status, .exited(0))
        let r = try run("exit 7")
        XCTAssertEqual(r.status, .exited(7))
        XCTAssertEqual(r.status.shellExitCode, 7)
        XCTAssertEqual(try run("exit 255").status.shellExitCode, 255)
    }

    func testDeathBySignalIs128PlusTheSignal() throws {
        let killed = try run("kill -KILL $$")
        XCTAssertEqual(killed.status, .signaled(SIGKILL))
        XCTAssertEqual(killed.status.shellExitCode, 128 + 9)
        XCTAssertEqual(try run("kill -TERM $$").status.shellExitCode, 128 + 15)
    }

    func testStdoutAndStderrAreCapturedApart() throws {
        let r = try run("printf out; printf err >&2; printf more")
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "outmore")
        XCTAssertEqual(String(decoding: r.stderr, as: UTF8.self), "err")
    }

    func testArgumentsArePassedVerbatim() throws {
        let r = try run(#"printf '%s|' "$@""#, ["a b", "", "c;d", "$HOME"])
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "a b||c;d|$HOME|")
    }

    func testAMegabyteOfStdinComesBackWhileStderrIsWritten() throws {
        // More than any pipe buffer in both directions: feeding and draining must interleave.
        let input = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let r = try run("cat; echo done >&2", stdin: input)
        XCTAssertEqual(r.status, .exited(0))
        XCTAssertEqual(r.stdout.count, input.count)
        XCTAssertTrue(r.stdout == input, "stdout differs from stdin")
        XCTAssertEqual(String(decoding: r.stderr, as: UTF8.self), "done\n")
    }

    func testAChildThatIgnoresItsStdinNeitherBlocksNorKillsUs() throws {
        let input = [UInt8](repeating: 0x41, count: 1 << 20)
        let r = try run("exit 3", stdin: input)
        XCTAssertEqual(r.status, .exited(3))
    }

    func testTheEnvironmentIsExactlyTheOneGiven() throws {
        let r = try Subprocess.run("/usr/bin/env", environment: ["A": "1", "B": "two words", "EMPTY": ""])
        XCTAssertEqual(r.status, .exited(0))
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.sorted(), ["A=1", "B=two words", "EMPTY="])
        let none = try Subprocess.run("/usr/bin/env", environment: [:])
        XCTAssertEqual(none.stdout, [], "nothing inherited from the test process")
    }

    func testAMissingExecutableThrowsNamingIt() {
        XCTAssertThrowsError(try Subprocess.run("/nonexistent/tool", environment: [:])) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.operation, "posix_spawn")
            XCTAssertEqual(e?.object, "/nonexistent/tool")
            XCTAssertEqual(e?.kind, .notFound)
        }
    }
}

final class WaitStatusTests: XCTestCase {
    func testDecoding() {
        // Raw waitpid statuses as the kernel builds them: exit code in bits 8-15; signal in
        // bits 0-6, 0x80 when a core was dumped.
        XCTAssertEqual(WaitStatus(raw: 0x0000), .exited(0))
        XCTAssertEqual(WaitStatus(raw: 0x0100), .exited(1))
        XCTAssertEqual(WaitStatus(raw: 0x7f00), .exited(127))
        XCTAssertEqual(WaitStatus(raw: 0xff00), .exited(255))
        XCTAssertEqual(WaitStatus(raw: 0x0009), .signaled(9))
        XCTAssertEqual(WaitStatus(raw: 0x000f), .signaled(15))
        XCTAssertEqual(WaitStatus(raw: 0x008b), .signaled(11), "core dumped")
        XCTAssertEqual(WaitStatus(raw: 0x008b).shellExitCode, 139)
        XCTAssertEqual(WaitStatus(raw: 0x0200).shellExitCode, 2)
    }
}

final class ProcessStatTests: XCTestCase {
    /// A /proc/PID/stat line: pid, (comm), then fields 3 (state) … 22 (starttime) and a few more.
    func statLine(comm: String, state: String = "S", startTime: String = "987654") -> String {
        let middle = (4...21).map { String($0) }
        return (["4242", "(\(comm))", state] + middle + [startTime, "100", "200"]).joined(separator: " ") + "\n"
    }

    func testParsesPlainAndHostileCommandNames() throws {
        for comm in ["bash", "my prog", "a) b", ") S 1 2 3 (", "x)", "((", " "] {
            let st = try XCTUnwrap(ProcessStat(text: statLine(comm: comm)), comm)
            XCTAssertEqual(st.state, "S", comm)
            XCTAssertEqual(st.startTime, 987654, comm)
        }
        XCTAssertEqual(ProcessStat(text: statLine(comm: "z", state: "Z"))?.state, "Z")
    }

    func testRejectsWhatIsNoStatLine() {
        XCTAssertNil(ProcessStat(text: ""))
        XCTAssertNil(ProcessStat(text: "4242 (no close paren S 1 2 3"))
        XCTAssertNil(ProcessStat(text: "4242 (short) S 1 2 3"))
        XCTAssertNil(ProcessStat(text: statLine(comm: "x", startTime: "soon")))
    }

    func testReadsTheRunningProcess() throws {
        let me = try XCTUnwrap(ProcessStat.read(pid: getpid()))
        XCTAssertEqual(me.state, "R", "a process reading its own stat is running")
        XCTAssertTrue(ProcessStat.isAlive(pid: getpid(), startTime: me.startTime))
        XCTAssertTrue(ProcessStat.isAlive(pid: getpid(), startTime: nil))
        XCTAssertFalse(ProcessStat.isAlive(pid: getpid(), startTime: me.startTime + 1), "a recycled pid is another process")
        let pidMax = try XCTUnwrap(Files.readText("/proc/sys/kernel/pid_max").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        XCTAssertNil(ProcessStat.read(pid: pidMax + 1))
        XCTAssertFalse(ProcessStat.isAlive(pid: pidMax + 1, startTime: nil))
    }

    func testAZombieIsNotAliveAndWaitReapsIt() throws {
        var pid: pid_t = 0
        let rc = withCStringArray(["/bin/sh", "-c", "exit 4"]) { argv in
            withCStringArray([]) { envp in posix_spawn(&pid, "/bin/sh", nil, nil, argv, envp) }
        }
        XCTAssertEqual(rc, 0)
        let deadline = Date.now.addingTimeInterval(10)
        while ProcessStat.read(pid: pid)?.state != "Z" && Date.now < deadline { usleep(1000) }
        XCTAssertEqual(ProcessStat.read(pid: pid)?.state, "Z")
        XCTAssertFalse(ProcessStat.isAlive(pid: pid, startTime: nil))
        XCTAssertEqual(try Processes.wait(pid), .exited(4))
        XCTAssertThrowsError(try Processes.wait(pid)) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .noChild)
        }
    }

    func testSignalEndsAChildOfOurs() throws {
        var pid: pid_t = 0
        let rc = withCStringArray(["/bin/sleep", "30"]) { argv in
            withCStringArray([]) { envp in posix_spawn(&pid, "/bin/sleep", nil, nil, argv, envp) }
        }
        XCTAssertEqual(rc, 0)
        try Processes.signal(pid, SIGTERM)
        XCTAssertEqual(try Processes.wait(pid), .signaled(SIGTERM))
    }
}

final class EnvironmentTests: XCTestCase {
    func testCurrentMatchesGetenv() {
        setenv("NETLAB_SYSTEMKIT_TEST", "a=b c", 1)
        defer { unsetenv("NETLAB_SYSTEMKIT_TEST") }
        XCTAssertEqual(Environment["NETLAB_SYSTEMKIT_TEST"], "a=b c")
        XCTAssertEqual(Environment.current["NETLAB_SYSTEMKIT_TEST"], "a=b c", "split at the first '=' only")
        XCTAssertEqual(Environment.current["PATH"], String(cString: getenv("PATH")))
        XCTAssertNil(Environment["NETLAB_SYSTEMKIT_UNSET"])
    }
}
