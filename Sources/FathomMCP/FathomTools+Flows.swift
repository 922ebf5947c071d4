import Foundation
import MCP

/// list_l4_flows and get_l4_flow_summary: L4 connections, top talkers and their totals.
extension FathomTools {
    private static let flowWindow: [String: Value] = window.merging([
        "kfl": .object([
            "type": "string",
            "description": "KFL filter over flows: src.*/dst.* (ip, port, name, namespace, pod), protocol, transport, node_id, bytes, resets, handshake_rtt_ms, end_reason… (list_fields group flow); empty matches all.",
        ]),
        "ns": .object(["type": "string", "description": "Only flows with an end in this namespace (adds `\"NS\" in namespaces`)."]),
    ]) { a, _ in a }

    static let flowDefinitions: [Tool] = [
        Tool(
            name: "list_l4_flows",
            description: "L4 connections (TCP) and conversations (UDP): ends, bytes each way, packets, handshake RTT, resets, retransmissions, how they ended (open ones are updated every few seconds). aggregate=src|dst|pair|namespace|protocol|node gives top talkers by bytes instead. Page with next_cursor.",
            inputSchema: object(flowWindow.merging([
                "aggregate": .object(["type": "string", "enum": ["none", "src", "dst", "pair", "namespace", "protocol", "node"], "default": "none"]),
                "limit": .object(["type": "integer", "minimum": 1, "maximum": 1000, "default": 50]),
                "cursor": .object(["type": "string", "description": "next_cursor of the previous page."]),
            ]) { a, _ in a }), annotations: readOnly,
            outputSchema: object([
                "aggregate": .object(["type": "string"]),
                "flows": .object(["type": "array"]), "groups": .object(["type": "array"]),
                "returned": .object(["type": "integer"]), "total": .object(["type": "integer"]),
                "total_is_exact": .object(["type": "boolean"]), "truncated": .object(["type": "boolean"]),
                "next_cursor": .object(["type": ["string", "null"]]), "covers": openObject,
            ], required: ["aggregate", "returned", "total", "total_is_exact", "truncated", "next_cursor", "covers"])),
        Tool(
            name: "get_l4_flow_summary",
            description: "Totals over the flows a filter selects: flows, bytes, TCP handshake RTT p50/p90/p99, resets, retransmissions, capture gaps, end reasons, bytes by namespace and by protocol. Use before listing flows.",
            inputSchema: object(flowWindow), annotations: readOnly,
            outputSchema: object([
                "totals": openObject, "handshake_rtt_ms": openObject, "end_reasons": openObject,
                "by_namespace": .object(["type": "array"]), "by_protocol": .object(["type": "array"]), "covers": openObject,
            ], required: ["totals", "handshake_rtt_ms", "end_reasons", "by_namespace", "by_protocol", "covers"])),
    ]

    static let flowArguments: [String: Set<String>] = [
        "list_l4_flows": ["kfl", "ns", "aggregate", "limit", "cursor", "start", "end"],
        "get_l4_flow_summary": ["kfl", "ns", "start", "end"],
    ]

    func listFlows(_ args: Arguments) async throws -> CallTool.Result {
        var query = try args.window()
        query["kfl"] = try flowFilter(args)
        query["aggregate"] = try args.string("aggregate")
        query["cursor"] = try args.string("cursor")
        let value = try await withinBudget("/mcp/flows", query, limit: args.int("limit", in: 1...1000) ?? 50)
        return try CallTool.Result(content: [.text(FlowTable.render(list: value))], structuredContent: value)
    }

    func flowSummary(_ args: Arguments) async throws -> CallTool.Result {
        var query = try args.window()
        query["kfl"] = try flowFilter(args)
        let value = try decoded(await client.get("/mcp/flows/summary", query.compactMapValues { $0 }))
        return try CallTool.Result(content: [.text(FlowTable.render(summary: value))], structuredContent: value)
    }

    /// `kfl`, narrowed to the namespace `ns` when given.
    private func flowFilter(_ args: Arguments) throws -> String? {
        let kfl = try args.string("kfl")
        guard let ns = try args.string("ns"), !ns.isEmpty else { return kfl }
        let quoted = "\"" + ns.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        guard let kfl, !kfl.trimmingCharacters(in: .whitespaces).isEmpty else { return "\(quoted) in namespaces" }
        return "\(quoted) in namespaces && (\(kfl))"
    }
}
