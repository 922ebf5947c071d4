import FathomModel
import FathomStore
import Foundation
import Logging
import XCTest

@testable import FathomAgent

/// The calls writer gathers batches into one transaction for a while; what is queued is written in order, and a
/// stop writes everything at once.
final class CallsWriterTests: XCTestCase {
    private func calls(_ range: Range<Int>, at ms: Int64) -> [Call] {
        range.map { n in
            Call(id: "n-\(n)", ts: ms + Int64(n), node: "n", captureSource: .ebpf, proto: "http",
                 src: Endpoint(ip: "10.2.0.1", port: 40000), dst: Endpoint(ip: "10.2.0.2", port: 80), path: "/\(n)")
        }
    }

    /// Retention queued between two batches applies between them, and stopping does not wait out the gathering
    /// window (two minutes here).
    func testQueuedWorkIsWrittenInOrderAndStoppingWritesItAtOnce() throws {
        let directory = try TemporaryDirectory()
        let database = try CallsDatabase(path: directory.path + "/calls.db")
        let writer = CallsWriter(calls: database, gatherSeconds: 120, logger: Logger(label: "test"))
        writer.start()
        let old: Int64 = 1_763_715_000_000
        let recent = old + 60_000
        let started = Date()
        writer.enqueue(calls: calls(0..<3, at: old), flows: [])
        writer.deleteOlder(thanMilliseconds: old + 30_000)
        writer.enqueue(calls: calls(3..<5, at: recent), flows: [])
        writer.finish()

        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "finish wrote at once")
        let stored = try database.calls(CallQuery(limit: 10)).calls.map(\.id).sorted()
        XCTAssertEqual(stored, ["n-3", "n-4"], "the first batch was stored, then deleted by the retention queued after it")
        XCTAssertEqual(writer.callsStored.load(ordering: .relaxed), 5)
    }

    /// A transaction's worth of calls is written without waiting for the window to close.
    func testAFullTransactionIsWrittenWithoutWaiting() throws {
        let directory = try TemporaryDirectory()
        let database = try CallsDatabase(path: directory.path + "/calls.db")
        let writer = CallsWriter(calls: database, gatherSeconds: 120, logger: Logger(label: "test"))
        writer.start()
        defer { writer.finish() }
        let count = CallsWriter.transactionCalls
        writer.enqueue(calls: calls(0..<count / 2, at: 1_763_715_000_000), flows: [])
        writer.enqueue(calls: calls(count / 2..<count, at: 1_763_715_000_000), flows: [])
        let deadline = Date().addingTimeInterval(60)
        while writer.callsStored.load(ordering: .relaxed) < count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(writer.callsStored.load(ordering: .relaxed), UInt64(count), "stored before the window closed")
        XCTAssertEqual(try database.calls(CallQuery(limit: 1)).calls.count, 1)
    }
}
