// `netlab run` in the foreground: namespaces, exit codes, signals, errors.

import Foundation
import TestSupport
import XCTest

final class RunTests: XCTestCase {
    func testExitCodePassesThroughAndIsRecorded() throws {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--name", "three", "--network", "none", "--", "sh", "-c", "exit 3"])
        XCTAssertEqual(r.status, 3, "\(r)")
        let rec = try XCTUnwrap(h.inspect("three"))
        XCTAssertEqual(rec["status"] as? String, "exited")
        XCTAssertEqual(rec["exitCode"] as? Int, 3)
        // It stays listed by ps -a (not by ps) until removed.
        XCTAssertEqual(h.netlab("ps", ["--format", "json"]).jsonArray?.count, 0)
        XCTAssertEqual(h.netlab("ps", ["-a", "--format", "json"]).jsonArray?.compactMap { $0["name"] as? String }, ["three"])
        XCTAssertTrue(h.netlab("rm", ["three"]).ok)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("three")))
    }

    func testKilledCommandExitsWith128PlusSignal() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--rm", "--", "sh", "-c", "kill -KILL $$"])
        XCTAssertEqual(r.status, 137, "\(r)")
    }

    func testMissingCommandExecutableIs127() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--rm", "--", "/no/such/program"])
        XCTAssertEqual(r.status, 127, "\(r)")
        // Reported by the container's init itself, errno by name (no strerror after clone).
        XCTAssertEqual(r.stderr, "netlab: error: exec /no/such/program: ENOENT (No such file or directory)\n")
    }

    func testHostnameIsSet() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--rm", "--hostname", "box1", "--", "hostname"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(trimmed(r.stdout), "box1")
    }

    /// The container has a pid namespace of its own: its init is pid 1 there and the command is
    /// that init's only child (pid 2), and /proc shows that namespace.
    func testOwnPidNamespaceWithInitAsPid1() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--rm", "--", "sh", "-c", "echo $$ $PPID; ls /proc | grep -c '^[0-9]'"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "2 1")
        // init, sh, ls, grep: a handful, never the machine's processes.
        XCTAssertLessThanOrEqual(Int(lines.last ?? "") ?? 99, 5, r.stdout)
    }

    func testNoneModeHasItsOwnNetnsWithOnlyLoopback() throws {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--rm", "--network", "none", "--", "ip", "-j", "link", "show"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let names = (r.jsonArray ?? []).compactMap { $0["ifname"] as? String }
        XCTAssertEqual(names, ["lo"], r.stdout)
        let sys = h.netlab("run", ["--rm", "--", "ls", "/sys/class/net"])
        XCTAssertEqual(trimmed(sys.stdout), "lo", "\(sys)")
        let ns = h.netlab("run", ["--rm", "--", "readlink", "/proc/self/ns/net"])
        let mine = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        XCTAssertTrue(trimmed(ns.stdout).hasPrefix("net:["), "\(ns)")
        XCTAssertNotEqual(trimmed(ns.stdout), mine)
    }

    func testSIGTERMToForegroundNetlabStopsShellWithBackgroundJob() throws {
        try checkSignalStops(SIGTERM, name: "term")
    }

    func testSIGINTToForegroundNetlabStopsShellWithBackgroundJob() throws {
        try checkSignalStops(SIGINT, name: "int")
    }

    private func checkSignalStops(_ sig: Int32, name: String) throws {
        let h = NetlabHarness(self)
        let p = try h.startForeground(["--name", name, "--", "sh", "-c", "sleep 100 & wait"])
        addTeardownBlock { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let rec = try XCTUnwrap(h.waitRunning(name), "container never reached running")
        let pid = try XCTUnwrap((rec["pid"] as? Int).map(Int32.init))
        kill(p.processIdentifier, sig)
        // Far below the 100 s the background sleep would take.
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(p.isRunning, "netlab run did not stop on signal \(sig)")
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit)
        XCTAssertEqual(p.terminationStatus, 128 + sig)
        XCTAssertFalse(processIsAlive(pid), "the container init survived")
        XCTAssertEqual(h.inspect(name)?["exitCode"] as? Int, Int(128 + sig))
    }

    func testNameInUseIsRefusedAndLeavesTheFirstAlone() throws {
        let h = NetlabHarness(self)
        XCTAssertTrue(h.netlab("run", ["-d", "--name", "dup", "pause"]).ok)
        let r = h.netlab("run", ["--name", "dup", "--", "true"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.hasPrefix("netlab: error: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("already in use"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        let all = h.netlab("ps", ["-a", "--format", "json"]).jsonArray ?? []
        XCTAssertEqual(all.count, 1)
        XCTAssertEqual(all.first?["status"] as? String, "running")
    }

    func testNoSuchContainerErrors() {
        let h = NetlabHarness(self)
        for args in [["inspect", "ghost"], ["exec", "ghost", "--", "true"], ["rm", "ghost"], ["stop", "ghost"], ["logs", "ghost"]] {
            let r = h.netlab(args[0], Array(args.dropFirst()))
            XCTAssertEqual(r.status, 1, "\(args): \(r)")
            XCTAssertEqual(r.stderr, "netlab: error: no such container: ghost\n", "\(args)")
        }
    }

    func testContainerModeJoiningAMissingContainerLeavesNothing() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--name", "orphan", "--network", "container:ghost", "--", "true"])
        XCTAssertEqual(r.status, 1, "\(r)")
        XCTAssertTrue(r.stderr.contains("no such container: ghost"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("orphan")))
    }

    func testNamedNetworkWithoutBackendFailsCleanly() {
        let h = NetlabHarness(self)
        let r = h.netlab("run", ["--name", "n1", "--network", "somenet", "--", "true"])
        XCTAssertEqual(r.status, 1, "\(r)")
        XCTAssertTrue(r.stderr.hasPrefix("netlab: error: network somenet"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("n1")))
        XCTAssertFalse(isMountPoint(h.containerDir("n1") + "/netns"))
    }

    func testNotRootIsRefused() throws {
        let h = NetlabHarness(self)
        // The build directory must be reachable for another user; skip where it is not.
        let probe = runCommand(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", h.exe, "--help"])
        try XCTSkipUnless(probe.ok, "netlab not executable as nobody here: \(probe)")
        let r = runCommand(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", h.exe, "run",
                            "--run-dir", h.runDir, "--name", "x", "--", "true"])
        XCTAssertEqual(r.status, 1, "\(r)")
        XCTAssertTrue(r.stderr.hasPrefix("netlab: error: netlab run needs root"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("x")))
    }
}
