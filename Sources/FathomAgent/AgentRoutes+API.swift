import FathomModel
import Foundation
import Hummingbird
import HummingbirdCore

/// The seeds' endpoints (`/mcp/…`) and the live-dissection switch, as thin HTTP wrappers over `LocalAPI`.
extension AgentRoutes {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Runs a handler, turning API errors into JSON answers a caller can act on.
    static func answer(_ body: () throws -> Response) -> Response {
        do {
            return try body()
        } catch let error as APIError {
            let status: HTTPResponse.Status = if case .notFound = error { .notFound } else { .badRequest }
            return json(error.body, status: status)
        } catch {
            return json(APIErrorBody(error: .init(message: "\(error)")), status: .internalServerError)
        }
    }

    func addAPI(to router: Router<BasicRequestContext>, api: LocalAPI, dissection: LiveDissection) {
        router.get("/mcp/data-boundaries") { _, _ in Self.answer { Self.json(try api.dataBoundaries()) } }
        router.get("/mcp/fields") { _, _ in Self.answer { Self.json(["fields": api.fields()]) } }
        router.get("/mcp/calls") { request, _ in
            Self.answer {
                let q = QueryParameters(request.uri)
                let api = try database(q.string("db"), api)
                var list = LocalAPI.ListCallsRequest()
                list.kfl = q.string("kfl") ?? ""
                list.limit = try q.int("limit", default: LocalAPI.defaultLimit, in: 1...LocalAPI.maximumLimit)
                list.full = try q.choice("format", ["compact", "full"], default: "compact") == "full"
                list.startMs = try q.optionalInt("start")
                list.endMs = try q.optionalInt("end")
                list.cursor = try q.optionalInt("cursor")
                return Self.json(try api.listCalls(list))
            }
        }
        router.get("/mcp/calls/:id") { request, context in
            Self.answer {
                let q = QueryParameters(request.uri)
                let id = context.parameters.get("id") ?? ""
                let maxPayload = try q.int("max_payload", default: 64 * 1024, in: 0...(16 << 20))
                guard let call = try api.call(id: id, maxPayload: maxPayload) else {
                    throw APIError.notFound("no call with id `\(id)`")
                }
                return Self.json(call)
            }
        }
        router.get("/mcp/stats") { request, _ in
            Self.answer {
                let q = QueryParameters(request.uri)
                let api = try database(q.string("db"), api)
                let groupBy = try q.choice("group_by", LocalAPI.GroupBy.allCases.map(\.rawValue), default: "none")
                return Self.json(
                    try api.stats(
                        kfl: q.string("kfl") ?? "", groupBy: LocalAPI.GroupBy(rawValue: groupBy) ?? .none,
                        startMs: try q.optionalInt("start"), endMs: try q.optionalInt("end")))
            }
        }
        addFlowRoutes(to: router, api: api)
        router.get("/dissection/status") { _, _ in Self.json(["enabled": dissection.isEnabled]) }
        router.post("/dissection/enable") { _, _ in
            dissection.setEnabled(true)
            return Self.json(["enabled": true])
        }
        router.post("/dissection/disable") { _, _ in
            dissection.setEnabled(false)
            return Self.json(["enabled": false])
        }
    }
}

/// Query-string arguments checked the same way everywhere: a bad one says what would be valid.
/// Decoded as forms are (`+` is a space, then percent-escapes), so `kfl=a+and+b` reads `a and b`;
/// a literal `+` in a filter is sent as `%2B`.
struct QueryParameters {
    private let values: [String: String]

    init(_ uri: URI) {
        var values: [String: String] = [:]
        for pair in (uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            let key = decode(parts[0])
            if values[key] == nil { values[key] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        self.values = values
    }

    func string(_ name: String) -> String? { values[name] }

    func optionalInt(_ name: String) throws -> Int64? {
        guard let text = values[name], !text.isEmpty else { return nil }
        guard let value = Int64(text) else { throw APIError.badArgument("`\(name)` must be an integer, not `\(text.prefix(40))`") }
        return value
    }

    func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = values[name], !text.isEmpty else { return value }
        guard let parsed = Int(text), range.contains(parsed) else {
            throw APIError.badArgument("`\(name)` must be an integer from \(range.lowerBound) to \(range.upperBound), not `\(text.prefix(40))`")
        }
        return parsed
    }

    func choice(_ name: String, _ choices: [String], default value: String) throws -> String {
        guard let text = values[name], !text.isEmpty else { return value }
        guard choices.contains(text) else {
            throw APIError.badArgument("`\(name)` must be one of \(choices.joined(separator: ", ")), not `\(text.prefix(40))`")
        }
        return text
    }
}
