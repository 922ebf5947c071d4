import Foundation
import MCP

/// `list_workloads` and `list_ips` (Kubeshark's names): who is behind the names and IPs calls carry, answered by the
/// agent's `/mcp/workloads` and `/mcp/ips`.
extension FathomTools {
    private static let readOnlyHint = Tool.Annotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false)
    private static let limit: Value = .object(["type": "integer", "minimum": 1, "maximum": 1000, "default": 100])
    private static let namespace: Value = .object(["type": "string", "description": "Only this namespace."])

    private static func schema(_ properties: [String: Value], required: [String] = []) -> Value {
        .object(["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) }),
                 "additionalProperties": false])
    }

    static let workloadDefinitions: [Tool] = [
        Tool(
            name: "list_workloads",
            description: "Pods, services and nodes the agent knows from the Kubernetes API: namespace, labels, IPs, the services a pod serves, its containers and whether it runs on this node. Use it to find the names to filter calls by (src.pod.name, dst.service.name, src.namespace).",
            inputSchema: schema([
                "namespace": namespace,
                "kind": .object(["type": "string", "enum": ["pod", "service", "node"]]),
                "name": .object(["type": "string", "description": "Substring of the name."]),
                "labels": .object(["type": "string", "description": "Label selector, e.g. `app=web,tier!=db`."]),
                "limit": limit,
            ]), annotations: readOnlyHint,
            outputSchema: schema([
                "workloads": .object(["type": "array"]), "total": .object(["type": "integer"]),
                "truncated": .object(["type": "boolean"]), "namespaces": .object(["type": "array"]),
                "cluster": .object(["type": "string", "description": "synced, syncing, or none (no Kubernetes API configured)."]),
            ], required: ["workloads", "total", "truncated", "cluster"]).mergingAdditional()),
        Tool(
            name: "list_ips",
            description: "IP addresses and who owned them when: pod, service cluster IP or node, with the services of each pod. IPs are reused, so an address lists every owner with its interval (from_ms/until_ms); `at` keeps the owner at one instant.",
            inputSchema: schema([
                "namespace": namespace,
                "ip": .object(["type": "string", "description": "An IP or its prefix, e.g. `10.244.1.`."]),
                "at": .object(["type": "integer", "description": "Milliseconds since the Unix epoch: only the owner then."]),
                "limit": limit,
            ]), annotations: readOnlyHint,
            outputSchema: schema([
                "ips": .object(["type": "array"]), "total": .object(["type": "integer"]),
                "truncated": .object(["type": "boolean"]), "cluster": .object(["type": "string"]),
            ], required: ["ips", "total", "truncated", "cluster"]).mergingAdditional()),
    ]

    static let workloadArguments: [String: Set<String>] = [
        "list_workloads": ["namespace", "kind", "name", "labels", "limit"],
        "list_ips": ["namespace", "ip", "at", "limit"],
    ]

    /// The answer of a workload tool, or nil when `name` is not one.
    func callWorkloadTool(_ name: String, _ args: Arguments) async throws -> CallTool.Result? {
        var query: [String: String?] = ["namespace": try args.string("namespace"), "limit": try args.int("limit", in: 1...1000).map(String.init)]
        switch name {
        case "list_workloads":
            query["kind"] = try args.string("kind")
            query["name"] = try args.string("name")
            query["labels"] = try args.string("labels")
            return try await json(client.get("/mcp/workloads", query.compactMapValues { $0 }))
        case "list_ips":
            query["ip"] = try args.string("ip")
            query["at"] = try args.int("at", in: 0...Int.max).map(String.init)
            return try await json(client.get("/mcp/ips", query.compactMapValues { $0 }))
        default:
            return nil
        }
    }
}
