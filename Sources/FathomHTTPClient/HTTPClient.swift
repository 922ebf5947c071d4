import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP exchange that failed below the status line, or a body the caller would not take.
public enum HTTPClientError: Error, CustomStringConvertible {
    /// The server closed the connection before the response ended.
    case connectionClosed
    /// Nothing arrived for so long.
    case idleTimeout(TimeAmount)
    /// The body is larger than the caller's limit.
    case bodyTooLarge(limit: Int)
    /// The body could not be written to a file (`operation` failed with `errno`).
    case cannotWrite(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .connectionClosed: "the server closed the connection before the response ended"
        case let .idleTimeout(amount): "no data for \(amount.nanoseconds / 1_000_000_000) s"
        case let .bodyTooLarge(limit): "response larger than \(limit) bytes"
        case let .cannotWrite(path, operation, code): "cannot write \(path): \(operation) failed with errno \(code)"
        }
    }
}

/// A minimal HTTP/1.1 client on SwiftNIO: one connection per request (`Connection: close`), optional TLS, and the
/// response body streamed, so a watch that never ends or a large download never has to fit in memory. It is what
/// the agent's Kubernetes watcher and the CLI's calls to an agent share, and it keeps FoundationNetworking (and
/// with it libcurl) out of the binary.
public struct HTTPClient: Sendable {
    /// The server's name or IP address (without the brackets of an IPv6 URL).
    public let host: String
    public let port: Int
    /// TLS for https; nil for plain http.
    public let tls: NIOSSLContext?
    public let connectTimeout: TimeAmount
    let group: any EventLoopGroup

    /// A client for `host:port`; an IPv6 address may keep its URL brackets.
    public init(
        host: String, port: Int, tls: NIOSSLContext? = nil, connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = port
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.group = group
    }

    /// A response: its status line and headers, and the body as it arrives.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        /// The body's chunks; the connection closes when the body ends or the consumer stops iterating.
        public var body: AsyncThrowingStream<ByteBuffer, any Error>
    }

    /// Whether `host` is an IP address literal (sent neither as SNI nor checked as a host name).
    public var hostIsAddress: Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }

    /// The Host header's value: brackets around an IPv6 address, the port unless it is the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (tls == nil ? 80 : 443) ? name : "\(name):\(port)"
    }

    /// Sends `method pathAndQuery` with `headers` (Host, User-Agent, Connection and Content-Length are added) and
    /// `body`; returns once the response head has arrived. The request fails with `idleTimeout` when the response
    /// stays silent for so long (nil waits for ever, as a watch must).
    public func send(
        _ method: HTTPMethod, _ pathAndQuery: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
        idleTimeout: TimeAmount? = nil
    ) async throws -> Response {
        let (bodyStream, bodyContinuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let tls = self.tls
        let serverName = hostIsAddress ? nil : host
        let headPromise = group.next().makePromise(of: HTTPResponseHead.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: headPromise.futureResult.eventLoop)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        if let tls {
                            try pipeline.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        if let idleTimeout {
                            try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        }
                        try pipeline.addHTTPClientHandlers()
                        try pipeline.addHandler(
                            ResponseStreamHandler(head: headPromise, body: bodyContinuation, idleTimeout: idleTimeout))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            headPromise.fail(error)
            throw error
        }
        bodyContinuation.onTermination = { _ in channel.close(promise: nil) }

        var head = HTTPRequestHead(version: .http1_1, method: method, uri: pathAndQuery, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        if !head.headers.contains(name: "User-Agent") { head.headers.add(name: "User-Agent", value: "fathom") }
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        } catch {
            // A failed TLS handshake closes the channel under the write: its error (on the head) says why.
            _ = try await headPromise.futureResult.get()
            throw error
        }
        let response = try await headPromise.futureResult.get()
        return Response(status: Int(response.status.code), headers: response.headers, body: bodyStream)
    }
}

/// Hands the response head to a promise and the body to an async stream.
private final class ResponseStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let head: EventLoopPromise<HTTPResponseHead>
    let body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    let idleTimeout: TimeAmount?
    var headDelivered = false

    init(
        head: EventLoopPromise<HTTPResponseHead>, body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation,
        idleTimeout: TimeAmount?
    ) {
        self.head = head
        self.body = body
        self.idleTimeout = idleTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(response):
            if !headDelivered {
                headDelivered = true
                head.succeed(response)
            }
        case let .body(buffer):
            body.yield(buffer)
        case .end:
            body.finish()
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, let idleTimeout {
            fail(HTTPClientError.idleTimeout(idleTimeout))
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTPClientError.connectionClosed)
    }

    private func fail(_ error: any Error) {
        if !headDelivered {
            headDelivered = true
            head.fail(error)
        }
        body.finish(throwing: error)
    }
}
