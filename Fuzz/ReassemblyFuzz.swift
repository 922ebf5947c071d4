// Fuzzes TCP reassembly and every stream dissector behind it: the input is a script of segments (direction, flags,
// sequence offset, payload) on one connection, so overlaps, holes, retransmissions and garbage all occur.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    var configuration = DissectionConfiguration()
    configuration.maxBufferedBytesPerDirection = 4096
    configuration.maxBufferedBytesTotal = 16384
    let engine = DissectionEngine(configuration, node: "f", sink: DiscardingSink())
    let client = IPAddress(ipv4: 0x0a00_0001)
    let server = IPAddress(ipv4: 0x0a00_0002)
    let ports: [UInt16] = [80, 443, 53, 50051]
    var time: UInt64 = 1_000_000_000
    var offset = 0
    var sequences: [UInt32] = [1000, 500_000]
    // Each record: control byte, sequence jitter byte, length byte, then that many payload bytes.
    while offset + 3 <= input.count {
        let control = input[offset]
        let jitter = Int(Int8(bitPattern: input[offset + 1]))
        let length = min(Int(input[offset + 2]), input.count - offset - 3)
        let payload = Array(input[(offset + 3)..<(offset + 3 + length)])
        offset += 3 + length
        let fromClient = control & 1 == 0
        let side = fromClient ? 0 : 1
        let flags = TCPFlags(rawValue: (control >> 1) & 0x1f)
        let port = ports[Int(control >> 6)]
        let sequence = UInt32(bitPattern: Int32(truncatingIfNeeded: Int(sequences[side]) + jitter * 7))
        let packet = SyntheticPacket.tcp(
            from: fromClient ? client : server, fromClient ? 40000 : port, to: fromClient ? server : client,
            fromClient ? port : 40000, sequence: sequence, flags: flags.union(.ack), payload: payload)
        sequences[side] = sequence &+ UInt32(payload.count)
        time += UInt64(control) * 10_000_000
        packet.withUnsafeBytes {
            engine.process(
                PacketMetadata(timestampNanoseconds: time, originalLength: UInt32($0.count), linkType: LinkType.ethernet, source: .pcap), $0)
        }
    }
    engine.finish()
    precondition(engine.statistics.bufferedBytes == 0, "bytes left buffered after finish")
    return 0
}
