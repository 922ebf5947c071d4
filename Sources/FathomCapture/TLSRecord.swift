internal import CFathomBPF
import FathomModel
import Synchronization

/// What the TLS programs delivered, readable from any thread.
public final class TLSCounters: Sendable {
    /// Plaintext records (chunks) and their bytes written to the recording as synthesized segments.
    public let records = Atomic<UInt64>(0)
    public let bytes = Atomic<UInt64>(0)
    /// TLS calls larger than the per-call cap, and the bytes past the cap that were counted but not copied.
    public let truncatedCalls = Atomic<UInt64>(0)
    public let truncatedBytes = Atomic<UInt64>(0)
    /// Chunks whose connection could not be found (no socket behind the call): counted, not recorded.
    public let unjoinedRecords = Atomic<UInt64>(0)
    /// Chunks whose user buffer could not be read (paged out at probe time): counted, not recorded.
    public let copyFailures = Atomic<UInt64>(0)

    public init() {}

    func metrics() -> [Metric] {
        func counter(_ name: String, _ help: String, _ value: borrowing Atomic<UInt64>) -> Metric {
            Metric(name, .counter, help, value: Double(value.load(ordering: .relaxed)))
        }
        return [
            counter("fathom_tls_records_total", "TLS plaintext chunks recorded as synthesized TCP segments.", records),
            counter("fathom_tls_bytes_total", "TLS plaintext bytes recorded.", bytes),
            counter("fathom_tls_truncated_calls_total", "TLS calls larger than the per-call cap.", truncatedCalls),
            counter("fathom_tls_truncated_bytes_total", "TLS plaintext bytes past the per-call cap, not copied.", truncatedBytes),
            counter("fathom_tls_unjoined_records_total", "TLS chunks with no socket found for their call.", unjoinedRecords),
            counter("fathom_tls_copy_failures_total", "TLS chunks whose user buffer could not be read.", copyFailures),
        ]
    }
}

/// Turns TLS plaintext records into TCP/IP segments with the connection's real addresses and ports, and sequence
/// numbers that follow each direction's plaintext stream offset, so tshark reassembles and decodes them (HTTP…)
/// as if the connection were in the clear. Used by the drain thread only; one buffer reused for every segment.
final class TLSSegmentSynthesizer {
    static let headerSize = MemoryLayout<fathom_tls_header>.size
    /// IPv6 (40) + TCP (20) headers at most.
    private static let maximumHeaders = 60
    private let buffer: UnsafeMutableRawPointer
    private let capacity = Int(FATHOM_TLS_CHUNK) + maximumHeaders
    let counters: TLSCounters
    /// Per flow, the end of the plaintext seen: what the reverse flow's segments acknowledge.
    private var streamEnds: [UInt64: UInt64] = [:]
    private static let trackedFlows = 65536

    init(counters: TLSCounters) {
        self.counters = counters
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Decodes one TLS record and hands its segment to the sink; false when the record is malformed.
    func deliver(_ record: UnsafeRawBufferPointer, clockOffsetNanoseconds: Int64, to sink: PacketSink) -> Bool {
        guard record.count >= Self.headerSize else { return false }
        let header = record.loadUnaligned(as: fathom_tls_header.self)
        let chunk = Int(header.chunk_length)
        guard header.kind == UInt8(FATHOM_RECORD_TLS.rawValue), chunk <= Int(FATHOM_TLS_CHUNK),
            chunk <= record.count - Self.headerSize
        else { return false }
        let egress = UInt32(header.direction) == FATHOM_DIRECTION_EGRESS.rawValue
        let flags = UInt32(header.flags)
        if flags & FATHOM_TLS_TRUNCATED.rawValue != 0 {
            // Flagged on the call's last copied chunk only.
            let copied = UInt64(header.call_offset) &+ UInt64(chunk)
            counters.truncatedCalls.add(1, ordering: .relaxed)
            counters.truncatedBytes.add(header.call_length &- min(copied, header.call_length), ordering: .relaxed)
        }
        if flags & FATHOM_TLS_UNJOINED.rawValue != 0 {
            counters.unjoinedRecords.add(1, ordering: .relaxed)
            return true
        }
        if flags & FATHOM_TLS_COPY_FAILED.rawValue != 0 {
            counters.copyFailures.add(1, ordering: .relaxed)
            return true
        }
        let v6 = header.family == 10
        let ipHeader = v6 ? 40 : 20
        let total = ipHeader + 20 + chunk
        // Sequence numbers: a base per flow (source → destination address and port) plus the stream offset. Keyed
        // by the flow rather than the socket, so when both ends of a connection are local their views of the same
        // bytes get the same numbers (tshark shows the second as a retransmission instead of garbling the stream).
        let (sourcePort, destinationPort) = egress
            ? (header.local_port, header.remote_port) : (header.remote_port, header.local_port)
        let (sourceAddress, destinationAddress) = egress
            ? (header.local_addr, header.remote_addr) : (header.remote_addr, header.local_addr)
        let flow = Self.flowKey(sourceAddress, sourcePort, destinationAddress, destinationPort)
        let reverse = Self.flowKey(destinationAddress, destinationPort, sourceAddress, sourcePort)
        let end = header.stream_offset &+ UInt64(chunk)
        if streamEnds.count >= Self.trackedFlows, streamEnds[flow] == nil { streamEnds.removeAll(keepingCapacity: true) }
        streamEnds[flow] = max(streamEnds[flow] ?? 0, end)
        let sequence = Self.initialSequence(flow) &+ UInt32(truncatingIfNeeded: header.stream_offset)
        let acknowledged = Self.initialSequence(reverse) &+ UInt32(truncatingIfNeeded: streamEnds[reverse] ?? 0)

        let p = buffer
        if v6 {
            put32(0x6000_0000, 0)
            put16(UInt16(20 + chunk), 4)
            p.storeBytes(of: UInt8(6), toByteOffset: 6, as: UInt8.self)
            p.storeBytes(of: UInt8(64), toByteOffset: 7, as: UInt8.self)
            withUnsafeBytes(of: sourceAddress) { (p + 8).copyMemory(from: $0.baseAddress!, byteCount: 16) }
            withUnsafeBytes(of: destinationAddress) { (p + 24).copyMemory(from: $0.baseAddress!, byteCount: 16) }
        } else {
            put32(0x4500_0000 | UInt32(total), 0)
            put32(0x0000_4000, 4)  // id 0, don't fragment
            put32(0x4006_0000, 8)  // ttl 64, TCP, checksum below
            p.storeBytes(of: sourceAddress.0, toByteOffset: 12, as: UInt32.self)  // already in network order
            p.storeBytes(of: destinationAddress.0, toByteOffset: 16, as: UInt32.self)
            put16(Self.checksum(UnsafeRawBufferPointer(start: p, count: 20)), 10)
        }
        let tcp = ipHeader
        put16(sourcePort, tcp)
        put16(destinationPort, tcp + 2)
        put32(sequence, tcp + 4)
        put32(acknowledged, tcp + 8)
        put16(0x5018, tcp + 12)  // 20-byte header, PSH|ACK
        put16(0xffff, tcp + 14)
        put32(0, tcp + 16)  // checksum left 0 (tshark does not verify it by default), urgent pointer 0
        if chunk > 0, let payload = record.baseAddress {
            (p + tcp + 20).copyMemory(from: payload + Self.headerSize, byteCount: chunk)
        }
        var metadata = PacketMetadata(
            timestampNanoseconds: UInt64(bitPattern: Int64(bitPattern: header.timestamp_ns) &+ clockOffsetNanoseconds),
            originalLength: UInt32(total), linkType: LinkType.rawIP, source: .ebpfTLS,
            direction: egress ? .outbound : .inbound, interfaceIndex: 0, cgroupID: header.cgroup_id,
            socketCookie: header.socket_cookie)
        metadata.processID = header.pid
        sink.append(metadata, UnsafeRawBufferPointer(start: p, count: total))
        counters.records.add(1, ordering: .relaxed)
        counters.bytes.add(UInt64(chunk), ordering: .relaxed)
        return true
    }

    @inline(__always)
    private func put16(_ value: UInt16, _ offset: Int) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    private func put32(_ value: UInt32, _ offset: Int) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    typealias Address = (UInt32, UInt32, UInt32, UInt32)

    /// A flow's identity: its addresses and ports folded into 64 bits.
    static func flowKey(_ source: Address, _ sourcePort: UInt16, _ destination: Address, _ destinationPort: UInt16) -> UInt64 {
        let ports = UInt64(sourcePort) << 16 | UInt64(destinationPort)
        let s = mix(mix(ports ^ (UInt64(source.0) << 32 | UInt64(source.1))) ^ (UInt64(source.2) << 32 | UInt64(source.3)))
        return mix(mix(s ^ (UInt64(destination.0) << 32 | UInt64(destination.1)))
                   ^ (UInt64(destination.2) << 32 | UInt64(destination.3)))
    }

    /// A flow's pseudo-random initial sequence number.
    static func initialSequence(_ flow: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: mix(flow)) }

    /// splitmix64's finalizer.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The Internet checksum of an IPv4 header.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) &+ (sum >> 16) }
        return ~UInt16(sum)
    }
}
