/// The L4 facts of a flow that its call-shaped filter view carries (`Call.l4`).
public struct FlowFacts: Codable, Sendable, Equatable {
    /// "tcp" or "udp".
    public var transport: String
    public var bytesSent: Int
    public var bytesReceived: Int
    public var packetsSent: Int
    public var packetsReceived: Int
    /// Last packet minus first packet, milliseconds.
    public var durationMs: Int64
    public var handshakeRttMs: Double
    public var resets: Int
    public var retransmissions: Int
    public var gapBytes: Int
    public var midStream: Bool
    /// "" while the flow is open.
    public var endReason: String
}

extension Flow {
    /// The flow as a call, so that one filter language (and one catalogue) serves calls and flows: the ends, node,
    /// capture source, protocol (the transport when none was recognised), start time and id read as they do on a call;
    /// the L4 counters are in `l4`.
    public var filterView: Call {
        var call = Call(
            id: id, ts: start, node: node, captureSource: captureSource, proto: proto.isEmpty ? transport : proto,
            src: src, dst: dst, requestSize: bytesSent, responseSize: bytesReceived, connectionID: id)
        call.l4 = FlowFacts(
            transport: transport, bytesSent: bytesSent, bytesReceived: bytesReceived, packetsSent: packetsSent,
            packetsReceived: packetsReceived, durationMs: end - start, handshakeRttMs: handshakeRttMs, resets: resets,
            retransmissions: retransmissions, gapBytes: gapBytes, midStream: midStream, endReason: endReason)
        return call
    }
}
