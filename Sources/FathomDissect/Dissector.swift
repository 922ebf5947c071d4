import FathomModel

/// Which end of a connection bytes came from.
public enum StreamSide: Int, Sendable {
    case client = 0
    case server = 1

    /// The other end.
    public var opposite: StreamSide { self == .client ? .server : .client }
}

/// What a probe concluded from the first bytes one end sent.
public enum ProbeResult: Sendable, Equatable {
    /// The protocol matches and the sender is the client.
    case senderIsClient
    /// The protocol matches and the sender is the server.
    case senderIsServer
    /// Too few bytes to tell.
    case needMoreData
    /// Not this protocol.
    case noMatch
}

/// Parses one connection's two byte streams into calls. One instance per connection; the engine calls it only from
/// its own thread. Adding a protocol is one file: a class conforming to this and a `DissectorRegistration`.
public protocol StreamDissector: AnyObject {
    /// Parses bytes `side` sent, in stream order, and returns how many were consumed from the front. The rest is
    /// offered again, followed by more, on the next call; the dissector consumes every complete message it can.
    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int
    /// `length` bytes `side` sent, right after the last consumed byte, are lost (capture loss or memory bound).
    /// The dissector marks the affected call `flags.gap` and resynchronises at the next message boundary.
    func gap(from side: StreamSide, length: Int, session: ConnectionSession)
    /// The connection ended (FIN, RST, idle timeout or end of capture): emit what is pending.
    func finish(session: ConnectionSession)
}

/// A stream protocol the engine can detect: content probe, port hints and factory.
public struct DissectorRegistration: Sendable {
    /// The protocol name used in statistics and flow records.
    public var name: String
    /// Ports the protocol usually runs on: probed first, never required.
    public var portHints: [UInt16]
    /// Looks at the first bytes one end sent.
    public var probe: @Sendable (UnsafeRawBufferPointer) -> ProbeResult
    /// Makes the per-connection dissector.
    public var make: @Sendable (DissectionConfiguration) -> any StreamDissector

    public init(
        name: String, portHints: [UInt16], probe: @escaping @Sendable (UnsafeRawBufferPointer) -> ProbeResult,
        make: @escaping @Sendable (DissectionConfiguration) -> any StreamDissector
    ) {
        self.name = name
        self.portHints = portHints
        self.probe = probe
        self.make = make
    }
}

/// Where the engine delivers its results.
public protocol DissectionSink: AnyObject {
    /// A finished call, handed over (a call is large: copying it costs a retain and a release of each of its fields).
    func emit(call: consuming Call)
    /// A finished connection record.
    func emit(flow: Flow)
    /// A DNS answer mapped `ip` to `name` (the name that was asked), for attribution.
    func learned(name: String, for ip: String)
}

extension DissectionSink {
    public func learned(name: String, for ip: String) {}
}
