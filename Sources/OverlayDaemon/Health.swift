// flanneld's `--healthz-ip`/`--healthz-port`: GET /healthz answers 200 once the device, the
// peer routes and subnet.env are in place, and 503 with the reason while they are not
// (waiting for the config, no lease yet, the device being repaired). Served with SwiftNIO's
// HTTP/1.1 server, in the daemon's network namespace.

import NIOCore
import NIOHTTP1
import NIOPosix
import SystemKit

/// What /healthz reports; shared by the daemon (writer) and the server (reader).
public final class HealthState: @unchecked Sendable {
    private let lock = Lock()
    private var problem: String? = "starting"

    public init() {}

    /// nil when healthy, else why not.
    public var currentProblem: String? { lock.withLock { problem } }

    func set(problem: String?) { lock.withLock { self.problem = problem } }
}

enum HealthServer {
    static let path = "/healthz"

    /// Listens on `address` until the process ends; throws when the address cannot be bound.
    static func start(_ address: HealthzAddress, state: HealthState) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HealthHandler(state: state))
                }
            }
        return try await bootstrap.bind(host: address.host, port: address.port).get()
    }
}

/// Answers each request once it has been read whole, then closes the connection.
private final class HealthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: HealthState
    private var request: HTTPRequestHead?

    init(state: HealthState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(context, head)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let (status, body) = answer(head)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                      promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let path = head.uri.prefix { $0 != "?" }
        guard path == HealthServer.path else { return (.notFound, "not found: try \(HealthServer.path)\n") }
        guard head.method == .GET || head.method == .HEAD else { return (.methodNotAllowed, "use GET\n") }
        if let problem = state.currentProblem { return (.serviceUnavailable, "not ready: \(problem)\n") }
        return (.ok, "ok\n")
    }
}
