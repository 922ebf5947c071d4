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

    /// Counts kept by the capture thread between publications.
    public struct Pending: Sendable {
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        public var truncatedPackets: UInt64 = 0
        public var malformedRecords: UInt64 = 0

        public init() {}

        @inline(__always)
        public mutating func count(captured: Int, original: UInt32) {
            packets &+= 1
            bytes &+= UInt64(captured)
            if captured < Int(original) { truncatedPackets &+= 1 }
        }
    }

    /// Adds what the capture thread counted and starts it afresh.
    public func publish(_ pending: inout Pending) {
        if pending.packets != 0 {
            packets.add(pending.packets, ordering: .relaxed)
            bytes.add(pending.bytes, ordering: .relaxed)
        }
        if pending.truncatedPackets != 0 { truncatedPackets.add(pending.truncatedPackets, ordering: .relaxed) }
        if pending.malformedRecords != 0 { malformedRecords.add(pending.malformedRecords, ordering: .relaxed) }
        pending = Pending()
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
