import FathomModel

extension KFLCatalogue {
    /// L4 flow fields: they read a flow's filter view (`Flow.filterView`); on a call they read their type's default.
    static let flowFields: [KFLField] = [
        .string("transport", group: flow, "Flow transport: \"tcp\" or \"udp\".", example: "transport == \"udp\"") {
            $0.pointee.l4?.transport ?? ""
        },
        .int("bytes", group: flow, "Flow payload bytes, both directions.", example: "bytes > 1048576") {
            Int64(($0.pointee.l4?.bytesSent ?? 0) + ($0.pointee.l4?.bytesReceived ?? 0))
        },
        .int("bytes_sent", group: flow, "Flow payload bytes from the client.", example: "bytes_sent > 0") {
            Int64($0.pointee.l4?.bytesSent ?? 0)
        },
        .int("bytes_received", group: flow, "Flow payload bytes from the server.", example: "bytes_received == 0") {
            Int64($0.pointee.l4?.bytesReceived ?? 0)
        },
        .int("packets", group: flow, "Flow packets, both directions.", example: "packets > 100") {
            Int64(($0.pointee.l4?.packetsSent ?? 0) + ($0.pointee.l4?.packetsReceived ?? 0))
        },
        .int("duration_ms", group: flow, "Flow last packet minus first packet, milliseconds.", example: "duration_ms > 60000") {
            $0.pointee.l4?.durationMs ?? 0
        },
        KFLField("handshake_rtt_ms", .double, group: flow, "TCP SYN → ACK round trip, milliseconds; 0 when not seen whole.",
                 example: "handshake_rtt_ms > 10.0") { .double($0.pointee.l4?.handshakeRttMs ?? 0) },
        .int("resets", group: flow, "TCP RSTs seen on the flow.", example: "resets > 0") { Int64($0.pointee.l4?.resets ?? 0) },
        .int("retransmissions", group: flow, "TCP segments seen again.", example: "retransmissions > 0") {
            Int64($0.pointee.l4?.retransmissions ?? 0)
        },
        .int("gap_bytes", group: flow, "Stream bytes never captured, both directions.", example: "gap_bytes > 0") {
            Int64($0.pointee.l4?.gapBytes ?? 0)
        },
        .bool("mid_stream", group: flow, "The capture started after the connection opened (no SYN seen).", example: "!mid_stream") {
            $0.pointee.l4?.midStream ?? false
        },
        .string("end_reason", group: flow, "How the flow ended: \"fin\", \"rst\", \"timeout\", \"capture_end\"; \"\" while open.",
                example: "end_reason == \"rst\"") { $0.pointee.l4?.endReason ?? "" },
    ]

    private static let flow = "flow"

    /// Fields that mean something on a flow: its ends, node, capture source, protocol (and protocol flags), start time,
    /// id, and the flow group. Call-only fields (HTTP, DNS, latency, …) would read defaults on every flow.
    public static let flowFilterFields: Set<String> = {
        let groups: Set<String> = [flow, "network", "kubernetes", "process", "dns resolution", "protocol"]
        var names = Set(fields.filter { groups.contains($0.group) }.map(\.name))
        names.formUnion(["id", "node_id", "timestamp", "capture_source", "protocol"])
        return names
    }()
}
