// netlab behaving as a Docker user expects, driven through the executable on simulated hosts:
// a stopped container gives back its address, veth and ports and `start` attaches it again;
// shared network namespaces are protected on rm and reported by check; options that cannot
// apply are refused; colliding networks are refused naming both; hints repeat --host.

import Foundation
import NetlabDemo
import TestSupport
import XCTest

/// The repository's root (this file is Tests/NetlabTests/…).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

final class DockerSemanticsTests: XCTestCase {
    /// What a stopped container still holds on the host, read back from the kernel and disk.
    private func held(_ h: HostHarness, port: String) throws -> (veths: Int, reservations: [String], portInNft: Bool, cache: [String]) {
        (h.bridgePorts("netlab0").count, try h.reservations("bridge"), try h.nftTable().contains(port),
         try h.cacheEntries().filter { $0.hasPrefix("bridge-") })
    }

    func testStopReleasesEverythingAndStartAttachesAgain() throws {
        let h = HostHarness(self)
        let out = h.addHost()
        let myAddr = try XCTUnwrap(h.underlayAddress(h.host))
        let server = ["--", "python3", "-c", DemoScripts.server(port: 80, reply: "web80")]
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "web", "--network", "bridge", "-p", "8080:80"] + server).ok)
        let first = try held(h, port: "8080")
        XCTAssertEqual(first.veths, 1)
        XCTAssertEqual(first.reservations.count, 1)
        XCTAssertTrue(first.portInNft)

        let stop = h.netlab(["stop"], ["-t", "2", "web"])
        XCTAssertEqual(stop.status, 0, "\(stop)")
        XCTAssertEqual(trimmed(stop.stdout), "web")
        let stopped = try held(h, port: "8080")
        XCTAssertEqual(stopped.veths, 0, "veth kept by a stopped container")
        XCTAssertEqual(stopped.reservations, [], "address kept by a stopped container")
        XCTAssertFalse(stopped.portInNft, "published port kept by a stopped container")
        XCTAssertEqual(stopped.cache, [])
        let rec = try XCTUnwrap(h.inspect("web"))
        XCTAssertEqual(rec["status"] as? String, "exited")
        XCTAssertEqual((rec["networks"] as? [String: Any])?.count, 0)
        XCTAssertFalse(isMountPoint(h.runDir + "/hosts/\(h.host)/containers/web/netns"))
        // ps -a shows no port for it (Docker's way), and the port is free for another container.
        let ps = h.netlab(["ps"], ["-a"]).stdout
        XCTAssertFalse(ps.contains("8080->80"), ps)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "other", "--network", "bridge", "-p", "8080:81", "pause"]).ok)

        // start: refused while the port is taken, naming the holder by name and state.
        let busy = h.netlab(["start"], ["web"])
        XCTAssertEqual(busy.status, 1, "\(busy)")
        XCTAssertEqual(trimmed(busy.stderr), "netlab: error: host port 8080/tcp is already published by container other "
            + "(running, -p 8080->81/tcp): stop it first (netlab stop --run-dir \(h.runDir) --host \(h.host) "
            + "--cni-path \(BuiltProducts.directory) other) or choose another host port")
        XCTAssertEqual(h.inspect("web")?["status"] as? String, "exited")
        XCTAssertEqual(try h.reservations("bridge").count, 1, "a refused start holds nothing")

        XCTAssertTrue(h.netlab(["rm"], ["-f", "other"]).ok)
        let start = h.netlab(["start"], ["web"])
        XCTAssertEqual(start.status, 0, "\(start)")
        XCTAssertEqual(trimmed(start.stdout), "web")
        XCTAssertNotNil(h.waitRunning("web"))
        XCTAssertEqual(h.bridgePorts("netlab0").count, 1)
        XCTAssertTrue(try h.nftTable().contains("8080"))
        let r = h.netlab(["run"], ["--rm", "--network", "host", "--", "python3", "-c", DemoScripts.client(myAddr, port: 8080)], on: out)
        XCTAssertEqual(trimmed(r.stdout), "web80", "\(r)")
        let check = h.netlab(["check"], ["web"])
        XCTAssertEqual(check.status, 0, "\(check)")
    }

    /// A detached container whose command ends by itself releases its networks too (its reaper
    /// runs CNI DEL), and a foreground one on its way out.
    func testContainerThatExitsReleasesItsNetwork() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "brief", "--network", "bridge", "-p", "8181:80", "--", "sleep", "1"]).ok)
        let deadline = Date().addingTimeInterval(30)
        while (try h.reservations("bridge")).count > 0 && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try h.reservations("bridge"), [])
        XCTAssertEqual(h.bridgePorts("netlab0"), [])
        XCTAssertFalse(try h.nftTable().contains("8181"))
        XCTAssertEqual(h.inspect("brief")?["status"] as? String, "exited")

        let fg = h.netlab(["run"], ["--name", "fg", "--network", "bridge", "-p", "8182:80", "--", "true"])
        XCTAssertEqual(fg.status, 0, "\(fg)")
        XCTAssertEqual(try h.reservations("bridge"), [])
        XCTAssertEqual(h.bridgePorts("netlab0"), [])
        XCTAssertFalse(try h.nftTable().contains("8182"))
        // Started again, the exited foreground container runs detached.
        XCTAssertTrue(h.netlab(["start"], ["brief"]).ok)
        XCTAssertEqual(h.inspect("brief")?["detached"] as? Bool, true)
    }

    /// A port held by something netlab has no container for (here: a container whose state was
    /// lost) is refused by portmap; the message shows a short ID and how to clean up, and
    /// `gc` does.
    func testPortHeldByAnUnknownContainerNamesTheCleanup() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "lost", "--network", "bridge", "-p", "8383:80", "pause"]).ok)
        let rec = try XCTUnwrap(h.inspect("lost"))
        let id = try XCTUnwrap(rec["id"] as? String), pid = try XCTUnwrap(rec["pid"] as? Int)
        // Its reaper first (it would release the port), then the container; then its state goes.
        let reaper = processes(withArguments: ["__reap", "--run-dir", h.runDir, "--host", h.host, "--cni-path",
                                               BuiltProducts.directory, "lost"])
        XCTAssertEqual(reaper.count, 1)
        for p in reaper + [Int32(pid)] { kill(p, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while processIsAlive(Int32(pid)) && Date() < deadline { usleep(20_000) }
        let dir = h.runDir + "/hosts/\(h.host)/containers/lost"
        XCTAssertEqual(umount2(dir + "/netns", Int32(MNT_DETACH)), 0)
        XCTAssertTrue(runCommand(["rm", "-rf", dir]).ok)

        let r = h.netlab(["run"], ["-d", "--name", "next", "--network", "bridge", "-p", "8383:81", "pause"])
        XCTAssertEqual(r.status, 1, "\(r)")
        XCTAssertFalse(r.stderr.contains(id), r.stderr)
        XCTAssertTrue(r.stderr.contains("already mapped by container \(id.prefix(12)) (no container of this host; netlab gc --run-dir"),
                      r.stderr)
        XCTAssertTrue(h.netlab(["gc"]).ok)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "next", "--network", "bridge", "-p", "8383:81", "pause"]).ok)
    }

    func testSharedNetnsIsProtectedOnRmAndReportedByCheck() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "pod", "--network", "bridge", "pause"]).ok)
        // By ID prefix too: recorded by name.
        let podID = try XCTUnwrap(h.inspect("pod")?["id"] as? String)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "srv", "--network", "container:" + podID.prefix(8), "pause"]).ok)
        XCTAssertEqual(h.inspect("srv")?["networkMode"] as? String, "container:pod")
        let ok = h.netlab(["check"])
        XCTAssertEqual(ok.status, 0, "\(ok)")
        XCTAssertTrue(ok.stdout.contains("srv\tcontainer:pod\tok"), ok.stdout)

        let refused = h.netlab(["rm"], ["pod"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(trimmed(refused.stderr), "netlab: error: container pod is in use by srv (--network container:pod): "
            + "remove it first (netlab rm --run-dir \(h.runDir) --host \(h.host) --cni-path \(BuiltProducts.directory) -f srv), "
            + "or use rm -f and it loses its network")
        XCTAssertEqual(h.inspect("pod")?["status"] as? String, "running")

        let forced = h.netlab(["rm"], ["-f", "pod"])
        XCTAssertEqual(forced.status, 0, "\(forced)")
        XCTAssertEqual(trimmed(forced.stderr),
                       "netlab: warning: srv lost its network: it shared pod's network namespace (--network container:pod)")
        let bad = h.netlab(["check"])
        XCTAssertEqual(bad.status, 1, "\(bad)")
        XCTAssertTrue(bad.stdout.contains("srv\tcontainer:pod\tFAIL: its network is gone: it shared the network namespace of pod, which was removed"),
                      bad.stdout)
    }

    func testOptionsThatCannotApplyAreRefused() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "pod", "--network", "bridge", "pause"]).ok)
        let cases: [([String], String)] = [
            (["--network", "none", "-p", "8090:80"], "-p needs a network: with --network none"),
            (["--network", "none", "--ip", "10.88.9.9"], "--ip needs a network: with --network none"),
            (["--network", "none", "--mac", "02:00:00:00:00:01"], "--mac needs a network: with --network none"),
            (["--network", "container:pod", "-p", "8090:80"], "-p cannot be used with --network container:pod"),
            (["--network", "container:pod", "--ip", "10.88.9.9"], "--ip cannot be used with --network container:pod"),
            (["--network", "host", "--mac", "02:00:00:00:00:01"], "--mac needs a network: in --network host mode"),
            (["--network", "host", "-p", "8090:80"], "-p needs a network: in --network host mode"),
        ]
        for (args, want) in cases {
            let r = h.netlab(["run"], ["-d", "--name", "x"] + args + ["pause"])
            XCTAssertEqual(r.status, 1, "\(args): \(r)")
            XCTAssertTrue(r.stderr.hasPrefix("netlab: error: " + want), "\(args): \(r.stderr)")
            XCTAssertNil(h.inspect("x"), "\(args)")
        }
        XCTAssertEqual(h.bridgePorts("netlab0").count, 1)
        // A network whose plugins do not declare the capability would drop the option silently.
        try FileManager.default.createDirectory(atPath: h.runDir + "/hosts/\(h.host)/networks", withIntermediateDirectories: true)
        let plain = #"{"cniVersion":"1.0.0","name":"plain","plugins":[{"type":"bridge","bridge":"nl-plain","isGateway":true,"#
            + #""ipam":{"type":"host-local","subnet":"10.77.0.0/24"}}]}"#
        try plain.write(toFile: h.runDir + "/hosts/\(h.host)/networks/plain.conflist", atomically: true, encoding: .utf8)
        for (option, capability) in [(["-p", "8090:80"], "portMappings"), (["--ip", "10.77.0.9"], "ips"), (["--mac", "02:00:00:00:00:01"], "mac")] {
            let r = h.netlab(["run"], ["-d", "--name", "x", "--network", "plain"] + option + ["pause"])
            XCTAssertEqual(r.status, 1, "\(option): \(r)")
            XCTAssertTrue(r.stderr.hasPrefix("netlab: error: network plain: \(option[0]) needs the \"\(capability)\" capability"), r.stderr)
        }
        // Refused before anything was made: not even the network's bridge exists.
        let bridge = runCommand(["ip", "-n", h.netns, "link", "show", "nl-plain"])
        XCTAssertFalse(bridge.ok, "\(bridge)")
        XCTAssertTrue(bridge.stderr.contains("does not exist"), bridge.stderr)
    }

    /// conf/bridge.conflist dropped in as network `netlab`: same bridge and subnet as the
    /// built-in `bridge`. Whichever is used second is refused naming both; its IPAM state is
    /// in the host's run directory, and `host rm` leaves nothing on the machine.
    func testCollidingNetworksAreRefusedAndIPAMStateStaysWithTheHost() throws {
        let h = HostHarness(self)
        let other = h.addHost()
        let conf = try String(contentsOfFile: packageRoot + "/conf/bridge.conflist", encoding: .utf8)
        let dir = h.runDir + "/hosts/\(other)/networks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try conf.write(toFile: dir + "/netlab.conflist", atomically: true, encoding: .utf8)
        let machineState = "/var/lib/cni/networks/netlab"
        let existedBefore = FileManager.default.fileExists(atPath: machineState)

        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "a1", "--network", "netlab", "pause"], on: other).ok)
        let ip = try XCTUnwrap(h.ip(of: "a1", network: "netlab", on: other))
        XCTAssertEqual(try h.reservations("netlab", on: other), [ip])
        XCTAssertEqual(FileManager.default.fileExists(atPath: machineState), existedBefore)

        let clash = h.netlab(["run"], ["-d", "--name", "b1", "--network", "bridge", "pause"], on: other)
        XCTAssertEqual(clash.status, 1, "\(clash)")
        XCTAssertEqual(trimmed(clash.stderr), "netlab: error: network bridge: it collides with network netlab (both use bridge "
            + "netlab0, subnet 10.88.0.0/16), which has containers (a1): use netlab, or give bridge its own bridge and subnet")
        XCTAssertNil(h.inspect("b1", on: other))
        XCTAssertEqual(try h.reservations("netlab", on: other), [ip])

        // A dataDir outside the host's run directory is refused, not shared.
        let outside = conf.replacingOccurrences(of: "\"type\": \"host-local\",", with: "\"type\": \"host-local\", \"dataDir\": \"/var/lib/cni/networks\",")
            .replacingOccurrences(of: "\"name\": \"netlab\"", with: "\"name\": \"shared\"")
        try outside.write(toFile: dir + "/shared.conflist", atomically: true, encoding: .utf8)
        let shared = h.netlab(["run"], ["--rm", "--network", "shared", "--", "true"], on: other)
        XCTAssertEqual(shared.status, 1, "\(shared)")
        XCTAssertTrue(shared.stderr.hasPrefix("netlab: error: network shared: ipam.dataDir /var/lib/cni/networks is outside"), shared.stderr)
        try FileManager.default.removeItem(atPath: dir + "/shared.conflist")

        XCTAssertTrue(h.netlab(["host", "rm"], ["-f", other], hostless: true).ok)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.runDir + "/hosts/" + other))
        XCTAssertEqual(FileManager.default.fileExists(atPath: machineState), existedBefore)
    }

    func testNetworkCreateMessagesNameTheOtherNetworkAndTheFix() {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["network", "create"], ["--subnet", "10.90.0.0/24", "front"]).ok)
        let overlap = h.netlab(["network", "create"], ["--subnet", "10.90.0.128/25", "back"])
        XCTAssertEqual(trimmed(overlap.stderr), "netlab: error: subnet 10.90.0.128/25 overlaps 10.90.0.0/24 of network front")
        let builtin = h.netlab(["network", "create"], ["--subnet", "10.88.1.0/24", "back"])
        XCTAssertEqual(trimmed(builtin.stderr), "netlab: error: subnet 10.88.1.0/24 overlaps 10.88.0.0/16 of network bridge")
        let hostBits = h.netlab(["network", "create"], ["--subnet", "10.91.3.7/24", "back"])
        XCTAssertEqual(trimmed(hostBits.stderr), "netlab: error: invalid --subnet \"10.91.3.7/24\": it has host bits set; use 10.91.3.0/24")
        XCTAssertEqual(hostBits.status, 1)
    }

    /// Every hint that suggests a command repeats the options the user gave.
    func testHintsRepeatTheHost() {
        let h = HostHarness(self)
        let opts = "--run-dir \(h.runDir) --host \(h.host) --cni-path \(BuiltProducts.directory)"
        let nosuch = h.netlab(["run"], ["--network", "nosuch", "pause"])
        XCTAssertEqual(trimmed(nosuch.stderr), "netlab: error: network nosuch: no such network (see netlab network ls \(opts); "
            + "create it with netlab network create \(opts) nosuch)")
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "same", "--network", "bridge", "pause"]).ok)
        let dup = h.netlab(["run"], ["-d", "--name", "same", "pause"])
        XCTAssertTrue(dup.stderr.contains("(netlab rm \(opts) -f same)"), dup.stderr)
        let running = h.netlab(["rm"], ["same"])
        XCTAssertTrue(running.stderr.contains("(netlab stop \(opts) same)"), running.stderr)
        let busy = h.netlab(["network", "rm"], ["bridge"])
        XCTAssertTrue(busy.stderr.contains("(netlab rm \(opts) -f same)"), busy.stderr)
        let hostBusy = h.netlab(["host", "rm"], [h.host], hostless: true)
        XCTAssertTrue(hostBusy.stderr.contains("or use netlab host rm --run-dir \(h.runDir) -f \(h.host)"), hostBusy.stderr)
        let stoppedPod = h.netlab(["stop"], ["same"])
        XCTAssertEqual(stoppedPod.status, 0)
        let join = h.netlab(["run"], ["--rm", "--network", "container:same", "--", "true"])
        XCTAssertTrue(join.stderr.contains("(start it: netlab start \(opts) same)"), join.stderr)
        let noHost = h.netlab(["ps"], on: "nosuchhost")
        XCTAssertTrue(noHost.stderr.contains("create it with: netlab host add --run-dir \(h.runDir) --cni-path \(BuiltProducts.directory) nosuchhost"),
                      noHost.stderr)
    }
}
