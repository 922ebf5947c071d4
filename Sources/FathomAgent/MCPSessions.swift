import FathomMCP
import Foundation
import MCP

/// Streamable HTTP MCP sessions on the agent: one swift-sdk `Server` per session, each over the SDK's stateless
/// transport (one JSON answer per POST), with the session table kept here.
///
/// Why not the SDK's stateful transport: it keeps every message it sent until its session ends (so a long session
/// holds every tool result), and it routes progress and other notifications to a GET stream most clients never open.
/// These tools answer in one response each, so plain JSON answers lose nothing, and the table below bounds memory:
/// at most `maximumSessions`, idle ones closed after `idleTimeout`.
///
/// The tools reach the agent's API over loopback HTTP with the agent's own token, exactly as `fathom mcp` over stdio
/// does: both transports give byte-identical answers through the same routes, limits and redaction, at the cost of a
/// loopback round trip (well under a millisecond) per tool call.
actor MCPSessions {
    struct Session {
        let server: Server
        let transport: StatelessHTTPServerTransport
        var lastUsed: ContinuousClock.Instant
    }

    static let maximumSessions = 64
    static let idleTimeout = Duration.seconds(30 * 60)

    private var sessions: [String: Session] = [:]
    private var client: AgentClient?
    private let token: String?

    init(token: String?) {
        self.token = token
    }

    /// The agent's own API, once its listening address is known (the port may have been chosen by the system).
    func setAgent(host: String, port: Int) {
        let loopback: String
        switch host {
        case "0.0.0.0", "": loopback = "127.0.0.1"
        case "::": loopback = "[::1]"
        default: loopback = host.contains(":") ? "[\(host)]" : host
        }
        client = URL(string: "http://\(loopback):\(port)").map { AgentClient(base: $0, token: token) }
    }

    /// A new session and its transport; the oldest idle session makes room when the table is full.
    func create() async throws -> (id: String, transport: StatelessHTTPServerTransport) {
        guard let client else { throw MCPSessionError.notReady }
        await closeIdle()
        if sessions.count >= Self.maximumSessions, let oldest = sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
            await close(oldest)
        }
        let transport = StatelessHTTPServerTransport(validationPipeline: StandardValidationPipeline(validators: [
            AcceptHeaderValidator(mode: .jsonOnly), ContentTypeValidator(), ProtocolVersionValidator(),
        ]))
        let server = await FathomMCPServer.make(client: client)
        try await server.start(transport: transport)
        let id = UUID().uuidString.lowercased()
        sessions[id] = Session(server: server, transport: transport, lastUsed: .now)
        return (id, transport)
    }

    /// The transport of a live session, marking it used.
    func transport(for id: String) -> StatelessHTTPServerTransport? {
        guard var session = sessions[id] else { return nil }
        session.lastUsed = .now
        sessions[id] = session
        return session.transport
    }

    /// Ends a session; false when there was none.
    @discardableResult
    func close(_ id: String) async -> Bool {
        guard let session = sessions.removeValue(forKey: id) else { return false }
        await session.server.stop()
        return true
    }

    private func closeIdle() async {
        let now = ContinuousClock.now
        for (id, session) in sessions where now - session.lastUsed > Self.idleTimeout { await close(id) }
    }

    var count: Int { sessions.count }
}

enum MCPSessionError: Error, CustomStringConvertible {
    case notReady
    var description: String { "the agent is still starting" }
}
