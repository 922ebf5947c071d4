import FathomModel
import XCTest

@testable import FathomStore

final class CallCodecTests: XCTestCase {
    static let full = Call(
        id: "node-a-1", ts: -5, node: "node-a", captureSource: .ebpfTLS, proto: "grpc",
        src: Endpoint(ip: "10.0.0.1", port: 40000, pod: "frontend-1", namespace: "shop", service: "frontend", node: "node-a",
                      container: "app", process: "java", pid: 4242, dns: "front.local", labels: ["app": "web", "tier": "1"],
                      containerID: String(repeating: "ab", count: 32), resolution: "pod"),
        dst: Endpoint(ip: "fe80::1", port: 443), method: "POST", path: "/cart.Cart/AddItem", query: "a=1&b=é", status: 14,
        latencyMs: 12.345, requestSize: 1 << 40, responseSize: 0,
        request: Message(headers: [Header(name: "Host", value: "cart"), Header(name: "X", value: "")],
                         trailers: [Header(name: "t", value: "v")], bodySize: 12, body: "aGVsbG8=", bodyEncoding: "base64",
                         bodyTruncated: true),
        response: Message(), flags: CallFlags(gap: true, truncated: false, noResponse: true, noRequest: false),
        http: HTTPInfo(version: "HTTP/2", host: "cart", statusText: "", upgrade: "h2c", graphqlOperation: "Q"),
        grpc: GRPCInfo(service: "cart.Cart", method: "AddItem", status: 14, message: "unavailable", requestMessages: 2,
                       responseMessages: 0),
        dns: DNSInfo(transactionID: 65535, questions: [DNSInfo.Question(name: "a.b", type: "AAAA")],
                     answers: [DNSInfo.Answer(name: "a.b", type: "AAAA", data: "::1", ttl: .max)], rcode: "NOERROR"),
        tls: TLSInfo(version: "TLS 1.3", sni: "cart", alpn: ["h2", "http/1.1"], cipher: "TLS_AES_128_GCM_SHA256", ja3: "x", ja4: "y"),
        connectionID: "c-17")

    func testEveryFieldRoundTrips() throws {
        var bytes: [UInt8] = []
        CallCodec.encode(Self.full, into: &bytes)
        XCTAssertEqual(try bytes.withUnsafeBytes { try CallCodec.decode($0) }, Self.full)
        let minimal = Call(id: "", ts: .max, node: "", captureSource: .pcap, proto: "", src: Endpoint(ip: "", port: 0),
                           dst: Endpoint(ip: "", port: -1))
        bytes.removeAll()
        CallCodec.encode(minimal, into: &bytes)
        XCTAssertEqual(try bytes.withUnsafeBytes { try CallCodec.decode($0) }, minimal)
    }

    /// Records name the capture source by its position in `allCases`: every source comes back as itself.
    func testEveryCaptureSourceRoundTrips() throws {
        for source in CaptureSource.allCases {
            var call = Self.full
            call.captureSource = source
            var bytes: [UInt8] = []
            CallCodec.encode(call, into: &bytes)
            XCTAssertEqual(try bytes.withUnsafeBytes { try CallCodec.decode($0) }.captureSource, source)
        }
    }

    /// Every truncation and every single-byte corruption of a record is an error or a call, never a crash.
    func testDamagedRecordsAreErrorsWithOffsets() throws {
        var bytes: [UInt8] = []
        CallCodec.encode(Self.full, into: &bytes)
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try bytes[..<length].withUnsafeBytes { try CallCodec.decode($0) }) { error in
                XCTAssertTrue("\(error)".contains("at byte"), "\(error)")
            }
        }
        for index in bytes.indices {
            for value: UInt8 in [0x00, 0x7f, 0x80, 0xff] {
                var damaged = bytes
                damaged[index] = value
                _ = try? damaged.withUnsafeBytes { try CallCodec.decode($0) }
            }
        }
        XCTAssertThrowsError(try ([9] as [UInt8]).withUnsafeBytes { try CallCodec.decode($0) }) { error in
            XCTAssertTrue("\(error)".contains("unknown format 9"), "\(error)")
        }
    }
}
