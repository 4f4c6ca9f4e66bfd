// CNI errors: the spec's error object ({"cniVersion", "code", "msg", "details"}) as a Swift
// error, with the well-known codes named.

import SystemKit

/// An error as the CNI spec defines it. Plugins throw it; `PluginMain` prints it on stdout
/// and exits non-zero; `Delegate` and `CNIRuntime` turn a called plugin's error JSON back into it.
public struct CNIError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A numeric error code. The spec reserves 1-99; plugins may use 100 and above.
    public struct Code: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
        public var rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(integerLiteral value: Int) { rawValue = value }

        public static let incompatibleVersion: Code = 1
        public static let unsupportedField: Code = 2
        public static let unknownContainer: Code = 3
        public static let invalidEnvironment: Code = 4
        public static let ioFailure: Code = 5
        public static let decodingFailure: Code = 6
        public static let invalidNetworkConfig: Code = 7
        public static let tryAgainLater: Code = 11
        /// STATUS: the plugin cannot service ADD requests.
        public static let notAvailable: Code = 50
        /// STATUS: not available, and existing containers may have limited connectivity.
        public static let notAvailableLimitedConnectivity: Code = 51
        /// Any failure that is not a CNIError (libcni's ErrInternal).
        public static let `internal`: Code = 999

        public var description: String { String(rawValue) }
    }

    public var code: Code
    public var msg: String
    public var details: String

    public init(code: Code, msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    public var description: String {
        details.isEmpty ? "CNI error \(code.rawValue): \(msg)" : "CNI error \(code.rawValue): \(msg); \(details)"
    }

    /// Lets `catch let e as CNIError where e ~= .unknownContainer` and `switch` read naturally.
    public static func ~= (code: Code, error: CNIError) -> Bool { error.code == code }

    // MARK: helpers for the common cases

    public static func incompatibleVersion(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .incompatibleVersion, msg: msg, details: details)
    }
    public static func unsupportedField(_ field: String, details: String = "") -> CNIError {
        CNIError(code: .unsupportedField, msg: "unsupported field \"\(field)\"", details: details)
    }
    public static func unknownContainer(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .unknownContainer, msg: msg, details: details)
    }
    public static func invalidEnvironment(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .invalidEnvironment, msg: msg, details: details)
    }
    public static func ioFailure(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .ioFailure, msg: msg, details: details)
    }
    public static func decodingFailure(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .decodingFailure, msg: msg, details: details)
    }
    public static func invalidConfig(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .invalidNetworkConfig, msg: msg, details: details)
    }
    public static func tryAgainLater(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .tryAgainLater, msg: msg, details: details)
    }
    public static func `internal`(_ msg: String, details: String = "") -> CNIError {
        CNIError(code: .internal, msg: msg, details: details)
    }

    /// Any error as a CNIError: a CNIError stays as it is, a SystemError is mapped by its kind
    /// (see `init(_:context:)`), anything else becomes code 999.
    public static func wrapping(_ error: any Error, context: String? = nil) -> CNIError {
        if let e = error as? CNIError { return e }
        if let e = error as? SystemError { return CNIError(e, context: context) }
        return CNIError(code: .internal, msg: context.map { "\($0): \(error)" } ?? "\(error)")
    }

    /// The failures of independent steps (DEL's and GC's, which go on past a failure) as one
    /// error, nil when there are none. One failure is `wrapping(_:context:)` of it. Several
    /// keep their code when they all share it (so "try again later" survives), else 999; msg
    /// lists every failure's msg, details every non-empty details.
    public static func combining(_ errors: [any Error], context: String? = nil) -> CNIError? {
        guard errors.count > 1 else { return errors.first.map { wrapping($0, context: context) } }
        let all = errors.map { wrapping($0) }
        let code = all.allSatisfy { $0.code == all[0].code } ? all[0].code : .internal
        let msg = all.map(\.msg).joined(separator: "; ")
        return CNIError(code: code, msg: context.map { "\($0): \(msg)" } ?? msg,
                        details: all.map(\.details).filter { !$0.isEmpty }.joined(separator: "; "))
    }

    // MARK: the wire format

    /// The spec's error object for `version`.
    public func json(version: String) -> JSONValue {
        var o: [String: JSONValue] = ["cniVersion": .string(version), "code": .number(Double(code.rawValue)),
                                      "msg": .string(msg)]
        if !details.isEmpty { o["details"] = .string(details) }
        return .object(o)
    }

    /// Reads a plugin's error output; nil when it is not an error object.
    public static func parse(_ bytes: [UInt8]) -> CNIError? {
        // Output that is not JSON is no error object: the caller reports the raw output instead.
        guard let v = try? JSONValue.parse(bytes), let code = v["code"]?.intValue else { return nil }
        return CNIError(code: Code(rawValue: code), msg: v["msg"]?.stringValue ?? "",
                        details: v["details"]?.stringValue ?? "")
    }
}
