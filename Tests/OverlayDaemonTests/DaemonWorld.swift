// Simulated hosts for overlayd, built in namespaces the test makes and removes: an underlay
// netns with a bridge (198.18.0.254/24, where a test's etcd listens), and host netns joined
// to it by veth (`eth0`, 198.18.0.1N/24, default route via the bridge), each with a veth
// `pods0` that gets the first address of the subnet its daemon leases. One `overlayd`
// process per host runs inside the host's netns (`ip netns exec`), as netlab runs them;
// every process the test starts is ended by its PID when the test ends, also on failure.

import Foundation
import NetTypes
import Overlay
import OverlayStores
import SystemKit
import TestSupport
import XCTest

/// The network every test's config uses unless it says otherwise.
let testNetwork = CIDR("10.244.0.0/16")!
let basicConfig = #"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}"#
/// Where each host's /healthz listens (its own loopback).
let healthzPort = 8471

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One started process (overlayd, etcd, a ping loop), ended by its PID.
final class StartedProcess: @unchecked Sendable {
    let process = Process()
    let log: String

    init(_ argv: [String], log: String, environment: [String: String]? = nil) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw TestError("cannot create \(log)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log at \(log))" }  // for messages only

    func signal(_ sig: Int32) {
        if process.isRunning { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; waits for the exit.
    func stop(grace: Double = 3) {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        signal(SIGKILL)
        process.waitUntilExit()
    }

    /// kill -9 and wait for the exit.
    func killNow() {
        signal(SIGKILL)
        process.waitUntilExit()
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns the seconds it took.
@discardableResult
func eventually(_ what: String, timeout: Double = 10, _ condition: () throws -> Bool) throws -> Double {
    let start = Date()
    var lastError: (any Error)?
    while Date().timeIntervalSince(start) < timeout {
        do {
            if try condition() { return Date().timeIntervalSince(start) }
        } catch {
            lastError = error
        }
        usleep(20_000)
    }
    throw TestError("timed out after \(timeout) s waiting for \(what)\(lastError.map { ": last error \($0)" } ?? "")")
}

final class DaemonHost: @unchecked Sendable {
    let index: Int
    let netns: String
    let publicIP: IPAddress
    let publicIPv6: IPAddress
    /// This host's files: subnet.env, the state directory, logs.
    let directory: String
    var daemon: StartedProcess?
    private var starts = 0

    init(index: Int, netns: String, directory: String) {
        self.index = index
        self.netns = netns
        publicIP = IPAddress("198.18.0.\(10 + index)")!
        publicIPv6 = IPAddress("fd00:198:18::\(10 + index)")!
        self.directory = directory
    }

    var subnetFile: String { directory + "/subnet.env" }
    var stateDirectory: String { directory + "/state" }

    /// The subnet.env the daemon wrote; nil while there is none.
    func subnetEnv() throws -> SubnetEnv? { try SubnetEnv.read(subnetFile) }

    /// The leased IPv4 subnet, from subnet.env.
    func subnet() throws -> CIDR {
        guard let s = try subnetEnv()?.subnet?.network else { throw TestError("host \(index) has no subnet.env yet") }
        return s
    }

    /// `ip -n HOST -j ARGS…`, failing loudly.
    func ipJSON(_ args: String...) throws -> [[String: Any]] {
        try runChecked(["ip", "-n", netns, "-j"] + args).checkedJSONArray()
    }

    @discardableResult
    func ip(_ args: String...) throws -> CommandResult { try runChecked(["ip", "-n", netns] + args) }

    func exec(_ argv: [String], timeout: Double = 30) -> CommandResult {
        runCommand(["ip", "netns", "exec", netns] + argv, timeout: timeout)
    }

    /// GET /healthz on the host's loopback: the status code and body.
    func healthz() -> (code: Int, body: String) {
        let r = exec(["curl", "-s", "--max-time", "2", "-w", "\n%{http_code}", "http://127.0.0.1:\(healthzPort)/healthz"])
        guard let newline = r.stdout.lastIndex(of: "\n") else { return (0, r.stdout) }
        return (Int(r.stdout[r.stdout.index(after: newline)...]) ?? 0, String(r.stdout[..<newline]))
    }

    /// Starts overlayd in the host's netns, with `environment` added to the test's own.
    func start(_ arguments: [String], environment: [String: String] = [:]) throws {
        starts += 1
        let argv = ["/usr/sbin/ip", "netns", "exec", netns, BuiltProducts.path("overlayd")] + arguments
            + ["--subnet-file", subnetFile, "--state-dir", stateDirectory, "--healthz-ip", "127.0.0.1",
               "--healthz-port", "\(healthzPort)", "--log-level", "debug"]
        let env = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
        daemon = try StartedProcess(argv, log: directory + "/overlayd.\(starts).log", environment: env)
    }

    var log: String { daemon?.output ?? "(not started)" }
}

final class DaemonWorld: @unchecked Sendable {
    let world = TestWorld()
    let underlay: String
    let directory: String
    private(set) var hosts: [DaemonHost] = []
    /// The store flags every command and daemon of this world gets.
    var storeArguments: [String]
    private var extra: [StartedProcess] = []
    private let test: XCTestCase

    /// The underlay and `count` hosts; the store is the embedded one in the world's directory
    /// until `useEtcd` starts one.
    init(_ test: XCTestCase, hosts count: Int) throws {
        self.test = test
        underlay = try world.makeNetns("under")
        directory = world.tempDirectory("overlayd")
        storeArguments = ["--store-path", directory + "/leases.db"]
        test.addTeardownBlock { [self] in tearDown() }
        try runChecked(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"])
        try runChecked(["ip", "-n", underlay, "addr", "add", "198.18.0.254/24", "dev", "br0"])
        try runChecked(["ip", "-n", underlay, "link", "set", "br0", "up"])
        for i in 1...count { hosts.append(try addHost(i)) }
    }

    private func addHost(_ i: Int) throws -> DaemonHost {
        let ns = try world.makeNetns("h\(i)")
        let hostDirectory = directory + "/h\(i)"
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        let host = DaemonHost(index: i, netns: ns, directory: hostDirectory)
        try runChecked(["ip", "-n", underlay, "link", "add", "u\(i)", "type", "veth", "peer", "name", "eth0", "netns", ns])
        try runChecked(["ip", "-n", underlay, "link", "set", "u\(i)", "master", "br0", "up"])
        try host.ip("addr", "add", "\(host.publicIP)/24", "dev", "eth0")
        try host.ip("addr", "add", "\(host.publicIPv6)/64", "dev", "eth0", "nodad")
        try host.ip("link", "set", "eth0", "up")
        try host.ip("route", "add", "default", "via", "198.18.0.254")
        // A veth whose peer stays in the host: always carrier (this kernel has no dummy driver).
        try host.ip("link", "add", "pods0", "type", "veth", "peer", "name", "pods0p")
        try host.ip("link", "set", "pods0p", "up")
        try host.ip("link", "set", "pods0", "up")
        return host
    }

    /// Ends every process this world started (by PID), then the namespaces go.
    func tearDown() {
        for h in hosts { h.daemon?.stop() }
        for p in extra { p.stop() }
        world.cleanup()
    }

    /// Keeps a process to stop at teardown.
    func own(_ p: StartedProcess) { extra.append(p) }

    // MARK: commands

    /// Runs `overlayd ARGS… STORE-FLAGS` in the underlay netns (where etcd, if any, is local).
    func overlayd(_ arguments: [String], stdin: String? = nil) -> CommandResult {
        runCommand(["ip", "netns", "exec", underlay, BuiltProducts.path("overlayd")] + arguments + storeArguments,
                   stdin: stdin, timeout: 30)
    }

    func putConfig(_ json: String) throws {
        let r = overlayd(["config", "put", "-"], stdin: json)
        guard r.ok else { throw TestError("overlayd config put failed: \(r)") }
    }

    /// `overlayd leases`, parsed: subnet → (public IP, MAC).
    func leases() throws -> [String: (ip: String, mac: String)] {
        let r = overlayd(["leases"])
        guard r.ok else { throw TestError("overlayd leases failed: \(r)") }
        var out: [String: (String, String)] = [:]
        for line in r.stdout.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 3 else { throw TestError("unexpected line in overlayd leases: \(line)") }
            out[String(f[0])] = (String(f[1]), String(f[2]))
        }
        return out
    }

    /// A world whose hosts run overlayd on `config` (with `arguments`), every one ready and
    /// holding every other as a peer.
    static func running(_ test: XCTestCase, hosts count: Int, config: String = basicConfig,
                        arguments: [String] = []) throws -> DaemonWorld {
        let w = try DaemonWorld(test, hosts: count)
        try w.putConfig(config)
        try w.startAll(arguments)
        try w.waitUntilReady()
        try w.waitForFullMesh()
        return w
    }

    /// Starts every host's daemon with the world's store flags and `arguments`.
    func startAll(_ arguments: [String] = []) throws {
        for h in hosts { try h.start(storeArguments + arguments + ["--iface", "eth0"]) }
    }

    /// Waits until every host has written subnet.env and answers /healthz with 200.
    func waitUntilReady(_ hosts: [DaemonHost]? = nil, timeout: Double = 15) throws {
        for h in hosts ?? self.hosts {
            try eventually("host \(h.index) ready\n\(h.log.suffix(3000))", timeout: timeout) {
                try h.subnetEnv() != nil && h.healthz().code == 200
            }
        }
    }

    /// Gives every host's pods0 the first address of its leased subnets (the gateway a
    /// container would use), so peers have an address to reach.
    func addPodAddresses() throws {
        for h in hosts {
            let sn = try h.subnet()
            try h.ip("addr", "replace", "\(sn.networkAddress.next!)/\(sn.prefixLength)", "dev", "pods0")
            if let v6 = try h.subnetEnv()?.ipv6Subnet {
                try h.ip("addr", "replace", "\(v6)", "dev", "pods0", "nodad")
            }
        }
    }
}

extension DaemonWorld {
    /// Runs `body` against the world's embedded store file from the test process (what
    /// another client of the database, or an operator, does), and waits for it.
    func withEmbeddedStore<R: Sendable>(_ body: @escaping @Sendable (EmbeddedLeaseStore) async throws -> R) throws -> R {
        let path = directory + "/leases.db"
        return try blocking {
            let store = try await EmbeddedLeaseStore.open(path: path)
            do {
                let r = try await body(store)
                await store.close()
                return r
            } catch {
                await store.close()
                throw error
            }
        }
    }
}

/// Runs async work from a synchronous test and waits for its outcome.
func blocking<R: Sendable>(_ body: @escaping @Sendable () async throws -> R) throws -> R {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var outcome: Result<R, any Error>?
    Task {
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome!.get()
}

extension Array where Element == String {
    /// The command run inside a netns (`ip netns exec NS …`).
    func withNetns(_ netns: String) -> [String] { ["ip", "netns", "exec", netns] + self }
}

/// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw TestError("bind \(path): errno \(errno)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The datagrams received so far, without waiting.
    func received() -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { return out }
            out.append(String(decoding: buffer.prefix(n), as: UTF8.self))
        }
    }
}
