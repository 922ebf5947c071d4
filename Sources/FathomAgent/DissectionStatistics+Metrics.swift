import FathomDissect
import FathomModel

extension DissectionStatistics {
    /// The engine's losses and bounds as Prometheus families: every byte it could not turn into calls is counted.
    var metrics: [Metric] {
        [
            Metric("fathom_dissection_gaps_total", .counter, "Holes declared in TCP streams (bytes never captured).",
                   value: Double(gaps)),
            Metric("fathom_dissection_gap_bytes_total", .counter, "Bytes of those holes.", value: Double(gapBytes)),
            Metric("fathom_dissection_acknowledged_holes_total", .counter,
                   "Holes the receiver had acknowledged (the capture missed them), declared without waiting.",
                   value: Double(acknowledgedHoles)),
            Metric("fathom_dissection_retransmissions_total", .counter, "TCP retransmissions seen.",
                   value: Double(retransmissions)),
            Metric("fathom_dissection_out_of_order_segments_total", .counter, "TCP segments queued behind a hole.",
                   value: Double(outOfOrderSegments)),
            Metric("fathom_dissection_memory_bound_dropped_bytes_total", .counter,
                   "Stream bytes dropped because a reassembly memory bound was reached.",
                   value: Double(bytesDroppedOverMemoryBound)),
            Metric("fathom_dissection_buffered_bytes", .gauge, "Bytes held in reassembly queues and parse buffers.",
                   value: Double(bufferedBytes)),
            Metric("fathom_dissection_connections_not_tracked_total", .counter,
                   "New connections ignored because the connection table was full.", value: Double(connectionsNotTracked)),
            Metric("fathom_dissection_malformed_packets_total", .counter, "Packets with headers cut short or inconsistent.",
                   value: Double(malformedPackets)),
            Metric("fathom_dissection_unrecognised_bytes_total", .counter, "Bytes of connections no dissector recognised.",
                   value: Double(unrecognisedBytes)),
            Metric("fathom_dissection_unparsable_bytes_total", .counter,
                   "Bytes a dissector skipped as not parsable (garbage, resynchronisation), by protocol.",
                   unparsableBytes.sorted { $0.key < $1.key }.map { (labels: [("protocol", $0.key)], value: Double($0.value)) }),
        ]
    }
}
