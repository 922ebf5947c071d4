import FathomModel
import XCTest

@testable import FathomDissect

/// The recording carries both the ciphertext of a TLS connection (packets) and its plaintext (synthesized `ebpf_tls`
/// segments) on the same 5-tuple: each must be its own stream, or the ciphertext corrupts the plaintext's calls.
final class PlaintextKeyingTests: XCTestCase {
    func testPlaintextAndCiphertextOfOneConnectionAreDissectedApart() {
        let client = IPAddress("10.0.0.1")!
        let server = IPAddress("10.0.0.2")!
        let request = Array("GET /secret HTTP/1.1\r\nHost: s\r\n\r\n".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        let cipherOut = [UInt8](repeating: 0x17, count: 1) + [3, 3, 0, 60] + [UInt8](repeating: 0xA5, count: 60)
        let cipherIn = [UInt8](repeating: 0x17, count: 1) + [3, 3, 0, 50] + [UInt8](repeating: 0x5A, count: 50)
        // Interleaved as the drainer delivers them: ciphertext and plaintext of each direction, one after the other.
        let packets: [([UInt8], CaptureSource)] = [
            (SyntheticPacket.tcp(from: client, 40000, to: server, 443, sequence: 1000, flags: [.syn]), .ebpf),
            (SyntheticPacket.tcp(from: server, 443, to: client, 40000, sequence: 5000, acknowledgment: 1001, flags: [.syn, .ack]), .ebpf),
            (SyntheticPacket.tcp(from: client, 40000, to: server, 443, sequence: 1001, acknowledgment: 5001, flags: [.ack, .psh], payload: cipherOut), .ebpf),
            (SyntheticPacket.tcp(from: client, 40000, to: server, 443, sequence: 0, flags: [.ack, .psh], payload: request), .ebpfTLS),
            (SyntheticPacket.tcp(from: server, 443, to: client, 40000, sequence: 5001, acknowledgment: 1066, flags: [.ack, .psh], payload: cipherIn), .ebpf),
            (SyntheticPacket.tcp(from: server, 443, to: client, 40000, sequence: 0, flags: [.ack, .psh], payload: response), .ebpfTLS),
        ]
        let sink = CollectingSink()
        let engine = DissectionEngine(node: "n1", sink: sink)
        for (index, (bytes, source)) in packets.enumerated() {
            bytes.withUnsafeBytes {
                engine.process(
                    PacketMetadata(
                        timestampNanoseconds: UInt64(index + 1) * 1_000_000, originalLength: UInt32(bytes.count),
                        linkType: LinkType.ethernet, source: source), $0)
            }
        }
        engine.finish()
        let http = sink.calls.filter { $0.proto == "http" }
        XCTAssertEqual(http.map(\.path), ["/secret"])
        XCTAssertEqual(http.first?.status, 200)
        XCTAssertEqual(http.first?.captureSource, .ebpfTLS)
        XCTAssertEqual(Set(sink.flows.map(\.captureSource)), [.ebpf, .ebpfTLS], "one flow for each stream")
    }
}
