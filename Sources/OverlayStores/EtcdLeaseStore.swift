// The etcd v3 lease store, over etcd's JSON gateway: the store flannel itself uses, so a
// flannel deployment's etcd serves overlayd unchanged.
//
// Each key with a TTL gets a lease of its own, as flanneld does it: create-if-absent is one
// transaction (create_revision == 0 → put with the lease, else read the holder), renewing is
// a keepalive of the key's lease (no new revision, no event), and the lease of a deleted or
// rewritten key is revoked. etcd counts TTLs in whole seconds (a fraction rounds up) and
// grants no less than its minimum (about 2 s with default timings). A watch that loses its
// endpoint resumes from the next revision on another one; only compaction (→ .compacted) or
// a refusal ends it.

import AsyncHTTPClient
import FoundationEssentials
import Overlay
import SystemKit

public final class EtcdLeaseStore: LeaseStore, @unchecked Sendable {
    private let transport: EtcdTransport
    private let lock = Lock()
    private var isClosed = false

    /// Checks the options (endpoints, TLS files); connects on the first request.
    public init(options: EtcdOptions) throws(StoreError) {
        transport = try EtcdTransport(options: options)
    }

    /// How often an update retries when the key changes between its read and its write.
    private static let updateAttempts = 10

    // MARK: reads

    public func get(_ key: String) async throws(StoreError) -> StoreEntry? {
        try await current(key, "get \(key)")?.entry
    }

    public func list(prefix: String) async throws(StoreError) -> StoreListing {
        try checkOpen()
        let start = prefix.isEmpty ? EtcdBase64.encode([0]) : EtcdBase64.encode(prefix)
        let r: RangeResponse = try await transport.call(
            "/v3/kv/range", RangeRequest(key: start, range_end: EtcdBase64.prefixEnd(prefix)), "list \(prefix)")
        return StoreListing(entries: (r.kvs ?? []).map(\.fields.entry), revision: r.header?.rev ?? 0)
    }

    public func timeToLive(_ key: String) async throws(StoreError) -> Duration? {
        guard let kv = try await current(key, "timeToLive \(key)"), kv.lease != 0 else { return nil }
        let r: LeaseTTLResponse = try await transport.call("/v3/lease/timetolive", LeaseIDRequest(ID: EtcdInt(kv.lease)),
                                                           "timeToLive \(key)")
        guard let ttl = r.TTL?.value, ttl > 0 else { return nil }
        return .seconds(ttl)
    }

    private func current(_ key: String, _ operation: String) async throws(StoreError) -> KeyValueFields? {
        try checkOpen()
        try requireKey(key, operation)
        let r: RangeResponse = try await transport.call("/v3/kv/range", RangeRequest(key: EtcdBase64.encode(key)), operation)
        return r.kvs?.first?.fields
    }

    // MARK: writes

    public func create(_ key: String, value: [UInt8], ttl: Duration?) async throws(StoreError) -> CreateResult {
        let operation = "create \(key)"
        try checkOpen()
        try requireKey(key, operation)
        var lease: Int64?
        if let ttl { lease = try await grant(ttl, operation) }
        let k = EtcdBase64.encode(key)
        let put = PutRequest(key: k, value: EtcdBase64.encode(value), lease: lease.map { EtcdInt($0) })
        let txn = TxnRequest(compare: [.created(k, at: 0)], success: [RequestOp(request_put: put)],
                             failure: [RequestOp(request_range: RangeRequest(key: k))])
        let r: TxnResponse
        do throws(StoreError) {
            r = try await transport.call("/v3/kv/txn", txn, operation)
        } catch {
            if let lease { await revoke(lease) }
            throw error
        }
        if r.succeeded == true { return .created(revision: r.header?.rev ?? 0) }
        if let lease { await revoke(lease) }
        guard let holder = r.responses?.first?.response_range?.kvs?.first else {
            throw .rejected(operation: operation, reason: "the transaction failed but etcd returned no holder")
        }
        return .exists(holder.fields.entry)
    }

    public func update(_ key: String, value: [UInt8], ttl: TTLChange,
                       ifCreateRevision: Int64?) async throws(StoreError) -> UpdateResult {
        let operation = "update \(key)"
        var newLease: Int64?
        if case .set(let d) = ttl { newLease = try await grant(d, operation) }
        do throws(StoreError) {
            for _ in 0..<Self.updateAttempts {
                let current = try await self.current(key, operation)
                if let required = ifCreateRevision, current?.createRevision != required {
                    if let newLease { await revoke(newLease) }
                    return .conflict(current: current?.entry)
                }
                let oldLease = current?.lease ?? 0
                let lease: Int64 = switch ttl {
                case .keep: oldLease
                case .set: newLease ?? 0
                case .none: 0
                }
                if let revision = try await write(key, value, lease: lease, over: current, operation) {
                    // The old lease holds no key now (one lease per key): revoking it only tidies.
                    if oldLease != 0 && oldLease != lease { await revoke(oldLease) }
                    return .updated(revision: revision)
                }
            }
        } catch {
            if let newLease { await revoke(newLease) }
            throw error
        }
        if let newLease { await revoke(newLease) }
        throw .unavailable(operation: operation, reason: "the key kept changing under \(Self.updateAttempts) attempts")
    }

    /// Puts the value if the key is still as `current` found it; the new revision, or nil
    /// when it changed meanwhile.
    private func write(_ key: String, _ value: [UInt8], lease: Int64, over current: KeyValueFields?,
                       _ operation: String) async throws(StoreError) -> Int64? {
        let k = EtcdBase64.encode(key)
        let guardCompare: Compare = current.map { .modified(k, at: $0.modRevision) } ?? .created(k, at: 0)
        let put = PutRequest(key: k, value: EtcdBase64.encode(value), lease: lease == 0 ? nil : EtcdInt(lease))
        let r: TxnResponse = try await transport.call(
            "/v3/kv/txn", TxnRequest(compare: [guardCompare], success: [RequestOp(request_put: put)], failure: []), operation)
        return r.succeeded == true ? r.header?.rev ?? 0 : nil
    }

    public func renew(_ key: String) async throws(StoreError) -> Bool {
        let operation = "renew \(key)"
        guard let kv = try await current(key, operation), kv.lease != 0 else { return false }
        let body = try await transport.stream("/v3/lease/keepalive", LeaseIDRequest(ID: EtcdInt(kv.lease)), operation)
        var splitter = LineSplitter()
        do {
            // One request, one answer: the first line says whether the lease still lives.
            for try await chunk in body {
                guard let line = splitter.lines(chunk).first else { continue }
                let answer = try JSONDecoder().decode(StreamLine<LeaseTTLResponse>.self, from: Data(line))
                if let e = answer.error { throw StoreError.rejected(operation: operation, reason: e.text) }
                return (answer.result?.TTL?.value ?? 0) > 0
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw .unavailable(operation: operation, reason: EtcdTransport.describe(error))
        }
        throw .unavailable(operation: operation, reason: "etcd closed the keepalive stream without an answer")
    }

    public func delete(_ key: String) async throws(StoreError) -> Bool {
        let operation = "delete \(key)"
        try checkOpen()
        try requireKey(key, operation)
        let r: DeleteRangeResponse = try await transport.call(
            "/v3/kv/deleterange", DeleteRangeRequest(key: EtcdBase64.encode(key), prev_kv: true), operation)
        for kv in r.prev_kvs ?? [] where kv.fields.lease != 0 { await revoke(kv.fields.lease) }
        return (r.deleted?.value ?? 0) > 0
    }

    public func compact(revision: Int64) async throws(StoreError) {
        try checkOpen()
        let _: HeaderResponse = try await transport.call(
            "/v3/kv/compaction", CompactionRequest(revision: EtcdInt(revision), physical: true), "compact \(revision)")
    }

    public func close() async {
        let first = lock.withLock { () -> Bool in
            defer { isClosed = true }
            return !isClosed
        }
        if first { await transport.shutdown() }
    }

    // MARK: leases

    private func grant(_ ttl: Duration, _ operation: String) async throws(StoreError) -> Int64 {
        let c = ttl.components
        let seconds = c.seconds + (c.attoseconds > 0 ? 1 : 0)
        guard seconds > 0 else { throw .invalid(operation: operation, reason: "TTL must be positive, got \(ttl)") }
        let r: LeaseGrantResponse = try await transport.call("/v3/lease/grant", LeaseGrantRequest(TTL: EtcdInt(seconds)),
                                                             operation)
        guard let id = r.ID?.value, id != 0, (r.error ?? "").isEmpty else {
            throw .rejected(operation: operation, reason: "lease grant failed: \(r.error ?? "no lease ID")")
        }
        return id
    }

    /// Revokes a lease that holds no key of ours any more.
    private func revoke(_ id: Int64) async {
        do {
            let _: HeaderResponse = try await transport.call("/v3/lease/revoke", LeaseIDRequest(ID: EtcdInt(id)), "revoke")
        } catch {
            // A lease left behind holds no key and expires on its own at its TTL.
        }
    }

    // MARK: watch

    public func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<StoreEvent, any Error> {
        let watch = EtcdWatch(transport: transport, prefix: prefix)
        return eventStream { deliver in try await watch.follow(from: fromRevision, deliver) }
    }

    // MARK: checks

    private func checkOpen() throws(StoreError) {
        if lock.withLock({ isClosed }) { throw .closed }
    }
}

/// A key-value with the lease it is attached to.
struct KeyValueFields: Sendable {
    var key: String
    var value: [UInt8]
    var createRevision: Int64
    var modRevision: Int64
    var lease: Int64

    var entry: StoreEntry { StoreEntry(key: key, value: value, createRevision: createRevision, modRevision: modRevision) }
}

extension KeyValue {
    var fields: KeyValueFields {
        KeyValueFields(key: String(decoding: EtcdBase64.decode(key), as: UTF8.self), value: EtcdBase64.decode(value),
                       createRevision: create_revision?.value ?? 0, modRevision: mod_revision?.value ?? 0,
                       lease: lease?.value ?? 0)
    }
}
