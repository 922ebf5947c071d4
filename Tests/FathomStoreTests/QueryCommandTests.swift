import FathomModel
import Foundation
import XCTest

@testable import FathomStore

/// `fathom query` end to end: the built binary against a database this test fills through the store.
final class QueryCommandTests: XCTestCase {
    private var directory: URL!
    private var database: String { directory.appendingPathComponent(CallsDatabase.realTimeFileName).path }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("query-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let calls = (0..<10).map { n in
            Call(id: "node-\(n)", ts: 1_700_000_000_000 + Int64(n), node: "node", captureSource: .ebpf, proto: n % 2 == 0 ? "http" : "dns",
                 src: Endpoint(ip: "10.0.0.1", port: 40000 + n, pod: "frontend-\(n)"),
                 dst: Endpoint(ip: "10.0.0.2", port: 80, service: "checkout"), method: "GET", path: "/api/\"q\"/\(n)",
                 status: n % 3 == 0 ? 503 : 200, latencyMs: 1.5)
        }
        try CallsDatabase(path: database).insert(calls)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The `fathom` built beside this test bundle.
    private func fathom(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let binary = try XCTUnwrap(Bundle.main.executableURL).deletingLastPathComponent().appendingPathComponent("fathom")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("no fathom binary at \(binary.path): build it with `swift build`")
            return (-1, "", "")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }

    func testJSONLinesNewestFirstWithTheCompactFields() throws {
        let result = try fathom(["query", "--db", database, "response.status == 503 and http"])
        XCTAssertEqual(result.status, 0, result.err)
        let lines = result.out.split(separator: "\n")
        let objects = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objects.map { $0["id"] as? String }, ["node-6", "node-0"])
        let first = try XCTUnwrap(objects.first)
        XCTAssertEqual(Set(first.keys), ["id", "ts", "proto", "src", "dst", "method", "path", "status", "latency_ms"])
        XCTAssertEqual(first["path"] as? String, "/api/\"q\"/6")
        XCTAssertEqual(first["status"] as? Int, 503)
        XCTAssertEqual(first["latency_ms"] as? Double, 1.5)
        XCTAssertEqual((first["src"] as? [String: Any])?["name"] as? String, "frontend-6")
        XCTAssertEqual((first["dst"] as? [String: Any])?["name"] as? String, "checkout")
        XCTAssertEqual((first["src"] as? [String: Any])?["port"] as? Int, 40006)
        XCTAssertTrue(result.err.contains("2 calls of 2"), result.err)
    }

    func testPagesFollowTheCursorAndDataDirFindsTheDatabase() throws {
        var ids: [String] = []
        var arguments = ["query", "--data-dir", directory.path, "--limit", "3", ""]
        for _ in 0..<10 {
            let result = try fathom(arguments)
            XCTAssertEqual(result.status, 0, result.err)
            ids += result.out.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
            }
            guard let range = result.err.range(of: "--cursor ") else { break }
            let cursor = result.err[range.upperBound...].prefix { $0.isNumber }
            arguments = ["query", "--data-dir", directory.path, "--limit", "3", "--cursor", String(cursor), ""]
        }
        XCTAssertEqual(ids, (0..<10).reversed().map { "node-\($0)" })
    }

    func testTableHasAHeaderAndARowPerCall() throws {
        let result = try fathom(["query", "--db", database, "--format", "table", #"src.pod == "frontend-4""#])
        XCTAssertEqual(result.status, 0, result.err)
        let lines = result.out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, result.out)
        XCTAssertTrue(lines[0].hasPrefix("TIME (UTC)"), result.out)
        XCTAssertTrue(lines[1].hasPrefix("2023-11-14T22:13:20.004Z"), result.out)
        for cell in ["http", "frontend-4:40004", "checkout:80", "GET", "200", "1.5 ms"] {
            XCTAssertTrue(lines[1].contains(cell), "\(cell) in \(lines[1])")
        }
    }

    func testAFilterErrorShowsWhereAndWhatToWriteAndFails() throws {
        let result = try fathom(["query", "--db", database, "http && response.stauts == 503"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.out, "")
        XCTAssertEqual(result.err, """
            fathom query: 1:9: unknown field `response.stauts`; did you mean `response.status` (alias of `status_code`)?
              http && response.stauts == 503
                      ^
            did you mean: response.status, response.headers, response.statusText

            """)
    }

    func testAMissingDatabaseIsAnErrorNotAnEmptyResult() throws {
        let result = try fathom(["query", "--db", directory.appendingPathComponent("nope.db").path, "http"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.err.contains("no calls database at"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("nope.db").path))
    }
}
