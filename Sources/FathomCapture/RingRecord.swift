internal import CFathomBPF
import FathomModel

/// Decodes the records the capture programs put in the rings (`struct fathom_packet_header` + packet bytes).
public enum RingRecord {
    public static let headerSize = MemoryLayout<fathom_packet_header>.size
    /// Where every record kind keeps its `kind` byte (fathom_events.h places it alike in each header).
    static let kindOffset = 38

    /// The record's kind (enum fathom_record_kind), 0 when the record is too short to have one.
    @inline(__always)
    static func kind(of record: UnsafeRawBufferPointer) -> UInt8 {
        record.count > kindOffset ? record[kindOffset] : 0
    }

    /// The metadata and the captured bytes of one ring record, or nil when the record is not a well-formed packet
    /// record (too short, unknown kind, captured length past the record's end).
    /// `clockOffsetNanoseconds` turns the kernel's CLOCK_MONOTONIC stamp into wall-clock time.
    @inline(__always)
    public static func decode(
        _ record: UnsafeRawBufferPointer, clockOffsetNanoseconds: Int64
    ) -> (PacketMetadata, UnsafeRawBufferPointer)? {
        guard record.count >= headerSize else { return nil }
        let header = record.loadUnaligned(as: fathom_packet_header.self)
        guard header.kind == UInt8(FATHOM_RECORD_PACKET.rawValue),
            Int(header.captured_length) <= record.count - headerSize
        else { return nil }
        let direction: PacketDirection =
            switch UInt32(header.direction) {
            case FATHOM_DIRECTION_INGRESS.rawValue: .inbound
            case FATHOM_DIRECTION_EGRESS.rawValue: .outbound
            default: .unknown
            }
        let metadata = PacketMetadata(
            timestampNanoseconds: UInt64(bitPattern: Int64(bitPattern: header.timestamp_ns) &+ clockOffsetNanoseconds),
            originalLength: header.original_length,
            linkType: header.link_type,
            source: .ebpf,
            direction: direction,
            interfaceIndex: header.ifindex,
            cgroupID: header.cgroup_id,
            socketCookie: header.socket_cookie
        )
        let bytes = UnsafeRawBufferPointer(rebasing: record[headerSize..<(headerSize + Int(header.captured_length))])
        return (metadata, bytes)
    }
}
