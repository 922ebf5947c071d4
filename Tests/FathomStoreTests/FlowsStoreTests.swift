import FathomKFL
import FathomModel
import Foundation
import XCTest

@testable import FathomStore

final class FlowsStoreTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flows-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func flow(_ n: Int, transport: String = "tcp", proto: String = "http", namespace: String? = "shop",
                      bytes: Int = 100, end: String = "fin") -> Flow {
        Flow(
            id: "n-run-c\(n)", node: "n", captureSource: .ebpf, transport: transport, proto: proto,
            src: Endpoint(ip: "10.0.0.\(n)", port: 40000 + n, pod: "client-\(n)", namespace: namespace),
            dst: Endpoint(ip: "10.0.1.1", port: 80, namespace: namespace, service: "checkout"),
            start: 1_700_000_000_000 + Int64(n) * 1000, end: 1_700_000_000_000 + Int64(n) * 1000 + 500, bytesSent: bytes,
            packetsSent: 3, bytesReceived: 2 * bytes, packetsReceived: 4, handshakeRttMs: Double(n) / 10, resets: n % 2,
            retransmissions: n, gapBytes: 0, endReason: end)
    }

    private func all(_ db: CallsDatabase, _ kfl: String = "", start: Int64? = nil, end: Int64? = nil) throws -> [Flow] {
        var flows: [Flow] = []
        try db.forEachFlow(matching: KFL.compile(kfl), start: start, end: end) { _, flow in
            flows.append(flow)
            return true
        }
        return flows
    }

    func testFlowsRoundTripAndUpdatesReplaceTheRowByID() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        var open = flow(1, end: "")
        try db.insert([], flows: [open, flow(2)])
        XCTAssertEqual(try db.flow(id: "n-run-c1"), open)
        open.bytesReceived = 5000
        open.end += 10_000
        try db.upsert([open])
        open.endReason = "rst"
        try db.insert([], flows: [open])
        XCTAssertEqual(try db.flow(id: "n-run-c1"), open)
        XCTAssertEqual(try all(db).map(\.id), ["n-run-c2", "n-run-c1"], "one row per flow, newest first stored first")
        let bounds = try db.flowBoundaries()
        XCTAssertEqual(bounds.count, 2)
        XCTAssertEqual(bounds.oldest, open.start)
        XCTAssertEqual(bounds.newest, open.end)
    }

    func testAttributionBeyondTheColumnsSurvives() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        var attributed = flow(3)
        attributed.src.process = "curl"
        attributed.src.pid = 42
        attributed.dst.labels = ["app": "checkout"]
        try db.upsert([attributed])
        XCTAssertEqual(try db.flow(id: attributed.id), attributed)
    }

    func testKFLOverFlowsAndTimeWindows() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.upsert((1...6).map { flow($0) } + [flow(7, transport: "udp", proto: "dns", namespace: nil, bytes: 10_000)])
        XCTAssertEqual(try all(db, #"transport == "udp""#).map(\.id), ["n-run-c7"])
        XCTAssertEqual(try all(db, "udp").map(\.id), ["n-run-c7"])
        XCTAssertEqual(try all(db, #"protocol == "http" && resets > 0"#).map(\.id), ["n-run-c5", "n-run-c3", "n-run-c1"])
        XCTAssertEqual(try all(db, #"src.ip == "10.0.0.2" || src.port == 40004"#).map(\.id), ["n-run-c4", "n-run-c2"])
        XCTAssertEqual(try all(db, #"dst.name == "checkout" && "shop" in namespaces && bytes >= 300"#).count, 6)
        XCTAssertEqual(try all(db, "bytes >= 300 && handshake_rtt_ms > 0.45").map(\.id), ["n-run-c7", "n-run-c6", "n-run-c5"])
        XCTAssertEqual(try all(db, #"src.name == "client-2""#).map(\.id), ["n-run-c2"])
        // Flows overlapping [start, end): flow n spans n s to n s + 500 ms.
        let base: Int64 = 1_700_000_000_000
        XCTAssertEqual(try all(db, start: base + 2_400, end: base + 4_000).map(\.id), ["n-run-c3", "n-run-c2"])
        XCTAssertEqual(try db.deleteFlows(olderThan: base + 5_000), 4)
        XCTAssertEqual(try all(db).count, 3)
    }

    func testScanBudgetAndCursorResume() throws {
        let db = try CallsDatabase(path: directory.appendingPathComponent("calls.db").path)
        try db.upsert((1...10).map { flow($0) })
        var seen: [String] = []
        let first = try db.forEachFlow(matching: nil, scanBudget: 4) { _, flow in
            seen.append(flow.id)
            return true
        }
        XCTAssertFalse(first.complete)
        XCTAssertEqual(first.scanned, 4)
        let rest = try db.forEachFlow(matching: nil, cursor: first.lastSequence) { _, flow in
            seen.append(flow.id)
            return true
        }
        XCTAssertTrue(rest.complete)
        XCTAssertEqual(seen, (1...10).reversed().map { "n-run-c\($0)" })
    }
}
