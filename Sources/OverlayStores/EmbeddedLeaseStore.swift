// The embedded lease store: one SQLite database file on local disk, shared by every daemon
// on the machine (the simulated hosts of netlab), with no server to start.
//
// Several processes use the file at once: WAL mode lets readers run beside a writer, every
// write takes the write lock up front (BEGIN IMMEDIATE) and waits for it under a busy timeout,
// so no caller ever sees SQLITE_BUSY. One global revision counter advances with every
// change; each change is also appended to an event log, from which watches read (polling the
// log, every 50 ms by default) and which is compacted to a bounded history.
//
// Expiry uses the wall clock, which every process on the machine shares and which survives a
// reboot. An expired key is invisible to reads at once; the next write, or the next poll of
// any watch in any process, deletes it and logs an `expired` event with its own revision.

import Dispatch
import Glibc
import Overlay
import SystemKit

public final class EmbeddedLeaseStore: LeaseStore, @unchecked Sendable {
    public struct Options: Sendable {
        /// How often a watch looks for changes made by other processes.
        public var pollInterval: Duration = .milliseconds(50)
        /// How long a writer waits for another process's write lock before failing.
        public var busyTimeout: Duration = .seconds(30)
        /// How many revisions of history the event log keeps for watches.
        public var historyLimit: Int64 = 10_000
        public init() {}
    }

    public let path: String
    let options: Options
    /// Every use of the connection runs on this queue, one at a time, off Swift's cooperative
    /// threads (a write may wait for another process's lock).
    private let queue: DispatchQueue
    /// Touched only on `queue`.
    private var connection: SQLiteConnection?

    private init(path: String, options: Options, connection: SQLiteConnection) {
        self.path = path
        self.options = options
        self.connection = connection
        queue = DispatchQueue(label: "netlab.embedded-store")
    }

    /// Opens the database at `path`, creating it and its directory when absent.
    public static func open(path: String, options: Options = Options()) async throws(StoreError) -> EmbeddedLeaseStore {
        do {
            try Files.makeDirectories(Files.directoryName(path))
        } catch {
            throw .database(operation: "create directory of \(path)", code: 0, message: "\(error)")
        }
        let setup = DispatchQueue(label: "netlab.embedded-store.open")
        let result: Result<SQLiteConnection, StoreError> = await withCheckedContinuation { done in
            setup.async {
                done.resume(returning: Result { () throws(StoreError) in
                    let c = try SQLiteConnection(path: path, busyTimeout: options.busyTimeout)
                    try EmbeddedSchema.prepare(c)
                    return c
                })
            }
        }
        return EmbeddedLeaseStore(path: path, options: options, connection: try result.get())
    }

    /// Runs `body` with the connection on the store's queue.
    private func withConnection<R: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> R
    ) async throws(StoreError) -> R {
        let result: Result<R, StoreError> = await withCheckedContinuation { done in
            queue.async {
                guard let c = self.connection else { return done.resume(returning: .failure(.closed)) }
                done.resume(returning: Result { () throws(StoreError) in try body(c) })
            }
        }
        return try result.get()
    }

    private func write<R: Sendable>(
        _ body: @escaping @Sendable (inout EmbeddedWrite) throws(StoreError) -> R
    ) async throws(StoreError) -> R {
        let limit = options.historyLimit
        return try await withConnection { c throws(StoreError) in
            try EmbeddedWrite.perform(c, historyLimit: limit, body)
        }
    }

    // MARK: LeaseStore

    public func get(_ key: String) async throws(StoreError) -> StoreEntry? {
        try requireKey(key, "get")
        return try await withConnection { c throws(StoreError) in
            try c.query("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ? AND "
                        + EmbeddedSchema.live, [.blob(Array(key.utf8)), .integer(wallClockMilliseconds())])
                .first.map(EmbeddedSchema.entry)
        }
    }

    public func list(prefix: String) async throws(StoreError) -> StoreListing {
        try await withConnection { c throws(StoreError) in
            try c.transaction(write: false) { () throws(StoreError) in
                let revision = try EmbeddedSchema.meta(c, "revision")
                let (sql, bindings) = EmbeddedSchema.range(prefix, column: "key")
                let rows = try c.query("SELECT key, value, create_revision, mod_revision FROM kv WHERE \(sql) AND "
                                       + EmbeddedSchema.live + " ORDER BY key",
                                       bindings + [.integer(wallClockMilliseconds())])
                return StoreListing(entries: rows.map(EmbeddedSchema.entry), revision: revision)
            }
        }
    }

    public func create(_ key: String, value: [UInt8], ttl: Duration?) async throws(StoreError) -> CreateResult {
        try requireKey(key, "create")
        let ttlMs = try ttl.map { d throws(StoreError) in try milliseconds(d, "create \(key)") }
        return try await write { w throws(StoreError) in
            if let holder = try w.current(key) { return .exists(holder) }
            let revision = try w.put(key, value: value, createRevision: nil, ttlMs: ttlMs, expiresMs: ttlMs.map { w.now + $0 })
            return .created(revision: revision)
        }
    }

    public func update(_ key: String, value: [UInt8], ttl: TTLChange,
                       ifCreateRevision: Int64?) async throws(StoreError) -> UpdateResult {
        try requireKey(key, "update")
        var newTTL: Int64?
        if case .set(let d) = ttl { newTTL = try milliseconds(d, "update \(key)") }
        let ttlMs = newTTL
        return try await write { w throws(StoreError) in
            let current = try w.current(key)
            if let required = ifCreateRevision, current?.createRevision != required {
                return .conflict(current: current)
            }
            var keep: (ttl: Int64?, expires: Int64?) = (nil, nil)
            if case .keep = ttl, current != nil { keep = try w.expiry(key) }
            let revision = try w.put(key, value: value, createRevision: current?.createRevision,
                                     ttlMs: ttlMs ?? keep.ttl, expiresMs: ttlMs.map { w.now + $0 } ?? keep.expires)
            return .updated(revision: revision)
        }
    }

    public func renew(_ key: String) async throws(StoreError) -> Bool {
        try requireKey(key, "renew")
        return try await write { w throws(StoreError) in
            try w.connection.run("UPDATE kv SET expires_ms = ? + ttl_ms WHERE key = ? AND ttl_ms IS NOT NULL",
                                 [.integer(w.now), .blob(Array(key.utf8))]) > 0
        }
    }

    public func timeToLive(_ key: String) async throws(StoreError) -> Duration? {
        try requireKey(key, "timeToLive")
        return try await withConnection { c throws(StoreError) in
            let now = wallClockMilliseconds()
            guard let row = try c.query("SELECT expires_ms FROM kv WHERE key = ? AND " + EmbeddedSchema.live,
                                        [.blob(Array(key.utf8)), .integer(now)]).first,
                  let expires = row[0].integer else { return nil }
            return .milliseconds(expires - now)
        }
    }

    public func delete(_ key: String) async throws(StoreError) -> Bool {
        try requireKey(key, "delete")
        return try await write { w throws(StoreError) in
            guard try w.current(key) != nil else { return false }
            try w.remove(key, kind: .deleted)
            return true
        }
    }

    public func compact(revision: Int64) async throws(StoreError) {
        try await write { w throws(StoreError) in
            guard revision <= w.revision else {
                throw .invalid(operation: "compact", reason: "revision \(revision) is in the future (now \(w.revision))")
            }
            try w.compact(before: revision)
        }
    }

    public func close() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                self.connection?.close()
                self.connection = nil
                done.resume()
            }
        }
    }

    public func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<StoreEvent, any Error> {
        eventStream { deliver in try await self.follow(prefix: prefix, from: fromRevision, deliver) }
    }

    // MARK: watching

    /// Reads the event log from `from` on until cancelled, sweeping expired keys as they fall due.
    private func follow(prefix: String, from: Int64, _ deliver: (StoreEvent) -> Void) async throws {
        try requireStartRevision(from)
        var next = from
        while true {
            try Task.checkCancellation()
            let page = try await readEvents(prefix: prefix, from: next)
            for event in page.events { deliver(event) }
            next = page.next
            if page.expiryDue {
                try await write { _ throws(StoreError) in }  // every write sweeps expired keys first
            } else if page.events.isEmpty {
                try await Task.sleep(for: options.pollInterval)
            }
        }
    }

    private struct EventPage: Sendable {
        var events: [StoreEvent]
        var next: Int64
        var expiryDue: Bool
    }

    private static let pageSize: Int64 = 1000

    private func readEvents(prefix: String, from: Int64) async throws(StoreError) -> EventPage {
        try await withConnection { c throws(StoreError) in
            try c.transaction(write: false) { () throws(StoreError) in
                let compacted = try EmbeddedSchema.meta(c, "compacted")
                guard from >= compacted else { throw .compacted(requested: from, compactRevision: compacted) }
                let revision = try EmbeddedSchema.meta(c, "revision")
                let (sql, bindings) = EmbeddedSchema.range(prefix, column: "key")
                let rows = try c.query("SELECT revision, kind, key, value, create_revision FROM events "
                                       + "WHERE revision >= ? AND \(sql) ORDER BY revision LIMIT ?",
                                       [.integer(from)] + bindings + [.integer(Self.pageSize)])
                let events = rows.map(EmbeddedSchema.event)
                // A full page may have more behind it; otherwise everything up to `revision` was seen.
                let next = Int64(events.count) == Self.pageSize ? events.last!.revision + 1 : max(from, revision + 1)
                let due = try c.query("SELECT 1 FROM kv WHERE expires_ms <= ? LIMIT 1",
                                      [.integer(wallClockMilliseconds())]).isEmpty == false
                return EventPage(events: events, next: next, expiryDue: due)
            }
        }
    }

    // MARK: checks

    private func milliseconds(_ d: Duration, _ operation: String) throws(StoreError) -> Int64 {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        guard ms > 0 else { throw .invalid(operation: operation, reason: "TTL must be positive, got \(d)") }
        return ms
    }
}

/// The wall clock in milliseconds since the epoch (CLOCK_REALTIME, shared by all processes).
func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
