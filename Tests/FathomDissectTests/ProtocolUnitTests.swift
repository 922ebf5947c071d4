import FathomModel
import XCTest

@testable import FathomDissect

final class HPACKTests: XCTestCase {
    /// RFC 7541 C.4: three requests with Huffman strings sharing one dynamic table.
    func testRFC7541RequestExamplesWithHuffmanAndDynamicTable() throws {
        var decoder = HPACKDecoder()
        let blocks = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
                      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
        var decoded: [[Header]] = []
        for hex in blocks {
            let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let start = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
            }
            decoded.append(try bytes.withUnsafeBytes { raw throws(HPACKDecoder.Failure) in try decoder.decode(raw) })
        }
        XCTAssertEqual(decoded[0].map(\.value), ["GET", "http", "/", "www.example.com"])
        XCTAssertEqual(decoded[1].last, Header(name: "cache-control", value: "no-cache"))
        XCTAssertEqual(decoded[1].count, 5)
        XCTAssertEqual(decoded[2].map(\.name), [":method", ":scheme", ":path", ":authority", "custom-key"])
        XCTAssertEqual(decoded[2].last?.value, "custom-value")
    }

    func testBadIndexAndTruncationThrow() {
        var decoder = HPACKDecoder()
        for block: [UInt8] in [[0xff, 0x7f], [0xbe], [0x40, 0x85, 0x61], [0x3f, 0xff, 0xff, 0xff, 0xff]] {
            XCTAssertThrowsError(try block.withUnsafeBytes { raw throws(HPACKDecoder.Failure) in try decoder.decode(raw) })
        }
    }
}

final class DNSUnitTests: XCTestCase {
    func testCompressionPointerLoopsAreRejected() {
        // Header with one question whose name points at itself.
        let message: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]
        XCTAssertNil(message.withUnsafeBytes { DNSMessage.parse($0) })
    }

    /// A DNS exchange between two local sockets reaches eBPF twice: one call, one conversation, copies counted.
    func testBothEBPFCopiesOfALocalQueryGiveOneCall() {
        let client = IPAddress("127.0.0.1")!
        let server = IPAddress("127.0.0.53")!
        let query: [UInt8] = [0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x62, 0, 0, 1, 0, 1]
        let answer: [UInt8] = [0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0x62, 0, 0, 1, 0, 1,
                               0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7]
        let packets = [
            (SyntheticPacket.udp(from: client, 4000, to: server, 53, payload: query), UInt64(11), UInt64(100)),
            (SyntheticPacket.udp(from: client, 4000, to: server, 53, payload: query), 22, 101),
            (SyntheticPacket.udp(from: server, 53, to: client, 4000, payload: answer), 22, 300),
            (SyntheticPacket.udp(from: server, 53, to: client, 4000, payload: answer), 11, 301),
        ]
        let sink = CollectingSink()
        let engine = DissectionEngine(node: "n1", sink: sink)
        for (bytes, cookie, time) in packets {
            bytes.withUnsafeBytes {
                engine.process(
                    PacketMetadata(
                        timestampNanoseconds: time * 1_000_000, originalLength: 0, linkType: LinkType.ethernet,
                        source: .ebpf, socketCookie: cookie), $0)
            }
        }
        engine.finish()
        XCTAssertEqual(sink.calls.count, 1)
        XCTAssertEqual(sink.calls.first?.latencyMs, 201)  // as the client socket (the first observer) saw it
        XCTAssertEqual(sink.calls.first?.dns?.answers.first?.data, "10.9.8.7")
        XCTAssertEqual(sink.calls.first?.src.ip, "127.0.0.1")
        XCTAssertEqual(sink.flows.map { [$0.packetsSent, $0.packetsReceived] }, [[1, 1]])
        XCTAssertEqual(engine.statistics.duplicateCopies, 2)
        XCTAssertEqual(sink.names.first?.ip, "10.9.8.7")
        XCTAssertEqual(sink.names.first?.name, "b")
    }

    func testUnansweredQueryTimesOut() {
        let query: [UInt8] = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1]
        let bytes = SyntheticPacket.udp(from: IPAddress("10.0.0.1")!, 5555, to: IPAddress("10.0.0.53")!, 53, payload: query)
        let sink = CollectingSink()
        let engine = DissectionEngine(node: "n1", sink: sink)
        bytes.withUnsafeBytes {
            engine.process(PacketMetadata(timestampNanoseconds: 1_000_000_000, originalLength: 0, linkType: LinkType.ethernet, source: .pcap), $0)
        }
        engine.flush(nowNanoseconds: 3_000_000_000)
        XCTAssertTrue(sink.calls.isEmpty)
        engine.flush(nowNanoseconds: 7_000_000_000)
        XCTAssertEqual(sink.calls.map(\.path), ["a"])
        XCTAssertEqual(sink.calls.first?.method, "A")
        XCTAssertEqual(sink.calls.first?.flags.noResponse, true)
        XCTAssertEqual(sink.calls.first?.dns?.transactionID, 0x1234)
    }
}

final class DigestTests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(md5Hex([]), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(md5Hex(Array("abc".utf8)), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(
            md5Hex(Array(String(repeating: "1234567890", count: 8).utf8)), "57edf4a22be3c955ac49da2e2107b67a")
        XCTAssertEqual(sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha256Hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}

final class PacketDecoderTests: XCTestCase {
    private let tcp = SyntheticPacket.tcp(
        from: IPAddress("192.168.1.10")!, 1234, to: IPAddress("192.168.1.20")!, 80, sequence: 7, flags: .ack,
        payload: Array("hello".utf8))

    private func decode(_ bytes: [UInt8], _ linkType: UInt16) -> Result<DecodedPacket, PacketDecodeFailure> {
        bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: linkType) }
    }

    private func payload(_ bytes: [UInt8], _ linkType: UInt16) -> String? {
        guard case .success(let packet) = decode(bytes, linkType) else { return nil }
        return String(decoding: bytes[packet.payloadOffset..<(packet.payloadOffset + packet.payloadLength)], as: UTF8.self)
    }

    func testEveryLinkTypeReachesTheSamePayload() {
        let ip = Array(tcp[14...])
        XCTAssertEqual(payload(tcp, LinkType.ethernet), "hello")
        XCTAssertEqual(payload(ip, LinkType.rawIP), "hello")
        XCTAssertEqual(payload(ip, LinkType.ipv4), "hello")
        XCTAssertEqual(payload([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00] + ip, LinkType.linuxCooked), "hello")
        XCTAssertEqual(payload([0x08, 0x00, 0, 0] + [UInt8](repeating: 0, count: 16) + ip, LinkType.linuxCookedV2), "hello")
        XCTAssertEqual(payload([2, 0, 0, 0] + ip, LinkType.loopbackBSD), "hello")
        XCTAssertEqual(payload([0, 0, 0, 2] + ip, LinkType.loopbackBSD), "hello")
        XCTAssertEqual(payload(Array(tcp[0..<12]) + [0x81, 0x00, 0, 5] + Array(tcp[12...]), LinkType.ethernet), "hello")
        guard case .failure(.unsupportedLinkType) = decode(tcp, 147) else { return XCTFail("link type 147 accepted") }
    }

    func testIPv6WithExtensionHeaders() {
        let v6 = SyntheticPacket.tcp(
            from: IPAddress("fd00::1")!, 1234, to: IPAddress("fd00::2")!, 443, sequence: 1, flags: .ack,
            payload: Array("six".utf8))
        XCTAssertEqual(payload(v6, LinkType.ethernet), "six")
        // Insert a hop-by-hop header (8 bytes) in front of TCP.
        var withHop = v6
        withHop[20] = 0  // next header: hop-by-hop
        withHop.insert(contentsOf: [6, 0, 0, 0, 0, 0, 0, 0], at: 54)
        let length = Int(withHop[18]) << 8 | Int(withHop[19]) + 8
        withHop[18] = UInt8(length >> 8)
        withHop[19] = UInt8(length & 0xff)
        XCTAssertEqual(payload(withHop, LinkType.ethernet), "six")
        if case .success(let packet) = decode(v6, LinkType.ethernet) {
            XCTAssertEqual(packet.source.description, "fd00::1")
        } else {
            XCTFail("IPv6 not decoded")
        }
        var fragment = v6
        fragment[20] = 44
        guard case .failure(.fragment) = decode(fragment, LinkType.ethernet) else { return XCTFail("fragment not flagged") }
    }

    func testFragmentsAreCountedAndTruncatedPacketsNeverCrash() {
        var fragment = tcp
        fragment[20] = 0x20  // more fragments
        let sink = CollectingSink()
        let engine = DissectionEngine(node: "n", sink: sink)
        let metadata = PacketMetadata(timestampNanoseconds: 1, originalLength: 0, linkType: LinkType.ethernet, source: .pcap)
        fragment.withUnsafeBytes { engine.process(metadata, $0) }
        for length in 0..<tcp.count {
            Array(tcp[0..<length]).withUnsafeBytes { engine.process(metadata, $0) }
        }
        XCTAssertEqual(engine.statistics.fragments, 1)
        XCTAssertGreaterThan(engine.statistics.malformedPackets, 0)
    }

    func testIPv6TextForms() {
        XCTAssertEqual(IPAddress("2001:db8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")
        XCTAssertEqual(IPAddress("::1")?.description, "::1")
        XCTAssertEqual(IPAddress("::")?.description, "::")
        XCTAssertEqual(IPAddress("fe80::1:2")?.description, "fe80::1:2")
        XCTAssertNil(IPAddress("1::2::3"))
        XCTAssertNil(IPAddress("300.1.1.1"))
    }
}
