import FathomDissect
import FathomModel
import FathomPcapCapture
import FathomRecording

/// Who sent or received a packet, as far as the agent knows, for the per-packet comments of an export.
/// The agent's default knows the capture source, direction, cgroup (and from its path the container and pod uid)
/// and process id; a provider that knows pods by name (the workload table) can replace it.
protocol PacketContextProvider: Sendable {
    /// The comment for a packet whose local socket has port `localPort` (nil when unknown): one line of
    /// `key=value` pairs.
    func comment(for metadata: PacketMetadata, localPort: UInt16?) -> String
}

/// One L4 connection, either way round: the pair of endpoints a KFL-selected call travelled on.
struct ConnectionKey: Hashable, Sendable {
    let low: String
    let high: String

    init(_ a: (ip: String, port: Int), _ b: (ip: String, port: Int)) {
        let x = "\(a.ip)|\(a.port)", y = "\(b.ip)|\(b.port)"
        (low, high) = x < y ? (x, y) : (y, x)
    }
}

/// Streams a completed snapshot as one pcapng, optionally narrowed by time, by a libpcap BPF filter and by a
/// set of connections, each packet commented with its context. Produces the file in chunks of about a megabyte
/// so an HTTP response can send it as it goes. Single-threaded.
final class SnapshotExport {
    struct Narrowing {
        var startNanoseconds: UInt64 = 0
        var endNanoseconds: UInt64 = .max
        var filter: PacketFilter?
        var connections: Set<ConnectionKey>?
    }

    static let chunkBytes = 1 << 20

    private let files: [String]
    private let narrowing: Narrowing
    private let context: PacketContextProvider
    private var fileIndex = 0
    private var reader: PacketFileReader?
    private var pending: [UInt8] = []
    private var outputError: Int32 = 0
    private lazy var writer = PcapngWriter(bufferCapacity: 256 << 10, application: "fathom snapshot export") {
        [unowned self] bytes in
        pending.append(contentsOf: bytes)
        return 0
    }
    private var finished = false
    /// Packets written so far.
    private(set) var packets: UInt64 = 0
    /// Comments by (cgroup, pid, local port, source, direction): many packets share one context.
    private var comments: [ContextKey: [UInt8]] = [:]

    private struct ContextKey: Hashable {
        var cgroup: UInt64
        var pid: UInt32
        var localPort: UInt16
        var source: CaptureSource
        var direction: PacketDirection
    }

    init(files: [String], narrowing: Narrowing, context: PacketContextProvider) {
        self.files = files
        self.narrowing = narrowing
        self.context = context
        pending.reserveCapacity(Self.chunkBytes + (256 << 10))
    }

    /// The next piece of the pcapng file, or nil after the last.
    func nextChunk() throws -> [UInt8]? {
        if finished { return nil }
        while pending.count < Self.chunkBytes {
            if reader == nil {
                guard fileIndex < files.count else {
                    try writer.flush()
                    finished = true
                    break
                }
                reader = try PacketFileReader(path: files[fileIndex])
                fileIndex += 1
            }
            guard let current = reader else { break }
            var budget = 4096
            while budget > 0, let record = try current.next() {
                budget -= 1
                try write(record)
            }
            if budget > 0 { reader = nil }  // the file is done
        }
        if pending.isEmpty && finished { return nil }
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    private func write(_ record: PacketRecord) throws {
        let m = record.metadata
        guard m.timestampNanoseconds >= narrowing.startNanoseconds && m.timestampNanoseconds <= narrowing.endNanoseconds
        else { return }
        if let filter = narrowing.filter,
            !filter.matches(record.bytes, originalLength: m.originalLength, linkType: m.linkType)
        {
            return
        }
        // Decoded only when needed: for the connection filter, or for the local port of a socket capture saw.
        let decoded: DecodedPacket?
        if narrowing.connections != nil || m.cgroupID != 0,
            case .success(let packet) = PacketDecoder.decode(record.bytes, linkType: m.linkType) {
            decoded = packet
        } else {
            decoded = nil
        }
        if let connections = narrowing.connections {
            guard let decoded,
                connections.contains(ConnectionKey(
                    (decoded.source.description, Int(decoded.sourcePort)),
                    (decoded.destination.description, Int(decoded.destinationPort))))
            else { return }
        }
        // The local end: the source of what this host sent, the destination of what it received.
        let localPort = decoded.flatMap { packet in
            m.direction == .outbound ? packet.sourcePort : m.direction == .inbound ? packet.destinationPort : nil
        }
        let key = ContextKey(cgroup: m.cgroupID, pid: m.processID, localPort: localPort ?? 0, source: m.source,
                             direction: m.direction)
        let comment: [UInt8]
        if let known = comments[key] {
            comment = known
        } else {
            comment = Array(context.comment(for: m, localPort: localPort).utf8)
            if comments.count < 100_000 { comments[key] = comment }
        }
        try comment.withUnsafeBytes { try writer.append(m, record.bytes, comment: $0) }
        packets += 1
    }
}
