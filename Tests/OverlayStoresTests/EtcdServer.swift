// A real etcd (Debian's etcd-server, /usr/bin/etcd) started by a test: on 127.0.0.1 with free
// ports chosen at random, a data directory of its own, stopped by its PID and the directory
// removed at the end, also when the test fails.

import Foundation
import Overlay
import OverlayStores
import TestSupport
import XCTest

final class EtcdServer: @unchecked Sendable {
    static let binary = "/usr/bin/etcd"

    /// TLS material for a server that requires client certificates.
    struct TLSFiles: Sendable {
        var ca, serverCert, serverKey, clientCert, clientKey: String
    }

    let directory: String
    let clientURL: String
    let peerPort: UInt16
    let tls: TLSFiles?
    private let arguments: [String]
    /// Replaced by `startAgain`.
    private var process: Process

    /// Starts etcd and waits until it answers. `tls` makes it serve https and require a
    /// client certificate.
    static func start(directory: String, tls: TLSFiles? = nil, arguments: [String] = []) throws -> EtcdServer {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: scripts/setup.sh installs Debian's etcd-server")
        }
        var lastError = ""
        // A port found free can be taken before etcd binds it: try a few pairs.
        for _ in 0..<3 {
            let server = try EtcdServer(directory: directory, clientPort: try freePort(), peerPort: try freePort(),
                                        tls: tls, arguments: arguments)
            if server.waitUntilHealthy(timeout: 20) { return server }
            lastError = server.log
            server.stop(removingDirectory: false)
        }
        throw TestFailure("etcd did not become healthy: \(lastError.suffix(2000))")
    }

    private init(directory: String, clientPort: UInt16, peerPort: UInt16, tls: TLSFiles?, arguments: [String]) throws {
        self.directory = directory
        self.peerPort = peerPort
        self.tls = tls
        let scheme = tls == nil ? "http" : "https"
        clientURL = "\(scheme)://127.0.0.1:\(clientPort)"
        let peerURL = "http://127.0.0.1:\(peerPort)"
        var args = ["--name", "t", "--data-dir", directory + "/data",
                    "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                    "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                    "--initial-cluster", "t=\(peerURL)", "--initial-cluster-state", "new",
                    "--logger", "zap", "--log-level", "warn"]
        if let tls {
            args += ["--cert-file", tls.serverCert, "--key-file", tls.serverKey,
                     "--trusted-ca-file", tls.ca, "--client-cert-auth"]
        }
        args += arguments
        self.arguments = args
        guard FileManager.default.createFile(atPath: directory + "/etcd.log", contents: nil) else {
            throw TestFailure("cannot create \(directory)/etcd.log")
        }
        process = try Self.launch(args, log: directory + "/etcd.log")
    }

    private static func launch(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Starts etcd again on the same ports and data after `stop(removingDirectory: false)`.
    func startAgain() throws {
        process = try Self.launch(arguments, log: directory + "/etcd.log")
        guard waitUntilHealthy(timeout: 20) else { throw TestFailure("etcd did not come back: \(log.suffix(2000))") }
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: directory + "/etcd.log", encoding: .utf8)) ?? "" }  // for messages only

    /// Options for a client of this server.
    func options(endpoints: [String]? = nil) -> EtcdOptions {
        var o = EtcdOptions(endpoints: endpoints ?? [clientURL])
        if let tls {
            o.caFile = tls.ca
            o.certFile = tls.clientCert
            o.keyFile = tls.clientKey
        }
        return o
    }

    private func waitUntilHealthy(timeout: Double) -> Bool {
        var curl = ["curl", "-s", "--max-time", "1"]
        if let tls { curl += ["--cacert", tls.ca, "--cert", tls.clientCert, "--key", tls.clientKey] }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if runCommand(curl + [clientURL + "/health"]).stdout.contains("\"health\":\"true\"") { return true }
            usleep(100_000)
        }
        return false
    }

    /// Stops etcd (SIGTERM, SIGKILL after 5 s) and removes its directory.
    func stop(removingDirectory: Bool = true) {
        if process.isRunning {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
        if removingDirectory { try? FileManager.default.removeItem(atPath: directory) }  // a test directory: leftovers are harmless
    }

    /// Runs a gateway request with curl (test setup only: users, roles, enabling auth).
    @discardableResult
    func gateway(_ path: String, _ json: String) -> String {
        runCommand(["curl", "-s", "--max-time", "5", "-X", "POST", "-d", json, clientURL + path]).stdout
    }

    /// Makes a CA, a server certificate for 127.0.0.1 and a client certificate in `directory`.
    static func makeTLSFiles(in directory: String) throws -> TLSFiles {
        let script = """
            set -e
            cd "$1"
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=netlab-test-ca 2>/dev/null
            for who in server client; do
              key $who.key
              openssl req -new -key $who.key -out $who.csr -subj /CN=$who 2>/dev/null
            done
            # etcd's gateway dials etcd's own gRPC port with the server certificate: it must
            # serve as a client certificate too.
            printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\n' > client.ext
            for who in server client; do
              openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days 1 \
                -extfile $who.ext 2>/dev/null
            done
            """
        let r = runCommand(["/bin/sh", "-c", script, "sh", directory])
        guard r.ok else { throw TestFailure("openssl: \(r)") }
        return TLSFiles(ca: directory + "/ca.pem", serverCert: directory + "/server.pem", serverKey: directory + "/server.key",
                        clientCert: directory + "/client.pem", clientKey: directory + "/client.key")
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw TestFailure("bind 127.0.0.1:0: errno \(errno)") }
    return UInt16(bigEndian: addr.sin_port)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory under /tmp, for one test's files.
func makeTemporaryDirectory(_ role: String) throws -> String {
    let path = NSTemporaryDirectory() + "overlay-\(role)-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
