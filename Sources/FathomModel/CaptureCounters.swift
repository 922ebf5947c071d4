import Synchronization

/// What a capture thread has delivered, readable from any thread while it runs.
public final class CaptureCounters: Sendable {
    public let packets = Atomic<UInt64>(0)
    public let bytes = Atomic<UInt64>(0)
    /// Packets cut by the snap length (their original length is larger than what was kept).
    public let truncatedPackets = Atomic<UInt64>(0)
    /// Records that did not decode as packets: a mismatch between the programs and this binary.
    public let malformedRecords = Atomic<UInt64>(0)

    public init() {}

    @inline(__always)
    public func count(captured: Int, original: UInt32) {
        packets.add(1, ordering: .relaxed)
        bytes.add(UInt64(captured), ordering: .relaxed)
        if captured < Int(original) { truncatedPackets.add(1, ordering: .relaxed) }
    }

    public func metrics(source: CaptureSource) -> [Metric] {
        let labels = [("source", source.rawValue)]
        return [
            Metric("fathom_captured_packets_total", .counter, "Packets delivered by the capture path.",
                   [(labels: labels, value: Double(packets.load(ordering: .relaxed)))]),
            Metric("fathom_captured_bytes_total", .counter, "Bytes of packets delivered by the capture path.",
                   [(labels: labels, value: Double(bytes.load(ordering: .relaxed)))]),
            Metric("fathom_truncated_packets_total", .counter, "Packets cut by the snap length.",
                   [(labels: labels, value: Double(truncatedPackets.load(ordering: .relaxed)))]),
            Metric("fathom_malformed_records_total", .counter, "Ring records that did not decode as packets.",
                   [(labels: labels, value: Double(malformedRecords.load(ordering: .relaxed)))]),
        ]
    }
}
