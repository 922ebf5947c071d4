import FathomKFL
import FathomModel
import Foundation
import GRDB
import XCTest

@testable import FathomStore

/// Statistics answered from per-minute rollups agree with the call-by-call answer: counts, errors and times exactly,
/// percentiles within the histogram's stated relative error; after deletions and after migrating an older database too.
final class RollupTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollups-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A reproducible generator (SplitMix64), so a failure can be replayed.
    private struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D4_9B47_D049_133B
            return z ^ (z >> 31)
        }
    }

    private static let origin: Int64 = 1_700_000_040_000  // a minute boundary
    private static let minute: Int64 = 60_000

    /// Calls spread over `minutes` minutes from `origin`, in time order, with latencies from several shapes (zeros,
    /// sub-microsecond, uniform, long-tailed) and every dimension statistics group or filter by varying.
    private func randomCalls(_ count: Int, minutes: Int64, seed: UInt64) -> [Call] {
        var random = SeededGenerator(state: seed)
        let stamps = (0..<count).map { _ in Self.origin + Int64.random(in: 0..<(minutes * Self.minute), using: &random) }.sorted()
        return stamps.enumerated().map { index, ts in
            let latency: Double =
                switch Int.random(in: 0..<10, using: &random) {
                case 0: 0
                case 1: Double.random(in: 0..<0.002, using: &random)
                case 2...5: Double.random(in: 0..<800, using: &random)
                default: exp(Double.random(in: -3..<9, using: &random))
                }
            let pod = Int.random(in: 0..<6, using: &random)
            var call = Call(
                id: "r-\(seed)-\(index)", ts: ts, node: "n", captureSource: .ebpf,
                proto: ["http", "http", "grpc", "dns"].randomElement(using: &random) ?? "http",
                src: Endpoint(ip: "10.0.0.1", port: 40000),
                dst: Endpoint(ip: "10.0.1.\(pod)", port: 80, pod: pod < 3 ? "pod-\(pod)" : nil,
                              service: pod % 2 == 0 ? "svc-\(pod / 2)" : nil),
                method: ["GET", "POST"].randomElement(using: &random) ?? "GET",
                path: "/p\(Int.random(in: 0..<4, using: &random))",
                status: [200, 200, 404, 503, 0, 2].randomElement(using: &random) ?? 200, latencyMs: latency,
                request: Message(headers: [Header(name: "X-Team", value: index % 2 == 0 ? "a" : "b")]))
            call.flags.noResponse = Int.random(in: 0..<9, using: &random) == 0
            return call
        }
    }

    /// Inserts in batches of varied sizes, so rollup rows are merged across batches and batches span minutes; one to
    /// three batches a transaction, as the live writer gathers them.
    private func store(_ calls: [Call], name: String = "calls.db") throws -> CallsDatabase {
        let db = try CallsDatabase(path: directory.appendingPathComponent(name).path)
        var offset = 0
        var size = 1
        var gathered: [(calls: [Call], flows: [Flow])] = []
        while offset < calls.count {
            gathered.append((Array(calls[offset..<min(offset + size, calls.count)]), []))
            offset += size
            size = size * 3 % 1009 + 1
            if gathered.count > size % 3 || offset >= calls.count {
                try db.insert(batches: gathered)
                gathered = []
            }
        }
        return db
    }

    private static let groupings: [CallsDatabase.Grouping] = [.service, .endpoint, .status, .proto, .all]

    /// Compares the rollup answer with the exact one; returns whether rollups answered (histogram percentiles).
    @discardableResult
    private func assertAgrees(
        _ db: CallsDatabase, kfl: String, grouping: CallsDatabase.Grouping, start: Int64?, end: Int64?,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> Bool {
        let filter = try KFL.compile(kfl)
        let context = "kfl `\(kfl)` \(grouping) [\(start.map { String($0 - Self.origin) } ?? "-"), \(end.map { String($0 - Self.origin) } ?? "-"))"
        let exact = try db.statistics(matching: filter, grouping: grouping, start: start, end: end, exact: true)
        let got = try db.statistics(matching: filter, grouping: grouping, start: start, end: end)
        XCTAssertTrue(exact.values.allSatisfy(\.percentilesAreExact), context, file: file, line: line)
        XCTAssertEqual(Set(got.keys), Set(exact.keys), context, file: file, line: line)
        let ps = [0.0, 0.5, 0.9, 0.99, 1.0]
        for (group, want) in exact {
            guard let totals = got[group] else { continue }
            XCTAssertEqual(totals.count, want.count, "\(context) \(group)", file: file, line: line)
            XCTAssertEqual(totals.errors, want.errors, "\(context) \(group)", file: file, line: line)
            XCTAssertEqual(totals.firstMs, want.firstMs, "\(context) \(group)", file: file, line: line)
            XCTAssertEqual(totals.lastMs, want.lastMs, "\(context) \(group)", file: file, line: line)
            for (approximate, true_) in zip(totals.latencyPercentiles(ps), want.latencyPercentiles(ps)) {
                let bound = true_ >= LatencyHistogram.minimumMs
                    ? true_ * LatencyHistogram.relativeError * (1 + 1e-9) : LatencyHistogram.minimumMs
                XCTAssertLessThanOrEqual(abs(approximate - true_), bound, "\(context) \(group): \(approximate) vs \(true_)",
                                         file: file, line: line)
            }
        }
        return got.values.contains { !$0.percentilesAreExact }
    }

    func testHistogramPercentilesAreWithinTheStatedErrorAndSurviveEncoding() throws {
        var random = SeededGenerator(state: 7)
        for size in [1, 2, 5, 100, 10_000] {
            var exact = CallsDatabase.GroupTotals()
            exact.latencies = (0..<size).map { _ in
                Bool.random(using: &random) ? exp(Double.random(in: -8..<12, using: &random)) : Double(Int.random(in: 0..<5, using: &random))
            }
            var histogram = LatencyHistogram()
            for latency in exact.latencies { histogram.add(latency) }
            var decoded = LatencyHistogram()
            try histogram.encoded().withUnsafeBytes { try decoded.merge(encoded: $0) }
            XCTAssertEqual(decoded, histogram)
            XCTAssertEqual(decoded.total, size)
            let ps = [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0]
            for (approximate, true_) in zip(decoded.percentiles(ps), exact.latencyPercentiles(ps)) {
                let bound = true_ >= LatencyHistogram.minimumMs ? true_ * LatencyHistogram.relativeError * (1 + 1e-9) : LatencyHistogram.minimumMs
                XCTAssertLessThanOrEqual(abs(approximate - true_), bound, "size \(size): \(approximate) vs \(true_)")
            }
        }
        XCTAssertEqual(LatencyHistogram().percentiles([0.5]), [0])
    }

    func testMalformedHistogramBlobsThrowInsteadOfCrashing() {
        var histogram = LatencyHistogram()
        for bytes: [UInt8] in [[0x80], [0x05], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], [0xFF, 0x7F, 0x01, 0x01]] {
            XCTAssertThrowsError(try bytes.withUnsafeBytes { try histogram.merge(encoded: $0) }, "\(bytes)")
        }
    }

    func testRollupsAgreeWithTheExactAnswerForGroupingsWindowsAndFilters() throws {
        let calls = randomCalls(12_000, minutes: 9, seed: 1)
        let db = try store(calls)
        let m = Self.minute
        let o = Self.origin
        // Unbounded, aligned, unaligned at either or both ends, one whole minute between edges, and within one minute.
        let windows: [(Int64?, Int64?)] = [
            (nil, nil), (o + 2 * m, o + 5 * m), (o + 2 * m + 17_123, nil), (nil, o + 6 * m + 1),
            (o + m - 1, o + 3 * m + 59_999), (o + 3 * m + 5, o + 3 * m + 50_000), (o + 4 * m - 30_000, o + 5 * m + 30_000),
        ]
        let rolledUpFilters = ["", "status_code == 503", #"protocol == "http" && path == "/p1""#, #"dst.name == "pod-1""#,
                               #"dst.service.name == "svc-0" && method in ["GET"]"#, #"path.startsWith("/p") && status_code >= 400"#]
        for kfl in rolledUpFilters {
            for grouping in Self.groupings {
                for (start, end) in windows {
                    let rolledUp = try assertAgrees(db, kfl: kfl, grouping: grouping, start: start, end: end)
                    // Rollups answer whenever the window holds a whole minute (and anything matches).
                    let wholeMinute = MinuteSpanProbe.holdsWholeMinute(start: start, end: end)
                    if !wholeMinute { XCTAssertFalse(rolledUp, "\(kfl) \(grouping) \(String(describing: start))") }
                    if wholeMinute && kfl.isEmpty { XCTAssertTrue(rolledUp, "\(grouping) \(String(describing: start))") }
                }
            }
        }
        // Filters on what rollups do not hold are answered call by call.
        for kfl in [#"request.headers["x-team"] == "a""#, "elapsed_time > 100", #"src.name == "10.0.0.1""#, "no_response == true"] {
            XCTAssertFalse(try assertAgrees(db, kfl: kfl, grouping: .status, start: nil, end: nil), kfl)
        }
    }

    func testDeletionKeepsRollupsConsistent() throws {
        let calls = randomCalls(6000, minutes: 6, seed: 2)
        let db = try store(calls)
        let m = Self.minute
        var left = calls
        // Unaligned (a minute is rebuilt), aligned (whole minutes go), then everything.
        for cut in [Self.origin + m + 12_345, Self.origin + 3 * m, Self.origin + 3 * m + 59_999, Self.origin + 7 * m] {
            XCTAssertEqual(try db.deleteCalls(olderThan: cut), left.filter { $0.ts < cut }.count)
            left.removeAll { $0.ts < cut }
            for grouping in Self.groupings {
                try assertAgrees(db, kfl: "", grouping: grouping, start: nil, end: nil)
                try assertAgrees(db, kfl: "status_code == 200", grouping: grouping, start: cut - 2 * m, end: cut + 2 * m)
            }
            let totals = try db.statistics(matching: try KFL.compile(""), grouping: .all)
            XCTAssertEqual(totals["all"]?.count ?? 0, left.count, "after deleting before +\(cut - Self.origin)")
            XCTAssertEqual(totals["all"]?.firstMs, left.first?.ts)
        }
        for table in CallsDatabase.RollupTable.allCases {
            let rows = try db.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM \(table.rawValue)") }
            XCTAssertEqual(rows, 0, "no rollup outlives its calls in \(table.rawValue)")
        }
    }

    func testMigrationBuildsRollupsForExistingCalls() throws {
        let calls = randomCalls(5000, minutes: 5, seed: 3)
        let path = directory.appendingPathComponent("old.db").path
        do {
            let db = try store(calls, name: "old.db")
            // A database from before rollups: no table, no migration recorded.
            try db.pool.write { db in
                for table in CallsDatabase.RollupTable.allCases { try db.execute(sql: "DROP TABLE \(table.rawValue)") }
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'calls-v3-rollups'")
            }
        }
        let reopened = try CallsDatabase(path: path)
        for grouping in Self.groupings {
            XCTAssertTrue(try assertAgrees(reopened, kfl: "", grouping: grouping, start: nil, end: nil))
        }
        let fresh = try store(calls, name: "fresh.db")
        for table in CallsDatabase.RollupTable.allCases {
            let sql = "SELECT * FROM \(table.rawValue) ORDER BY minute, proto, status, method, path, dst_name, dst_service"
            let migrated = try reopened.pool.read { try Row.fetchAll($0, sql: sql) }
            XCTAssertEqual(migrated, try fresh.pool.read { try Row.fetchAll($0, sql: sql) }, "\(table.rawValue): migration builds what inserts build")
            XCTAssertFalse(migrated.isEmpty)
        }
    }
}

/// The rule rollups follow, restated for the test: a whole minute lies within [start, end).
private enum MinuteSpanProbe {
    static func holdsWholeMinute(start: Int64?, end: Int64?) -> Bool {
        let minute: Int64 = 60_000
        guard let start, let end else { return true }
        let firstBoundary = (start + minute - 1) / minute * minute  // positive times only here
        return firstBoundary + minute <= end
    }
}
