import FathomHTTPClient
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

/// The Kubernetes API's GET requests with a streamed body (watches never end by themselves), on the shared
/// HTTP/1.1 client: one connection per request, TLS with the cluster's CA and a token or a client certificate.
final class KubeHTTPClient: Sendable {
    let config: KubeConfig
    let http: HTTPClient

    init(config: KubeConfig, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.config = config
        guard let host = config.server.host else { throw KubeConfigError("API server URL has no host: \(config.server)") }
        let https = config.server.scheme == "https"
        let port = config.server.port ?? (https ? 443 : 80)
        var sslContext: NIOSSLContext?
        if https {
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
            } else if IPKey(host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host) != nil {
                // The in-cluster address is an IP, which cannot be sent as SNI; the chain is still checked against the
                // cluster's own CA.
                tls.certificateVerification = .noHostnameVerification
            }
            sslContext = try NIOSSLContext(configuration: tls)
        }
        http = HTTPClient(host: host, port: port, tls: sslContext, group: group)
    }

    /// Sends `GET pathAndQuery`; returns the status and the body as a stream of chunks (closing the connection
    /// when the consumer stops iterating).
    func get(_ pathAndQuery: String) async throws -> (status: Int, body: AsyncThrowingStream<ByteBuffer, any Error>) {
        let response = try await send(pathAndQuery)
        return (response.status, response.body)
    }

    /// GET and collect the whole body (lists are paged, so a page is bounded); throws on any status but 200.
    func getAll(_ pathAndQuery: String, limit: Int = 256 << 20) async throws -> [UInt8] {
        let response = try await send(pathAndQuery)
        let bytes: [UInt8]
        do {
            bytes = try await response.collect(limit: limit)
        } catch HTTPClientError.bodyTooLarge {
            throw KubeHTTPError(status: response.status, body: "response larger than \(limit) bytes")
        }
        guard response.status == 200 else {
            throw KubeHTTPError(status: response.status, body: String(decoding: bytes.prefix(2000), as: UTF8.self))
        }
        return bytes
    }

    private func send(_ pathAndQuery: String) async throws -> HTTPClient.Response {
        var headers: HTTPHeaders = ["Accept": "application/json", "User-Agent": "fathom-agent"]
        if let token = config.currentToken, !token.isEmpty {
            headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return try await http.send(.GET, pathAndQuery, headers: headers)
    }
}
