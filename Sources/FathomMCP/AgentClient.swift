import FathomHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The agent's HTTP API as the MCP tools and the CLI reach it.
public struct AgentClient: Sendable {
    public let base: URL
    public let token: String?
    /// The connection settings for `base`, or why `base` cannot be reached (reported by the first request).
    private let http: Result<HTTPClient, AgentUnreachable>

    /// How long an answer may stay silent before the request fails.
    static let answerTimeout = TimeAmount.seconds(50)
    /// How long a download may stay silent (an export narrowed by a filter reads a whole snapshot between frames).
    static let downloadTimeout = TimeAmount.seconds(300)
    /// The largest answer read into memory; a download streams to a file instead.
    static let answerLimit = 1 << 30

    public init(base: URL, token: String?) {
        self.base = base
        self.token = token
        http = Self.client(for: base)
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
    }

    public func get(_ path: String, _ query: [String: String] = [:]) async throws -> Answer {
        try await send(.GET, path, query)
    }

    public func post(_ path: String) async throws -> Answer { try await send(.POST, path, [:]) }

    /// POSTs `body` as JSON.
    public func post(_ path: String, json body: some Encodable) async throws -> Answer {
        try await send(.POST, path, [:], body: try JSONEncoder().encode(body))
    }

    public func delete(_ path: String) async throws -> Answer { try await send(.DELETE, path, [:]) }

    /// Streams the body of `GET path?query` into `file` (replaced only once the body is complete) and returns its
    /// size; an answer other than 200 throws `AgentRefusal` with the agent's message.
    public func download(_ path: String, _ query: [String: String] = [:], toFile file: String) async throws -> Int64 {
        let response = try await request(.GET, path, query, body: nil, idleTimeout: Self.downloadTimeout)
        guard response.status == 200 else {
            let message = try await unreachableOnError { try await response.collect(limit: 1 << 20) }
            throw AgentRefusal(status: response.status, body: String(decoding: message, as: UTF8.self))
        }
        do {
            return try await response.write(toFile: file)
        } catch let error as HTTPClientError {
            guard case .cannotWrite = error else { throw unreachable(error) }
            throw error
        } catch {
            throw unreachable(error)
        }
    }

    /// The full URL of `path` with `query`, as a client outside this process would fetch it.
    public func url(_ path: String, _ query: [String: String] = [:]) throws -> URL {
        guard var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false) else {
            throw AgentUnreachable(description: "bad agent URL \(base)")
        }
        if !query.isEmpty {
            // Percent-encode everything but unreserved characters: `+` must not reach the agent as a space.
            components.percentEncodedQueryItems = query.sorted { $0.key < $1.key }.map {
                URLQueryItem(name: $0.key, value: $0.value.addingPercentEncoding(withAllowedCharacters: .unreserved))
            }
        }
        guard let url = components.url else { throw AgentUnreachable(description: "bad request path \(path)") }
        return url
    }

    private func send(_ method: HTTPMethod, _ path: String, _ query: [String: String], body: Data? = nil) async throws -> Answer {
        let response = try await request(method, path, query, body: body, idleTimeout: Self.answerTimeout)
        let bytes = try await unreachableOnError { try await response.collect(limit: Self.answerLimit) }
        return Answer(status: response.status, body: Data(bytes))
    }

    /// Sends the request and waits for the answer's head; the body is the caller's to read.
    private func request(
        _ method: HTTPMethod, _ path: String, _ query: [String: String], body: Data?, idleTimeout: TimeAmount
    ) async throws -> HTTPClient.Response {
        let target = try url(path, query)
        guard let components = URLComponents(url: target, resolvingAgainstBaseURL: false) else {
            throw AgentUnreachable(description: "bad request path \(path)")
        }
        var pathAndQuery = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { pathAndQuery += "?\(query)" }
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        let client = try http.get()
        return try await unreachableOnError {
            try await client.send(method, pathAndQuery, headers: headers, body: body.map { ByteBuffer(bytes: $0) }, idleTimeout: idleTimeout)
        }
    }

    private func unreachableOnError<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw unreachable(error)
        }
    }

    private func unreachable(_ error: any Error) -> AgentUnreachable {
        AgentUnreachable(description: "the Fathom agent at \(base) did not answer (\(error)); is `fathom agent` running there?")
    }

    /// The HTTP client for an http(s) URL; https checks the agent's certificate against the system's trust roots.
    private static func client(for base: URL) -> Result<HTTPClient, AgentUnreachable> {
        guard let host = base.host, !host.isEmpty, base.scheme == "http" || base.scheme == "https" else {
            return .failure(AgentUnreachable(description: "bad agent URL \(base): expected http(s)://HOST[:PORT]"))
        }
        let https = base.scheme == "https"
        guard https else { return .success(HTTPClient(host: host, port: base.port ?? 80)) }
        do {
            let tls = try NIOSSLContext(configuration: .makeClientConfiguration())
            return .success(HTTPClient(host: host, port: base.port ?? 443, tls: tls))
        } catch {
            return .failure(AgentUnreachable(description: "cannot set up TLS for \(base): \(error)"))
        }
    }
}

public struct AgentUnreachable: Error, CustomStringConvertible {
    public var description: String
}

/// The agent answered, but not with the success the caller needs.
public struct AgentRefusal: Error, CustomStringConvertible {
    public var status: Int
    public var body: String
    public var description: String { "the agent answered HTTP \(status): \(body)" }
}

extension CharacterSet {
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
