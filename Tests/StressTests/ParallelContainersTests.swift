import Foundation
import Glibc
import XCTest
import SystemKit
import TestSupport

/// 200 containers added at once on one bridge network with a port mapping each, then deleted
/// at once, each ADD and DEL a separate runtime process (cni-run: CNIRuntime executing the
/// conflist bridge + host-local + portmap, as libcni does for a container runtime), all inside
/// a host netns the test makes. Afterwards nothing may be left: no veth, no address
/// reservation, no nftables element, no cached result. (Concurrent changes interrupt kernel
/// dumps here: a plugin that does not retry them fails with EINTR.)
final class ParallelContainersTests: XCTestCase {
    static let containers = 200
    /// Runtime processes at once: a runtime starting a burst of pods has many in flight.
    static let parallelism = 32
    /// No single runtime call may take longer than this (`timeout` kills it; exit 124).
    static let callTimeout = 120

    struct Call {
        var status: WaitStatus
        var stdout: String
        var stderr: String
    }

    var world: TestWorld!
    var host = ""
    var conflist = ""
    var cacheDir = ""
    var dataDir = ""
    let network = "stress"

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "builds network namespaces, bridges and nftables tables: needs root")
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        let w = try ConflistWorld(world, network: network, cniVersion: "1.0.0", bridgePrefix: "nlst", subnet: "10.123.0.0/16",
                                  bridgeOptions: ["hairpinMode": true],
                                  chained: [["type": "portmap", "capabilities": ["portMappings": true], "snat": true]])
        (host, conflist, cacheDir, dataDir) = (w.host, w.conflist, w.cacheDir, w.dataDir)
    }

    func testTwoHundredContainersAddedAndDeletedInParallelLeaveNothing() throws {
        let n = Self.containers
        let netns = try world.makeBareNetns((0..<n).map { "c\($0)" })
        let ids = (0..<n).map { "stress-\($0)" }

        let addStart = Date.now
        let adds = try runAll("add", ids: ids, netns: netns)
        let addTime = Date.now.timeIntervalSince(addStart)
        assertAllSucceeded("ADD", adds, ids)
        let addresses = adds.compactMap(firstAddress)
        XCTAssertEqual(addresses.count, n, "results without an address")
        XCTAssertEqual(Set(addresses).count, addresses.count,
                       "duplicate addresses: \(Dictionary(grouping: addresses) { $0 }.filter { $1.count > 1 }.keys.sorted())")
        XCTAssertTrue(addresses.allSatisfy { $0.hasPrefix("10.123.") }, "\(addresses.filter { !$0.hasPrefix("10.123.") })")

        // While they exist, the readers see every one of them: the checks after DEL can fail.
        XCTAssertEqual(try hostVeths().count, n)
        XCTAssertEqual(try hostLocalReservations(dataDir: dataDir, network: network).count, n)
        let owners = try suiteElements().compactMap(\.comment)
        for id in ids {
            // One masquerade element and one port-map element at least, both naming the container.
            XCTAssertGreaterThanOrEqual(owners.filter { $0.contains(" \(id) ") }.count, 2, "nft elements of \(id)")
        }

        let delStart = Date.now
        let dels = try runAll("del", ids: ids, netns: netns)
        let delTime = Date.now.timeIntervalSince(delStart)
        assertAllSucceeded("DEL", dels, ids)

        XCTAssertEqual(try hostVeths(), [], "veths left on the host")
        XCTAssertEqual(try hostLocalReservations(dataDir: dataDir, network: network), [], "address reservations left")
        let left = try suiteElements()
        XCTAssertEqual(left.count, 0, "nft elements left: \(left.prefix(10).map { "\($0.key) \($0.comment ?? "")" })")
        XCTAssertEqual(try Files.listIfPresent(cacheDir + "/results"), [], "cached results left")
        print("ParallelContainersTests: \(n) ADDs in \(Int(addTime * 1000)) ms, \(n) DELs in \(Int(delTime * 1000)) ms, \(Self.parallelism) at a time")
    }

    // MARK: running the runtime

    /// Runs `cni-run VERB` for every container, `parallelism` processes at a time; the calls
    /// in container order.
    func runAll(_ verb: String, ids: [String], netns: [String]) throws -> [Call] {
        let ip = try XCTUnwrap(findExecutable("ip")), timeout = try XCTUnwrap(findExecutable("timeout"))
        let cniRun = BuiltProducts.path("cni-run")
        let lock = Lock()
        nonisolated(unsafe) var calls = [Call?](repeating: nil, count: ids.count)
        nonisolated(unsafe) var next = 0
        let (host, conflist, cacheDir) = (host, conflist, cacheDir)
        let worker: @Sendable () throws -> Void = {
            while true {
                let i = lock.withLock { () -> Int in defer { next += 1 }; return next }
                guard i < ids.count else { return }
                let capArgs = #"{"portMappings":[{"hostPort":\#(20000 + i),"containerPort":8080,"protocol":"tcp"}]}"#
                let out = try Subprocess.run(
                    timeout, arguments: [String(Self.callTimeout), ip, "netns", "exec", host,
                                         cniRun, verb, conflist, ids[i], "/run/netns/" + netns[i], cacheDir],
                    environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_PATH": BuiltProducts.directory,
                                  "CAP_ARGS": capArgs])
                let call = Call(status: out.status, stdout: String(decoding: out.stdout, as: UTF8.self),
                                stderr: String(decoding: out.stderr, as: UTF8.self))
                lock.withLock { calls[i] = call }
            }
        }
        let errors = Threads.runConcurrently(Array(repeating: worker, count: Self.parallelism))
        if let first = errors.first { throw first }
        return try calls.enumerated().map { i, c in try XCTUnwrap(c, "no \(verb) call for \(ids[i])") }
    }

    func assertAllSucceeded(_ verb: String, _ calls: [Call], _ ids: [String], file: StaticString = #filePath, line: UInt = #line) {
        let failed = calls.indices.filter { calls[$0].status != .exited(0) }
        XCTAssertEqual(failed.count, 0, "\(failed.count) of \(calls.count) \(verb)s failed", file: file, line: line)
        for i in failed.prefix(10) {
            let c = calls[i]
            XCTFail("\(verb) \(ids[i]): \(c.status)\nstdout: \(c.stdout)\nstderr: \(c.stderr)", file: file, line: line)
        }
    }

    /// The container address of an ADD result (without its prefix length).
    func firstAddress(_ call: Call) -> String? {
        let result = try? JSONSerialization.jsonObject(with: Data(call.stdout.utf8)) as? [String: Any]  // a failed ADD has none; counted by the caller
        let ips = result?["ips"] as? [[String: Any]]
        return (ips?.first?["address"] as? String)?.split(separator: "/").first.map(String.init)
    }

    // MARK: reading the host's state back (failing loudly)

    func hostVeths() throws -> [String] {
        try world.readIPJSON(host, ["link", "show", "type", "veth"]).compactMap { $0["ifname"] as? String }
    }

    /// Every element of every set and map in the suite's tables (named netlab, any family).
    func suiteElements() throws -> [NFTRuleset.Element] {
        try NFTRuleset.read(in: host).sets(table: "netlab").flatMap(\.elements)
    }
}
