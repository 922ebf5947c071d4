import Foundation
import MCP

/// list_l4_flows and get_l4_flow_summary as compact text: what the answer covers, then one line per flow or group.
enum FlowTable {
    static func render(list answer: Value) -> String {
        guard case .object(let o) = answer else { return "" }
        var lines = [covers(o["covers"])]
        let aggregate = o["aggregate"]?.stringValue ?? "none"
        let returned = o["returned"]?.intValue ?? 0
        let total = o["total"]?.intValue ?? returned
        let exact = o["total_is_exact"]?.boolValue ?? true
        let what = aggregate == "none" ? "flows" : "groups by \(aggregate), most bytes first"
        lines.append("returned \(returned) of \(exact ? "" : "at least ")\(total) \(what)"
            + ((o["truncated"]?.boolValue ?? false) ? "; next page: cursor=\(o["next_cursor"]?.stringValue ?? "")" : "; no more match"))
        if case .array(let groups)? = o["groups"] {
            lines.append("key | flows | open | bytes | sent | received | packets | resets | retransmissions")
            for case .object(let g) in groups {
                let counts = ["flows", "open", "bytes", "bytes_sent", "bytes_received", "packets", "resets", "retransmissions"]
                    .map { number(g[$0]) }
                lines.append(([g["key"]?.stringValue ?? ""] + counts).joined(separator: " | "))
            }
        }
        if case .array(let flows)? = o["flows"] {
            lines.append("id | start UTC | duration_ms | transport/protocol | src -> dst | bytes sent/received | packets | handshake_rtt_ms | resets | retransmissions | end")
            for case .object(let f) in flows {
                let start = f["start"]?.intValue ?? 0
                let duration = (f["end"]?.intValue ?? start) - start
                let proto = f["proto"]?.stringValue ?? ""
                let packets = (f["packets_sent"]?.intValue ?? 0) + (f["packets_received"]?.intValue ?? 0)
                let end = f["end_reason"]?.stringValue ?? ""
                let row: [String] = [
                    f["id"]?.stringValue ?? "", time(start), String(duration),
                    "\(f["transport"]?.stringValue ?? "")/\(proto.isEmpty ? "?" : proto)",
                    "\(endpoint(f["src"])) -> \(endpoint(f["dst"]))",
                    "\(number(f["bytes_sent"]))/\(number(f["bytes_received"]))", String(packets), number(f["handshake_rtt_ms"]),
                    number(f["resets"]), number(f["retransmissions"]), end.isEmpty ? "open" : end,
                ]
                lines.append(row.joined(separator: " | "))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func render(summary answer: Value) -> String {
        guard case .object(let o) = answer else { return "" }
        var lines = [covers(o["covers"])]
        if case .object(let t)? = o["totals"] {
            lines.append("flows \(number(t["flows"])) (open \(number(t["open"])), tcp \(number(t["tcp"])), udp \(number(t["udp"])), "
                + "mid-stream \(number(t["mid_stream"]))); bytes sent \(number(t["bytes_sent"])), received \(number(t["bytes_received"])); "
                + "packets \(number(t["packets"]))")
            lines.append("resets \(number(t["resets"])) on \(number(t["flows_reset"])) flows; retransmissions \(number(t["retransmissions"])); "
                + "gaps \(number(t["gap_bytes"])) bytes on \(number(t["flows_with_gaps"])) flows")
        }
        if case .object(let r)? = o["handshake_rtt_ms"] {
            lines.append("TCP handshake RTT ms over \(number(r["samples"])) handshakes: p50 \(number(r["p50"])) p90 \(number(r["p90"])) p99 \(number(r["p99"]))")
        }
        if case .object(let reasons)? = o["end_reasons"] {
            lines.append("end reasons: " + reasons.sorted { $0.key < $1.key }.map { "\($0.key) \(number($0.value))" }.joined(separator: ", "))
        }
        for (key, title) in [("by_namespace", "bytes by namespace"), ("by_protocol", "bytes by transport/protocol")] {
            guard case .array(let groups)? = o[key] else { continue }
            lines.append(title + ": " + groups.compactMap { group -> String? in
                guard case .object(let g) = group else { return nil }
                return "\(g["key"]?.stringValue ?? "") \(number(g["bytes"])) (\(number(g["flows"])) flows)"
            }.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }

    private static func covers(_ value: Value?) -> String {
        guard case .object(let c)? = value else { return "covers: ?" }
        var parts: [String] = []
        if case .array(let nodes)? = c["nodes"] { parts.append("nodes " + nodes.compactMap(\.stringValue).joined(separator: ",")) }
        if let oldest = c["flows_oldest_ms"]?.intValue, let newest = c["flows_newest_ms"]?.intValue {
            parts.append("flows recorded \(time(oldest)) to \(time(newest)) (\(number(c["flows_stored"])) stored)")
        }
        if case .array(let sources)? = c["capture_sources"] {
            parts.append("capture " + sources.compactMap(\.stringValue).joined(separator: ","))
        }
        parts.append("live dissection " + ((c["live_dissection"]?.boolValue ?? false) ? "on" : "off"))
        if case .array(let notes)? = c["notes"], !notes.isEmpty {
            parts.append("notes: " + notes.compactMap(\.stringValue).joined(separator: "; "))
        }
        return "covers: " + parts.joined(separator: "; ")
    }

    private static func endpoint(_ value: Value?) -> String {
        guard case .object(let e)? = value else { return "?" }
        let name = e["pod"]?.stringValue ?? e["service"]?.stringValue ?? e["dns"]?.stringValue ?? e["ip"]?.stringValue ?? "?"
        return "\(name):\(number(e["port"]))"
    }

    private static func number(_ value: Value?) -> String {
        switch value {
        case .int(let i)?: String(i)
        case .double(let d)?: d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(format: "%.3f", d)
        case .string(let s)?: s
        default: "0"
        }
    }

    private static func time(_ ms: Int) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).ISO8601Format(.iso8601.time(includingFractionalSeconds: true))
    }
}
