import FathomDissect
import FathomModel

/// Scripts a TCP connection as packets with consistent sequence numbers, for tests.
struct Conversation {
    var client = IPAddress("10.0.0.1")!
    var clientPort: UInt16 = 40000
    var server = IPAddress("10.0.0.2")!
    var serverPort: UInt16 = 80
    var clientSequence: UInt32 = 1000
    var serverSequence: UInt32 = 900_000
    /// Packet time, advanced 1 ms per packet.
    var time: UInt64 = 1_700_000_000_000_000_000
    var packets: [TestPcapFile.Packet] = []
    var linkType = LinkType.ethernet

    init() {}

    init(client: String, server: String) {
        self.client = IPAddress(client)!
        self.server = IPAddress(server)!
    }

    mutating func handshake() {
        append(fromClient: true, flags: .syn, sequence: clientSequence &- 1, ack: 0)
        append(fromClient: false, flags: [.syn, .ack], sequence: serverSequence &- 1, ack: clientSequence)
        append(fromClient: true, flags: .ack, sequence: clientSequence, ack: serverSequence)
    }

    /// Sends `bytes` in segments of at most `segment` bytes; returns the indexes of the packets made.
    @discardableResult
    mutating func send(fromClient: Bool, _ bytes: [UInt8], segment: Int = 1000) -> [Int] {
        var indexes: [Int] = []
        var offset = 0
        while offset < bytes.count {
            let chunk = Array(bytes[offset..<min(offset + segment, bytes.count)])
            indexes.append(packets.count)
            append(
                fromClient: fromClient, flags: [.ack, .psh], sequence: fromClient ? clientSequence : serverSequence,
                ack: fromClient ? serverSequence : clientSequence, payload: chunk)
            if fromClient { clientSequence &+= UInt32(chunk.count) } else { serverSequence &+= UInt32(chunk.count) }
            offset += chunk.count
        }
        return indexes
    }

    @discardableResult
    mutating func send(fromClient: Bool, _ text: String, segment: Int = 1000) -> [Int] {
        send(fromClient: fromClient, Array(text.utf8), segment: segment)
    }

    mutating func close() {
        append(fromClient: true, flags: [.fin, .ack], sequence: clientSequence, ack: serverSequence)
        append(fromClient: false, flags: [.fin, .ack], sequence: serverSequence, ack: clientSequence &+ 1)
        append(fromClient: true, flags: .ack, sequence: clientSequence &+ 1, ack: serverSequence &+ 1)
    }

    mutating func reset(fromClient: Bool) {
        append(fromClient: fromClient, flags: .rst, sequence: fromClient ? clientSequence : serverSequence, ack: 0)
    }

    mutating func append(fromClient: Bool, flags: TCPFlags, sequence: UInt32, ack: UInt32, payload: [UInt8] = []) {
        let bytes = SyntheticPacket.tcp(
            from: fromClient ? client : server, fromClient ? clientPort : serverPort, to: fromClient ? server : client,
            fromClient ? serverPort : clientPort, sequence: sequence, acknowledgment: ack, flags: flags, payload: payload)
        packets.append(
            TestPcapFile.Packet(
                metadata: PacketMetadata(
                    timestampNanoseconds: time, originalLength: UInt32(bytes.count), linkType: linkType, source: .pcap),
                bytes: bytes))
        time += 1_000_000
    }
}
