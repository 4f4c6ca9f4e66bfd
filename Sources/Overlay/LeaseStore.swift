// The lease-store protocol: what overlayd needs from a store, whether an embedded database
// file on one machine or etcd across machines. It is etcd's model, reduced: keys with values,
// one global revision counter that every change advances, keys that expire after a TTL,
// create-if-absent in one transaction, and a watch of a prefix from a revision, so that a
// list at revision R followed by a watch from R + 1 sees every change exactly once.

/// A key and its value as a store holds it.
public struct StoreEntry: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]
    /// The revision that created the key (it stays until the key is deleted or expires).
    public var createRevision: Int64
    /// The revision of the last change to the key.
    public var modRevision: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
    }

    /// The value as UTF-8 text.
    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// Every key under a prefix at one revision.
public struct StoreListing: Sendable, Hashable {
    /// Sorted by key.
    public var entries: [StoreEntry]
    /// The store's revision when it was read; watch from `revision + 1` to miss nothing.
    public var revision: Int64

    public init(entries: [StoreEntry], revision: Int64) {
        self.entries = entries
        self.revision = revision
    }
}

/// What `create` did.
public enum CreateResult: Sendable, Hashable {
    /// The key was absent and now holds the value, created at `revision`.
    case created(revision: Int64)
    /// The key was there already; nothing changed. This is its holder.
    case exists(StoreEntry)
}

/// What `update` does with the key's TTL.
public enum TTLChange: Sendable, Hashable {
    /// The key keeps the expiry it has (none for a key without one or a new key).
    case keep
    /// The key expires `ttl` from now, and `renew` restores that much.
    case set(Duration)
    /// The key no longer expires.
    case none
}

/// What `update` did.
public enum UpdateResult: Sendable, Hashable {
    case updated(revision: Int64)
    /// The condition did not hold: the key is absent (nil) or was created by someone else.
    case conflict(current: StoreEntry?)
}

/// One change seen by a watch.
public struct StoreEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case put
        case deleted
        /// The key's TTL ran out. etcd reports this as `deleted`: it does not tell them apart.
        case expired
    }

    public var kind: Kind
    public var key: String
    /// The new value for `put`; empty otherwise.
    public var value: [UInt8]
    /// The revision of this change.
    public var revision: Int64
    /// For `put`, the revision that created the key (equal to `revision` for a new key).
    public var createRevision: Int64

    public init(kind: Kind, key: String, value: [UInt8] = [], revision: Int64, createRevision: Int64 = 0) {
        self.kind = kind
        self.key = key
        self.value = value
        self.revision = revision
        self.createRevision = createRevision
    }

    /// Whether the key is gone after this event.
    public var removesKey: Bool { kind != .put }
    public var entry: StoreEntry? {
        kind == .put ? StoreEntry(key: key, value: value, createRevision: createRevision, modRevision: revision) : nil
    }
}

/// Why a store operation failed. Descriptions never carry credentials.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The watch asked for history the store has discarded: list again, then watch from the
    /// listing's revision + 1.
    case compacted(requested: Int64, compactRevision: Int64)
    /// No endpoint answered, or the connection broke; the operation may be retried.
    case unavailable(operation: String, reason: String)
    /// The store answered with a refusal (authentication, permission, a malformed request).
    case rejected(operation: String, reason: String)
    /// The embedded database failed: the SQLite result code and its message.
    case database(operation: String, code: Int32, message: String)
    /// The request itself is wrong (an empty key, a TTL the store cannot hold).
    case invalid(operation: String, reason: String)
    /// The store was closed.
    case closed

    public var description: String {
        switch self {
        case .compacted(let requested, let compact):
            return "watch from revision \(requested): history before revision \(compact) was compacted"
        case .unavailable(let op, let reason): return "\(op): store unavailable: \(reason)"
        case .rejected(let op, let reason): return "\(op): refused by the store: \(reason)"
        case .database(let op, let code, let message): return "\(op): SQLite error \(code): \(message)"
        case .invalid(let op, let reason): return "\(op): \(reason)"
        case .closed: return "the lease store is closed"
        }
    }

    /// Whether trying the same operation later may succeed.
    public var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }
}

/// A lease store. Every operation is atomic; revisions increase by at least one per change.
public protocol LeaseStore: AnyObject, Sendable {
    /// The key's entry, nil when absent (or expired).
    func get(_ key: String) async throws(StoreError) -> StoreEntry?

    /// Every key that starts with `prefix`, with the revision they were read at.
    func list(prefix: String) async throws(StoreError) -> StoreListing

    /// Creates the key only if it is absent, in one transaction; with `ttl`, the key expires
    /// that long after its last renewal.
    func create(_ key: String, value: [UInt8], ttl: Duration?) async throws(StoreError) -> CreateResult

    /// Writes the key (creating it when absent, unless `ifCreateRevision` is given: then only
    /// the key created at that revision is written, and anything else is a conflict).
    func update(_ key: String, value: [UInt8], ttl: TTLChange,
                ifCreateRevision: Int64?) async throws(StoreError) -> UpdateResult

    /// Restores the key's full TTL without changing its value or revision (no event).
    /// False when the key is absent or has no TTL.
    func renew(_ key: String) async throws(StoreError) -> Bool

    /// How long until the key expires; nil when it is absent or never expires.
    func timeToLive(_ key: String) async throws(StoreError) -> Duration?

    /// Deletes the key; false when it was absent.
    func delete(_ key: String) async throws(StoreError) -> Bool

    /// Every change under `prefix` from `fromRevision` (≥ 1) on, in revision order, until the
    /// consumer stops iterating. Ends by throwing a StoreError: `.compacted` when that history
    /// is gone, `.unavailable` when the store cannot be reached.
    func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<StoreEvent, any Error>

    /// Discards the history before `revision`; a later watch from an earlier revision fails
    /// with `.compacted`.
    func compact(revision: Int64) async throws(StoreError)

    /// Releases the store's connections; later calls fail with `.closed`.
    func close() async
}

extension LeaseStore {
    public func create(_ key: String, text: String, ttl: Duration?) async throws(StoreError) -> CreateResult {
        try await create(key, value: Array(text.utf8), ttl: ttl)
    }

    public func update(_ key: String, text: String, ttl: TTLChange,
                       ifCreateRevision: Int64? = nil) async throws(StoreError) -> UpdateResult {
        try await update(key, value: Array(text.utf8), ttl: ttl, ifCreateRevision: ifCreateRevision)
    }
}
