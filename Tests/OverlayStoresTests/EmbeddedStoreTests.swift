// The embedded SQLite store: the conformance suite, plus what only a shared database file
// has: other processes writing to it, and its state surviving a reopen.

import Foundation
import Overlay
import OverlayStores
import TestSupport
import XCTest

final class EmbeddedStoreTests: XCTestCase {
    private var directory = ""
    private var database: String { directory + "/leases.db" }

    override func setUpWithError() throws { directory = try makeTemporaryDirectory("embedded") }
    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    private var suite: StoreConformance {
        let path = database
        var options = EmbeddedLeaseStore.Options()
        options.pollInterval = .milliseconds(20)
        let opts = options
        return StoreConformance(open: { try await EmbeddedLeaseStore.open(path: path, options: opts) }, reportsExpiry: true)
    }

    func testCreateIfAbsentRace() async throws { try await suite.createIfAbsentRace() }
    func testTTLExpiryWithEvent() async throws { try await suite.ttlExpiryWithEvent() }
    func testRenew() async throws { try await suite.renew() }
    func testUpdate() async throws { try await suite.update() }
    func testDelete() async throws { try await suite.delete() }
    func testListThenWatchLosesNothing() async throws { try await suite.listThenWatchLosesNothing() }
    func testCompaction() async throws { try await suite.compaction() }
    func testInvalidRequests() async throws { try await suite.invalidRequests() }

    /// Two other processes and this one race on the same keys of one file: every key is won
    /// exactly once, nobody sees SQLITE_BUSY, and all agree on the holder.
    func testProcessesRaceOnOneDatabase() async throws {
        let tool = BuiltProducts.path("lease-store-race")
        let count = 40
        let prefix = "/race/"
        let db = database
        async let first = Task.detached { runCommand([tool, db, prefix, "\(count)", "p1"]) }.value
        async let second = Task.detached { runCommand([tool, db, prefix, "\(count)", "p2"]) }.value
        let store = try await EmbeddedLeaseStore.open(path: database)
        var mine: [String: Bool] = [:]
        for i in 0..<count {
            if case .created = try await store.create(prefix + "\(i)", text: "p0", ttl: nil) { mine[prefix + "\(i)"] = true }
        }
        let (r1, r2) = await (first, second)
        XCTAssertTrue(r1.ok, "\(r1)")
        XCTAssertTrue(r2.ok, "\(r2)")
        var winners: [String: [String]] = [:]
        for (name, result) in [("p1", r1), ("p2", r2)] {
            for line in result.stdout.split(separator: "\n") where line.hasPrefix("won ") {
                winners[String(line.dropFirst(4)), default: []].append(name)
            }
        }
        for key in mine.keys { winners[key, default: []].append("p0") }
        let listing = try await store.list(prefix: prefix)
        XCTAssertEqual(listing.entries.count, count)
        for entry in listing.entries {
            XCTAssertEqual(winners[entry.key], [entry.text], "\(entry.key) won by \(winners[entry.key] ?? [])")
        }
        XCTAssertEqual(Set(listing.entries.map(\.createRevision)).count, count, "one revision per creation")
        await store.close()
    }

    /// A watch sees what another process writes.
    func testWatchSeesAnotherProcess() async throws {
        let store = try await EmbeddedLeaseStore.open(path: database)
        let start = try await store.list(prefix: "/other/").revision
        let events = EventCollector(store.watch(prefix: "/other/", fromRevision: start + 1))
        defer { events.stop() }
        let r = runCommand([BuiltProducts.path("lease-store-race"), database, "/other/", "3", "px"])
        XCTAssertTrue(r.ok, "\(r)")
        let seen = await events.waitUntil(timeout: .seconds(5)) { $0.count == 3 }
        XCTAssertTrue(seen, "\(events.snapshot)")
        XCTAssertEqual(events.snapshot.map(\.key), ["/other/0", "/other/1", "/other/2"])
        XCTAssertTrue(events.snapshot.allSatisfy { $0.kind == .put && $0.value == Array("px".utf8) })
        await store.close()
    }

    /// Keys, revisions and TTLs survive closing and reopening the file.
    func testStateSurvivesReopen() async throws {
        let first = try await EmbeddedLeaseStore.open(path: database)
        guard case .created(let rev) = try await first.create("/k", text: "v", ttl: .seconds(60)) else { return XCTFail() }
        await first.close()
        do {
            _ = try await first.get("/k")
            XCTFail("a closed store answered")
        } catch { XCTAssertEqual(error, .closed) }
        let second = try await EmbeddedLeaseStore.open(path: database)
        let entry = try await second.get("/k")
        XCTAssertEqual(entry?.createRevision, rev)
        let ttl = try await second.timeToLive("/k")
        XCTAssertNotNil(ttl)
        guard case .created(let next) = try await second.create("/k2", text: "v", ttl: nil) else { return XCTFail() }
        XCTAssertEqual(next, rev + 1, "the revision counter carries on")
        await second.close()
        // WAL mode is recorded in the file itself.
        let mode = runCommand(["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma journal_mode').fetchone()[0])", database])
        XCTAssertEqual(mode.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "wal", "\(mode)")
    }

    /// The event log keeps a bounded history: older revisions are compacted away as writes go
    /// on, a watch from before them is told so, and one from inside them replays them.
    func testHistoryIsBounded() async throws {
        var options = EmbeddedLeaseStore.Options()
        options.historyLimit = 50
        let store = try await EmbeddedLeaseStore.open(path: database, options: options)
        for i in 0..<300 { _ = try await store.update("/h/k\(i % 7)", text: "\(i)", ttl: .keep, ifCreateRevision: nil) }
        // Revision 256 crossed the trimming stride: revisions before 256 - 50 + 1 are gone.
        let kept: Int64 = 207
        do {
            for try await _ in store.watch(prefix: "/h/", fromRevision: kept - 1) {}
            XCTFail("the watch ended without an error")
        } catch {
            XCTAssertEqual(error as? StoreError, .compacted(requested: kept - 1, compactRevision: kept))
        }
        let events = EventCollector(store.watch(prefix: "/h/", fromRevision: kept))
        defer { events.stop() }
        let replayed = await events.waitUntil(timeout: .seconds(5)) { $0.count == 300 - Int(kept) + 1 }
        XCTAssertTrue(replayed, "\(events.snapshot.count) events")
        XCTAssertEqual(events.snapshot.first?.revision, kept)
        XCTAssertEqual(events.snapshot.last.map { String(decoding: $0.value, as: UTF8.self) }, "299")
        await store.close()
    }

    /// A database that is not ours is refused with SQLite's words, not overwritten.
    func testForeignFileIsRefused() async throws {
        try Data("not a database, just text that is long enough to have a header".utf8).write(to: URL(fileURLWithPath: database))
        do {
            _ = try await EmbeddedLeaseStore.open(path: database)
            XCTFail("opened a file that is not a database")
        } catch {
            guard case .database(_, let code, let message) = error else { return XCTFail("\(error)") }
            XCTAssertNotEqual(code, 0)
            XCTAssertTrue(message.contains("not a database"), message)
        }
    }
}
