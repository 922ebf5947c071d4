import FathomKFL
import FathomModel
import XCTest

final class PlanTests: XCTestCase {
    func testSeedExpressionIsFullyPushedDown() throws {
        let filter = try KFL.compile(#"request.path=="/api/v1/checkout" and response.status==503"#)
        XCTAssertEqual(filter.plan.pushed.map(\.description), [#"path == "/api/v1/checkout""#, "status_code == 503"])
        XCTAssertTrue(filter.plan.isFullyPushed)
    }

    func testTimeRangeFoldsNowAndLeavesHeadersResidual() throws {
        let filter = try KFL.compile(#"timestamp > now() - duration("5m") && request.headers["x"] == "y""#, now: Fixtures.now)
        XCTAssertEqual(filter.plan.pushed, [KFLPlan.Predicate(field: "timestamp", operator: .greater,
                                                             value: .timestamp(Fixtures.now - 300_000_000_000))])
        XCTAssertFalse(filter.plan.isFullyPushed)
    }

    func testFlagsPrefixesMembershipAndMirroredComparisons() throws {
        let filter = try KFL.compile(
            #"http && !dns && path.startsWith("/api/") && status_code in [500, 503] && 400 <= status_code && dst.svc == "cart""#)
        XCTAssertEqual(filter.plan.pushed.map(\.description), [
            "http == true", "dns == false", #"path.startsWith("/api/")"#, "status_code in [500, 503]",
            "status_code >= 400", #"dst.service.name == "cart""#,
        ])
        XCTAssertTrue(filter.plan.isFullyPushed)
    }

    func testDisjunctionsAndUnindexedFieldsStayResidual() throws {
        let filter = try KFL.compile(#"(status_code == 500 || status_code == 503) && src.ip == "10.0.0.1" && status_code == 500.0"#)
        XCTAssertEqual(filter.plan.pushed, [])
    }

    func testResidualFieldsNameWhatTheResidualReads() throws {
        let filter = try KFL.compile(#"status_code == 503 && (request.path.contains("x") || src.pod == "a") && dst.ns == "shop""#)
        XCTAssertEqual(filter.plan.residualFields, ["path", "src.pod.name"])
        XCTAssertEqual(try KFL.compile("http && status_code in [500]").plan.residualFields, [])
    }

    /// A store that cannot answer a pushed predicate gets it back as residual, with its fields, and the split stays exact.
    func testKeepingPushedMovesUnansweredPredicatesToTheResidual() throws {
        let filter = try KFL.compile(#"status_code == 503 && dst.ns == "shop" && src.ip == "10.0.0.1""#)
        let narrowed = filter.plan.keepingPushed { $0.field == "status_code" }
        XCTAssertEqual(narrowed.pushed.map(\.description), ["status_code == 503"])
        XCTAssertEqual(narrowed.residualFields, ["src.ip", "dst.namespace"])
        for call in Fixtures.calls {
            let split = (call.status == 503) && narrowed.residualMatches(call)
            XCTAssertEqual(split, filter.matches(call), call.id)
        }
        XCTAssertEqual(KFL.flagProtocols("http2"), ["http2", "grpc"])
        XCTAssertEqual(KFL.flagProtocols("tls"), ["tls"])
        XCTAssertNil(KFL.flagProtocols("status_code"))
    }

    /// For random expressions, what a store returns (pushed predicates evaluated as the store would, from its own columns)
    /// filtered by the residual equals full evaluation.
    func testPushedAndResidualEqualFullEvaluation() throws {
        var generator = SplitMix(seed: 0x5EED)
        let calls = Fixtures.calls + (0..<40).map { _ in RandomCalls.make(&generator) }
        var pushedSomething = 0
        for _ in 0..<1500 {
            let expression = ExpressionGenerator.conjunction(&generator)
            let filter = try KFL.compile(expression, now: Fixtures.now)
            if !filter.plan.pushed.isEmpty { pushedSomething += 1 }
            for call in calls {
                let fromStore = filter.plan.pushed.allSatisfy { StoreEmulator.satisfies($0, call) } && filter.plan.residualMatches(call)
                XCTAssertEqual(fromStore, filter.matches(call), "\(expression) on \(call.id)")
            }
        }
        XCTAssertGreaterThan(pushedSomething, 500, "the generator should exercise push-down")
    }
}

/// What a calls store would do with a pushed predicate: compare its own indexed columns, not KFL's accessors.
enum StoreEmulator {
    static func column(_ field: String, _ call: Call) -> KFLValue? {
        let httpFamily: Set<String> = ["http", "http2", "grpc", "graphql", "websocket"]
        switch field {
        case "timestamp": return .timestamp(call.ts * 1_000_000)
        case "protocol": return .string(call.proto)
        case "status_code": return .int(Int64(call.status))
        case "method": return .string(call.method)
        case "path": return .string(call.path)
        case "node_id": return .string(call.node)
        case "capture_source": return .string(call.captureSource.rawValue)
        case "src.name": return .string(call.src.name)
        case "dst.name": return .string(call.dst.name)
        case "src.pod.name": return .string(call.src.pod ?? "")
        case "dst.pod.name": return .string(call.dst.pod ?? "")
        case "src.service.name": return .string(call.src.service ?? "")
        case "dst.service.name": return .string(call.dst.service ?? "")
        case "src.namespace": return .string(call.src.namespace ?? "")
        case "dst.namespace": return .string(call.dst.namespace ?? "")
        case "http": return .bool(httpFamily.contains(call.proto))
        case "http2": return .bool(call.proto == "http2" || call.proto == "grpc")
        case "websocket": return .bool(call.proto == "websocket")
        case "tls": return .bool(call.proto == "tls" || call.captureSource == .ebpfTLS)
        case "udp": return .bool(["dns", "udp", "radius", "quic"].contains(call.proto))
        case "tcp": return .bool(httpFamily.union(["tls", "tcp", "redis", "kafka", "amqp", "mongodb", "mysql", "postgresql", "ldap", "diameter"]).contains(call.proto))
        default: return .bool(call.proto == field)  // dns, grpc, redis, … : one protocol each
        }
    }

    static func satisfies(_ predicate: KFLPlan.Predicate, _ call: Call) -> Bool {
        guard let value = column(predicate.field, call) else { return false }
        switch (predicate.operator, value, predicate.value) {
        case (.equal, _, _): return value == predicate.value
        case (.in, _, .list(let items)): return items.contains(value)
        case (.prefix, .string(let text), .string(let prefix)): return text.utf8.starts(with: prefix.utf8)
        case (.less, .int(let a), .int(let b)), (.less, .timestamp(let a), .timestamp(let b)): return a < b
        case (.lessOrEqual, .int(let a), .int(let b)), (.lessOrEqual, .timestamp(let a), .timestamp(let b)): return a <= b
        case (.greater, .int(let a), .int(let b)), (.greater, .timestamp(let a), .timestamp(let b)): return a > b
        case (.greaterOrEqual, .int(let a), .int(let b)), (.greaterOrEqual, .timestamp(let a), .timestamp(let b)): return a >= b
        default: return false
        }
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
}

enum RandomCalls {
    static let protocols = ["http", "http2", "grpc", "dns", "tls", "websocket", "graphql", "redis", "tcp"]
    static let paths = ["/api/v1/checkout", "/api/v1/cart", "/healthz", "/API/v1/x", ""]
    static let names = ["frontend", "checkout", "cart", "web-1"]

    static func make(_ generator: inout SplitMix) -> Call {
        func pick<T>(_ items: [T]) -> T { items[Int(generator.next() % UInt64(items.count))] }
        func maybe(_ items: [String]) -> String? { generator.next() % 3 == 0 ? nil : pick(items) }
        let src = Endpoint(ip: "10.0.0.\(generator.next() % 9)", port: 1000, pod: maybe(names), namespace: maybe(["shop", "default"]),
                           service: maybe(names))
        let dst = Endpoint(ip: "10.0.1.\(generator.next() % 9)", port: 80, pod: maybe(names), namespace: maybe(["shop", "default"]),
                           service: maybe(names), dns: maybe(["example.com"]))
        return Call(id: "r-\(generator.next() % 1000)", ts: Fixtures.baseMilliseconds + Int64(generator.next() % 120_000),
                    node: pick(["node-a", "node-b"]), captureSource: pick(CaptureSource.allCases), proto: pick(protocols),
                    src: src, dst: dst, method: pick(["GET", "POST", "A", ""]), path: pick(paths),
                    status: pick([0, 200, 404, 500, 503]), latencyMs: Double(generator.next() % 3000) / 7)
    }
}

/// Random conjunctions of pushable atoms and residual atoms (including disjunctions, negations, errors and
/// predicates written backwards), so the split is exercised in every shape.
enum ExpressionGenerator {
    static let atoms = [
        #"path == "/api/v1/checkout""#, #"request.path == "/healthz""#, #"path.startsWith("/api/")"#, #"path startsWith "/API""#,
        "status_code == 503", "response.status >= 500", "404 > status_code", "status_code in [200, 404]", "status_code <= 200",
        #"method == "GET""#, #"method in ["POST", "A"]"#, "http", "!http", "dns", "grpc", "tls", "!tls", "tcp", "udp", "http2",
        "websocket", "redis", #"protocol == "grpc""#, #"proto in ["dns", "tls"]"#, #"timestamp > now() - duration("30s")"#,
        #"timestamp <= timestamp("2023-11-14T22:14:00Z")"#, #"src.name == "frontend""#, #"dst.name == "example.com""#,
        #"src.pod == "cart""#, #"dst.svc == "checkout""#, #"src.ns == "shop""#, #"dst.namespace == "default""#,
        #"node_id == "node-b""#, #"capture_source == "ebpf_tls""#,
        // Residual shapes.
        #"path.contains("v1")"#, "status_code == 503 || dns", "!(status_code == 200)", "elapsedTime > 100",
        #"src.ip.endsWith("3")"#, "status_code / 0 == 1", "status_code / 0 == 1 || http", "status_code == 500.0",
        #"path matches r"^/api/v\d""#, #"dst.dns == "example.com""#, #"method != "GET""#, #"src.name != "cart""#,
        "http ? status_code >= 500 : true", "size(path) > 8",
    ]

    static func conjunction(_ generator: inout SplitMix) -> String {
        let count = 1 + Int(generator.next() % 4)
        return (0..<count).map { _ in
            let atom = atoms[Int(generator.next() % UInt64(atoms.count))]
            return generator.next() % 5 == 0 ? "(\(atom))" : atom
        }.joined(separator: generator.next() % 2 == 0 ? " && " : " and ")
    }
}
