// Untyped JSON, for fields CNI passes through unchanged (plugin-specific config keys,
// runtimeConfig entries, capability arguments) and for building the per-plugin configs a
// runtime injects into a conflist. Serialisation is our own (ordered keys, no Foundation).

import FoundationEssentials

public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        get { if case .object(let o) = self { return o[key] } else { return nil } }
        set {
            guard case .object(var o) = self else { return }
            o[key] = newValue
            self = .object(o)
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var intValue: Int? {
        if case .number(let d) = self, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var isNull: Bool { self == .null }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        // Each `try?` below probes which JSON type the value is; the last try reports a mismatch.
        // Each shape is tried in turn: a container of the wrong kind is "not this one", not an error.
        if var a = try? decoder.unkeyedContainer() {
            var out: [JSONValue] = []
            while !a.isAtEnd { out.append(try a.decode(JSONValue.self)) }
            self = .array(out)
            return
        }
        if let o = try? decoder.container(keyedBy: AnyKey.self) {
            var out: [String: JSONValue] = [:]
            for k in o.allKeys { out[k.stringValue] = try o.decode(JSONValue.self, forKey: k) }
            self = .object(out)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .number(let d):
            var c = encoder.singleValueContainer()
            if let i = intValue { try c.encode(i) } else { try c.encode(d) }
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .array(let a): var c = encoder.unkeyedContainer(); for v in a { try c.encode(v) }
        case .object(let o):
            var c = encoder.container(keyedBy: AnyKey.self)
            for k in o.keys.sorted() { try c.encode(o[k]!, forKey: AnyKey(k)) }
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

// MARK: parsing and serialising

extension JSONValue {
    /// Parses JSON text; malformed input is a code 6 error.
    public static func parse(_ bytes: some Collection<UInt8>, what: String = "JSON") throws(CNIError) -> JSONValue {
        let text = Array(bytes)
        // Foundation's decoder accepts a comma before "}" or "]", which JSON (and Go's decoder,
        // that every other CNI program reads a config with) refuses.
        if let offset = trailingCommaOffset(text) {
            throw CNIError(code: .decodingFailure, msg: "failed to decode \(what)",
                           details: "a comma before a closing bracket at byte \(offset)")
        }
        return try CNIJSON.decode(JSONValue.self, from: text, what: what)
    }

    /// The offset of the first "," followed (after white space) by "}" or "]" outside a string.
    static func trailingCommaOffset(_ text: [UInt8]) -> Int? {
        var inString = false, escaped = false, lastComma: Int? = nil
        for (i, b) in text.enumerated() {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true; lastComma = nil
            case UInt8(ascii: ","): lastComma = i
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if let c = lastComma { return c }
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): break
            default: lastComma = nil
            }
        }
        return nil
    }

    /// Converts to a typed value through the JSON decoder (errors carry the field path).
    public func decode<T: Decodable>(_ type: T.Type, what: String = "config") throws(CNIError) -> T {
        try CNIJSON.decode(T.self, from: serialized(), what: what)
    }

    /// Builds a value from anything Encodable.
    public static func from(_ value: some Encodable) throws(CNIError) -> JSONValue {
        let bytes: [UInt8]
        do { bytes = Array(try JSONEncoder().encode(value)) } catch {
            throw CNIError(code: .internal, msg: "cannot encode JSON", details: "\(error)")
        }
        return try parse(bytes)
    }

    /// Compact JSON text with object keys sorted, so equal values give equal bytes.
    public func serialized(pretty: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out, indent: pretty ? 0 : nil)
        return out
    }
    public var jsonString: String { String(decoding: serialized(), as: UTF8.self) }

    private func write(into out: inout [UInt8], indent: Int?) {
        func newline(_ level: Int) {
            guard indent != nil else { return }
            out.append(10)
            out.append(contentsOf: Array(repeating: 32, count: level * 4))
        }
        let level = indent ?? 0
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .number(let d):
            if let i = intValue { out.append(contentsOf: Array(String(i).utf8)) }
            else if d.isFinite { out.append(contentsOf: Array("\(d)".utf8)) }
            else { out.append(contentsOf: Array("null".utf8)) }
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                v.write(into: &out, indent: indent.map { _ in level + 1 })
            }
            if !a.isEmpty { newline(level) }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                JSONValue.writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(32) }
                o[k]!.write(into: &out, indent: indent.map { _ in level + 1 })
            }
            if !o.isEmpty { newline(level) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 10: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<32:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The one place JSON decoding errors become CNI errors: text that is not JSON, or a
/// value of the wrong type, is code 6; a missing required field or an invalid value is code 7.
enum CNIJSON {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(CNIError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let e as CNIError {
            throw e
        } catch let e as DecodingError {
            throw describe(e, what: what)
        } catch {
            throw CNIError(code: .decodingFailure, msg: "failed to decode \(what)", details: "\(error)")
        }
    }

    static func path(_ p: [any CodingKey]) -> String {
        var s = ""
        for k in p {
            if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + k.stringValue }
        }
        return s
    }

    static func describe(_ e: DecodingError, what: String) -> CNIError {
        switch e {
        case .keyNotFound(let key, let ctx):
            let p = path(ctx.codingPath + [key])
            return CNIError(code: .invalidNetworkConfig, msg: "\(what): missing required field \"\(p)\"")
        case .valueNotFound(_, let ctx):
            return CNIError(code: .invalidNetworkConfig, msg: "\(what): field \"\(path(ctx.codingPath))\" must not be null")
        case .typeMismatch(let t, let ctx):
            return CNIError(code: .decodingFailure,
                            msg: "\(what): field \"\(path(ctx.codingPath))\" has the wrong type (want \(t))")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                return CNIError(code: .decodingFailure, msg: "\(what): not valid JSON",
                                details: ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription)
            }
            return CNIError(code: .invalidNetworkConfig,
                            msg: "\(what): field \"\(path(ctx.codingPath))\": \(ctx.debugDescription)")
        @unknown default:
            return CNIError(code: .decodingFailure, msg: "failed to decode \(what)", details: "\(e)")
        }
    }
}
