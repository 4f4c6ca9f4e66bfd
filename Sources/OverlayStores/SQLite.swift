// A small wrapper over the system libsqlite3: one connection, prepared statements cached by
// their SQL, values in and rows out as Swift values, every failure a StoreError with SQLite's
// result code and message. SQLite's pointers stay in this file.

import CSQLite
import Overlay

/// A value bound to a statement or read from a row.
enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case blob([UInt8])
    case text(String)
    case null

    var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    var bytes: [UInt8] {
        switch self {
        case .blob(let b): return b
        case .text(let s): return Array(s.utf8)
        default: return []
        }
    }
}

/// One SQLite connection. Not safe to use from two threads at once: its owner serialises.
final class SQLiteConnection {
    let path: String
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// SQLite copies bound bytes when told the buffer is transient (the C macro
    /// SQLITE_TRANSIENT, which Swift cannot import).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens (creating) the database file and makes a busy writer wait up to `busyTimeout`
    /// instead of failing with SQLITE_BUSY.
    init(path: String, busyTimeout: Duration) throws(StoreError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw .database(operation: "open \(path)", code: rc, message: message)
        }
        db = handle
        let ms = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(handle, Int32(clamping: ms))
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    func close() {
        for (_, s) in statements { sqlite3_finalize(s) }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs SQL without results (one or more statements, no bindings).
    func execute(_ sql: String) throws(StoreError) {
        guard let db else { throw .closed }
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ sql: String, _ bindings: [SQLiteValue] = []) throws(StoreError) -> [[SQLiteValue]] {
        let stmt = try statement(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, value) in bindings.enumerated() { try bind(stmt, Int32(i + 1), value, sql) }
        var rows: [[SQLiteValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { return rows }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            rows.append((0..<sqlite3_column_count(stmt)).map { column(stmt, $0) })
        }
    }

    /// Runs one statement and returns how many rows it changed.
    @discardableResult
    func run(_ sql: String, _ bindings: [SQLiteValue] = []) throws(StoreError) -> Int {
        try query(sql, bindings)
        return Int(sqlite3_changes(db))
    }

    /// Runs `body` in a transaction: BEGIN IMMEDIATE takes the write lock at once (waiting
    /// for it under the busy timeout), so two writers never deadlock upgrading a read lock.
    func transaction<R>(write: Bool, _ body: () throws(StoreError) -> R) throws(StoreError) -> R {
        try execute(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // The transaction failed already; a failing rollback leaves SQLite to roll back
            // when the connection next begins one.
            if let db { sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    // MARK: statements

    private func statement(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let s = statements[sql] { return s }
        guard let db else { throw .closed }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        statements[sql] = stmt
        return stmt
    }

    private func bind(_ stmt: OpaquePointer, _ index: Int32, _ value: SQLiteValue, _ sql: String) throws(StoreError) {
        let rc: Int32
        switch value {
        case .integer(let i): rc = sqlite3_bind_int64(stmt, index, i)
        case .null: rc = sqlite3_bind_null(stmt, index)
        case .text(let s): rc = sqlite3_bind_text(stmt, index, s, -1, Self.transient)
        case .blob(let b):
            // A zero-length blob must still be a blob, not NULL: bind_zeroblob gives that.
            rc = b.isEmpty ? sqlite3_bind_zeroblob(stmt, index, 0)
                : b.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), Self.transient) }
        }
        guard rc == SQLITE_OK else { throw error(rc, sql) }
    }

    private func column(_ stmt: OpaquePointer, _ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(stmt, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(stmt, index))
        case SQLITE_NULL: return .null
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(stmt, index)))
        default:
            let count = Int(sqlite3_column_bytes(stmt, index))
            guard count > 0, let p = sqlite3_column_blob(stmt, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: count)))
        }
    }

    private func error(_ rc: Int32, _ sql: String) -> StoreError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        let statement = sql.split(separator: " ").prefix(3).joined(separator: " ")
        return .database(operation: "\(statement) on \(path)", code: rc, message: message)
    }
}
