// Detached containers: ps, inspect, exec, logs, stop, rm, container:NAME, crash cleanup.

import Foundation
import TestSupport
import XCTest

final class DetachedTests: XCTestCase {
    func testDetachedLifecycle() throws {
        let h = NetlabHarness(self)
        let run = h.netlab("run", ["-d", "--name", "web", "--hostname", "webhost", "--",
                                   "sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000"])
        XCTAssertEqual(run.status, 0, "\(run)")
        let id = trimmed(run.stdout)
        XCTAssertEqual(id.count, 64)
        XCTAssertTrue(id.allSatisfy(\.isHexDigit), id)

        let ps = try XCTUnwrap(h.netlab("ps", ["--format", "json"]).jsonArray)
        XCTAssertEqual(ps.count, 1)
        XCTAssertEqual(ps.first?["name"] as? String, "web")
        XCTAssertEqual(ps.first?["status"] as? String, "running")
        XCTAssertTrue(h.netlab("ps", []).stdout.contains(String(id.prefix(12))))

        let rec = try XCTUnwrap(h.inspect("web"))
        XCTAssertEqual(rec["id"] as? String, id)
        let pid = try XCTUnwrap((rec["pid"] as? Int).map(Int32.init))
        XCTAssertTrue(processIsAlive(pid))
        let netns = try XCTUnwrap(rec["netnsPath"] as? String)
        XCTAssertEqual(netns, h.containerDir("web") + "/netns")
        XCTAssertTrue(isMountPoint(netns), "netns is not bind-mounted")
        XCTAssertEqual(inode(netns), inode("/proc/\(pid)/ns/net"))
        XCTAssertNotEqual(inode(netns), inode("/proc/self/ns/net"))
        // By id prefix too.
        XCTAssertEqual(h.inspect(String(id.prefix(8)))?["name"] as? String, "web")

        let host = h.netlab("exec", ["web", "--", "hostname"])
        XCTAssertEqual(host.status, 0, "\(host)")
        XCTAssertEqual(trimmed(host.stdout), "webhost")
        // exec enters the pid namespace (sees the container's init as pid 1) and the netns.
        let inside = h.netlab("exec", ["web", "--", "sh", "-c", "cat /proc/1/comm; readlink /proc/self/ns/net"])
        XCTAssertEqual(inside.status, 0, "\(inside)")
        let lines = inside.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.last, "net:[\(inode(netns) ?? 0)]")
        XCTAssertEqual(h.netlab("exec", ["web", "--", "sh", "-c", "exit 5"]).status, 5)
        XCTAssertEqual(trimmed(h.netlab("exec", ["-i", "web", "--", "cat"], stdin: "via-stdin").stdout), "via-stdin")

        let logs = h.netlab("logs", ["web"])
        XCTAssertEqual(logs.status, 0, "\(logs)")
        XCTAssertTrue(logs.stdout.contains("to-stdout") && logs.stdout.contains("to-stderr"), logs.stdout)

        let rmRunning = h.netlab("rm", ["web"])
        XCTAssertEqual(rmRunning.status, 1)
        XCTAssertTrue(rmRunning.stderr.contains("is running"), rmRunning.stderr)

        let stop = h.netlab("stop", ["web"])
        XCTAssertEqual(stop.status, 0, "\(stop)")
        XCTAssertFalse(processIsAlive(pid))
        let stopped = try XCTUnwrap(h.inspect("web"))
        XCTAssertEqual(stopped["status"] as? String, "exited")
        XCTAssertEqual(stopped["exitCode"] as? Int, 128 + Int(SIGTERM))
        XCTAssertEqual(h.netlab("ps", ["--format", "json"]).jsonArray?.count, 0)
        XCTAssertEqual(h.netlab("ps", ["-a", "--format", "json"]).jsonArray?.count, 1)

        XCTAssertTrue(h.netlab("rm", ["web"]).ok)
        XCTAssertFalse(isMountPoint(netns))
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("web")))
        XCTAssertEqual(h.netlab("ps", ["-a", "--format", "json"]).jsonArray?.count, 0)
    }

    func testPauseContainerStopsOnSIGTERMWithZero() throws {
        let h = NetlabHarness(self)
        XCTAssertTrue(h.netlab("run", ["-d", "--name", "pod", "pause"]).ok)
        let rec = try XCTUnwrap(h.inspect("pod"))
        XCTAssertEqual(rec["command"] as? [String], [])
        XCTAssertEqual(h.netlab("stop", ["-t", "30", "pod"]).status, 0)
        XCTAssertEqual(h.inspect("pod")?["exitCode"] as? Int, 0)
    }

    func testContainerModeSharesTheNetworkNamespace() throws {
        let h = NetlabHarness(self)
        XCTAssertTrue(h.netlab("run", ["-d", "--name", "pod", "--network", "none", "pause"]).ok)
        let podNetns = try XCTUnwrap(h.inspect("pod")?["netnsPath"] as? String)
        // No network backend here: bring lo up inside the pod's netns ourselves.
        XCTAssertTrue(h.netlab("exec", ["pod", "--", "ip", "link", "set", "lo", "up"]).ok)

        let srv = h.netlab("run", ["-d", "--name", "srv", "--network", "container:pod", "--",
                                   "sh", "-c", "readlink /proc/self/ns/net; nc -l 127.0.0.1 5555"])
        XCTAssertEqual(srv.status, 0, "\(srv)")
        let client = h.netlab("run", ["--rm", "--network", "container:pod", "--", "sh", "-c",
            "readlink /proc/self/ns/net; for i in $(seq 100); do echo hello-pod | nc -N 127.0.0.1 5555 && exit 0; sleep 0.1; done; exit 1"])
        XCTAssertEqual(client.status, 0, "\(client)")
        let expected = "net:[\(inode(podNetns) ?? 0)]"
        XCTAssertEqual(client.stdout.split(separator: "\n").first.map(String.init), expected)
        // The server saw the message; its log starts with the same netns.
        XCTAssertEqual(h.netlab("stop", ["srv"]).status, 0)
        let log = h.netlab("logs", ["srv"]).stdout
        XCTAssertEqual(log.split(separator: "\n").map(String.init), [expected, "hello-pod"], log)
        let srvRec = try XCTUnwrap(h.inspect("srv"))
        XCTAssertEqual(srvRec["networkMode"] as? String, "container:pod")
        XCTAssertEqual((srvRec["networks"] as? [String: Any])?.count, 0)
    }

    /// -p syntax is checked before anything else (the ports, --ip and --mac reaching the plugins
    /// are tested on a simulated host in NetworkModeTests).
    func testInvalidPortMappingsAreRefused() throws {
        let h = NetlabHarness(self)
        for bad in ["80", "x:80", "1.2.3.4:0:80", "8080:80/icmp", "999999:80", "nothost:80:80", "[::1:80:80"] {
            let e = h.netlab("run", ["--name", "bad", "-p", bad, "--", "true"])
            XCTAssertEqual(e.status, 1, "\(bad): \(e)")
            XCTAssertTrue(e.stderr.hasPrefix("netlab: error: invalid"), "\(bad): \(e.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("bad")))
    }

    /// A foreground `netlab run` killed with SIGKILL takes its container with it (the init has
    /// PR_SET_PDEATHSIG); `rm -f` then removes the netns bind mount and the state.
    func testKilledRuntimeIsCleanedUpByRmForce() throws {
        let h = NetlabHarness(self)
        let p = try h.startForeground(["--name", "crash", "--", "sleep", "1000"])
        let rec = try XCTUnwrap(h.waitRunning("crash"))
        let pid = try XCTUnwrap((rec["pid"] as? Int).map(Int32.init))
        let netns = try XCTUnwrap(rec["netnsPath"] as? String)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let deadline = Date().addingTimeInterval(10)
        while processIsAlive(pid) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(processIsAlive(pid), "the container should die with its runtime process")
        XCTAssertEqual(h.inspect("crash")?["status"] as? String, "exited")
        XCTAssertTrue(isMountPoint(netns), "the crash leaves the netns bind mount for rm -f")

        let rm = h.netlab("rm", ["-f", "crash"])
        XCTAssertEqual(rm.status, 0, "\(rm)")
        XCTAssertFalse(processIsAlive(pid))
        XCTAssertFalse(isMountPoint(netns))
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("crash")))
        XCTAssertEqual(h.netlab("ps", ["-a", "--format", "json"]).jsonArray?.count, 0)
    }

    func testDetachedAutoRemoveRemovesTheContainerWhenItExits() throws {
        let h = NetlabHarness(self)
        XCTAssertTrue(h.netlab("run", ["-d", "--rm", "--name", "brief", "--", "sleep", "1000"]).ok)
        let rec = try XCTUnwrap(h.inspect("brief"))
        // The reaper waiting for it holds nothing of its starter's: its own session, stdio on
        // /dev/null (else `run -d --rm` would keep a caller's pipe open until the container exits).
        let reaper = try XCTUnwrap(processes(withArguments: ["__reap", "--run-dir", h.runDir, "brief"]).first)
        XCTAssertEqual(sessionID(of: reaper), reaper)
        for fd in 0...2 {
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(reaper)/fd/\(fd)"), "/dev/null")
        }
        let netns = try XCTUnwrap(rec["netnsPath"] as? String)
        XCTAssertTrue(isMountPoint(netns))
        XCTAssertEqual(h.netlab("stop", ["brief"]).status, 0)
        let deadline = Date().addingTimeInterval(30)
        while FileManager.default.fileExists(atPath: h.containerDir("brief")) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("brief")), "not removed after exit")
        XCTAssertFalse(isMountPoint(netns))
    }

    /// A root filesystem of /bin/sh and its libraries: run and exec both see only it.
    func testRootfsIsTheContainersRootForRunAndExec() throws {
        let h = NetlabHarness(self)
        let root = h.world.tempDirectory("rootfs")
        let libs = runCommand(["ldd", "/bin/sh"]).stdout.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
            .filter { $0.hasPrefix("/") }.map(String.init)
        for dir in ["proc", "sys", "bin"] { try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true) }
        for file in ["/bin/sh"] + libs {
            let target = root + file
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(runCommand(["cp", "-L", file, target]).ok)
        }
        let entries = Set(try FileManager.default.contentsOfDirectory(atPath: root).map { "/" + $0 })
        let r = h.netlab("run", ["--rm", "--rootfs", root, "--", "/bin/sh", "-c", "echo /*"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(Set(trimmed(r.stdout).split(separator: " ").map(String.init)), entries)
        XCTAssertTrue(h.netlab("run", ["-d", "--name", "rf", "--rootfs", root, "pause"]).ok)
        let e = h.netlab("exec", ["rf", "--", "/bin/sh", "-c", "echo /*"])
        XCTAssertEqual(Set(trimmed(e.stdout).split(separator: " ").map(String.init)), entries, "\(e)")
        let missing = h.netlab("run", ["--rm", "--rootfs", root + "/nope", "--", "true"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.hasPrefix("netlab: error: --rootfs"), missing.stderr)
    }

    /// A runtime that died between claiming the name and writing the state leaves a bare
    /// directory: the name is in use until `rm -f` removes it.
    func testRmForceRemovesADirectoryWithoutState() throws {
        let h = NetlabHarness(self)
        try FileManager.default.createDirectory(atPath: h.containerDir("half"), withIntermediateDirectories: true)
        XCTAssertTrue(h.netlab("run", ["--name", "half", "--", "true"]).stderr.contains("already in use"))
        XCTAssertEqual(h.netlab("rm", ["half"]).stderr, "netlab: error: no such container: half\n")
        XCTAssertEqual(h.netlab("rm", ["-f", "half"]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.containerDir("half")))
        XCTAssertEqual(h.netlab("run", ["--rm", "--name", "half", "--", "true"]).status, 0)
    }

    func testHostModeUsesTheCallersNetns() throws {
        let h = NetlabHarness(self)
        // Read only: the netns is the test's own, nothing is changed in it.
        let r = h.netlab("run", ["--rm", "--network", "host", "--", "readlink", "/proc/self/ns/net"])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(trimmed(r.stdout), try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net"))
    }
}
