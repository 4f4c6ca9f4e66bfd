// The embedded store's tables and its one way of writing: every change runs in a write
// transaction that first deletes the keys whose TTL ran out, then applies the change with the
// next revision, logs it as an event, and stores the new revision, all or nothing.

import Overlay

enum EmbeddedSchema {
    static let version: Int64 = 1

    /// The condition a key must meet to be visible (bind the current time).
    static let live = "(expires_ms IS NULL OR expires_ms > ?)"

    enum EventKind: Int64 {
        case put = 0, deleted = 1, expired = 2
        var storeKind: StoreEvent.Kind {
            switch self {
            case .put: .put
            case .deleted: .deleted
            case .expired: .expired
            }
        }
    }

    /// Puts the file in WAL mode and creates the tables, once, whichever process comes first.
    static func prepare(_ c: SQLiteConnection) throws(StoreError) {
        // WAL: readers never wait for the writer; the mode is stored in the file.
        let mode = try c.query("PRAGMA journal_mode=WAL").first?.first
        guard case .text(let m) = mode, m.lowercased() == "wal" else {
            throw .database(operation: "set WAL mode on \(c.path)", code: 0, message: "journal mode is \(String(describing: mode))")
        }
        // NORMAL in WAL mode never corrupts; a power cut may lose the last commits, which the
        // daemons on this machine, losing power with it, redo when they start.
        try c.execute("PRAGMA synchronous=NORMAL")
        try c.transaction(write: true) { () throws(StoreError) in
            try c.execute("""
                CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL,
                    create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL,
                    ttl_ms INTEGER, expires_ms INTEGER);
                CREATE INDEX IF NOT EXISTS kv_expiry ON kv(expires_ms) WHERE expires_ms IS NOT NULL;
                CREATE TABLE IF NOT EXISTS events(revision INTEGER PRIMARY KEY, kind INTEGER NOT NULL,
                    key BLOB NOT NULL, value BLOB NOT NULL, create_revision INTEGER NOT NULL);
                INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', \(version)), ('revision', 0), ('compacted', 1);
                """)
            let found = try meta(c, "schema")
            guard found == version else {
                throw .database(operation: "open \(c.path)", code: 0,
                                message: "schema version \(found), this build reads version \(version)")
            }
        }
    }

    static func meta(_ c: SQLiteConnection, _ name: String) throws(StoreError) -> Int64 {
        guard let v = try c.query("SELECT value FROM meta WHERE name = ?", [.text(name)]).first?.first?.integer else {
            throw .database(operation: "read \(name) of \(c.path)", code: 0, message: "missing from table meta")
        }
        return v
    }

    /// The condition for keys under `prefix` (byte order, as etcd's range_end), and its bindings.
    static func range(_ prefix: String, column: String) -> (String, [SQLiteValue]) {
        let start = Array(prefix.utf8)
        if start.isEmpty { return ("1 = 1", []) }
        var end = start
        while let last = end.last, last == 0xff { end.removeLast() }
        guard !end.isEmpty else { return ("\(column) >= ?", [.blob(start)]) }
        end[end.count - 1] += 1
        return ("\(column) >= ? AND \(column) < ?", [.blob(start), .blob(end)])
    }

    /// A kv row (key, value, create_revision, mod_revision) as an entry.
    static func entry(_ row: [SQLiteValue]) -> StoreEntry {
        StoreEntry(key: String(decoding: row[0].bytes, as: UTF8.self), value: row[1].bytes,
                   createRevision: row[2].integer ?? 0, modRevision: row[3].integer ?? 0)
    }

    /// An events row (revision, kind, key, value, create_revision) as an event.
    static func event(_ row: [SQLiteValue]) -> StoreEvent {
        let kind = EventKind(rawValue: row[1].integer ?? 0) ?? .put
        return StoreEvent(kind: kind.storeKind, key: String(decoding: row[2].bytes, as: UTF8.self),
                          value: row[3].bytes, revision: row[0].integer ?? 0, createRevision: row[4].integer ?? 0)
    }
}

/// One write transaction in progress.
struct EmbeddedWrite {
    let connection: SQLiteConnection
    /// The wall clock when the transaction began, in milliseconds.
    let now: Int64
    /// The latest revision, including this transaction's changes so far.
    private(set) var revision: Int64

    /// History is trimmed when the revision crosses a multiple of this.
    private static let compactionStride: Int64 = 256

    static func perform<R>(_ c: SQLiteConnection, historyLimit: Int64,
                           _ body: (inout EmbeddedWrite) throws(StoreError) -> R) throws(StoreError) -> R {
        try c.transaction(write: true) { () throws(StoreError) in
            let start = try EmbeddedSchema.meta(c, "revision")
            var w = EmbeddedWrite(connection: c, now: wallClockMilliseconds(), revision: start)
            try w.sweepExpired()
            let result = try body(&w)
            if w.revision != start {
                try c.run("UPDATE meta SET value = ? WHERE name = 'revision'", [.integer(w.revision)])
                if w.revision / compactionStride != start / compactionStride && w.revision > historyLimit {
                    try w.compact(before: w.revision - historyLimit + 1)
                }
            }
            return result
        }
    }

    /// Deletes every key whose TTL has run out, each with an `expired` event.
    private mutating func sweepExpired() throws(StoreError) {
        let rows = try connection.query("SELECT key FROM kv WHERE expires_ms <= ? ORDER BY expires_ms, key",
                                        [.integer(now)])
        for row in rows { try remove(String(decoding: row[0].bytes, as: UTF8.self), kind: .expired) }
    }

    /// The key's entry (expired keys are gone already).
    func current(_ key: String) throws(StoreError) -> StoreEntry? {
        try connection.query("SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?",
                             [.blob(Array(key.utf8))]).first.map(EmbeddedSchema.entry)
    }

    /// The key's TTL and expiry time, in milliseconds.
    func expiry(_ key: String) throws(StoreError) -> (ttl: Int64?, expires: Int64?) {
        guard let row = try connection.query("SELECT ttl_ms, expires_ms FROM kv WHERE key = ?",
                                             [.blob(Array(key.utf8))]).first else { return (nil, nil) }
        return (row[0].integer, row[1].integer)
    }

    /// Writes the key at the next revision; `createRevision` nil makes it a new key.
    mutating func put(_ key: String, value: [UInt8], createRevision: Int64?,
                      ttlMs: Int64?, expiresMs: Int64?) throws(StoreError) -> Int64 {
        revision += 1
        let created = createRevision ?? revision
        let k = SQLiteValue.blob(Array(key.utf8))
        try connection.run("""
            INSERT INTO kv(key, value, create_revision, mod_revision, ttl_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
                ttl_ms = excluded.ttl_ms, expires_ms = excluded.expires_ms
            """, [k, .blob(value), .integer(created), .integer(revision),
                  ttlMs.map { .integer($0) } ?? .null, expiresMs.map { .integer($0) } ?? .null])
        try log(.put, k, value: value, createRevision: created)
        return revision
    }

    /// Deletes the key at the next revision.
    mutating func remove(_ key: String, kind: EmbeddedSchema.EventKind) throws(StoreError) {
        revision += 1
        let k = SQLiteValue.blob(Array(key.utf8))
        try connection.run("DELETE FROM kv WHERE key = ?", [k])
        try log(kind, k, value: [], createRevision: 0)
    }

    private func log(_ kind: EmbeddedSchema.EventKind, _ key: SQLiteValue, value: [UInt8],
                     createRevision: Int64) throws(StoreError) {
        try connection.run("INSERT INTO events(revision, kind, key, value, create_revision) VALUES (?, ?, ?, ?, ?)",
                           [.integer(revision), .integer(kind.rawValue), key, .blob(value), .integer(createRevision)])
    }

    /// Drops the history before `revision`.
    func compact(before revision: Int64) throws(StoreError) {
        try connection.run("DELETE FROM events WHERE revision < ?", [.integer(revision)])
        try connection.run("UPDATE meta SET value = max(value, ?) WHERE name = 'compacted'", [.integer(revision)])
    }
}
