import Foundation
import Glibc
import XCTest
import SystemKit
import TestSupport

/// SIGKILL of a runtime call at a random point of ADD or DEL (bridge + host-local + portmap +
/// firewall, one cni-run process per call, as a container runtime runs libcni), then DEL and GC
/// as a runtime would afterwards. After every trial nothing of the container may be left: no
/// veth, no reservation, no nft element, no cached result, no temporary file, no held lock,
/// and the following ADD succeeds.
final class CrashFaultTests: XCTestCase {
    static let trials = 120
    /// The kill comes at a random moment up to this many milliseconds after the call started:
    /// about as long as a whole ADD takes here, so kills land at every stage (cni-run starting,
    /// bridge, host-local, portmap, firewall) and some calls finish first. (With 0–30 ms every
    /// kill landed before the first plugin had done much.)
    static let maxDelayMilliseconds = 250
    /// `timeout -s KILL` kills the call's whole process group, itself included, so a killed call
    /// reads as "killed by SIGKILL" (Foundation reports the signal number; a shell, 128 + it).
    static func wasKilled(_ r: CommandResult) -> Bool { r.status == SIGKILL || r.status == 128 + SIGKILL }
    static let callTimeoutSeconds = 60

    var world: TestWorld!
    var host = ""
    var conflist = ""
    var cacheDir = ""
    var dataDir = ""
    let network = "faults"

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "builds network namespaces, bridges and nftables tables: needs root")
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        // 1.1.0, so that GC reaches every plugin (cni.dev/valid-attachments).
        let w = try ConflistWorld(world, network: network, cniVersion: "1.1.0", bridgePrefix: "nlft", subnet: "10.124.0.0/16",
                                  chained: [["type": "portmap", "capabilities": ["portMappings": true], "snat": true],
                                            ["type": "firewall", "ingressPolicy": "same-bridge"]])
        (host, conflist, cacheDir, dataDir) = (w.host, w.conflist, w.cacheDir, w.dataDir)
    }

    func testKilledAddsAndDelsLeaveNothingAfterDelAndGC() throws {
        let netns = try world.makeBareNetns(["c"])[0]
        var killedAdds = 0, killedDels = 0, finished = 0
        // Kills land within a call's own duration on this machine, whatever its speed or load:
        // the delays are drawn up to the median whole ADD and DEL measured here first.
        let (addMS, delMS) = try measuredDurations(netns: netns)
        for trial in 0..<Self.trials {
            let id = "fault-\(trial)"
            let killDuringAdd = trial % 2 == 0
            let bound = min(Self.maxDelayMilliseconds, max(10, killDuringAdd ? addMS : delMS))
            let delay = Double(Int.random(in: 0...bound)) / 1000
            if killDuringAdd {
                let add = try call("add", id: id, netns: netns, killAfter: delay)
                if Self.wasKilled(add) { killedAdds += 1 } else { finished += 1 }
            } else {
                // The previous trial's ADD was killed; this full ADD is "the next ADD succeeds".
                let add = try call("add", id: id, netns: netns)
                XCTAssertEqual(add.status, 0, "trial \(trial): ADD after a killed call: \(add.stdout) \(add.stderr)")
                let del = try call("del", id: id, netns: netns, killAfter: delay)
                if Self.wasKilled(del) { killedDels += 1 } else { finished += 1 }
            }
            // What a runtime does after a call died: DEL again, then GC with no valid attachment.
            let del = try call("del", id: id, netns: netns)
            XCTAssertEqual(del.status, 0, "trial \(trial): DEL: \(del.stdout) \(del.stderr)")
            let gc = try call("gc", id: id, netns: netns)
            XCTAssertEqual(gc.status, 0, "trial \(trial): GC: \(gc.stdout) \(gc.stderr)")
            try assertNothingLeft(trial: trial, netns: netns)
            if testRun?.failureCount ?? 0 > 0 { break }
        }
        let last = try call("add", id: "fault-final", netns: netns)
        XCTAssertEqual(last.status, 0, "the ADD after all trials: \(last.stdout)")
        XCTAssertEqual(try call("del", id: "fault-final", netns: netns).status, 0)
        // Without kills that land mid-call the test would prove nothing.
        XCTAssertGreaterThan(killedAdds, Self.trials / 8, "too few ADDs killed mid-call")
        XCTAssertGreaterThan(killedDels, Self.trials / 8, "too few DELs killed mid-call")
        print("CrashFaultTests: \(Self.trials) trials, \(killedAdds) ADDs and \(killedDels) DELs killed mid-call, "
            + "\(finished) calls finished before the kill; leaks found: 0 unless reported above")
    }

    /// The median wall time in milliseconds of three whole ADDs and DELs (not killed).
    func measuredDurations(netns: String) throws -> (add: Int, del: Int) {
        var adds: [Int] = [], dels: [Int] = []
        for i in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            XCTAssertEqual(try call("add", id: "probe-\(i)", netns: netns).status, 0)
            let mid = DispatchTime.now().uptimeNanoseconds
            XCTAssertEqual(try call("del", id: "probe-\(i)", netns: netns).status, 0)
            let end = DispatchTime.now().uptimeNanoseconds
            adds.append(Int((mid - start) / 1_000_000)); dels.append(Int((end - mid) / 1_000_000))
        }
        return (adds.sorted()[1], dels.sorted()[1])
    }

    // MARK: calls

    /// One `cni-run VERB` in the host netns; with `killAfter`, its whole process group (cni-run
    /// and the plugins it runs) gets SIGKILL after that many seconds.
    func call(_ verb: String, id: String, netns: String, killAfter: Double? = nil) throws -> CommandResult {
        let ip = try XCTUnwrap(findExecutable("ip")), timeout = try XCTUnwrap(findExecutable("timeout"))
        let limit = killAfter.map { String(format: "%.3f", max($0, 0.001)) } ?? String(Self.callTimeoutSeconds)
        let capArgs = #"{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}"#
        return runCommand(
            [timeout, "-s", "KILL", limit, ip, "netns", "exec", host,
             BuiltProducts.path("cni-run"), verb, conflist, id, world.path(netns), cacheDir],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_PATH": BuiltProducts.directory,
                          "CAP_ARGS": capArgs])
    }

    // MARK: reading the state back (failing loudly)

    func assertNothingLeft(trial: Int, netns: String) throws {
        let veths = try world.readIPJSON(host, ["link", "show", "type", "veth"]).compactMap { $0["ifname"] as? String }
        XCTAssertEqual(veths, [], "trial \(trial): veths left on the host")
        let inside = try world.readIPJSON(netns, ["link", "show"]).compactMap { $0["ifname"] as? String }
        XCTAssertEqual(inside, ["lo"], "trial \(trial): links left in the container")
        XCTAssertEqual(try hostLocalReservations(dataDir: dataDir, network: network), [], "trial \(trial): reservations left")
        let elements = try NFTRuleset.read(in: host).sets(table: "netlab").flatMap(\.elements)
        XCTAssertEqual(elements.map(\.key), [], "trial \(trial): nft elements left")
        XCTAssertEqual(try Files.listIfPresent(cacheDir + "/results"), [], "trial \(trial): cached results left")
        // Only the network's own files stay: the lock and the last reserved address per range.
        let files = try Files.listIfPresent(dataDir + "/" + network)
        let stray = files.filter { $0 != "lock" && !$0.hasPrefix("last_reserved_ip.") }
        XCTAssertEqual(stray, [], "trial \(trial): files left in the data dir")
        if files.contains("lock") { try assertUnlocked(dataDir + "/" + network + "/lock", trial: trial) }
    }

    /// The lock of a killed plugin died with it: nobody holds it now.
    func assertUnlocked(_ path: String, trial: Int) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return XCTFail("trial \(trial): cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "trial \(trial): \(path) is still locked")
    }
}
