import FathomKFL
import FathomModel
import Foundation
import XCTest

@testable import FathomStore

final class CallsDatabaseTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("calls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func call(_ n: Int, path: String = "/api/v1/items", status: Int = 200, dst: String = "frontend") -> Call {
        Call(
            id: "node-\(n)", ts: 1_700_000_000_000 + Int64(n), node: "node", captureSource: .ebpf, proto: "http",
            src: Endpoint(ip: "10.0.0.1", port: 40000 + n, pod: "client-\(n % 3)"),
            dst: Endpoint(ip: "10.0.0.2", port: 80, service: dst), method: n % 2 == 0 ? "GET" : "POST", path: path,
            status: status, latencyMs: Double(n), request: Message(headers: [Header(name: "X-N", value: "\(n)")]))
    }

    func testRoundTripAndLookupById() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        let calls = (0..<10).map { call($0) }
        try db.insert(calls)
        XCTAssertEqual(try db.call(id: "node-7"), calls[7])
        XCTAssertNil(try db.call(id: "node-70"))
        let bounds = try db.boundaries()
        XCTAssertEqual(bounds.count, 10)
        XCTAssertEqual(bounds.oldest, calls[0].ts)
        XCTAssertEqual(bounds.newest, calls[9].ts)
    }

    func testPredicatesResidualAndPagesNewestFirst() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert((0..<50).map { call($0, status: $0 % 5 == 0 ? 503 : 200) })
        var query = CallQuery(
            predicates: [StorePredicate(.status, .equal, .integer(503))],
            residual: { $0.method == "GET" }, limit: 2)
        var seen: [String] = []
        for _ in 0..<10 {
            let page = try db.calls(query)
            seen += page.calls.map(\.id)
            guard let next = page.nextCursor else { break }
            XCTAssertTrue(page.truncated)
            query.cursor = next
        }
        // status 503 and GET: n multiple of 10, newest first.
        XCTAssertEqual(seen, ["node-40", "node-30", "node-20", "node-10", "node-0"])
    }

    /// `total` is exact within the count budget and a lower bound past it, for pushed and residual filters alike.
    func testCountBudgetBoundsTheTotal() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert((0..<50).map { call($0, status: $0 % 5 == 0 ? 503 : 200) })
        for expression in ["status_code == 503", #"status_code == 503 && path.contains("items")"#] {
            let filter = try KFL.compile(expression)
            let bounded = try db.calls(matching: filter, limit: 2, countBudget: 4)
            XCTAssertEqual(bounded.calls.map(\.id), ["node-45", "node-40"], expression)
            XCTAssertTrue(bounded.truncated, expression)
            XCTAssertFalse(bounded.totalIsExact, expression)
            XCTAssertEqual(bounded.total, 4, expression)
            let counted = try db.calls(matching: filter, limit: 2, countBudget: 1000)
            XCTAssertEqual(counted.total, 10, expression)
            XCTAssertTrue(counted.totalIsExact, expression)
            let everything = try db.calls(matching: filter, limit: .max, countBudget: 0)
            XCTAssertEqual(everything.calls.count, 10, expression)
            XCTAssertFalse(everything.truncated, expression)
            XCTAssertNil(everything.nextCursor, expression)
            XCTAssertEqual(everything.total, 10, expression)
            XCTAssertTrue(everything.totalIsExact, expression)
        }
    }

    func testPrefixIsCaseSensitiveAndTakesGlobCharactersLiterally() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert([
            call(1, path: "/api/v1/checkout"), call(2, path: "/API/v1/checkout"), call(3, path: "/api*/x"),
            call(4, path: "/apiX/y"), call(5, path: "/api/v2"),
        ])
        func ids(_ prefix: String) throws -> [String] {
            try db.calls(CallQuery(predicates: [StorePredicate(.path, .hasPrefix, .text(prefix))])).calls.map(\.id).sorted()
        }
        XCTAssertEqual(try ids("/api/v1"), ["node-1"])
        XCTAssertEqual(try ids("/api*"), ["node-3"])
        XCTAssertEqual(try ids("/api"), ["node-1", "node-3", "node-4", "node-5"])
        XCTAssertEqual(try ids("/a[pi"), [])
    }

    func testRetentionDeletesOlderCalls() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.insert((0..<10).map { call($0) })
        XCTAssertEqual(try db.deleteCalls(olderThan: 1_700_000_000_005), 5)
        XCTAssertEqual(try db.boundaries().count, 5)
    }

    func testCorruptFileIsAClearError() throws {
        let path = directory.appendingPathComponent("garbage.db").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try CallsDatabase(path: path)) { error in
            XCTAssertTrue("\(error)".contains("garbage.db"), "\(error)")
        }
    }
}
