// network create/ls/inspect/rm, check, gc, status, host add/ls/rm, errors and crash cleanup,
// against simulated hosts.

import Foundation
import TestSupport
import XCTest

final class NetworkCommandTests: XCTestCase {
    func testNetworkCreateListInspectRemove() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["network", "create"], ["n1"]).ok)
        XCTAssertTrue(h.netlab(["network", "create"], ["--ipv6", "n2"]).ok)
        let clash = h.netlab(["network", "create"], ["--subnet", "10.89.0.128/25", "n3"])
        XCTAssertEqual(clash.status, 1, "\(clash)")
        XCTAssertTrue(clash.stderr.contains("overlaps"), clash.stderr)
        XCTAssertEqual(h.netlab(["network", "create"], ["n1"]).status, 1)

        let conf = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            h.runDir + "/hosts/\(h.host)/networks/n1.conflist"))) as? [String: Any])
        let plugins = (conf["plugins"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        XCTAssertEqual(plugins, ["bridge", "portmap"])
        let ls = h.netlab(["network", "ls"])
        XCTAssertTrue(ls.stdout.contains("nl-n1"), ls.stdout)
        XCTAssertTrue(ls.stdout.contains("10.89.0.0/24"), ls.stdout)
        XCTAssertTrue(ls.stdout.contains("10.89.1.0/24,fd89::/64"), ls.stdout)
        XCTAssertTrue(ls.stdout.contains("netlab0"), ls.stdout)

        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "c1", "--network", "n2", "pause"]).ok)
        let ips = (h.inspect("c1")?["networks"] as? [String: Any])?["n2"] as? [String: Any]
        let addrs = (ips?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        XCTAssertTrue(addrs.contains { $0.hasPrefix("10.89.1.") } && addrs.contains { $0.hasPrefix("fd89::") }, "\(addrs)")
        XCTAssertEqual(h.bridgePorts("nl-n2").count, 1)
        let inspect = h.netlab(["network", "inspect"], ["n2"]).jsonObject
        XCTAssertEqual((inspect?["containers"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["c1"])

        let busy = h.netlab(["network", "rm"], ["n2"])
        XCTAssertEqual(busy.status, 1)
        XCTAssertTrue(busy.stderr.hasPrefix("netlab: error: network n2 is in use by c1"), busy.stderr)
        XCTAssertTrue(h.netlab(["rm"], ["-f", "c1"]).ok)
        XCTAssertTrue(h.netlab(["network", "rm"], ["n2", "n1"]).ok)
        XCTAssertFalse(h.netlab(["network", "ls"]).stdout.contains("nl-n1"))
        XCTAssertEqual(h.netlab(["network", "rm"], ["bridge"]).status, 1)
    }

    func testErrorsAreOneLineAndLeaveNothing() throws {
        let h = HostHarness(self)
        let unknown = h.netlab(["run"], ["--name", "u1", "--network", "nosuch", "pause"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.hasPrefix("netlab: error: network nosuch: no such network (see netlab network ls"), unknown.stderr)
        XCTAssertNil(h.inspect("u1"))
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "same", "--network", "bridge", "pause"]).ok)
        let dup = h.netlab(["run"], ["-d", "--name", "same", "--network", "bridge", "pause"])
        XCTAssertEqual(dup.status, 1)
        XCTAssertTrue(dup.stderr.hasPrefix("netlab: error: the container name \"same\" is already in use"), dup.stderr)
        XCTAssertEqual(try h.reservations("bridge").count, 1)
        let noHost = h.netlab(["ps"], on: "nosuchhost")
        XCTAssertEqual(noHost.status, 1)
        XCTAssertTrue(noHost.stderr.contains("no such host: nosuchhost"), noHost.stderr)
        // Not root: one line, before anything is made.
        let nobody = runCommand(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", h.exe, "run",
                                 "--run-dir", h.runDir, "--host", h.host, "--network", "bridge", "pause"])
        XCTAssertEqual(nobody.status, 1, "\(nobody)")
        XCTAssertTrue(nobody.stderr.hasPrefix("netlab: error: netlab run needs root"), nobody.stderr)
    }

    func testCheckStatusAndGC() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "k1", "--network", "bridge", "pause"]).ok)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "k2", "--network", "none", "pause"]).ok)
        let ok = h.netlab(["check"])
        XCTAssertEqual(ok.status, 0, "\(ok)")
        XCTAssertTrue(ok.stdout.contains("k1\tbridge\tok") && ok.stdout.contains("k2\tnone\tok"), ok.stdout)
        let status = h.netlab(["status"])
        XCTAssertEqual(status.status, 0, "\(status)")
        XCTAssertTrue(status.stdout.contains("bridge\tready"), status.stdout)

        // Break k1's wiring behind the runtime's back: CHECK notices.
        let veth = try XCTUnwrap(h.bridgePorts("netlab0").first)
        XCTAssertTrue(runCommand(["ip", "-n", h.netns, "link", "del", veth]).ok)
        let bad = h.netlab(["check"], ["k1"])
        XCTAssertEqual(bad.status, 1, "\(bad)")
        XCTAssertTrue(bad.stdout.contains("k1\tbridge\tFAIL"), bad.stdout)

        // gc removes exited containers with their attachments and keeps running ones.
        XCTAssertTrue(h.netlab(["stop"], ["-t", "1", "k1"]).ok)
        let gc = h.netlab(["gc"])
        XCTAssertEqual(gc.status, 0, "\(gc)")
        XCTAssertTrue(gc.stdout.contains("removed k1"), gc.stdout)
        XCTAssertNil(h.inspect("k1"))
        XCTAssertNotNil(h.inspect("k2"))
        XCTAssertEqual(try h.reservations("bridge"), [])
        let cache = try h.cacheEntries()
        XCTAssertFalse(cache.contains { $0.hasPrefix("bridge-") }, "\(cache)")
    }

    /// A SIGKILLed foreground `netlab run`: its container dies with it, and gc (or rm -f)
    /// removes the netns, veth, reservation, nft elements and cache entry.
    func testKilledForegroundRunIsCleanedByGCAndRmF() throws {
        // The third round loses the netns too (its bind mount gone): DEL must still release all.
        for (round, cleaner) in [["gc"], ["rm", "-f", "fg"], ["rm", "-f", "fg"]].enumerated() {
            let h = HostHarness(self)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: h.exe)
            p.arguments = ["run", "--run-dir", h.runDir, "--cni-path", BuiltProducts.directory, "--host", h.host,
                           "--name", "fg", "--network", "bridge", "-p", "8181:80", "--", "sleep", "300"]
            p.standardInput = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let rec = try XCTUnwrap(h.waitRunning("fg"))
            let pid = try XCTUnwrap(rec["pid"] as? Int)
            XCTAssertEqual(h.bridgePorts("netlab0").count, 1)
            XCTAssertTrue(try h.nftTable().contains("8181"))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // The container's init dies with its runtime.
            let deadline = Date().addingTimeInterval(10)
            while processIsAlive(Int32(pid)) && Date() < deadline { usleep(20_000) }
            XCTAssertFalse(processIsAlive(Int32(pid)))
            let nsMount = h.runDir + "/hosts/\(h.host)/containers/fg/netns"
            if round == 2 {
                XCTAssertEqual(umount2(nsMount, Int32(MNT_DETACH)), 0)
                XCTAssertFalse(isMountPoint(nsMount))
            }

            let r = h.netlab([cleaner[0]], Array(cleaner.dropFirst()))
            XCTAssertEqual(r.status, 0, "\(cleaner): \(r)")
            XCTAssertNil(h.inspect("fg"))
            XCTAssertFalse(isMountPoint(nsMount))
            XCTAssertEqual(h.bridgePorts("netlab0"), [], "\(cleaner)")
            XCTAssertEqual(try h.reservations("bridge"), [], "\(cleaner)")
            XCTAssertFalse(try h.nftTable().contains("8181"), "\(cleaner)")
            XCTAssertEqual(try h.cacheEntries(), [], "\(cleaner)")
        }
    }

    func testHostAddListRemove() throws {
        let h = HostHarness(self)
        let other = h.addHost()
        let ls = h.netlab(["host", "ls"], hostless: true)
        XCTAssertTrue(ls.stdout.contains(h.host) && ls.stdout.contains(other), ls.stdout)
        let a1 = try XCTUnwrap(h.underlayAddress(h.host)), a2 = try XCTUnwrap(h.underlayAddress(other))
        XCTAssertNotEqual(a1, a2)
        // The two hosts reach each other over the underlay.
        XCTAssertTrue(runCommand(["ip", "netns", "exec", "netlab-" + h.host, "ping", "-c", "1", "-W", "2", a2]).ok)

        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "x", "--network", "bridge", "pause"], on: other).ok)
        let refused = h.netlab(["host", "rm"], [other], hostless: true)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("has containers (x)"), refused.stderr)
        XCTAssertTrue(h.netlab(["host", "rm"], ["-f", other], hostless: true).ok)
        XCTAssertFalse(runCommand(["ip", "netns", "list"]).stdout.contains("netlab-" + other + " "))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/run/netns/netlab-" + other))
        let ports = h.world.ipJSON("netlab-underlay", ["link", "show"]).compactMap { $0["ifname"] as? String }
        XCTAssertFalse(ports.contains("u-" + other), "\(ports)")
        XCTAssertTrue(ports.contains("u-" + h.host), "\(ports)")
    }
}

final class DemoTests: XCTestCase {
    /// `netlab demo` on its own simulated hosts: every row passes, and it removes what it made.
    func testDemoPassesAndCleansUp() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let runDir = world.tempDirectory("demo")
        let r = runCommand([BuiltProducts.path("netlab"), "demo", "--run-dir", runDir, "--cni-path", BuiltProducts.directory],
                           timeout: 120)
        XCTAssertEqual(r.status, 0, "\(r)")
        for mode in ["none", "host", "container", "bridge", "bridge (masquerade)", "bridge (-p 8080:80)"] {
            XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasPrefix(mode + " ") && $0.contains(" pass ") },
                          "\(mode): \(r.stdout)")
        }
        let ns = runCommand(["ip", "netns", "list"]).stdout
        XCTAssertFalse(ns.contains("netlab-nldemo-a") || ns.contains("netlab-nldemo-out"), ns)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: runDir + "/hosts"), [])
    }
}
