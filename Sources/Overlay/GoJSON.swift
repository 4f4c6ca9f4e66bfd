// JSON read and written the way flannel's Go code does it, so a flannel deployment and overlayd
// read each other's documents: Go's encoding/json matches object keys case-insensitively (an
// exact match first), ignores keys it does not know, and writes struct fields in declaration
// order (maps in sorted key order). JSONDecoder does the parsing; the writer keeps field order,
// which the lease golden strings depend on.

import FoundationEssentials

/// What failed to parse in one of flannel's documents, naming the document, the field (or the
/// line of a subnet.env) and what is wrong with it.
public struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// "network config", "lease 10.5.1.0-24", "subnet.env /run/flannel/subnet.env".
    public var document: String
    /// "SubnetLen", "Backend.VNI", "FLANNEL_SUBNET"; nil when the document as a whole is wrong.
    public var field: String?
    /// The 1-based line, for line-oriented documents.
    public var line: Int?
    public var message: String

    public init(document: String, field: String? = nil, line: Int? = nil, message: String) {
        self.document = document
        self.field = field
        self.line = line
        self.message = message
    }

    public var description: String {
        var s = document
        if let line { s += " line \(line)" }
        if let field { s += line == nil ? ": field \"\(field)\"" : " (\(field))" }
        return s + ": " + message
    }
}

/// A decoded JSON value, as Go's `interface{}` holds one.
enum GoJSON: Decodable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([GoJSON])
    case object([String: GoJSON])

    init(from decoder: any Decoder) throws {
        // Each shape is tried in turn: a container of the wrong kind is "not this one", not an error.
        if let o = try? decoder.container(keyedBy: GoJSONKey.self) {
            var out: [String: GoJSON] = [:]
            for k in o.allKeys { out[k.stringValue] = try o.decode(GoJSON.self, forKey: k) }
            self = .object(out)
        } else if var a = try? decoder.unkeyedContainer() {
            var out: [GoJSON] = []
            while !a.isAtEnd { out.append(try a.decode(GoJSON.self)) }
            self = .array(out)
        } else {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    /// Parses `text`; what is not JSON is a FormatError for `document`.
    static func parse(_ text: some Collection<UInt8>, document: String) throws(FormatError) -> GoJSON {
        do {
            return try JSONDecoder().decode(GoJSON.self, from: Data(text))
        } catch {
            throw FormatError(document: document, message: "not valid JSON")
        }
    }

    /// The value of `name` in an object, found as Go finds a struct field: the exact key, else
    /// a key equal to it ignoring case. nil for a missing key or a non-object.
    func field(_ name: String) -> GoJSON? {
        guard case .object(let o) = self else { return nil }
        if let v = o[name] { return v }
        let lower = name.lowercased()
        return o.keys.sorted().first { $0.lowercased() == lower }.flatMap { o[$0] }
    }

    var isNull: Bool { self == .null }

    /// Compact text with object keys sorted, as Go writes a map.
    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d):
            if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        case .string(let s): return GoJSONWriter.quoted(s)
        case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let o):
            return "{" + o.keys.sorted().map { GoJSONWriter.quoted($0) + ":" + o[$0]!.text }.joined(separator: ",") + "}"
        }
    }
}

struct GoJSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// Typed reads of one object's fields, each failure naming the field.
struct GoJSONFields {
    let object: GoJSON
    let document: String
    /// Prefix for nested objects ("Backend.").
    let path: String

    init(_ object: GoJSON, document: String, path: String = "") throws(FormatError) {
        guard case .object = object else {
            throw FormatError(document: document, field: path.isEmpty ? nil : String(path.dropLast()),
                              message: "must be a JSON object")
        }
        self.object = object
        self.document = document
        self.path = path
    }

    func error(_ field: String, _ message: String) -> FormatError {
        FormatError(document: document, field: path + field, message: message)
    }

    /// A present, non-null value (Go leaves the field at its zero value for null).
    func value(_ field: String) -> GoJSON? {
        guard let v = object.field(field), !v.isNull else { return nil }
        return v
    }

    func bool(_ field: String) throws(FormatError) -> Bool? {
        guard let v = value(field) else { return nil }
        guard case .bool(let b) = v else { throw error(field, "must be true or false, got \(v.text)") }
        return b
    }

    func integer(_ field: String) throws(FormatError) -> Int64? {
        guard let v = value(field) else { return nil }
        guard case .number(let d) = v, d.rounded() == d, abs(d) <= 9.0e15 else {
            throw error(field, "must be a whole number, got \(v.text)")
        }
        return Int64(d)
    }

    func string(_ field: String) throws(FormatError) -> String? {
        guard let v = value(field) else { return nil }
        guard case .string(let s) = v else { throw error(field, "must be a string, got \(v.text)") }
        return s
    }
}

/// Writes one JSON object field by field, in the order the fields are added (Go's struct order).
struct GoJSONWriter {
    private var fields: [String] = []

    mutating func string(_ name: String, _ value: String) { raw(name, GoJSONWriter.quoted(value)) }
    mutating func integer(_ name: String, _ value: some BinaryInteger) { raw(name, String(value)) }
    mutating func null(_ name: String) { raw(name, "null") }
    /// A value already in JSON text.
    mutating func raw(_ name: String, _ json: String) { fields.append(GoJSONWriter.quoted(name) + ":" + json) }

    var text: String { "{" + fields.joined(separator: ",") + "}" }

    /// A JSON string literal with Go's escapes (\", \\, \n, \r, \t, \u00XX for other control
    /// characters, and \u003c \u003e \u0026 for < > &, which Go escapes for HTML safety).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": out += unicodeEscape(u.value)
            default:
                if u.value < 0x20 { out += unicodeEscape(u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    private static func unicodeEscape(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
