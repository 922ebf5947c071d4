// Fuzzes DNS message parsing (names, compression pointers, record data) through UDP port 53 and TCP port 53.
import FathomDissect
import FathomModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let payload = Array(UnsafeBufferPointer(start: data, count: size))
    let engine = DissectionEngine(node: "f", sink: DiscardingSink())
    let client = IPAddress(ipv4: 0x0a00_0001)
    let server = IPAddress(ipv4: 0x0a00_0035)
    let metadata = PacketMetadata(timestampNanoseconds: 1, originalLength: 0, linkType: LinkType.ethernet, source: .pcap)
    for (from, to, fromPort, toPort) in [(client, server, UInt16(5353), UInt16(53)), (server, client, 53, 5353)] {
        SyntheticPacket.udp(from: from, fromPort, to: to, toPort, payload: payload).withUnsafeBytes { engine.process(metadata, $0) }
    }
    // The same bytes as a length-prefixed DNS-over-TCP stream.
    let framed = [UInt8(size >> 8 & 0xff), UInt8(size & 0xff)] + payload
    SyntheticPacket.tcp(from: client, 40000, to: server, 53, sequence: 1, flags: [.ack, .psh], payload: framed)
        .withUnsafeBytes { engine.process(metadata, $0) }
    engine.finish()
    return 0
}
