import Foundation
import XCTest
import NetTypes
@testable import IPAM

/// Many plugin processes at once on one data directory, as a runtime starting 50
/// containers causes: each worker is this test binary re-run as a separate process with only
/// `testFiftyProcesses` selected and the worker's environment set, which makes that test do
/// one worker's ADD or DEL instead (so no test method exists only to be skipped).
final class MultiProcessTests: XCTestCase {
    static let workerEnv = "NETLAB_IPAM_WORKER"
    static let testName = "IPAMTests.MultiProcessTests/testFiftyProcesses"

    /// One worker's job: ADD or DEL of its container on the shared data directory. Failures
    /// make the worker process exit non-zero, which its parent test asserts against.
    func work(_ verb: String, _ env: [String: String]) throws {
        let dir = try XCTUnwrap(env["NETLAB_IPAM_DIR"]), id = try XCTUnwrap(env["NETLAB_IPAM_ID"])
        let conf = try settings(#"{"name": "procs", "ipam": {"ranges": [[{"subnet": "10.8.0.0/24"}], [{"subnet": "fd08::/120"}]], "dataDir": "\#(dir)"}}"#)
        let a = try Allocator(network: "procs", settings: conf)
        if verb == "ADD" {
            XCTAssertEqual(try a.allocate(containerID: id, ifName: "eth0").count, 2)
        } else {
            XCTAssertEqual(try a.release(containerID: id, ifName: "eth0").count, 2)
        }
    }

    func runWorkers(_ verb: String, dir: String, count: Int) throws {
        let exe = CommandLine.arguments[0]
        var procs: [Process] = []
        for i in 0..<count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = [Self.testName]
            var env = ProcessInfo.processInfo.environment
            env[Self.workerEnv] = verb
            env["NETLAB_IPAM_DIR"] = dir
            env["NETLAB_IPAM_ID"] = "ctr-\(i)"
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            procs.append(p)
        }
        for p in procs { try p.run() }  // all started before any is waited for
        for (i, p) in procs.enumerated() {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "\(verb) worker ctr-\(i) failed")
        }
    }

    func testFiftyProcesses() throws {
        let env = ProcessInfo.processInfo.environment
        if let verb = env[Self.workerEnv] { return try work(verb, env) }
        guard CommandLine.arguments[0].hasSuffix(".xctest") else {
            throw XCTSkip("needs the xctest bundle executable to start workers")
        }
        let dir = try makeTempDir(self)
        let n = 50
        try runWorkers("ADD", dir: dir, count: n)
        let store = try DiskStore(network: "procs", dataDir: dir)
        let held = try store.withLock { try store.reservations() }
        XCTAssertEqual(held.count, 2 * n)
        XCTAssertEqual(Set(held.map(\.address)).count, 2 * n)
        for i in 0..<n {
            let mine = held.filter { $0.containerID == "ctr-\(i)" }
            XCTAssertEqual(mine.map(\.address.family).sorted { $0 == .v4 && $1 == .v6 }, [.v4, .v6], "ctr-\(i)")
        }
        // Nothing was skipped: round robin from an empty store hands out the first 50 of each set.
        XCTAssertEqual(Set(held.filter(\.address.isV4).map(\.address)),
                       Set((2...51).map { IPAddress.v4(0x0a08_0000 + UInt32($0)) }))
        XCTAssertEqual(Set(held.filter(\.address.isV6).map(\.address)),
                       Set((2...51).map { IPAddress("fd08::")!.advanced(by: Int64($0))! }))

        try runWorkers("DEL", dir: dir, count: n)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/procs")
        XCTAssertEqual(Set(left), ["lock", "last_reserved_ip.0", "last_reserved_ip.1"])
    }
}
