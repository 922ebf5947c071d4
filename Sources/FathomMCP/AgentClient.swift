import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The agent's HTTP API as the MCP tools reach it.
public struct AgentClient: Sendable {
    public let base: URL
    public let token: String?

    public init(base: URL, token: String?) {
        self.base = base
        self.token = token
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
    }

    public func get(_ path: String, _ query: [String: String] = [:]) async throws -> Answer {
        try await send("GET", path, query)
    }

    public func post(_ path: String) async throws -> Answer { try await send("POST", path, [:]) }

    /// POSTs `body` as JSON.
    public func post(_ path: String, json body: some Encodable) async throws -> Answer {
        try await send("POST", path, [:], body: try JSONEncoder().encode(body))
    }

    public func delete(_ path: String) async throws -> Answer { try await send("DELETE", path, [:]) }

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

    private func send(_ method: String, _ path: String, _ query: [String: String], body: Data? = nil) async throws -> Answer {
        var request = URLRequest(url: try url(path, query), timeoutInterval: 50)
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
        } catch {
            throw AgentUnreachable(description: "the Fathom agent at \(base) did not answer (\(error.localizedDescription)); is `fathom agent` running there?")
        }
    }
}

public struct AgentUnreachable: Error, CustomStringConvertible {
    public var description: String
}

extension CharacterSet {
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
