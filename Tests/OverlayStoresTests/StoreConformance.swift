// The one conformance suite both lease stores pass: every test opens its clients through
// `open`, works under a prefix of its own, and closes its clients also when it fails.

import Foundation
import Overlay
import OverlayStores
import XCTest

struct StoreConformance: Sendable {
    /// Opens another client of the store under test (a new connection).
    let open: @Sendable () async throws -> any LeaseStore
    /// Whether the store reports a TTL running out as `.expired` (etcd reports `.deleted`).
    let reportsExpiry: Bool
    /// The shortest TTL the store grants exactly (etcd's minimum lease is about 2 s).
    let ttl: Duration = .seconds(2)
    let prefix = "/netlab-test/\(UInt32.random(in: 0..<UInt32.max))/"

    /// Runs `body` with `count` clients, closing them afterwards whatever happens.
    func withClients<R>(_ count: Int, _ body: ([any LeaseStore]) async throws -> R) async throws -> R {
        var stores: [any LeaseStore] = []
        do {
            for _ in 0..<count { stores.append(try await open()) }
            let result = try await body(stores)
            for s in stores { await s.close() }
            return result
        } catch {
            for s in stores { await s.close() }
            throw error
        }
    }

    // MARK: the tests

    /// Two clients create the same keys at once: one wins each key, the other sees the winner.
    func createIfAbsentRace() async throws {
        try await withClients(2) { s in
            let keys = (0..<20).map { prefix + "race\($0)" }
            async let a = createAll(s[0], keys, "a")
            async let b = createAll(s[1], keys, "b")
            let (ra, rb) = try await (a, b)
            for (i, key) in keys.enumerated() {
                let stored = try await s[0].get(key)?.text
                switch (ra[i], rb[i]) {
                case (.created, .exists(let holder)):
                    XCTAssertEqual(holder.text, "a", key)
                    XCTAssertEqual(stored, "a", key)
                case (.exists(let holder), .created):
                    XCTAssertEqual(holder.text, "b", key)
                    XCTAssertEqual(stored, "b", key)
                default:
                    XCTFail("\(key): \(ra[i]) and \(rb[i])")
                }
            }
        }
    }

    private func createAll(_ store: any LeaseStore, _ keys: [String], _ name: String) async throws -> [CreateResult] {
        var out: [CreateResult] = []
        for key in keys { out.append(try await store.create(key, text: name, ttl: nil)) }
        return out
    }

    /// A key with a TTL disappears when it runs out, and the watch sees it go.
    func ttlExpiryWithEvent() async throws {
        try await withClients(2) { s in
            let key = prefix + "expiring"
            let start = try await s[1].list(prefix: prefix).revision
            let events = EventCollector(s[1].watch(prefix: prefix, fromRevision: start + 1))
            defer { events.stop() }
            guard case .created(let created) = try await s[0].create(key, text: "v", ttl: ttl) else {
                return XCTFail("not created")
            }
            let left = try await XCTUnwrapAsync(try await s[0].timeToLive(key))
            XCTAssertGreaterThan(left, .zero)
            XCTAssertLessThanOrEqual(left, ttl)
            let gone = await events.waitUntil(timeout: .seconds(10)) { $0.contains { $0.key == key && $0.removesKey } }
            XCTAssertTrue(gone, "no removal event within 10 s; events: \(events.snapshot)")
            let removal = try XCTUnwrap(events.snapshot.first { $0.key == key && $0.removesKey })
            XCTAssertEqual(removal.kind, reportsExpiry ? .expired : .deleted)
            XCTAssertGreaterThan(removal.revision, created)
            let stillThere = try await s[0].get(key)
            XCTAssertNil(stillThere)
            let ttlAfter = try await s[0].timeToLive(key)
            XCTAssertNil(ttlAfter)
            XCTAssertNil(events.failure)
        }
    }

    /// Renewing restores the full TTL without a new revision; a key without TTL or an absent
    /// key is not renewed.
    func renew() async throws {
        try await withClients(1) { s in
            let key = prefix + "renewed"
            _ = try await s[0].create(key, text: "v", ttl: ttl)
            let before = try await XCTUnwrapAsync(try await s[0].get(key))
            for _ in 0..<3 {
                try await Task.sleep(for: ttl / 2)
                let renewed = try await s[0].renew(key)
                XCTAssertTrue(renewed)
            }
            // 1.5 TTLs after creation the renewed key is still there, unchanged.
            let after = try await s[0].get(key)
            XCTAssertEqual(after, before)
            _ = try await s[0].create(prefix + "forever", text: "v", ttl: nil)
            let noTTL = try await s[0].renew(prefix + "forever")
            XCTAssertFalse(noTTL)
            let absent = try await s[0].renew(prefix + "absent")
            XCTAssertFalse(absent)
        }
    }

    /// Update: conditional on the creator, TTL kept, set or dropped.
    func update() async throws {
        try await withClients(1) { s in
            let key = prefix + "updated"
            guard case .created(let rev) = try await s[0].create(key, text: "v1", ttl: ttl * 5) else { return XCTFail() }
            let conflict = try await s[0].update(key, text: "x", ttl: .keep, ifCreateRevision: rev + 1000)
            guard case .conflict(let holder) = conflict else { return XCTFail("\(conflict)") }
            XCTAssertEqual(holder?.text, "v1")
            let absent = try await s[0].update(prefix + "nothing", text: "x", ttl: .keep, ifCreateRevision: rev)
            XCTAssertEqual(absent, .conflict(current: nil))

            guard case .updated(let rev2) = try await s[0].update(key, text: "v2", ttl: .keep, ifCreateRevision: rev) else {
                return XCTFail()
            }
            let entry = try await XCTUnwrapAsync(try await s[0].get(key))
            XCTAssertEqual(entry.text, "v2")
            XCTAssertEqual(entry.createRevision, rev)
            XCTAssertEqual(entry.modRevision, rev2)
            let kept = try await XCTUnwrapAsync(try await s[0].timeToLive(key))
            XCTAssertLessThanOrEqual(kept, ttl * 5)

            _ = try await s[0].update(key, text: "v3", ttl: .none, ifCreateRevision: nil)
            let none = try await s[0].timeToLive(key)
            XCTAssertNil(none)
            _ = try await s[0].update(key, text: "v4", ttl: .set(ttl * 20), ifCreateRevision: nil)
            let set = try await XCTUnwrapAsync(try await s[0].timeToLive(key))
            XCTAssertGreaterThan(set, ttl * 10)
            // Without a condition an absent key is created.
            guard case .updated = try await s[0].update(prefix + "upserted", text: "u", ttl: .keep, ifCreateRevision: nil) else {
                return XCTFail()
            }
            let upserted = try await s[0].get(prefix + "upserted")?.text
            XCTAssertEqual(upserted, "u")
        }
    }

    /// Delete removes the key once, with an event.
    func delete() async throws {
        try await withClients(1) { s in
            let key = prefix + "deleted"
            _ = try await s[0].create(key, text: "v", ttl: ttl * 5)
            let start = try await s[0].list(prefix: prefix).revision
            let events = EventCollector(s[0].watch(prefix: prefix, fromRevision: start + 1))
            defer { events.stop() }
            let first = try await s[0].delete(key)
            XCTAssertTrue(first)
            let second = try await s[0].delete(key)
            XCTAssertFalse(second)
            let gone = try await s[0].get(key)
            XCTAssertNil(gone)
            let seen = await events.waitUntil(timeout: .seconds(5)) { $0.contains { $0.key == key } }
            XCTAssertTrue(seen)
            XCTAssertEqual(events.snapshot.map(\.kind), [.deleted])
        }
    }

    /// A listing at revision R plus a watch from R + 1 sees every change exactly once, while
    /// another client keeps writing.
    func listThenWatchLosesNothing() async throws {
        try await withClients(2) { s in
            let writer = s[0], reader = s[1]
            let total = 60
            let writes = Task {
                for i in 0..<total {
                    _ = try await writer.update(prefix + "k\(i % 15)", text: "\(i)", ttl: .keep, ifCreateRevision: nil)
                    if i % 20 == 19 { _ = try await writer.delete(prefix + "k\(i % 15)") }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            // List while the writer is busy: some changes land before the listing, some after.
            var listing = try await reader.list(prefix: prefix)
            while listing.entries.count < 10 {
                try await Task.sleep(for: .milliseconds(5))
                listing = try await reader.list(prefix: prefix)
            }
            let events = EventCollector(reader.watch(prefix: prefix, fromRevision: listing.revision + 1))
            defer { events.stop() }
            try await writes.value
            let final = try await writer.list(prefix: prefix)
            XCTAssertLessThan(listing.revision, final.revision, "the listing came after the last write")
            let caughtUp = await events.waitUntil(timeout: .seconds(10)) { ($0.last?.revision ?? listing.revision) >= final.revision }
            XCTAssertTrue(caughtUp, "watch did not reach revision \(final.revision): \(events.snapshot.last.map { "\($0)" } ?? "none")")
            var state = Dictionary(uniqueKeysWithValues: listing.entries.map { ($0.key, $0.text) })
            var last = listing.revision
            for e in events.snapshot {
                XCTAssertGreaterThan(e.revision, last, "events out of order or repeated")
                last = e.revision
                state[e.key] = e.kind == .put ? String(decoding: e.value, as: UTF8.self) : nil
            }
            XCTAssertEqual(state, Dictionary(uniqueKeysWithValues: final.entries.map { ($0.key, $0.text) }))
            XCTAssertNil(events.failure)
        }
    }

    /// A watch from a compacted revision fails with `.compacted`; listing again and watching
    /// from the listing's revision + 1 works.
    func compaction() async throws {
        try await withClients(1) { s in
            for i in 0..<5 { _ = try await s[0].create(prefix + "c\(i)", text: "v", ttl: nil) }
            let listing = try await s[0].list(prefix: prefix)
            try await s[0].compact(revision: listing.revision)
            var failure: (any Error)?
            do {
                for try await _ in s[0].watch(prefix: prefix, fromRevision: 1) {}
            } catch {
                failure = error
            }
            guard case .compacted(_, let at)? = failure as? StoreError else {
                return XCTFail("expected .compacted, got \(String(describing: failure))")
            }
            XCTAssertEqual(at, listing.revision)
            let again = try await s[0].list(prefix: prefix)
            let events = EventCollector(s[0].watch(prefix: prefix, fromRevision: again.revision + 1))
            defer { events.stop() }
            _ = try await s[0].create(prefix + "after", text: "v", ttl: nil)
            let seen = await events.waitUntil(timeout: .seconds(5)) { $0.contains { $0.key == prefix + "after" } }
            XCTAssertTrue(seen)
            XCTAssertNil(events.failure)
        }
    }

    /// Bad requests are refused before anything is written.
    func invalidRequests() async throws {
        try await withClients(1) { s in
            do {
                _ = try await s[0].create("", text: "v", ttl: nil)
                XCTFail("an empty key was accepted")
            } catch { XCTAssertTrue("\(error)".contains("empty key"), "\(error)") }
            do {
                _ = try await s[0].create(prefix + "zero", text: "v", ttl: .zero)
                XCTFail("a zero TTL was accepted")
            } catch { XCTAssertTrue("\(error)".contains("TTL must be positive"), "\(error)") }
            let nothing = try await s[0].get(prefix + "zero")
            XCTAssertNil(nothing)
        }
    }
}

/// Collects a watch's events on a task of its own, for tests to wait on.
final class EventCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [StoreEvent] = []
    private var error: (any Error)?
    private var task: Task<Void, Never>?

    init(_ stream: AsyncThrowingStream<StoreEvent, any Error>) {
        task = Task {
            do {
                for try await e in stream { self.lock.withLock { self.events.append(e) } }
            } catch {
                self.lock.withLock { self.error = error }
            }
        }
    }

    var snapshot: [StoreEvent] { lock.withLock { events } }
    var failure: (any Error)? { lock.withLock { error } }

    func waitUntil(timeout: Duration, _ condition: ([StoreEvent]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(snapshot) { return true }
            try? await Task.sleep(for: .milliseconds(20))  // cancelled: the deadline check ends the loop soon
        }
        return condition(snapshot)
    }

    func stop() { task?.cancel() }
}

/// XCTUnwrap for an async expression.
func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath,
                       line: UInt = #line) async throws -> T {
    let v = try await value()
    return try XCTUnwrap(v, file: file, line: line)
}
