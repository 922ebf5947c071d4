import Foundation
import MCP

/// list_api_calls as compact text: a line on what the answer covers, then one line a call. About a third of the
/// tokens of the same calls as JSON objects.
enum CallTable {
    static func render(_ answer: Value) -> String {
        guard case .object(let o) = answer else { return "" }
        var lines: [String] = []
        if case .object(let covers)? = o["covers"] { lines.append("covers: " + describe(covers)) }
        let returned = o["returned"]?.intValue ?? 0
        let total = o["total"]?.intValue ?? returned
        let exact = o["total_is_exact"]?.boolValue ?? true
        let truncated = o["truncated"]?.boolValue ?? false
        let cursor = o["next_cursor"]?.stringValue
        lines.append("returned \(returned) of \(exact ? "" : "at least ")\(total)"
            + (truncated ? "; next page: cursor=\(cursor ?? "")" : "; no more match"))
        lines.append("id | time UTC | proto | method | status | latency_ms | src -> dst | path")
        if case .array(let calls)? = o["calls"] {
            for case .object(let c) in calls {
                let time = c["ts"]?.intValue.map { format(ms: $0) } ?? "?"
                let row: [String] = [
                    c["id"]?.stringValue ?? "", time, c["proto"]?.stringValue ?? "", c["method"]?.stringValue ?? "",
                    c["status"].map(text) ?? "", c["latency_ms"].map(text) ?? "",
                    "\(end(c["src"])) -> \(end(c["dst"]))", c["path"]?.stringValue ?? "",
                ]
                lines.append(row.joined(separator: " | "))
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func describe(_ covers: [String: Value]) -> String {
        var parts: [String] = []
        if case .array(let nodes)? = covers["nodes"] { parts.append("nodes " + nodes.compactMap(\.stringValue).joined(separator: ",")) }
        if let oldest = covers["calls_oldest_ms"]?.intValue, let newest = covers["calls_newest_ms"]?.intValue {
            parts.append("calls recorded \(format(ms: oldest)) to \(format(ms: newest))")
        }
        if case .array(let sources)? = covers["capture_sources"] {
            parts.append("capture " + sources.compactMap(\.stringValue).joined(separator: ","))
        }
        parts.append("live dissection " + ((covers["live_dissection"]?.boolValue ?? false) ? "on" : "off"))
        if case .array(let notes)? = covers["notes"], !notes.isEmpty {
            parts.append("notes: " + notes.compactMap(\.stringValue).joined(separator: "; "))
        }
        return parts.joined(separator: "; ")
    }

    private static func end(_ value: Value?) -> String {
        guard case .object(let e)? = value else { return "?" }
        let name = e["name"]?.stringValue ?? e["ip"]?.stringValue ?? "?"
        return "\(name):\(e["port"].map(text) ?? "")"
    }

    private static func text(_ value: Value) -> String {
        switch value {
        case .int(let i): String(i)
        case .double(let d): d == d.rounded() ? String(Int(d)) : String(d)
        case .string(let s): s
        default: ""
        }
    }

    private static func format(ms: Int) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).ISO8601Format(.iso8601.time(includingFractionalSeconds: true))
    }
}
