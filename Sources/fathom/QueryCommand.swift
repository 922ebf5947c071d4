import ArgumentParser
import FathomKFL
import FathomModel
import FathomStore
import Foundation

/// Runs a KFL filter over a calls database: the agent's real-time one by default, or any other (a snapshot's).
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Print the calls of a calls database that match a KFL filter, newest first.",
        discussion: """
            Examples:
              fathom query 'response.status == 503'
              fathom query --format table 'http && timestamp > now() - duration("5m")'
              fathom query --db snapshot/calls.db 'dst.svc == "frontend" and request.path startsWith "/api/"'
            An empty filter matches every call. A page ends with the cursor of the next one on stderr.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, table
    }

    @Argument(help: "KFL filter expression (KFL2/CEL or KFL1).") var expression = ""
    @Option(help: "Data directory of the agent whose real-time database to read.") var dataDir = "/var/lib/fathom"
    @Option(help: "Calls database to read (default: <data-dir>/\(CallsDatabase.realTimeFileName)).") var db: String?
    @Option(help: "Most calls to print.") var limit = 100
    @Option(help: "jsonl (one call per line) or table.") var format = Format.jsonl
    @Option(help: "Continue after a previous page (the cursor it printed).") var cursor: Int64?

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let filter: KFLFilter
        do {
            filter = try KFL.compile(expression)
        } catch {
            FileHandle.standardError.write(Self.explain(error, in: expression))
            throw ExitCode(2)
        }
        let path = db ?? dataDir + "/" + CallsDatabase.realTimeFileName
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no calls database at \(path)" + (db == nil ? " (is --data-dir the agent's?)" : ""))
        }
        let page: CallPage
        do {
            page = try CallsDatabase(path: path).calls(matching: filter, limit: limit, cursor: cursor)
        } catch {
            FileHandle.standardError.write("fathom query: \(error)\n")
            throw ExitCode(1)
        }
        let out = FileHandle.standardOutput
        switch format {
        case .jsonl:
            for call in page.calls { out.write(Self.jsonLine(call)) }
        case .table:
            out.write(Self.table(page.calls))
        }
        var summary = "\(page.calls.count) call\(page.calls.count == 1 ? "" : "s")"
        summary += page.totalIsExact ? " of \(page.total)" : " of at least \(page.total)"
        if let next = page.nextCursor { summary += "; next page: --cursor \(next)" }
        FileHandle.standardError.write(summary + "\n")
    }

    /// The message with its position, the expression with a caret under the offending place, and the suggestions.
    static func explain(_ error: KFLError, in expression: String) -> String {
        var text = "fathom query: \(error)\n"
        let lines = expression.split(separator: "\n", omittingEmptySubsequences: false)
        if error.position.line <= lines.count {
            text += "  " + lines[error.position.line - 1] + "\n"
            text += "  " + String(repeating: " ", count: error.position.column - 1) + "^\n"
        }
        if !error.suggestions.isEmpty { text += "did you mean: " + error.suggestions.joined(separator: ", ") + "\n" }
        return text
    }

    /// `{"id":…,"ts":…,"proto":…,"src":{"ip":…,"port":…,"name":…},"dst":{…},"method":…,"path":…,"status":…,"latency_ms":…}`
    static func jsonLine(_ call: Call) -> String {
        func endpoint(_ end: Endpoint) -> String {
            "{\"ip\":\(jsonString(end.ip)),\"port\":\(end.port),\"name\":\(jsonString(end.name))}"
        }
        let latency = call.latencyMs.isFinite ? "\(call.latencyMs)" : "null"
        return "{\"id\":\(jsonString(call.id)),\"ts\":\(call.ts),\"proto\":\(jsonString(call.proto)),\"src\":\(endpoint(call.src))"
            + ",\"dst\":\(endpoint(call.dst)),\"method\":\(jsonString(call.method)),\"path\":\(jsonString(call.path))"
            + ",\"status\":\(call.status),\"latency_ms\":\(latency)}\n"
    }

    static func table(_ calls: [Call]) -> String {
        let header = ["TIME (UTC)", "PROTO", "SOURCE", "DESTINATION", "METHOD", "PATH", "STATUS", "LATENCY"]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withFullTime, .withFractionalSeconds]
        let rows = calls.map { call in
            [formatter.string(from: Date(timeIntervalSince1970: Double(call.ts) / 1000)), call.proto, "\(call.src.name):\(call.src.port)", "\(call.dst.name):\(call.dst.port)", call.method,
             shortened(call.path, to: 60), String(call.status), String(format: "%.1f ms", call.latencyMs)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }

    private static func shortened(_ text: String, to length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }
}
