// The etcd v3 store against a real etcd this test starts: the conformance suite, then what
// only a server across the network has: several endpoints, user/password authentication
// with tokens that expire, TLS with client certificates.

import Foundation
import Overlay
import OverlayStores
import TestSupport
import XCTest

final class EtcdStoreTests: XCTestCase {
    /// One etcd for the conformance tests (each works under a prefix of its own).
    nonisolated(unsafe) private static var shared: Result<EtcdServer, any Error>?

    override class func setUp() {
        super.setUp()
        shared = Result { try EtcdServer.start(directory: try makeTemporaryDirectory("etcd")) }
    }

    override class func tearDown() {
        if case .success(let server) = shared { server.stop() }
        shared = nil
        super.tearDown()
    }

    private func server() throws -> EtcdServer { try XCTUnwrap(Self.shared).get() }

    private func suite() throws -> StoreConformance {
        let options = try server().options()
        return StoreConformance(open: { try EtcdLeaseStore(options: options) }, reportsExpiry: false)
    }

    func testCreateIfAbsentRace() async throws { try await suite().createIfAbsentRace() }
    func testTTLExpiryWithEvent() async throws { try await suite().ttlExpiryWithEvent() }
    func testRenew() async throws { try await suite().renew() }
    func testUpdate() async throws { try await suite().update() }
    func testDelete() async throws { try await suite().delete() }
    func testListThenWatchLosesNothing() async throws { try await suite().listThenWatchLosesNothing() }
    func testCompaction() async throws { try await suite().compaction() }
    func testInvalidRequests() async throws { try await suite().invalidRequests() }

    /// A dead endpoint first in the list costs a failover, not an error; with every endpoint
    /// dead the error names each.
    func testFailoverBetweenEndpoints() async throws {
        let live = try server()
        let dead = "http://127.0.0.1:\(try freePort())"
        let store = try EtcdLeaseStore(options: live.options(endpoints: [dead, live.clientURL]))
        let created = try await store.create("/failover/k", text: "v", ttl: nil)
        guard case .created = created else { return XCTFail("\(created)") }
        let value = try await store.get("/failover/k")?.text
        XCTAssertEqual(value, "v")
        await store.close()

        let deadOnly = try EtcdLeaseStore(options: EtcdOptions(endpoints: [dead, "http://127.0.0.1:\(try freePort())"]))
        do {
            _ = try await deadOnly.get("/failover/k")
            XCTFail("no endpoint is alive, yet an answer came")
        } catch {
            guard case .unavailable(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains(dead), reason)
            XCTAssertTrue(error.isTransient)
        }
        await deadOnly.close()
    }

    /// While etcd is down, requests fail as transient; a watch resumes when etcd is back, with
    /// nothing lost and nothing repeated.
    func testWatchResumesWhenEtcdReturns() async throws {
        let server = try EtcdServer.start(directory: try makeTemporaryDirectory("etcd-restart"))
        defer { server.stop() }
        let store = try EtcdLeaseStore(options: server.options())
        _ = try await store.create("/restart/a", text: "1", ttl: nil)
        let start = try await store.list(prefix: "/restart/").revision
        let events = EventCollector(store.watch(prefix: "/restart/", fromRevision: start + 1))
        defer { events.stop() }
        _ = try await store.create("/restart/b", text: "2", ttl: nil)
        let before = await events.waitUntil(timeout: .seconds(5)) { $0.count == 1 }
        XCTAssertTrue(before, "\(events.snapshot)")

        server.stop(removingDirectory: false)
        do {
            _ = try await store.get("/restart/a")
            XCTFail("a stopped etcd answered")
        } catch {
            XCTAssertTrue(error.isTransient, "\(error)")
        }
        try server.startAgain()
        _ = try await store.create("/restart/c", text: "3", ttl: nil)
        let after = await events.waitUntil(timeout: .seconds(15)) { $0.count >= 2 }
        XCTAssertTrue(after, "the watch did not resume: \(events.snapshot) \(String(describing: events.failure))")
        XCTAssertEqual(events.snapshot.map(\.key), ["/restart/b", "/restart/c"])
        XCTAssertNil(events.failure)
        await store.close()
    }

    /// Options that cannot work are refused before any request.
    func testBadOptionsAreRefused() {
        let cases: [(EtcdOptions, String)] = [
            (EtcdOptions(endpoints: []), "no endpoint"),
            (EtcdOptions(endpoints: ["127.0.0.1:2379"]), "http://"),
            (EtcdOptions(endpoints: ["http://root:hunter2@127.0.0.1:2379"]), "credentials"),
            (EtcdOptions(endpoints: ["http://127.0.0.1:2379"], username: "root"), "password"),
            (EtcdOptions(endpoints: ["https://127.0.0.1:2379"], certFile: "/nonexistent.pem"), "key file"),
            (EtcdOptions(endpoints: ["https://127.0.0.1:2379"], caFile: "/nonexistent/ca.pem"), "CA file"),
        ]
        for (options, words) in cases {
            XCTAssertThrowsError(try EtcdLeaseStore(options: options)) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
                XCTAssertFalse("\(error)".contains("hunter2"), "a password leaked: \(error)")
            }
        }
    }

    /// With authentication on: the right password works, also after the token expires (etcd
    /// started with a 1 s token TTL) and for a watch; a wrong one is refused without being shown.
    func testUsernameAndPassword() async throws {
        let server = try EtcdServer.start(directory: try makeTemporaryDirectory("etcd-auth"),
                                          arguments: ["--auth-token", "simple", "--auth-token-ttl", "1"])
        defer { server.stop() }
        let password = "pw-\(UInt32.random(in: 0..<UInt32.max))"
        for (path, body) in [("/v3/auth/user/add", #"{"name":"root","password":"\#(password)"}"#),
                             ("/v3/auth/user/grant", #"{"user":"root","role":"root"}"#),
                             ("/v3/auth/enable", "{}")] {
            let answer = server.gateway(path, body)
            XCTAssertTrue(answer.contains("\"header\""), "\(path): \(answer)")
        }
        var options = server.options()
        options.username = "root"
        options.password = password
        let store = try EtcdLeaseStore(options: options)
        _ = try await store.create("/auth/a", text: "1", ttl: nil)
        let events = EventCollector(store.watch(prefix: "/auth/", fromRevision: 1))
        defer { events.stop() }
        try await Task.sleep(for: .seconds(3))  // the token expires
        _ = try await store.create("/auth/b", text: "2", ttl: .seconds(30))
        let renewed = try await store.renew("/auth/b")
        XCTAssertTrue(renewed)
        let listing = try await store.list(prefix: "/auth/")
        XCTAssertEqual(listing.entries.map(\.key), ["/auth/a", "/auth/b"])
        let seen = await events.waitUntil(timeout: .seconds(5)) { $0.count == 2 }
        XCTAssertTrue(seen, "\(events.snapshot) \(String(describing: events.failure))")
        await store.close()

        let cases: [(String?, String?)] = [("root", "wrong-\(password)"), ("nobody", password), (nil, nil)]
        for (user, pass) in cases {
            var bad = server.options()
            bad.username = user
            bad.password = pass
            let error = try await failure(bad, reading: "/auth/a")
            guard case .rejected? = error else {
                XCTFail("\(user ?? "anonymous"): not refused: \(String(describing: error))")
                continue
            }
            XCTAssertFalse("\(error!)".contains(password), "the password leaked: \(error!)")
        }
    }

    /// The error a client with `options` gets reading `key`; nil when it was answered.
    private func failure(_ options: EtcdOptions, reading key: String) async throws -> StoreError? {
        let store = try EtcdLeaseStore(options: options)
        do {
            _ = try await store.get(key)
            await store.close()
            return nil
        } catch {
            await store.close()
            return error
        }
    }

    /// Over TLS with a client certificate; without the certificate etcd refuses the client.
    func testTLSWithClientCertificate() async throws {
        let directory = try makeTemporaryDirectory("etcd-tls")
        let server = try EtcdServer.start(directory: directory, tls: try EtcdServer.makeTLSFiles(in: directory))
        defer { server.stop() }
        let store = try EtcdLeaseStore(options: server.options())
        guard case .created = try await store.create("/tls/k", text: "v", ttl: .seconds(30)) else { return XCTFail() }
        let value = try await store.get("/tls/k")?.text
        XCTAssertEqual(value, "v")
        await store.close()

        var noCert = server.options()
        noCert.certFile = nil
        noCert.keyFile = nil
        let error = try await failure(noCert, reading: "/tls/k")
        XCTAssertEqual(error?.isTransient, true, "\(String(describing: error))")
    }
}
