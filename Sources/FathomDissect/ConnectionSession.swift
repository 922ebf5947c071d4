import FathomModel

/// What a dissector knows about its connection and how it hands calls back. One per connection.
public final class ConnectionSession {
    /// The id calls carry in `connectionID` and the flow record carries in `id`.
    public let connectionID: String
    public internal(set) var client: Endpoint
    public internal(set) var server: Endpoint
    public let captureSource: CaptureSource
    /// Packet time of the oldest byte in the bytes being parsed (the start of a message that began earlier).
    public internal(set) var firstByteNanoseconds: UInt64 = 0
    /// Packet time of the newest bytes being parsed.
    public internal(set) var nowNanoseconds: UInt64 = 0
    /// The engine's limits (body preview cap, …).
    public let configuration: DissectionConfiguration
    unowned let emitter: CallEmitter

    init(
        connectionID: String, client: Endpoint, server: Endpoint, captureSource: CaptureSource,
        configuration: DissectionConfiguration, emitter: CallEmitter
    ) {
        self.connectionID = connectionID
        self.client = client
        self.server = server
        self.captureSource = captureSource
        self.configuration = configuration
        self.emitter = emitter
    }

    /// A call on this connection starting at `startNanoseconds`, travelling from `side` (the client for requests);
    /// its id is assigned when it is emitted.
    @inline(__always)
    public func makeCall(proto: String, startNanoseconds: UInt64, from side: StreamSide = .client) -> Call {
        Call(
            id: "", ts: Int64(startNanoseconds / 1_000_000), node: emitter.node, captureSource: captureSource,
            proto: proto, src: side == .client ? client : server, dst: side == .client ? server : client,
            connectionID: connectionID)
    }

    /// Hands a finished call to the sink.
    @inline(__always)
    public func emit(_ call: consuming Call) {
        emitter.emit(call)
    }

    /// Counts bytes the dissector of `protocolName` could not parse and skipped.
    public func countUnparsable(_ count: Int, protocolName: String) {
        guard count > 0 else { return }
        emitter.statistics.unparsableBytes[protocolName, default: 0] += count
    }

    /// Reports an IP → name mapping learned from a DNS answer.
    public func learned(name: String, for ip: String) {
        emitter.sink.learned(name: name, for: ip)
    }
}

/// Milliseconds between two packet times (0 when `end` precedes `start`).
func milliseconds(from start: UInt64, to end: UInt64) -> Double {
    end >= start ? Double(end - start) / 1_000_000 : 0
}

/// Assigns call ids and keeps the counters; shared by all sessions of an engine.
final class CallEmitter {
    let node: String
    let sink: any DissectionSink
    var statistics = DissectionStatistics()
    private var sequence: UInt64 = 0
    /// "<prefix>-": call ids are this and the sequence number, connection ids this, "c" and theirs.
    let idPrefix: String

    init(node: String, idPrefix: String, sink: any DissectionSink) {
        self.node = node
        self.sink = sink
        self.idPrefix = idPrefix + "-"
    }

    /// Takes the call over (no copy of it) to give it its id.
    @inline(__always)
    func emit(_ call: consuming Call) {
        sequence += 1
        call.id = idPrefix + String(sequence)
        statistics.callsEmitted += 1
        statistics.callsByProtocol[call.proto, default: 0] += 1
        sink.emit(call: call)
    }
}
