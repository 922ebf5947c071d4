import ArgumentParser
import FathomMCP
import Foundation
import MCP

/// `fathom mcp`: an MCP server on stdio for Claude Code, Cursor and others, answered by a running agent.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve MCP on stdio, answered by an agent's HTTP API (claude mcp add fathom -- fathom mcp).")

    @Option(help: "The agent's HTTP API.") var url = "http://127.0.0.1:8421"
    @Option(help: "Bearer token, when the agent requires one.") var token: String?
    @Option(help: "File holding the bearer token.") var tokenFile: String?

    func run() async throws {
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
            throw ValidationError("--url must be an http(s) URL, e.g. http://127.0.0.1:8421")
        }
        let bearer = try token ?? tokenFile.map {
            try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let server = await FathomMCPServer.make(client: AgentClient(base: base, token: bearer))
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }
}
