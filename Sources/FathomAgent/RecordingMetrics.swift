import FathomModel
import FathomRecording

/// The continuous recording's counters, as /metrics shows them.
final class RecordingMetrics: MetricsSource, Sendable {
    private let statistics: RecordingStatistics

    init(_ statistics: RecordingStatistics) { self.statistics = statistics }

    func metrics() -> [Metric] {
        let s = statistics.snapshot()
        return [
            Metric("fathom_recording_written_packets_total", .counter, "Packets written to the recording.", value: Double(s.packetsWritten)),
            Metric("fathom_recording_written_bytes_total", .counter, "Bytes written to the recording.", value: Double(s.bytesWritten)),
            Metric("fathom_recording_dropped_packets_total", .counter,
                   "Packets that could not be written (disk full or write error).", value: Double(s.packetsDropped)),
            Metric("fathom_recording_dropped_bytes_total", .counter, "Bytes that could not be written.", value: Double(s.bytesDropped)),
            Metric("fathom_recording_write_errors_total", .counter, "Failed writes to the recording.", value: Double(s.writeErrors)),
            Metric("fathom_recording_writing", .gauge, "1 while the recording is being written, 0 while writes fail.",
                   value: s.isWriting ? 1 : 0),
            Metric("fathom_recording_direct_io", .gauge,
                   "1 while segments are written with O_DIRECT, bypassing the page cache; 0 where the file system refuses it.",
                   value: s.isWritingDirectly ? 1 : 0),
            Metric("fathom_recording_segments", .gauge, "Segments on disk.", value: Double(s.segmentCount)),
            Metric("fathom_recording_bytes_on_disk", .gauge, "Bytes of segments on disk.", value: Double(s.bytesOnDisk)),
            Metric("fathom_recording_segments_created_total", .counter, "Segments created.", value: Double(s.segmentsCreated)),
            Metric("fathom_recording_segments_deleted_total", .counter, "Segments deleted by retention.", value: Double(s.segmentsDeleted)),
            Metric("fathom_recording_repaired_segments_total", .counter, "Torn segments repaired at start.", value: Double(s.repairs)),
            Metric("fathom_recording_oldest_packet_seconds", .gauge, "Time of the oldest recorded packet.",
                   value: Double(s.oldestPacketNanoseconds) / 1e9),
            Metric("fathom_recording_newest_packet_seconds", .gauge, "Time of the newest recorded packet.",
                   value: Double(s.newestPacketNanoseconds) / 1e9),
        ]
    }
}
