/// Counters of a dissection engine; nothing it drops goes uncounted.
public struct DissectionStatistics: Sendable, Equatable {
    public var packets = 0
    public var bytes = 0
    public var tcpPackets = 0
    public var udpPackets = 0
    /// Not IP, or IP carrying neither TCP nor UDP.
    public var otherPackets = 0
    /// IP fragments, counted and skipped (not reassembled).
    public var fragments = 0
    /// Headers cut short or inconsistent.
    public var malformedPackets = 0
    public var unsupportedLinkType = 0
    /// The second eBPF copy of traffic between two local sockets (not counted again).
    public var duplicateCopies = 0
    public var retransmissions = 0
    public var outOfOrderSegments = 0
    /// Holes declared in streams, and their bytes.
    public var gaps = 0
    public var gapBytes = 0
    /// Of those, holes the receiver had already acknowledged (the capture missed the bytes), declared at once.
    public var acknowledgedHoles = 0
    /// Stream bytes dropped because a memory bound was reached.
    public var bytesDroppedOverMemoryBound = 0
    /// Bytes held right now in reassembly queues and parse buffers.
    public var bufferedBytes = 0
    public var connectionsOpened = 0
    public var connectionsClosed = 0
    public var connectionsTimedOut = 0
    /// New connections ignored because `maxConnections` was reached.
    public var connectionsNotTracked = 0
    public var callsEmitted = 0
    public var flowsEmitted = 0
    public var callsByProtocol: [String: Int] = [:]
    /// Bytes a dissector skipped as not parsable (garbage, resynchronisation), per protocol.
    public var unparsableBytes: [String: Int] = [:]
    /// Bytes of connections no dissector recognised.
    public var unrecognisedBytes = 0

    public init() {}
}
