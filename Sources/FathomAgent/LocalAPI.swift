import FathomKFL
import FathomModel
import FathomRecording
import FathomStore
import Foundation

/// The answers the HTTP API and the MCP server give, read from this agent's stores. Both transports call it, so an
/// answer means the same wherever it is asked.
final class LocalAPI: Sendable {
    let node: String
    let status: AgentStatus
    let calls: CallsDatabase
    private let recording: RecordingStatistics
    let dissection: LiveDissection
    /// Authorization, cookies and API keys are shown as "[redacted]" unless the agent was told otherwise.
    private let showSecrets: Bool

    static let maximumLimit = 1000
    static let defaultLimit = 100

    init(node: String, status: AgentStatus, calls: CallsDatabase, recording: RecordingStatistics,
         dissection: LiveDissection, showSecrets: Bool) {
        self.node = node
        self.status = status
        self.calls = calls
        self.recording = recording
        self.dissection = dissection
        self.showSecrets = showSecrets
    }

    /// The same answers over another calls database (a snapshot's dissection).
    func answering(from database: CallsDatabase) -> LocalAPI {
        LocalAPI(node: node, status: status, calls: database, recording: recording, dissection: dissection, showSecrets: showSecrets)
    }

    /// The database this API answers from.
    var realTimeCalls: CallsDatabase { calls }

    // MARK: data boundaries

    func dataBoundaries() throws -> DataBoundaries {
        let r = recording.snapshot()
        let c = try calls.boundaries()
        let f = try calls.flowBoundaries()
        return DataBoundaries(nodes: [
            DataBoundaries.Node(
                node: node, captureSource: status.captureSource.rawValue,
                recording: .init(oldestMs: r.oldestPacketNanoseconds == 0 ? nil : Int64(r.oldestPacketNanoseconds / 1_000_000),
                                 newestMs: r.newestPacketNanoseconds == 0 ? nil : Int64(r.newestPacketNanoseconds / 1_000_000),
                                 bytes: r.bytesOnDisk, segments: r.segmentCount),
                calls: .init(oldestMs: c.oldest, newestMs: c.newest, count: c.count),
                flows: .init(oldestMs: f.oldest, newestMs: f.newest, count: f.count),
                liveDissection: dissection.isEnabled, dissectionLagSeconds: dissection.lagSeconds)
        ])
    }

    // MARK: calls

    struct ListCallsRequest: Sendable {
        var kfl = ""
        var limit = LocalAPI.defaultLimit
        var full = false
        var startMs: Int64?
        var endMs: Int64?
        var cursor: Int64?
    }

    func listCalls(_ request: ListCallsRequest) throws -> CallList {
        let filter = try compile(request.kfl)
        // `end` is inclusive on the API, exclusive in the store.
        let page = try calls.calls(
            matching: filter, limit: request.limit, cursor: request.cursor, start: request.startMs,
            end: request.endMs.map { $0 + 1 })
        return CallList(
            calls: page.calls.map { request.full ? .full(redact($0)) : .compact($0.compact) },
            returned: page.calls.count, total: page.total, totalIsExact: page.totalIsExact, truncated: page.truncated,
            nextCursor: page.nextCursor.map(String.init),
            covers: try coverage(startMs: request.startMs, endMs: request.endMs))
    }

    func call(id: String, maxPayload: Int) throws -> Call? {
        guard var call = try calls.call(id: id) else { return nil }
        call = redact(call)
        for keyPath in [\Call.request, \Call.response] {
            if var message = call[keyPath: keyPath], message.body.utf8.count > maxPayload {
                message.body = String(decoding: message.body.utf8.prefix(maxPayload), as: UTF8.self)
                message.bodyTruncated = true
                call[keyPath: keyPath] = message
            }
        }
        return call
    }

    // MARK: stats

    enum GroupBy: String, CaseIterable, Sendable {
        case service, endpoint, status, protocol_ = "protocol", none
    }

    func stats(kfl: String, groupBy: GroupBy, startMs: Int64?, endMs: Int64?) throws -> CallStats {
        let filter = try compile(kfl)
        let groups = try calls.statistics(
            matching: filter, grouping: groupBy.grouping, start: startMs, end: endMs.map { $0 == .max ? $0 : $0 + 1 })
        let rows = groups.map { CallStats.Row(group: $0.key, totals: $0.value) }
            .sorted { ($0.count, $1.group) > ($1.count, $0.group) }
        return CallStats(groupBy: groupBy.rawValue, groups: rows, percentiles: CallStats.percentilesKind(groups.values),
                         covers: try coverage(startMs: startMs, endMs: endMs))
    }

    // MARK: fields

    func fields() -> [FieldDescription] {
        KFL.fields.map {
            FieldDescription(name: $0.name, aliases: $0.aliases, type: "\($0.type)", group: $0.group, summary: $0.summary,
                             example: $0.example, indexed: !$0.indexedOperators.isEmpty)
        }
    }

    // MARK: helpers

    func compile(_ kfl: String) throws -> KFLFilter {
        do {
            return try KFL.compile(kfl)
        } catch {
            throw APIError.filter(error)
        }
    }

    /// What an answer covers, so that an empty list is never read as "no traffic".
    func coverage(startMs: Int64?, endMs: Int64?) throws -> Coverage {
        let b = try calls.boundaries()
        var notes: [String] = []
        if !dissection.isEnabled { notes.append("live dissection is off: calls after it was turned off are missing") }
        if status.captureSource == .pcap {
            notes.append("capture fell back to libpcap (\(status.fallbackReason ?? "eBPF unavailable")): no cgroup or process context")
        }
        if b.count == 0 { notes.append("no calls are stored yet") }
        return Coverage(
            nodes: [node], captureSources: [status.captureSource.rawValue], liveDissection: dissection.isEnabled,
            callsOldestMs: b.oldest, callsNewestMs: b.newest, queriedStartMs: startMs, queriedEndMs: endMs,
            notes: notes)
    }

    private static let secretHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token",
    ]

    func redact(_ call: Call) -> Call {
        guard !showSecrets else { return call }
        var call = call
        func clean(_ headers: [Header]) -> [Header] {
            headers.map { Self.secretHeaders.contains($0.name.lowercased()) ? Header(name: $0.name, value: "[redacted]") : $0 }
        }
        if let headers = call.request?.headers { call.request?.headers = clean(headers) }
        if let headers = call.response?.headers { call.response?.headers = clean(headers) }
        return call
    }
}

// MARK: - Answers

struct DataBoundaries: Codable, Sendable {
    struct Range: Codable, Sendable {
        var oldestMs: Int64?
        var newestMs: Int64?
        var bytes: UInt64?
        var segments: UInt64?
        var count: Int?

        init(oldestMs: Int64?, newestMs: Int64?, bytes: UInt64? = nil, segments: UInt64? = nil, count: Int? = nil) {
            self.oldestMs = oldestMs
            self.newestMs = newestMs
            self.bytes = bytes
            self.segments = segments
            self.count = count
        }
    }

    struct Node: Codable, Sendable {
        var node: String
        var captureSource: String
        var recording: Range
        var calls: Range
        /// L4 flows: earliest start, latest end, count.
        var flows: Range
        var liveDissection: Bool
        var dissectionLagSeconds: Double
    }

    var nodes: [Node]
}

struct Coverage: Codable, Sendable {
    var nodes: [String]
    var captureSources: [String]
    var liveDissection: Bool
    var callsOldestMs: Int64?
    var callsNewestMs: Int64?
    var queriedStartMs: Int64?
    var queriedEndMs: Int64?
    var notes: [String]
}

enum ListedCall: Codable, Sendable {
    case compact(CompactCall)
    case full(Call)

    func encode(to encoder: Encoder) throws {
        switch self {
        case .compact(let c): try c.encode(to: encoder)
        case .full(let c): try c.encode(to: encoder)
        }
    }

    init(from decoder: Decoder) throws {
        if let full = try? Call(from: decoder) {
            self = .full(full)
        } else {
            self = .compact(try CompactCall(from: decoder))
        }
    }
}

struct CallList: Codable, Sendable {
    var calls: [ListedCall]
    var returned: Int
    /// Calls matching from this page on; a lower bound when `totalIsExact` is false (counting stops after 100,000 rows).
    var total: Int
    var totalIsExact: Bool
    var truncated: Bool
    /// Always present: null on the last page, so a client never mistakes a missing key for "no more".
    var nextCursor: String?
    var covers: Coverage

    enum CodingKeys: String, CodingKey { case calls, returned, total, totalIsExact, truncated, nextCursor, covers }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(calls, forKey: .calls)
        try c.encode(returned, forKey: .returned)
        try c.encode(total, forKey: .total)
        try c.encode(totalIsExact, forKey: .totalIsExact)
        try c.encode(truncated, forKey: .truncated)
        try c.encode(nextCursor, forKey: .nextCursor)
        try c.encode(covers, forKey: .covers)
    }
}

struct CallStats: Codable, Sendable {
    struct Row: Codable, Sendable {
        var group: String
        var count: Int
        var errors: Int
        var errorRate: Double
        var p50Ms: Double
        var p90Ms: Double
        var p99Ms: Double
        var firstMs: Int64
        var lastMs: Int64
        var perSecond: Double
    }

    var groupBy: String
    var groups: [Row]
    /// "exact", or "histogram ±1%" when per-minute rollups answered (counts stay exact).
    var percentiles: String
    var covers: Coverage
}

struct FieldDescription: Codable, Sendable {
    var name: String
    var aliases: [String]
    var type: String
    var group: String
    var summary: String
    var example: String
    var indexed: Bool
}

/// An error the caller can act on: bad arguments say what is valid; KFL errors keep their position and suggestions.
enum APIError: Error {
    case badArgument(String)
    case notFound(String)
    case filter(KFLError)

    var body: APIErrorBody {
        switch self {
        case .badArgument(let message), .notFound(let message):
            APIErrorBody(error: .init(message: message))
        case .filter(let e):
            APIErrorBody(error: .init(
                message: e.description, kind: e.kind.rawValue,
                position: .init(offset: e.position.offset, line: e.position.line, column: e.position.column),
                expected: e.expected, suggestions: e.suggestions))
        }
    }
}

struct APIErrorBody: Codable, Sendable {
    struct Detail: Codable, Sendable {
        struct Position: Codable, Sendable {
            var offset: Int
            var line: Int
            var column: Int
        }
        var message: String
        var kind: String?
        var position: Position?
        var expected: [String]?
        var suggestions: [String]?
    }
    var error: Detail
}
