// Shared by the stream-protocol harnesses (compiled into every harness that imports FathomDissect): the input is split at
// 0xff bytes into chunks sent alternately by the client and the server of one TCP connection.
import FathomDissect
import FathomModel

final class DiscardingSink: DissectionSink {
    func emit(call: Call) {}
    func emit(flow: Flow) {}
}

/// Feeds one fuzz input to a fresh engine as a conversation with a server on `serverPort`; `prefix` goes before the
/// client's first chunk (the HTTP/2 preface, say), so the fuzzer's bytes reach the parser past detection.
func replayConversation(_ data: UnsafePointer<UInt8>, _ size: Int, serverPort: UInt16, prefix: [UInt8] = []) {
    let input = UnsafeBufferPointer(start: data, count: size)
    let engine = DissectionEngine(node: "f", sink: DiscardingSink())
    let client = IPAddress(ipv4: 0x0a00_0001)
    let server = IPAddress(ipv4: 0x0a00_0002)
    var sequences: [UInt32] = [1, 1]
    var time: UInt64 = 1_000_000_000
    var fromClient = true
    for (index, chunk) in input.split(separator: 0xff, omittingEmptySubsequences: false).enumerated() {
        let payload = (index == 0 ? prefix : []) + Array(chunk)
        let side = fromClient ? 0 : 1
        let packet = SyntheticPacket.tcp(
            from: fromClient ? client : server, fromClient ? 40000 : serverPort, to: fromClient ? server : client,
            fromClient ? serverPort : 40000, sequence: sequences[side], flags: [.ack, .psh], payload: payload)
        sequences[side] &+= UInt32(payload.count)
        time += 1_000_000
        packet.withUnsafeBytes {
            engine.process(
                PacketMetadata(timestampNanoseconds: time, originalLength: UInt32($0.count), linkType: LinkType.ethernet, source: .pcap), $0)
        }
        fromClient.toggle()
    }
    engine.finish()
}
