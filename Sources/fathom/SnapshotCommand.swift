import ArgumentParser
import FathomMCP
import Foundation

/// `fathom snapshot …`: snapshots, their dissection and export, through a running agent's HTTP API.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Isolate windows of the recording into snapshots, dissect them, export them as pcapng (through the agent's API).",
        subcommands: [Create.self, List.self, Get.self, Delete.self, Export.self, Dissect.self])

    /// Where the agent is, as for `fathom mcp`.
    struct Connection: ParsableArguments {
        @Option(help: "The agent's HTTP API.") var url = "http://127.0.0.1:8421"
        @Option(help: "Bearer token, when the agent requires one.") var token: String?
        @Option(help: "File holding the bearer token.") var tokenFile: String?

        func client() throws -> AgentClient {
            guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
                throw ValidationError("--url must be an http(s) URL, e.g. http://127.0.0.1:8421")
            }
            let bearer = try token ?? tokenFile.map {
                try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return AgentClient(base: base, token: bearer)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a snapshot of the last --duration, or of --start…--end (ms).")
        @OptionGroup var connection: Connection
        @Argument(help: "Snapshot name.") var name: String
        @Option(help: "The last so long: 1h, 30m, 90s.") var duration: String?
        @Option(help: "Window start, ms since the epoch.") var start: Int64?
        @Option(help: "Window end, ms since the epoch.") var end: Int64?
        @Flag(help: "Wait until the snapshot is completed or failed.") var wait = false

        func run() async throws {
            let client = try connection.client()
            var body: [String: AnyJSON] = ["name": .string(name)]
            if let duration { body["duration"] = .string(duration) }
            if let start { body["start"] = .integer(start) }
            if let end { body["end"] = .integer(end) }
            var answer = try checked(await client.post("/mcp/snapshots", json: body))
            while wait, try status(answer, "status") == "in_progress" {
                try await Task.sleep(for: .milliseconds(250))
                answer = try checked(await client.get("/mcp/snapshots/\(name)"))
            }
            print(String(decoding: answer.body, as: UTF8.self))
            if try status(answer, "status") == "failed" { throw ExitCode.failure }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List snapshots (JSON).")
        @OptionGroup var connection: Connection
        func run() async throws {
            print(String(decoding: try checked(await connection.client().get("/mcp/snapshots")).body, as: UTF8.self))
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one snapshot (JSON).")
        @OptionGroup var connection: Connection
        @Argument(help: "Snapshot name.") var name: String
        func run() async throws {
            print(String(decoding: try checked(await connection.client().get("/mcp/snapshots/\(name)")).body, as: UTF8.self))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a snapshot and its dissections.")
        @OptionGroup var connection: Connection
        @Argument(help: "Snapshot name.") var name: String
        func run() async throws {
            print(String(decoding: try checked(await connection.client().delete("/mcp/snapshots/\(name)")).body, as: UTF8.self))
        }
    }

    struct Dissect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a delayed dissection of a snapshot (query it with db=SNAPSHOT/DISSECTION).")
        @OptionGroup var connection: Connection
        @Argument(help: "Snapshot name.") var snapshot: String
        @Argument(help: "Dissection name.") var dissection: String
        @Flag(help: "Wait until the dissection ends.") var wait = false

        func run() async throws {
            let client = try connection.client()
            let names = ["snapshot_name": snapshot, "dissection_name": dissection]
            var answer = try checked(await client.post("/delayed_dissection.DelayedDissection/Start", json: names))
            while wait, try status(answer, "state") == "running" {
                try await Task.sleep(for: .milliseconds(250))
                answer = try checked(await client.get("/delayed_dissection.DelayedDissection/GetStatus", names))
            }
            print(String(decoding: answer.body, as: UTF8.self))
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a snapshot as pcapng, optionally narrowed.")
        @OptionGroup var connection: Connection
        @Argument(help: "Snapshot name.") var name: String
        @Option(name: .shortAndLong, help: "Output file.") var output: String
        @Option(help: "Only packets from this time on, ms since the epoch.") var start: Int64?
        @Option(help: "Only packets up to this time, ms since the epoch.") var end: Int64?
        @Option(help: "libpcap (tcpdump) filter, e.g. 'tcp port 8080'.") var bpf: String?
        @Option(help: "Only the connections of the calls this KFL filter selects in a dissection of the snapshot.") var kfl: String?
        @Option(help: "The dissection --kfl looks in (default: the latest completed).") var dissection: String?

        func run() async throws {
            let client = try connection.client()
            var query: [String: String] = [:]
            if let start { query["start"] = String(start) }
            if let end { query["end"] = String(end) }
            if let bpf { query["bpf"] = bpf }
            if let kfl { query["kfl"] = kfl }
            if let dissection { query["dissection"] = dissection }
            let size = try await client.download("/mcp/snapshots/\(name)/pcap", query, toFile: output)
            FileHandle.standardError.write("wrote \(output) (\(size) bytes)\n")
        }
    }
}

/// A JSON value for request bodies.
enum AnyJSON: Encodable {
    case string(String)
    case integer(Int64)

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .integer(let i): try c.encode(i)
        }
    }
}

/// The answer when it is a success, else its error message as the command's failure.
private func checked(_ answer: AgentClient.Answer) throws -> AgentClient.Answer {
    guard (200..<300).contains(answer.status) else {
        throw CommandFailure("the agent answered HTTP \(answer.status): \(String(decoding: answer.body, as: UTF8.self))")
    }
    return answer
}

private func status(_ answer: AgentClient.Answer, _ key: String) throws -> String? {
    (try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])?[key] as? String
}
