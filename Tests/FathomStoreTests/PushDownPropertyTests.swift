import FathomKFL
import FathomModel
import Foundation
import XCTest

@testable import FathomStore

/// For random expressions over a few hundred stored calls, what the store returns through push-down, column scans and
/// record scans is exactly what full evaluation returns, newest first, across pages.
final class PushDownPropertyTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pushdown-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testStoreReturnsExactlyWhatFullEvaluationReturns() throws {
        var generator = SplitMix(seed: 0xF47_0A11)
        let calls = (0..<300).map { GeneratedCalls.make($0, &generator) }
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert(Array(calls[..<150]))
        try db.insert(Array(calls[150...]))
        let newestFirst = Array(calls.reversed())
        var accessCounts: [String: Int] = [:]
        for round in 0..<400 {
            let expression = GeneratedExpressions.conjunction(&generator)
            let filter = try KFL.compile(expression, now: GeneratedCalls.now)
            let expected = newestFirst.filter(filter.matches).map(\.id)
            let limit = [1, 7, 50, 1000][round % 4]
            var seen: [String] = []
            var cursor: Int64?
            var firstTotal: (Int, Bool)?
            for _ in 0...300 {
                let page = try db.calls(matching: filter, limit: limit, cursor: cursor, countBudget: round % 3 == 0 ? 0 : 100_000)
                if firstTotal == nil { firstTotal = (page.total, page.totalIsExact) }
                seen += page.calls.map(\.id)
                guard let next = page.nextCursor else { break }
                cursor = next
            }
            if seen != expected {
                let missing = expected.filter { !seen.contains($0) }
                let extra = seen.filter { !expected.contains($0) }
                XCTFail("\(expression) (limit \(limit)): missing \(missing.prefix(5)), extra \(extra.prefix(5)), order differs: \(missing.isEmpty && extra.isEmpty)")
            }
            if let (total, exact) = firstTotal {
                if exact { XCTAssertEqual(total, expected.count, expression) } else { XCTAssertLessThanOrEqual(total, expected.count, expression) }
                if round % 3 != 0 { XCTAssertTrue(exact, "a 100 000-row budget covers 300 calls: \(expression)") }
            }
            let plan = filter.plan.keepingPushed { KFLPushDown.translate($0) != nil }
            let access = plan.isFullyPushed ? "none" : (ScratchColumn.columns(for: plan.residualFields) == nil ? "record" : "columns")
            accessCounts[access, default: 0] += 1
        }
        // Every scan shape must be exercised, or the property proves little.
        for access in ["none", "columns", "record"] {
            XCTAssertGreaterThan(accessCounts[access] ?? 0, 40, "\(access): \(accessCounts)")
        }
    }

    func testTimeWindowAndStartEndBounds() throws {
        var generator = SplitMix(seed: 7)
        let calls = (0..<100).map { GeneratedCalls.make($0, &generator) }
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert(calls)
        let start = GeneratedCalls.base + 20_000
        let end = GeneratedCalls.base + 60_000
        let page = try db.calls(matching: try KFL.compile("http"), limit: 1000, start: start, end: end)
        let expected = calls.reversed().filter { ["http", "http2", "grpc", "graphql", "websocket"].contains($0.proto) && $0.ts >= start && $0.ts < end }
        XCTAssertEqual(page.calls.map(\.id), expected.map(\.id))
        XCTAssertTrue(page.totalIsExact)
        XCTAssertEqual(page.total, expected.count)
    }
}

/// Deterministic pseudo-random numbers (SplitMix64), so a failure reproduces.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
}

/// Calls with the awkward cases: nil against empty identities, glob characters and non-ASCII in paths, decrypted TLS,
/// sub-millisecond-adjacent times.
enum GeneratedCalls {
    static let base: Int64 = 1_700_000_000_000
    /// `now()` for every expression: two minutes after the first call.
    static let now = (base + 120_000) * 1_000_000
    static let protocols = ["http", "http2", "grpc", "dns", "tls", "websocket", "graphql", "redis", "tcp", ""]
    static let paths = ["/api/v1/checkout", "/api/v1/cart", "/api*/x", "/api[1]/y", "/healthz", "/API/v1/x", "/é/ünï", "", "/api/"]
    static let names = ["frontend", "checkout", "cart", "web-1", ""]
    /// Milliseconds around 22:14:10 (base + 50 s), which the expressions compare with at and off whole milliseconds.
    static let boundaries = [base + 49_999, base + 50_000, base + 50_001, base + 50_002]

    static func make(_ index: Int, _ generator: inout SplitMix) -> Call {
        func maybe(_ items: [String]) -> String? { generator.next() % 3 == 0 ? nil : generator.pick(items) }
        func endpoint(_ net: String) -> Endpoint {
            Endpoint(ip: "10.0.\(net).\(generator.next() % 5)", port: Int(generator.next() % 3) + 80, pod: maybe(names),
                     namespace: maybe(["shop", "default", ""]), service: maybe(names), process: maybe(["curl", "nginx"]),
                     dns: maybe(["example.com"]))
        }
        let headers = generator.next() % 2 == 0 ? [Header(name: "User-Agent", value: generator.pick(["curl/8", "Go-http"]))] : []
        return Call(
            id: "c-\(index)", ts: generator.next() % 4 == 0 ? generator.pick(boundaries) : base + Int64(generator.next() % 120_000), node: generator.pick(["node-a", "node-b"]),
            captureSource: generator.pick(CaptureSource.allCases), proto: generator.pick(protocols), src: endpoint("0"),
            dst: endpoint("1"), method: generator.pick(["GET", "POST", "A", ""]), path: generator.pick(paths),
            query: generator.pick(["", "a=1"]), status: generator.pick([0, 200, 404, 500, 503]),
            latencyMs: Double(generator.next() % 3000) / 7, request: Message(headers: headers),
            flags: CallFlags(bits: Int(generator.next() % 16)))
    }
}

/// Conjunctions of pushable atoms, residual atoms answerable from columns, and residual atoms needing the record.
enum GeneratedExpressions {
    static let atoms = [
        // Pushable.
        #"path == "/api/v1/checkout""#, #"request.path == "/healthz""#, #"path.startsWith("/api/")"#, #"path startsWith "/api*""#,
        #"path.startsWith("/api[")"#, #"path.startsWith("/é")"#, #"path == """#, "status_code == 503", "response.status >= 500",
        "404 > status_code", "status_code in [200, 404]", "status_code <= 200", #"method == "GET""#, #"method in ["POST", "A"]"#,
        "http", "!http", "dns", "grpc", "tls", "!tls", "tcp", "!udp", "http2", "websocket", "redis", #"protocol == "grpc""#,
        #"proto in ["dns", "tls", ""]"#, #"timestamp > now() - duration("30s")"#, #"timestamp >= now() - duration("61.5s")"#,
        #"timestamp <= timestamp("2023-11-14T22:14:00.0005Z")"#, #"timestamp < timestamp("2023-11-14T22:13:40Z")"#,
        #"timestamp == timestamp("2023-11-14T22:13:50.0001Z")"#, #"timestamp > timestamp("2023-11-14T22:14:10.0005Z")"#,
        #"timestamp >= timestamp("2023-11-14T22:14:10.0005Z")"#, #"timestamp < timestamp("2023-11-14T22:14:10.0015Z")"#,
        #"timestamp <= timestamp("2023-11-14T22:14:10.0015Z")"#, #"timestamp > timestamp("2023-11-14T22:14:10.001Z")"#,
        #"timestamp <= timestamp("2023-11-14T22:14:10Z")"#, #"timestamp == timestamp("2023-11-14T22:14:10.002Z")"#,
        #"timestamp in [timestamp("2023-11-14T22:14:10Z"), timestamp("2023-11-14T22:14:10.0015Z")]"#, #"src.name == "frontend""#, #"dst.name == "example.com""#,
        #"src.name == """#, #"src.pod == "cart""#, #"dst.svc == "checkout""#, #"dst.service.name == """#, #"src.ns == "shop""#,
        #"dst.namespace == """#, #"node_id == "node-b""#, #"capture_source == "ebpf_tls""#, #"dst.pod.name in ["web-1", ""]"#,
        // Residual, from columns.
        #"path.contains("v1")"#, "status_code == 503 || dns", "!(status_code == 200)", "elapsedTime > 100", "elapsed_time < 50000",
        #"path matches r"^/api/v\d""#, #"method != "GET""#, #"src.name != "cart""#, "http ? status_code >= 500 : true",
        "size(path) > 8", "gap || truncated", "!no_response", "dns_request && !dns_response", #"dst.ns.startsWith("s") || tls"#,
        #"src.pod.name.endsWith("t") && src.service.name != """#, "status_code / 0 == 1 || http", #"node_id != "node-a""#,
        // Residual, from the record.
        #"src.ip.endsWith("3")"#, #"dst.dns == "example.com""#, #"request.headers["user-agent"].startsWith("curl")"#,
        #"url.contains("a=1")"#, #"src.process == "curl" || dst.port == 81"#, #"src.name == "frontend" || src.pod == "cart""#,
        #""shop" in namespaces"#,
    ]

    static func conjunction(_ generator: inout SplitMix) -> String {
        let count = 1 + Int(generator.next() % 4)
        return (0..<count).map { _ in
            let atom = generator.pick(atoms)
            return generator.next() % 5 == 0 ? "(\(atom))" : atom
        }.joined(separator: generator.next() % 2 == 0 ? " && " : " and ")
    }
}
