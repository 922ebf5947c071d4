import FathomModel

/// Everything the engine keeps about one TCP connection. Directions are canonical: 0 is low → high (`FlowKey`).
final class TCPConnection {
    enum Detection {
        case pending
        case detected
        case failed
    }

    let key: FlowKey
    let session: ConnectionSession
    var streams = DirectionPair(repeating: TCPStreamReassembler())
    var buffers = DirectionPair(repeating: StreamBuffer())
    /// The direction the client sends in, once the handshake or the protocol told.
    var clientDirection: Int?
    /// The eBPF socket cookie whose copy of the traffic counts; other cookies are the second copy.
    var primaryCookie: UInt64 = 0
    /// Per direction, the end of the highest segment the primary observer sent: a duplicate only counts as a
    /// retransmission when the primary had already seen those bytes (the other copy may have delivered them first).
    var primaryEnd = DirectionPair<UInt32?>(repeating: nil)
    var dissector: (any StreamDissector)?
    var protocolName = ""
    var detection = Detection.pending
    /// Bytes skipped while looking for a recognisable message on a connection picked up mid-stream.
    var detectionSkippedBytes = 0
    /// Directions whose first bytes no probe recognised.
    var rejected = DirectionPair(repeating: false)

    var packets = DirectionPair(repeating: 0)
    var bytes = DirectionPair(repeating: 0)
    var firstNanoseconds: UInt64
    var lastNanoseconds: UInt64
    var synNanoseconds: UInt64 = 0
    var synAckNanoseconds: UInt64 = 0
    var handshakeNanoseconds: UInt64 = 0
    var sawSyn = false
    var midStream = false
    var resets = 0
    var retransmissions = 0
    var gapBytes = 0
    var finSeen = DirectionPair(repeating: false)
    /// Sequence number of each direction's FIN: bytes before it that never arrived are a gap.
    var finSequence = DirectionPair<UInt32?>(repeating: nil)
    /// Packet time the connection closed (FIN both ways or RST), 0 while open.
    var closedNanoseconds: UInt64 = 0
    var endReason = ""
    var finished = false
    /// Packet time of the last open-flow update, and the last packet it covered (see `openFlowUpdateNanoseconds`).
    var reportedNanoseconds: UInt64 = 0
    var reportedLastNanoseconds: UInt64 = 0

    init(key: FlowKey, session: ConnectionSession, now: UInt64) {
        self.key = key
        self.session = session
        firstNanoseconds = now
        lastNanoseconds = now
    }

    /// Which end sends in `direction`.
    @inline(__always)
    func side(of direction: Int) -> StreamSide {
        direction == (clientDirection ?? key.likelyClientDirection) ? .client : .server
    }

    /// Whether every byte up to each FIN seen has been delivered and nothing waits behind a hole.
    var streamsComplete: Bool {
        (0..<2).allSatisfy { d in
            streams[d].queue.isEmpty && (finSequence[d] == nil || finSequence[d] == streams[d].nextSequence)
        }
    }

    /// Bytes this connection holds in `direction`.
    func heldBytes(_ direction: Int) -> Int {
        streams[direction].queuedBytes + buffers[direction].count
    }

    /// Fixes the client direction and the session's endpoints.
    func setClientDirection(_ direction: Int) {
        clientDirection = direction
        session.client = key.sender(of: direction)
        session.server = key.sender(of: 1 - direction)
    }

    /// The connection record.
    func flow(node: String) -> Flow {
        let clientDir = clientDirection ?? key.likelyClientDirection
        return Flow(
            id: session.connectionID, node: node, captureSource: session.captureSource, transport: "tcp",
            proto: protocolName, src: key.sender(of: clientDir), dst: key.sender(of: 1 - clientDir),
            start: Int64(firstNanoseconds / 1_000_000), end: Int64(lastNanoseconds / 1_000_000),
            bytesSent: bytes[clientDir], packetsSent: packets[clientDir], bytesReceived: bytes[1 - clientDir],
            packetsReceived: packets[1 - clientDir],
            handshakeRttMs: handshakeNanoseconds > synNanoseconds && synNanoseconds > 0
                ? milliseconds(from: synNanoseconds, to: handshakeNanoseconds) : 0,
            midStream: midStream, resets: resets, retransmissions: retransmissions, gapBytes: gapBytes,
            endReason: endReason)
    }
}

/// One UDP conversation (a 5-tuple), for flow records and DNS.
final class UDPConversation {
    let key: FlowKey
    let session: ConnectionSession
    var clientDirection: Int?
    var primaryCookie: UInt64 = 0
    var protocolName = ""
    var packets = DirectionPair(repeating: 0)
    var bytes = DirectionPair(repeating: 0)
    var firstNanoseconds: UInt64
    var lastNanoseconds: UInt64
    var reportedNanoseconds: UInt64 = 0
    var reportedLastNanoseconds: UInt64 = 0

    init(key: FlowKey, session: ConnectionSession, now: UInt64) {
        self.key = key
        self.session = session
        firstNanoseconds = now
        lastNanoseconds = now
    }

    func setClientDirection(_ direction: Int) {
        clientDirection = direction
        session.client = key.sender(of: direction)
        session.server = key.sender(of: 1 - direction)
    }

    func flow(node: String, endReason: String) -> Flow {
        let clientDir = clientDirection ?? key.likelyClientDirection
        return Flow(
            id: session.connectionID, node: node, captureSource: session.captureSource, transport: "udp",
            proto: protocolName, src: key.sender(of: clientDir), dst: key.sender(of: 1 - clientDir),
            start: Int64(firstNanoseconds / 1_000_000), end: Int64(lastNanoseconds / 1_000_000),
            bytesSent: bytes[clientDir], packetsSent: packets[clientDir], bytesReceived: bytes[1 - clientDir],
            packetsReceived: packets[1 - clientDir], endReason: endReason)
    }
}
