// The JSON messages of etcd's v3 gateway (the gRPC API's JSON mapping): keys and values in
// base64, 64-bit numbers as strings, fields left out when they hold their zero value.

import FoundationEssentials

/// A 64-bit integer that the gateway writes as a JSON string ("42") and accepts as one.
struct EtcdInt: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    var value: Int64
    init(_ value: Int64) { self.value = value }
    init(integerLiteral value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        // etcd's gateway writes int64 as a JSON string, sometimes as a number: try the string first.
        if let s = try? c.decode(String.self), let v = Int64(s) {
            value = v
        } else {
            value = try c.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

enum EtcdBase64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func encode(_ text: String) -> String { encode(Array(text.utf8)) }
    static func decode(_ text: String?) -> [UInt8] { text.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? [] }

    /// The range_end that selects every key starting with `prefix` (etcd's WithPrefix): the
    /// prefix with its last byte below 0xff incremented; "\0" (every key) for an empty prefix.
    static func prefixEnd(_ prefix: String) -> String {
        var end = Array(prefix.utf8)
        while let last = end.last, last == 0xff { end.removeLast() }
        guard !end.isEmpty else { return encode([0]) }
        end[end.count - 1] += 1
        return encode(end)
    }
}

// MARK: requests

struct RangeRequest: Encodable, Sendable {
    var key: String
    var range_end: String?
}

struct PutRequest: Encodable, Sendable {
    var key: String
    var value: String
    var lease: EtcdInt?
}

struct DeleteRangeRequest: Encodable, Sendable {
    var key: String
    var prev_kv: Bool?
}

struct Compare: Encodable, Sendable {
    var target: String
    var key: String
    var create_revision: EtcdInt?
    var mod_revision: EtcdInt?
    var result = "EQUAL"

    /// The key was created at `revision` (0: the key does not exist).
    static func created(_ key: String, at revision: Int64) -> Compare {
        Compare(target: "CREATE", key: key, create_revision: EtcdInt(revision))
    }
    /// The key was last changed at `revision`.
    static func modified(_ key: String, at revision: Int64) -> Compare {
        Compare(target: "MOD", key: key, mod_revision: EtcdInt(revision))
    }
}

struct RequestOp: Encodable, Sendable {
    var request_range: RangeRequest?
    var request_put: PutRequest?
}

struct TxnRequest: Encodable, Sendable {
    var compare: [Compare]
    var success: [RequestOp]
    var failure: [RequestOp]
}

struct LeaseGrantRequest: Encodable, Sendable {
    var TTL: EtcdInt
}

struct LeaseIDRequest: Encodable, Sendable {
    var ID: EtcdInt
}

struct CompactionRequest: Encodable, Sendable {
    var revision: EtcdInt
    var physical: Bool
}

struct WatchCreateRequest: Encodable, Sendable {
    struct Create: Encodable, Sendable {
        var key: String
        var range_end: String
        var start_revision: EtcdInt
    }
    var create_request: Create
}

struct AuthenticateRequest: Encodable, Sendable {
    var name: String
    var password: String
}

// MARK: responses

struct ResponseHeader: Decodable, Sendable {
    var revision: EtcdInt?
    var rev: Int64 { revision?.value ?? 0 }
}

struct KeyValue: Decodable, Sendable {
    var key: String?
    var value: String?
    var create_revision: EtcdInt?
    var mod_revision: EtcdInt?
    var lease: EtcdInt?
}

struct RangeResponse: Decodable, Sendable {
    var header: ResponseHeader?
    var kvs: [KeyValue]?
}

struct HeaderResponse: Decodable, Sendable {
    var header: ResponseHeader?
}

struct DeleteRangeResponse: Decodable, Sendable {
    var header: ResponseHeader?
    var deleted: EtcdInt?
    var prev_kvs: [KeyValue]?
}

struct TxnResponse: Decodable, Sendable {
    struct ResponseOp: Decodable, Sendable {
        var response_range: RangeResponse?
    }
    var header: ResponseHeader?
    var succeeded: Bool?
    var responses: [ResponseOp]?
}

struct LeaseGrantResponse: Decodable, Sendable {
    var ID: EtcdInt?
    var TTL: EtcdInt?
    var error: String?
}

struct LeaseTTLResponse: Decodable, Sendable {
    var ID: EtcdInt?
    var TTL: EtcdInt?
}

/// One line of a streamed response (watch, keepalive): `{"result": ...}` or `{"error": ...}`.
struct StreamLine<Result: Decodable & Sendable>: Decodable, Sendable {
    var result: Result?
    var error: GatewayError?
}

struct WatchResult: Decodable, Sendable {
    struct Event: Decodable, Sendable {
        var type: String?
        var kv: KeyValue?
    }
    var header: ResponseHeader?
    var created: Bool?
    var canceled: Bool?
    var compact_revision: EtcdInt?
    var cancel_reason: String?
    var events: [Event]?
}

struct AuthenticateResponse: Decodable, Sendable {
    var token: String?
}

/// The gateway's error body, with the gRPC status code.
struct GatewayError: Decodable, Sendable {
    var error: String?
    var message: String?
    var code: Int?

    var text: String { message ?? error ?? "no message" }

    /// gRPC status codes the store acts on.
    static let outOfRange = 11
    static let unavailable = 14
    static let deadlineExceeded = 4
    static let unauthenticated = 16
}
