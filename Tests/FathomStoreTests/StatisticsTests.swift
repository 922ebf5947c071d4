import FathomKFL
import FathomModel
import Foundation
import XCTest

@testable import FathomStore

/// Grouped statistics from the columns equal the same totals computed from the decoded calls.
final class StatisticsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func call(_ n: Int) -> Call {
        let mix = (n &* 2_654_435_761) & 0xFFFF
        var call = Call(
            id: "n-\(n)", ts: 1_700_000_000_000 + Int64(n), node: "n", captureSource: .ebpf,
            proto: ["http", "grpc", "dns"][mix % 3],
            src: Endpoint(ip: "10.0.0.1", port: 40000),
            dst: Endpoint(ip: "10.0.0.\(mix % 4)", port: 80, pod: mix % 5 == 0 ? "pod-\(mix % 2)" : nil,
                          service: mix % 3 == 0 ? "svc-\(mix % 2)" : nil),
            method: mix % 2 == 0 ? "GET" : "POST", path: "/p\(mix % 3)", status: [200, 503, 0, 2][mix % 4],
            latencyMs: Double(mix % 97), request: Message(headers: [Header(name: "X-Team", value: mix % 2 == 0 ? "a" : "b")]))
        call.flags.noResponse = mix % 7 == 0
        return call
    }

    private func expected(_ calls: [Call], _ key: (Call) -> String) -> [String: (count: Int, errors: Int, latencies: [Double], first: Int64, last: Int64)] {
        var groups: [String: (count: Int, errors: Int, latencies: [Double], first: Int64, last: Int64)] = [:]
        for call in calls {
            var g = groups[key(call)] ?? (0, 0, [], .max, .min)
            g.count += 1
            if call.flags.noResponse || (call.proto.hasPrefix("http") ? call.status >= 500 : call.status != 0) { g.errors += 1 }
            if !call.flags.noResponse { g.latencies.append(call.latencyMs) }
            g.first = min(g.first, call.ts)
            g.last = max(g.last, call.ts)
            groups[key(call)] = g
        }
        return groups
    }

    /// Selection gives exactly the nearest-rank percentiles sorting gives, duplicates and odd sizes included.
    func testPercentilesBySelectionEqualThoseOfTheSortedLatencies() {
        var generator = SystemRandomNumberGenerator()
        for size in [1, 2, 3, 10, 101, 1000, 4096] {
            for distinct in [1, 3, 1000] {
                var totals = CallsDatabase.GroupTotals()
                totals.latencies = (0..<size).map { _ in Double(Int.random(in: 0..<distinct, using: &generator)) / 4 }
                let sorted = totals.latencies.sorted()
                let ps = [0.0, 0.5, 0.9, 0.99, 1.0]
                let expected = ps.map { sorted[max(0, Int(($0 * Double(size)).rounded(.up)) - 1)] }
                XCTAssertEqual(totals.latencyPercentiles(ps), expected, "size \(size), \(distinct) distinct values")
            }
        }
        XCTAssertEqual(CallsDatabase.GroupTotals().latencyPercentiles([0.5]), [0])
    }

    func testGroupsMatchTheDecodedCallsForPushedAndResidualFilters() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        let calls = (0..<2000).map(call)
        try db.insert(calls)
        let groupings: [(CallsDatabase.Grouping, (Call) -> String)] = [
            (.service, { $0.dst.service ?? $0.dst.name }), (.endpoint, { "\($0.method) \($0.dst.name)\($0.path)" }),
            (.status, { String($0.status) }), (.proto, { $0.proto }), (.all, { _ in "all" }),
        ]
        let filters = ["", #"status_code == 503"#, #"request.headers["x-team"] == "a" && method == "GET""#]
        for source in filters {
            let filter = try KFL.compile(source)
            let selected = calls.filter { filter.matches($0) && $0.ts >= calls[100].ts && $0.ts < calls[1900].ts }
            XCTAssertFalse(selected.isEmpty, source)
            for (grouping, key) in groupings {
                let got = try db.statistics(matching: filter, grouping: grouping, start: calls[100].ts, end: calls[1900].ts)
                let want = expected(selected, key)
                XCTAssertEqual(Set(got.keys), Set(want.keys), "\(source) \(grouping)")
                for (name, totals) in got {
                    let w = try XCTUnwrap(want[name])
                    XCTAssertEqual(totals.count, w.count, "\(source) \(grouping) \(name)")
                    XCTAssertEqual(totals.errors, w.errors, "\(source) \(grouping) \(name)")
                    XCTAssertEqual(totals.latencies.sorted(), w.latencies.sorted(), "\(source) \(grouping) \(name)")
                    XCTAssertEqual(totals.firstMs, w.first)
                    XCTAssertEqual(totals.lastMs, w.last)
                }
            }
        }
    }
}
