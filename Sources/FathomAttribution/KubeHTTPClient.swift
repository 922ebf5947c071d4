import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The Kubernetes API answered with something other than 200.
public struct KubeHTTPError: Error, CustomStringConvertible {
    public var status: Int
    public var body: String
    public var description: String { "Kubernetes API answered \(status): \(body.prefix(300))" }
}

/// A minimal HTTP/1.1 GET client for the Kubernetes API with a streamed body (watches never end by themselves):
/// one connection per request, TLS with the cluster's CA and a token or a client certificate.
final class KubeHTTPClient: Sendable {
    let config: KubeConfig
    let sslContext: NIOSSLContext?
    let host: String
    let port: Int
    let group: any EventLoopGroup

    init(config: KubeConfig, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.config = config
        self.group = group
        guard let host = config.server.host else { throw KubeConfigError("API server URL has no host: \(config.server)") }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let https = config.server.scheme == "https"
        port = config.server.port ?? (https ? 443 : 80)
        guard https else {
            sslContext = nil
            return
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = config.certificateAuthorityPEM {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
        }
        if let certificate = config.clientCertificatePEM, let key = config.clientKeyPEM {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
        }
        if config.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        } else if IPKey(self.host) != nil {
            // The in-cluster address is an IP, which cannot be sent as SNI; the chain is still checked against the
            // cluster's own CA.
            tls.certificateVerification = .noHostnameVerification
        }
        sslContext = try NIOSSLContext(configuration: tls)
    }

    /// Sends `GET pathAndQuery`; returns the status and the body as a stream of chunks (closing the connection
    /// when the consumer stops iterating).
    func get(_ pathAndQuery: String) async throws -> (status: Int, body: AsyncThrowingStream<ByteBuffer, any Error>) {
        let (body, bodyContinuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let sslContext = self.sslContext
        let serverName = IPKey(host) == nil ? host : nil
        let headPromise = group.next().makePromise(of: HTTPResponseHead.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: headPromise.futureResult.eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseStreamHandler(head: headPromise, body: bodyContinuation))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            headPromise.fail(error)
            throw error
        }
        bodyContinuation.onTermination = { _ in channel.close(promise: nil) }

        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery)
        head.headers.add(name: "Host", value: port == 443 || port == 80 ? host : "\(host):\(port)")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "User-Agent", value: "fathom-agent")
        head.headers.add(name: "Connection", value: "close")
        if let token = config.currentToken, !token.isEmpty {
            head.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        } catch {
            // A failed TLS handshake closes the channel under the write: its error (on the head) says why.
            _ = try await headPromise.futureResult.get()
            throw error
        }
        let response = try await headPromise.futureResult.get()
        return (Int(response.status.code), body)
    }

    /// GET and collect the whole body (lists are paged, so a page is bounded); throws on any status but 200.
    func getAll(_ pathAndQuery: String, limit: Int = 256 << 20) async throws -> [UInt8] {
        let (status, body) = try await get(pathAndQuery)
        var bytes: [UInt8] = []
        for try await chunk in body {
            bytes.append(contentsOf: chunk.readableBytesView)
            if bytes.count > limit { throw KubeHTTPError(status: status, body: "response larger than \(limit) bytes") }
        }
        guard status == 200 else { throw KubeHTTPError(status: status, body: String(decoding: bytes.prefix(2000), as: UTF8.self)) }
        return bytes
    }
}

/// Hands the response head to a promise and the body to an async stream.
private final class ResponseStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let head: EventLoopPromise<HTTPResponseHead>
    let body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    var headDelivered = false

    init(head: EventLoopPromise<HTTPResponseHead>, body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation) {
        self.head = head
        self.body = body
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

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(KubeHTTPError(status: 0, body: "connection closed"))
    }

    private func fail(_ error: any Error) {
        if !headDelivered {
            headDelivered = true
            head.fail(error)
        }
        body.finish(throwing: error)
    }
}
