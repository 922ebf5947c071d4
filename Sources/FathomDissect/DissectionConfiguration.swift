/// Limits and choices of a dissection engine.
public struct DissectionConfiguration: Sendable {
    /// Body previews are cut at this many decoded bytes and marked `bodyTruncated`.
    public var bodyPreviewLimit = 64 * 1024
    /// Bytes one connection may hold per direction (out-of-order segments plus bytes waiting for the dissector).
    public var maxBufferedBytesPerDirection = 4 << 20
    /// Bytes all connections together may hold.
    public var maxBufferedBytesTotal = 512 << 20
    /// Connections tracked at once; beyond it new connections are counted and ignored.
    public var maxConnections = 1 << 18
    /// A TCP connection without packets for this long is closed with end reason "timeout".
    public var tcpIdleTimeoutNanoseconds: UInt64 = 120_000_000_000
    /// A UDP conversation without packets for this long is closed.
    public var udpIdleTimeoutNanoseconds: UInt64 = 30_000_000_000
    /// How long a closed connection stays to absorb its last ACKs and retransmissions.
    public var closedLingerNanoseconds: UInt64 = 2_000_000_000
    /// A hole in a stream that does not fill for this long (packet time) is declared lost.
    public var reorderTimeoutNanoseconds: UInt64 = 1_000_000_000
    /// A hole the receiver has acknowledged is declared lost after this long (packet time): the capture missed its
    /// bytes, unless a copy is still on its way from another CPU's ring buffer.
    public var acknowledgedHoleTimeoutNanoseconds: UInt64 = 100_000_000
    /// A DNS query without an answer for this long is emitted with `noResponse`.
    public var dnsResponseTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// Messages one connection may hold waiting for their partner (pipelined HTTP/1 requests, open HTTP/2
    /// streams); beyond it the oldest is emitted unanswered. Bounds per-connection memory with the preview cap.
    public var maxPendingMessagesPerConnection = 128
    /// DNS queries waiting for an answer, all conversations together; beyond it the oldest is emitted unanswered.
    public var maxPendingDNSQueries = 65536
    /// Bytes a direction may accumulate before protocol detection gives up on the connection.
    public var maxDetectionBytes = 16 * 1024
    /// Every this long (packet time) an open connection or conversation with new packets is emitted again as a flow
    /// with an empty end reason, so long-lived connections show before they end; 0 emits flows only when they end.
    public var openFlowUpdateNanoseconds: UInt64 = 0
    /// Protocols detected on TCP streams, probed in this order (port hints first).
    public var streamDissectors: [DissectorRegistration] = [.http1, .http2, .tls, .dnsOverTCP]

    public init() {}
}
