// HTTP to etcd's v3 JSON gateway through async-http-client: several endpoints tried in turn
// (the last one that answered first), TLS with a client certificate and a CA, and
// username/password authentication through a token that is fetched again when etcd says it
// expired. Credentials go only into the authenticate request: never into an error, a log line
// or an endpoint's printed name.

import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOSSL
import Overlay
import SystemKit

/// How to reach etcd; the flanneld flags of the same names.
public struct EtcdOptions: Sendable {
    /// `--etcd-endpoints`: base URLs ("http://127.0.0.1:2379", "https://etcd1:2379").
    public var endpoints: [String]
    /// `--etcd-username` / `--etcd-password`.
    public var username: String?
    public var password: String?
    /// `--etcd-keyfile`, `--etcd-certfile`, `--etcd-cafile` (PEM).
    public var keyFile: String?
    public var certFile: String?
    public var caFile: String?
    /// How long one request to one endpoint may take before the next endpoint is tried.
    public var requestTimeout: Duration = .seconds(5)
    /// How long connecting to one endpoint may take.
    public var connectTimeout: Duration = .seconds(2)

    public init(endpoints: [String], username: String? = nil, password: String? = nil,
                keyFile: String? = nil, certFile: String? = nil, caFile: String? = nil) {
        self.endpoints = endpoints
        self.username = username
        self.password = password
        self.keyFile = keyFile
        self.certFile = certFile
        self.caFile = caFile
    }
}

final class EtcdTransport: @unchecked Sendable {
    struct Endpoint: Sendable {
        var url: String
        /// scheme://host:port, for messages.
        var name: String
    }

    let endpoints: [Endpoint]
    private let client: HTTPClient
    private let credentials: (user: String, password: String)?
    private let requestTimeout: TimeAmount
    private let lock = Lock()
    /// Guarded by `lock`: the endpoint that answered last, and the auth token.
    private var preferred = 0
    private var token: String?
    private var isShutDown = false

    /// The most a unary response may hold (a listing of many leases).
    private static let maxResponseBytes = 64 << 20

    init(options: EtcdOptions) throws(StoreError) {
        endpoints = try options.endpoints.map(Self.endpoint)
        guard !endpoints.isEmpty else { throw .invalid(operation: "etcd endpoints", reason: "no endpoint given") }
        switch (options.username, options.password) {
        case (let user?, let password?): credentials = (user, password)
        case (nil, nil): credentials = nil
        default: throw .invalid(operation: "etcd credentials", reason: "a username needs a password and a password a username")
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: try Self.tls(options),
            timeout: .init(connect: Self.timeAmount(options.connectTimeout)))
        // HTTP/1.1 only: each watch stream holds its own connection, and the gateway's answers
        // are newline-delimited JSON on a plain response body.
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        requestTimeout = Self.timeAmount(options.requestTimeout)
    }

    func shutdown() async {
        let first = lock.withLock { () -> Bool in
            defer { isShutDown = true }
            return !isShutDown
        }
        guard first else { return }
        // Shutting down twice is the only failure, and this runs once.
        do { try await client.shutdown() } catch {}
    }

    /// A store dropped without close() still releases its connections (async-http-client
    /// requires an explicit shutdown before its client goes away).
    deinit {
        guard !isShutDown else { return }
        let client = self.client
        Task {
            // Shutting down twice is the only failure, and nothing else shuts this client down.
            do { try await client.shutdown() } catch {}
        }
    }

    private static func timeAmount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    private static func endpoint(_ text: String) throws(StoreError) -> Endpoint {
        var url = text
        while url.hasSuffix("/") { url.removeLast() }
        guard let schemeEnd = url.firstRange(of: "://"),
              ["http", "https"].contains(url[..<schemeEnd.lowerBound].lowercased()) else {
            throw .invalid(operation: "etcd endpoints", reason: "an endpoint must start with http:// or https://")
        }
        let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" }
        guard !authority.contains("@") else {
            throw .invalid(operation: "etcd endpoints",
                           reason: "an endpoint carries credentials; give them as username and password instead")
        }
        return Endpoint(url: url, name: String(url[..<schemeEnd.upperBound]) + authority)
    }

    private static func tls(_ o: EtcdOptions) throws(StoreError) -> TLSConfiguration? {
        guard o.caFile != nil || o.certFile != nil || o.keyFile != nil else { return nil }
        guard (o.certFile == nil) == (o.keyFile == nil) else {
            throw .invalid(operation: "etcd TLS", reason: "a client certificate needs its key file and a key file its certificate")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = o.caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) }
            if let cert = o.certFile, let key = o.keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
        } catch {
            throw .invalid(operation: "etcd TLS", reason: "cannot load the certificate, key or CA file: \(error)")
        }
        return tls
    }

    // MARK: requests

    /// POSTs `request` to `path` on the first endpoint that answers and decodes the answer.
    func call<Request: Encodable & Sendable, Response: Decodable>(
        _ path: String, _ request: Request, _ operation: String, as: Response.Type = Response.self
    ) async throws(StoreError) -> Response {
        let body = try encode(request, operation)
        let bytes = try await onSomeEndpoint(operation) { endpoint throws(AttemptError) in
            let (status, bytes) = try await lift { () throws(StoreError) in try await self.post(endpoint, path, body, operation) }
            if status == 200 { return bytes }
            throw self.failure(status: status, bytes, operation)
        }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(bytes))
        } catch {
            throw .rejected(operation: operation, reason: "unexpected answer from etcd: \(error)")
        }
    }

    /// POSTs `request` to a streaming `path` (watch, keepalive) and returns the open response.
    func stream<Request: Encodable & Sendable>(
        _ path: String, _ request: Request, _ operation: String
    ) async throws(StoreError) -> HTTPClientResponse.Body {
        let body = try encode(request, operation)
        return try await onSomeEndpoint(operation) { endpoint throws(AttemptError) in
            let response = try await lift { () throws(StoreError) in try await self.send(endpoint, path, body, streaming: true) }
            if response.status.code == 200 { return response.body }
            let bytes = try await lift { () throws(StoreError) in try await self.collect(response, endpoint) }
            throw self.failure(status: Int(response.status.code), bytes, operation)
        }
    }

    /// Runs `attempt` on the preferred endpoint, then the others: an endpoint that is
    /// unavailable passes the turn, an expired token is renewed once per endpoint.
    private func onSomeEndpoint<R>(
        _ operation: String, _ attempt: (Endpoint) async throws(AttemptError) -> R
    ) async throws(StoreError) -> R {
        let first = lock.withLock { preferred }
        var failures: [String] = []
        for step in endpoints.indices {
            let index = (first + step) % endpoints.count
            let endpoint = endpoints[index]
            var renewedToken = false
            attempts: while true {
                do throws(AttemptError) {
                    if credentials != nil, lock.withLock({ token }) == nil {
                        try await lift { () throws(StoreError) in try await authenticate(endpoint) }
                    }
                    let result = try await attempt(endpoint)
                    lock.withLock { preferred = index }
                    return result
                } catch {
                    switch error {
                    case .tokenExpired where !renewedToken:
                        lock.withLock { token = nil }
                        renewedToken = true
                    case .tokenExpired:
                        throw .rejected(operation: operation, reason: "etcd refused a token it had just issued")
                    case .store(.unavailable(_, let reason)):
                        failures.append("\(endpoint.name): \(reason)")
                        break attempts
                    case .store(let refusal):
                        throw refusal
                    }
                }
            }
        }
        throw .unavailable(operation: operation, reason: failures.joined(separator: "; "))
    }

    /// Forgets the token (a watch was cancelled for it), so the next request fetches a new one.
    func dropToken() { lock.withLock { token = nil } }
    var hasCredentials: Bool { credentials != nil }

    private func authenticate(_ endpoint: Endpoint) async throws(StoreError) {
        guard let credentials else { return }
        let body = try encode(AuthenticateRequest(name: credentials.user, password: credentials.password), "authenticate")
        let (status, bytes) = try await post(endpoint, "/v3/auth/authenticate", body, "authenticate", withToken: false)
        guard status == 200 else {
            // A wrong name or password is a refusal, whatever gRPC code etcd gives it.
            if case .store(let e) = failure(status: status, bytes, "authenticate"), case .unavailable = e { throw e }
            throw .rejected(operation: "authenticate", reason: Self.reason(status: status, bytes))
        }
        let answer: AuthenticateResponse
        do { answer = try JSONDecoder().decode(AuthenticateResponse.self, from: Data(bytes)) } catch {
            throw .rejected(operation: "authenticate", reason: "unexpected answer from etcd")
        }
        guard let t = answer.token, !t.isEmpty else {
            throw .rejected(operation: "authenticate", reason: "etcd has authentication disabled and sent no token")
        }
        lock.withLock { token = t }
    }

    private func post(_ endpoint: Endpoint, _ path: String, _ body: [UInt8], _ operation: String,
                      withToken: Bool = true) async throws(StoreError) -> (Int, [UInt8]) {
        let response = try await send(endpoint, path, body, streaming: false, withToken: withToken)
        return (Int(response.status.code), try await collect(response, endpoint))
    }

    private func send(_ endpoint: Endpoint, _ path: String, _ body: [UInt8], streaming: Bool,
                      withToken: Bool = true) async throws(StoreError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint.url + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if withToken, let t = lock.withLock({ token }) { request.headers.add(name: "Authorization", value: t) }
        request.body = .bytes(body)
        do {
            // The deadline covers the answer's head; a stream's body then flows for as long as it lasts.
            return try await client.execute(request, timeout: requestTimeout)
        } catch {
            throw .unavailable(operation: path, reason: Self.describe(error))
        }
    }

    private func collect(_ response: HTTPClientResponse, _ endpoint: Endpoint) async throws(StoreError) -> [UInt8] {
        do {
            return Array(try await response.body.collect(upTo: Self.maxResponseBytes).readableBytesView)
        } catch {
            throw .unavailable(operation: "read answer", reason: Self.describe(error))
        }
    }

    /// What a non-200 answer means: unavailable (try the next endpoint) for etcd's
    /// "unavailable" and timeouts, an expired token (fetch another), else a refusal.
    private func failure(status: Int, _ bytes: [UInt8], _ operation: String) -> AttemptError {
        let error = Self.gatewayError(bytes)
        let reason = Self.reason(status: status, bytes)
        switch error?.code {
        case GatewayError.unauthenticated? where credentials != nil:
            return .tokenExpired
        case GatewayError.unavailable?, GatewayError.deadlineExceeded?:
            return .store(.unavailable(operation: operation, reason: reason))
        case GatewayError.outOfRange?:
            return .store(.invalid(operation: operation, reason: reason))
        default:
            return .store(status >= 500 && error == nil ? .unavailable(operation: operation, reason: reason)
                          : .rejected(operation: operation, reason: reason))
        }
    }

    /// How one attempt on one endpoint failed.
    enum AttemptError: Error {
        /// The auth token expired: fetch another and try again.
        case tokenExpired
        case store(StoreError)
    }

    private func lift<T>(_ body: () async throws(StoreError) -> T) async throws(AttemptError) -> T {
        do { return try await body() } catch { throw .store(error) }
    }

    /// The gateway's error body, nil when the answer is not one (a proxy's page, say).
    private static func gatewayError(_ bytes: [UInt8]) -> GatewayError? {
        try? JSONDecoder().decode(GatewayError.self, from: Data(bytes))  // not an error body: the caller falls back to the status
    }

    private static func reason(status: Int, _ bytes: [UInt8]) -> String {
        gatewayError(bytes)?.text ?? "HTTP status \(status)"
    }

    private func encode(_ request: some Encodable, _ operation: String) throws(StoreError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(request)) } catch {
            throw .invalid(operation: operation, reason: "cannot encode the request: \(error)")
        }
    }

    /// A transport error as text. async-http-client's and NIO's errors name the host and
    /// port at most; the request (and so any credentials in it) never appears.
    static func describe(_ error: any Error) -> String {
        String(describing: error)
    }
}

/// Splits a streamed body into its newline-delimited JSON lines.
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func lines(_ chunk: ByteBuffer) -> [[UInt8]] {
        pending += chunk.readableBytesView
        var out: [[UInt8]] = []
        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Array(pending[..<nl])
            pending.removeSubrange(...nl)
            if !line.allSatisfy({ $0 == 32 || $0 == 13 }) { out.append(line) }
        }
        return out
    }
}
