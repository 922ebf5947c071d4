import Foundation
import MCP

extension FathomTools {
    /// get_api_stats: groups are sorted by count, so when they exceed the byte budget the least busy are left out,
    /// and the answer says how many there were.
    func stats(_ args: Arguments) async throws -> CallTool.Result {
        var query = try args.window()
        query["kfl"] = try args.string("kfl")
        query["group_by"] = try args.string("group_by")
        let answer = try await client.get("/mcp/stats", query.compactMapValues { $0 })
        var value = try decoded(answer)
        guard answer.body.count > FathomMCPServer.resultByteBudget, case .object(var o) = value, case .array(let groups)? = o["groups"]
        else { return try json(answer) }
        // Average bytes a group, from the whole answer: keep as many as fit in 90% of the budget.
        let keep = max(1, groups.count * FathomMCPServer.resultByteBudget / answer.body.count * 9 / 10)
        o["groups"] = .array(Array(groups.prefix(keep)))
        o["groups_total"] = .int(groups.count)
        o["truncated"] = .bool(true)
        value = .object(o)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        return try CallTool.Result(
            content: [.text("only the \(keep) busiest of \(groups.count) groups fit the result budget; narrow the filter for the rest\n" + text)],
            structuredContent: value)
    }
}
