import FathomModel
import Foundation
import Hummingbird

/// The agent's HTTP endpoints. Later features add their routes here.
struct AgentRoutes: Sendable {
    let status: AgentStatus
    let metricSources: [MetricsSource & Sendable]
    let bearerToken: String?
    /// Pauses (true) or resumes (false) recording; the programs stay attached.
    let setPaused: @Sendable (Bool) -> Void
    /// The stores' answers and the live-dissection switch; nil in tests of the capture endpoints alone.
    var api: (LocalAPI, LiveDissection)? = nil
    /// Snapshots, delayed dissection and export; nil when the agent has none.
    var snapshots: Snapshots? = nil
    /// Streamable HTTP MCP at /mcp; nil leaves it off.
    var mcp: MCPEndpoint? = nil

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        if let bearerToken, !bearerToken.isEmpty {
            router.add(middleware: BearerTokenMiddleware(token: bearerToken, openPaths: ["/healthz"]))
        }
        router.get("/healthz") { _, _ in HealthReport(status: "ok", agent: status) }
        router.post("/capture/pause") { _, _ in
            setPaused(true)
            return CaptureState(paused: true)
        }
        router.post("/capture/resume") { _, _ in
            setPaused(false)
            return CaptureState(paused: false)
        }
        router.get("/metrics") { _, _ in
            let text = Prometheus.render(
                [Metric("fathom_up", .gauge, "1 while the agent runs; the capture source is a label.",
                        [(labels: [("capture_source", status.captureSource.rawValue)], value: 1)])]
                    + metricSources.flatMap { $0.metrics() })
            return Response(
                status: .ok, headers: [.contentType: Prometheus.contentType],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        if let (api, dissection) = api { addAPI(to: router, api: api, dissection: dissection) }
        if let snapshots, let (api, _) = api { addSnapshots(to: router, snapshots: snapshots, realTime: api) }
        if let mcp { addMCP(to: router, mcp) }
        return router
    }
}

struct CaptureState: ResponseEncodable {
    var paused: Bool
}

struct HealthReport: ResponseEncodable {
    var status: String
    var agent: AgentStatus
}

/// Requires `Authorization: Bearer <token>`; compares in constant time so the token cannot be guessed by timing.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    let openPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) { return try await next(request, context) }
        guard BearerToken.accepts(request.headers[.authorization], token: token) else {
            throw HTTPError(.unauthorized, message: "a bearer token is required (Authorization: Bearer …)")
        }
        return try await next(request, context)
    }

}

enum BearerToken {
    /// Whether an Authorization header carries exactly `Bearer <token>`, compared in constant time.
    static func accepts(_ header: String?, token: String) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let a = Array(header.utf8.dropFirst(7))
        let b = Array(token.utf8)
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0 && !b.isEmpty
    }
}
