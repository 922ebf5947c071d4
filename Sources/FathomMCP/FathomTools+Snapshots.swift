import Foundation
import MCP

/// The snapshot tools: isolate a window of the recording, dissect it later, query it with `db`, export it as pcapng.
extension FathomTools {
    static let create = Tool.Annotations(readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)
    static let destroy = Tool.Annotations(readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false)

    private static let snapshotName: Value = .object([
        "type": "string", "description": "Letters, digits, `.`, `_`, `-`; at most 64 bytes.",
    ])
    private static let waitSeconds: Value = .object([
        "type": "integer", "minimum": 0, "maximum": 55, "default": 0,
        "description": "Wait up to this long for completion before answering (0: answer at once with the status).",
    ])
    private static let manifestSchema: Value = object([
        "name": .object(["type": "string"]),
        "status": .object(["type": "string", "enum": ["in_progress", "completed", "failed"]]),
        "reason": .object(["type": ["string", "null"]]),
        "start_ms": .object(["type": "integer"]), "end_ms": .object(["type": "integer"]),
        "bytes": .object(["type": "integer"]), "packets": .object(["type": "integer"]),
        "nodes": .object(["type": "array", "items": .object(["type": "string"])]),
    ], required: ["name", "status", "bytes", "packets", "nodes"]).mergingAdditional()
    private static let dissectionSchema: Value = object([
        "snapshot_name": .object(["type": "string"]), "dissection_name": .object(["type": "string"]),
        "db": .object(["type": "string", "description": "The `db` argument of list_api_calls that queries it."]),
        "state": .object(["type": "string", "enum": ["running", "completed", "stopped", "failed"]]),
        "bytes_done": .object(["type": "integer"]), "bytes_total": .object(["type": "integer"]),
        "packets_done": .object(["type": "integer"]), "packets_total": .object(["type": "integer"]),
        "calls_found": .object(["type": "integer"]),
    ], required: ["snapshot_name", "dissection_name", "db", "state", "calls_found"]).mergingAdditional()
    private static let dissectionArguments: [String: Value] = [
        "snapshot_name": snapshotName, "dissection_name": snapshotName,
    ]

    static let snapshotDefinitions: [Tool] = [
        Tool(
            name: "create_snapshot",
            description: "Isolates a window of the raw recording into a named snapshot that retention never deletes: `duration` (the last `1h`, `30m`, …) or `start`/`end` (ms). Starts in the background; poll get_snapshot or pass wait_seconds. Then start_snapshot_dissection.",
            inputSchema: object(window.merging([
                "name": snapshotName,
                "duration": .object(["type": "string", "description": "The last so long, e.g. `1h`, `15m`, `90s`."]),
                "wait_seconds": waitSeconds,
            ]) { a, _ in a }, required: ["name"]), annotations: create, outputSchema: manifestSchema),
        Tool(
            name: "get_snapshot",
            description: "One snapshot: status (in_progress, completed, failed with the reason), window, bytes, packets, nodes.",
            inputSchema: object(["name": snapshotName], required: ["name"]), annotations: readOnly,
            outputSchema: manifestSchema),
        Tool(
            name: "list_snapshots", description: "Every snapshot with its status and size, and the snapshot disk budget.",
            inputSchema: object([:]), annotations: readOnly,
            outputSchema: object([
                "snapshots": .object(["type": "array"]), "budget_bytes": .object(["type": "integer"]),
                "used_bytes": .object(["type": "integer"]),
            ], required: ["snapshots", "budget_bytes", "used_bytes"])),
        Tool(
            name: "delete_snapshot", description: "Deletes a snapshot, its dissections and their calls.",
            inputSchema: object(["name": snapshotName], required: ["name"]), annotations: destroy,
            outputSchema: object(["deleted": .object(["type": "string"])], required: ["deleted"])),
        Tool(
            name: "export_snapshot_pcap",
            description: "A URL from which a completed snapshot downloads as pcapng (Wireshark, tshark), each packet commented with its process/cgroup/container context. Narrow by time (start/end ms), by a BPF filter (tcpdump syntax) or by the connections of the calls a KFL filter selects in a dissection of the snapshot. Returns the URL, never the bytes.",
            inputSchema: object(window.merging([
                "name": snapshotName,
                "bpf": .object(["type": "string", "description": "libpcap filter, e.g. `tcp port 8080`."]),
                "kfl": kfl,
                "dissection": .object(["type": "string", "description": "Dissection whose calls `kfl` selects (default: the latest completed)."]),
            ]) { a, _ in a }, required: ["name"]), annotations: readOnly,
            outputSchema: object([
                "url": .object(["type": "string"]), "curl": .object(["type": "string"]),
                "snapshot": openObject,
            ], required: ["url", "curl", "snapshot"])),
        Tool(
            name: "start_snapshot_dissection",
            description: "Dissects a completed snapshot into its own calls database, queried with list_api_calls db=SNAPSHOT/DISSECTION. Runs in the background; poll get_snapshot_dissection_status or pass wait_seconds.",
            inputSchema: object(dissectionArguments.merging(["wait_seconds": waitSeconds]) { a, _ in a },
                                required: ["snapshot_name", "dissection_name"]),
            annotations: create, outputSchema: dissectionSchema),
        Tool(
            name: "get_snapshot_dissection_status",
            description: "A delayed dissection's state, progress (bytes and packets done of total) and calls found.",
            inputSchema: object(dissectionArguments, required: ["snapshot_name", "dissection_name"]),
            annotations: readOnly, outputSchema: dissectionSchema),
        Tool(
            name: "list_snapshot_dissections", description: "The delayed dissections of one snapshot, or of all.",
            inputSchema: object(["snapshot_name": snapshotName]), annotations: readOnly,
            outputSchema: object(["dissections": .object(["type": "array"])], required: ["dissections"])),
        Tool(
            name: "get_l7_data_boundaries",
            description: "Which dissected-call databases exist (the real-time one, db \"\", and each snapshot dissection) with the time range and count of their calls.",
            inputSchema: object([:]), annotations: readOnly,
            outputSchema: object(["databases": .object(["type": "array"])], required: ["databases"])),
    ]

    static let snapshotArguments: [String: Set<String>] = [
        "create_snapshot": ["name", "duration", "start", "end", "wait_seconds"],
        "get_snapshot": ["name"],
        "delete_snapshot": ["name"],
        "export_snapshot_pcap": ["name", "start", "end", "bpf", "kfl", "dissection"],
        "start_snapshot_dissection": ["snapshot_name", "dissection_name", "wait_seconds"],
        "get_snapshot_dissection_status": ["snapshot_name", "dissection_name"],
        "list_snapshot_dissections": ["snapshot_name"],
    ]

    /// Answers a snapshot tool; nil for any other name.
    func callSnapshotTool(_ name: String, _ args: Arguments, progress: Progress?) async throws -> CallTool.Result? {
        switch name {
        case "create_snapshot":
            let snapshot = try Self.required(args.string("name"), "name")
            var body: [String: Value] = ["name": .string(snapshot)]
            if let duration = try args.string("duration") { body["duration"] = .string(duration) }
            if let start = try args.int("start", in: 0...Int.max) { body["start"] = .int(start) }
            if let end = try args.int("end", in: 0...Int.max) { body["end"] = .int(end) }
            let wait = try args.int("wait_seconds", in: 0...55) ?? 0
            _ = try decoded(try await client.post("/mcp/snapshots", json: body))
            let report = Self.reporter(progress) { o in
                (Self.number(o["bytes"]) ?? 0, Self.number(o["estimated_bytes"]), "bytes copied")
            }
            return try await poll(wait, "/mcp/snapshots/\(snapshot)", [:], progress: report) {
                $0["status"]?.stringValue != "in_progress"
            }
        case "get_snapshot":
            return try await json(client.get("/mcp/snapshots/\(try Self.required(args.string("name"), "name"))"))
        case "list_snapshots":
            return try await json(client.get("/mcp/snapshots"))
        case "delete_snapshot":
            return try await json(client.delete("/mcp/snapshots/\(try Self.required(args.string("name"), "name"))"))
        case "export_snapshot_pcap":
            return try await export(args)
        case "start_snapshot_dissection":
            let (snapshot, dissection) = try Self.dissection(args)
            let wait = try args.int("wait_seconds", in: 0...55) ?? 0
            _ = try decoded(try await client.post(
                "/delayed_dissection.DelayedDissection/Start",
                json: ["snapshot_name": snapshot, "dissection_name": dissection]))
            let report = Self.reporter(progress) { o in
                (Self.number(o["bytes_done"]) ?? 0, Self.number(o["bytes_total"]), "\(o["calls_found"]?.intValue ?? 0) calls found")
            }
            return try await poll(wait, "/delayed_dissection.DelayedDissection/GetStatus",
                                  ["snapshot_name": snapshot, "dissection_name": dissection], progress: report) {
                $0["state"]?.stringValue != "running"
            }
        case "get_snapshot_dissection_status":
            let (snapshot, dissection) = try Self.dissection(args)
            return try await json(client.get(
                "/delayed_dissection.DelayedDissection/GetStatus",
                ["snapshot_name": snapshot, "dissection_name": dissection]))
        case "list_snapshot_dissections":
            let snapshot = try args.string("snapshot_name")
            return try await json(client.get(
                "/delayed_dissection.DelayedDissection/List", snapshot.map { ["snapshot_name": $0] } ?? [:]))
        case "get_l7_data_boundaries":
            return try await json(client.get("/mcp/l7-data-boundaries"))
        default:
            return nil
        }
    }

    /// GETs `path` until `done` holds or `seconds` pass (once when 0), reporting each status to `progress`, and
    /// answers with the last status.
    private func poll(
        _ seconds: Int, _ path: String, _ query: [String: String],
        progress: (@Sendable ([String: Value]) async -> Void)? = nil, done: ([String: Value]) -> Bool
    ) async throws -> CallTool.Result {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let answer = try await client.get(path, query)
            guard case .object(let o) = try decoded(answer) else { return try json(answer) }
            await progress?(o)
            if !done(o), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
                continue
            }
            return try json(answer)
        }
    }

    /// Checks the snapshot is completed, then answers with the URL to fetch (the agent checks filters on fetch).
    private func export(_ args: Arguments) async throws -> CallTool.Result {
        let snapshot = try Self.required(args.string("name"), "name")
        let manifest = try decoded(try await client.get("/mcp/snapshots/\(snapshot)"))
        guard case .object(let o) = manifest, o["status"]?.stringValue == "completed" else {
            throw BadArgument("snapshot `\(snapshot)` is not completed yet (see get_snapshot); only a completed snapshot exports")
        }
        var query = try args.window().compactMapValues { $0 }
        for key in ["bpf", "kfl", "dissection"] { if let value = try args.string(key), !value.isEmpty { query[key] = value } }
        let url = try client.url("/mcp/snapshots/\(snapshot)/pcap", query).absoluteString
        let auth = client.token == nil ? "" : " -H 'Authorization: Bearer $FATHOM_TOKEN'"
        let value: Value = .object([
            "url": .string(url), "curl": .string("curl -sfo \(snapshot).pcapng\(auth) '\(url)'"), "snapshot": manifest,
        ])
        let text = "Download with: curl -sfo \(snapshot).pcapng\(auth) '\(url)'"
        return try CallTool.Result(content: [.text(text)], structuredContent: value)
    }

    /// Turns a status answer into a progress report, when the client asked for progress.
    private static func reporter(
        _ progress: Progress?, _ extract: @escaping @Sendable ([String: Value]) -> (Double, Double?, String)
    ) -> (@Sendable ([String: Value]) async -> Void)? {
        guard let progress else { return nil }
        return { status in
            let (done, total, message) = extract(status)
            await progress(done, total, message)
        }
    }

    private static func number(_ value: Value?) -> Double? {
        switch value {
        case .int(let i)?: Double(i)
        case .double(let d)?: d
        default: nil
        }
    }

    private static func required(_ value: String?, _ name: String) throws -> String {
        guard let value, !value.isEmpty else { throw BadArgument("`\(name)` is required") }
        return value
    }

    private static func dissection(_ args: Arguments) throws -> (String, String) {
        (try required(args.string("snapshot_name"), "snapshot_name"),
         try required(args.string("dissection_name"), "dissection_name"))
    }
}
