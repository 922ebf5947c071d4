import FathomMCP
import Foundation
import Hummingbird
import HummingbirdCore
import HTTPTypes
import MCP

/// What `/mcp` needs: the session table and the origins allowed besides loopback.
struct MCPEndpoint: Sendable {
    let sessions: MCPSessions
    let allowedOrigins: [String]
}

/// Streamable HTTP MCP (protocol 2025-11-25) at `/mcp`: POST carries JSON-RPC and is answered with one JSON message;
/// the `initialize` request opens a session (`Mcp-Session-Id`), DELETE ends it; GET is 405 (no server-initiated
/// stream: these tools never push). Host and Origin are checked against DNS rebinding before anything else; the
/// bearer token, when set, is checked by the router's middleware as on every endpoint.
extension AgentRoutes {
    /// A JSON-RPC message larger than this is refused with 413 (tool arguments are a few hundred bytes).
    static let maximumMCPRequestBytes = 1 << 20

    func addMCP(to router: Router<BasicRequestContext>, _ endpoint: MCPEndpoint) {
        router.post("/mcp") { request, _ in
            if let refusal = Self.refusal(request, endpoint) { return refusal }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maximumMCPRequestBytes)
            } catch {
                return Self.mcpError(413, "request body over \(Self.maximumMCPRequestBytes) bytes")
            }
            let data = Data(body.readableBytesView)
            let sessionID = request.headers[HTTPField.Name("Mcp-Session-Id")!]
            let isInitialize = Self.isInitializeRequest(data)
            let id: String
            let transport: StatelessHTTPServerTransport
            if isInitialize {
                guard sessionID == nil else { return Self.mcpError(400, "initialize must not carry Mcp-Session-Id") }
                do {
                    (id, transport) = try await endpoint.sessions.create()
                } catch {
                    return Self.mcpError(503, "\(error)")
                }
            } else {
                guard let sessionID else {
                    return Self.mcpError(400, "Mcp-Session-Id header is required (send initialize first)")
                }
                guard let known = await endpoint.sessions.transport(for: sessionID) else {
                    return Self.mcpError(404, "no session `\(sessionID.prefix(80))`: it ended or never existed; initialize again")
                }
                (id, transport) = (sessionID, known)
            }
            let answer = await transport.handleRequest(Self.sdkRequest(request, body: data))
            if isInitialize, !(200..<300).contains(answer.statusCode) { await endpoint.sessions.close(id) }
            return Self.response(answer, sessionID: id)
        }
        router.delete("/mcp") { request, _ in
            if let refusal = Self.refusal(request, endpoint) { return refusal }
            guard let sessionID = request.headers[HTTPField.Name("Mcp-Session-Id")!] else {
                return Self.mcpError(400, "Mcp-Session-Id header is required")
            }
            guard await endpoint.sessions.close(sessionID) else { return Self.mcpError(404, "no session `\(sessionID.prefix(80))`") }
            return HummingbirdCore.Response(status: .noContent)
        }
        router.get("/mcp") { request, _ in
            if let refusal = Self.refusal(request, endpoint) { return refusal }
            var response = Self.mcpError(405, "this server sends no server-initiated messages: POST JSON-RPC to /mcp")
            response.headers[.allow] = "POST, DELETE"
            return response
        }
    }

    // MARK: DNS-rebinding protection

    /// 421 for a Host that is neither an IP literal, localhost, nor an allowed origin's host; 403 for an Origin that is
    /// neither loopback nor allowed. A rebinding attack always presents its own DNS name in both.
    static func refusal(_ request: HummingbirdCore.Request, _ endpoint: MCPEndpoint) -> HummingbirdCore.Response? {
        let allowedHosts = Set(endpoint.allowedOrigins.compactMap { URL(string: $0)?.host?.lowercased() })
        guard let authority = request.head.authority, let host = hostName(authority),
              isIPLiteral(host) || host == "localhost" || allowedHosts.contains(host)
        else {
            return mcpError(421, "Host `\((request.head.authority ?? "").prefix(80))` is not accepted for /mcp")
        }
        if let origin = request.headers[.origin] {
            let normalized = origin.lowercased()
            let allowed = endpoint.allowedOrigins.contains { $0.lowercased() == normalized }
            let loopback = URL(string: normalized).map { url in
                ["http", "https"].contains(url.scheme ?? "")
                    && ["localhost", "127.0.0.1", "::1", "[::1]"].contains(url.host ?? "")
            } ?? false
            guard allowed || loopback else {
                return mcpError(403, "Origin `\(origin.prefix(80))` is not allowed; start the agent with --mcp-allowed-origin to allow it")
            }
        }
        return nil
    }

    /// "host:port", "[v6]:port" or "host" → the lowercased host without brackets; nil when malformed.
    static func hostName(_ authority: String) -> String? {
        let text = authority.lowercased()
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            return String(text[text.index(after: text.startIndex)..<close])
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let first = parts.first, !first.isEmpty else { return nil }
        return String(first)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    // MARK: conversions

    static func isInitializeRequest(_ data: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["method"] as? String == "initialize" && object["id"] != nil
    }

    static func sdkRequest(_ request: HummingbirdCore.Request, body: Data) -> MCP.HTTPRequest {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        return MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: body, path: request.uri.path)
    }

    static func response(_ answer: MCP.HTTPResponse, sessionID: String) -> HummingbirdCore.Response {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        fields[HTTPField.Name("Mcp-Session-Id")!] = sessionID
        let body = answer.bodyData.map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
        return HummingbirdCore.Response(status: .init(code: answer.statusCode), headers: fields, body: .init(byteBuffer: body))
    }

    /// A JSON-RPC error body with an HTTP status, for refusals before a message reaches a session.
    static func mcpError(_ status: Int, _ message: String) -> HummingbirdCore.Response {
        let object: [String: Any] = ["jsonrpc": "2.0", "id": NSNull(), "error": ["code": -32600, "message": message]]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return HummingbirdCore.Response(
            status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
