/// One L4 connection (TCP) or conversation (UDP) as the dissection engine saw it. `src` is the client (the side that
/// sent the SYN, or the one the protocol identified as the client when the capture started mid-stream).
public struct Flow: Codable, Sendable, Equatable {
    /// The id calls carry in `connectionID`.
    public var id: String
    public var node: String
    public var captureSource: CaptureSource
    /// "tcp" or "udp".
    public var transport: String
    /// The application protocol detected on it ("http", "tls", …), empty when none was recognised.
    public var proto: String
    public var src: Endpoint
    public var dst: Endpoint
    /// First and last packet, milliseconds since the Unix epoch.
    public var start: Int64
    public var end: Int64
    /// Client to server.
    public var bytesSent: Int
    public var packetsSent: Int
    /// Server to client.
    public var bytesReceived: Int
    public var packetsReceived: Int
    /// SYN → SYN-ACK → ACK round trip, milliseconds; 0 when the handshake was not seen whole.
    public var handshakeRttMs: Double
    /// The capture started after the connection was opened (no SYN seen).
    public var midStream: Bool
    public var resets: Int
    public var retransmissions: Int
    /// Stream bytes that were never seen (capture loss), both directions.
    public var gapBytes: Int
    /// How it ended: "fin", "rst", "timeout", "capture_end" (still open when the capture or engine stopped); empty on
    /// an update of a flow that is still open.
    public var endReason: String

    public init(
        id: String, node: String, captureSource: CaptureSource, transport: String, proto: String = "",
        src: Endpoint, dst: Endpoint, start: Int64, end: Int64, bytesSent: Int = 0, packetsSent: Int = 0,
        bytesReceived: Int = 0, packetsReceived: Int = 0, handshakeRttMs: Double = 0, midStream: Bool = false,
        resets: Int = 0, retransmissions: Int = 0, gapBytes: Int = 0, endReason: String = ""
    ) {
        self.id = id
        self.node = node
        self.captureSource = captureSource
        self.transport = transport
        self.proto = proto
        self.src = src
        self.dst = dst
        self.start = start
        self.end = end
        self.bytesSent = bytesSent
        self.packetsSent = packetsSent
        self.bytesReceived = bytesReceived
        self.packetsReceived = packetsReceived
        self.handshakeRttMs = handshakeRttMs
        self.midStream = midStream
        self.resets = resets
        self.retransmissions = retransmissions
        self.gapBytes = gapBytes
        self.endReason = endReason
    }
}
