import FathomModel
import XCTest

@testable import FathomDissect

/// However the bytes are cut into segments, the same calls come out: messages split across segments are held and
/// completed from the next ones.
final class SegmentationTests: XCTestCase {
    private struct Seen: Equatable {
        var path: String
        var status: Int
        var requestSize: Int
        var responseSize: Int
        /// The body's length and a digest of it, to keep failure messages short.
        var responseBody: String
        var flags: CallFlags
    }

    private func seen(_ calls: [Call]) -> [Seen] {
        calls.map {
            Seen(path: $0.path, status: $0.status, requestSize: $0.requestSize, responseSize: $0.responseSize,
                 responseBody: digest($0.response?.body ?? ""), flags: $0.flags)
        }.sorted { $0.path < $1.path }
    }

    private func digest(_ body: String) -> String {
        let sum = body.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        return "\(body.utf8.count) bytes, FNV-1a \(String(sum, radix: 16))"
    }

    /// HTTP/2: frames from a few bytes to 12 KB, so frames straddle segments of every size.
    private func http2(segment: Int) -> [Call] {
        var conversation = Conversation()
        conversation.handshake()
        var client = HTTP2Frames.preface + HTTP2Frames.settings
        var server = HTTP2Frames.settings
        for (k, stream) in stride(from: UInt32(1), through: 39, by: 2).enumerated() {
            client += HTTP2Frames.headers(stream: stream, endStream: true, [(":method", "GET"), (":path", "/s\(stream)")])
            let body = [UInt8](repeating: UInt8(ascii: "a") + UInt8(k % 26), count: (k * 997) % 12_000)
            server += HTTP2Frames.headers(stream: stream, endStream: false, [(":status", "200")])
            server += HTTP2Frames.data(stream: stream, endStream: true, body)
        }
        conversation.send(fromClient: true, client, segment: segment)
        conversation.send(fromClient: false, server, segment: segment)
        conversation.close()
        return dissect(conversation.packets).sink.calls
    }

    /// HTTP/1.1 pipelined: heads and bodies straddling segments.
    private func http1(segment: Int) -> [Call] {
        var conversation = Conversation()
        conversation.handshake()
        var client = ""
        var server = ""
        for k in 0..<30 {
            client += "GET /r\(k) HTTP/1.1\r\nHost: x\r\nX-Pad: \(String(repeating: "p", count: k * 37))\r\n\r\n"
            let body = String(repeating: "b", count: (k * 1_301) % 9_000)
            server += "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        conversation.send(fromClient: true, client, segment: segment)
        conversation.send(fromClient: false, server, segment: segment)
        conversation.close()
        return dissect(conversation.packets).sink.calls
    }

    func testEverySegmentSizeGivesTheSameCalls() {
        let wholeHTTP2 = seen(http2(segment: 60_000))
        let wholeHTTP1 = seen(http1(segment: 60_000))
        XCTAssertEqual(wholeHTTP2.count, 20)
        XCTAssertEqual(wholeHTTP1.count, 30)
        XCTAssertTrue(wholeHTTP2.allSatisfy { $0.status == 200 && $0.flags == CallFlags() })
        for segment in [1, 9, 100, 1_000, 4_095, 4_097, 5_000, 9_000, 17_000, 33_000] {
            XCTAssertEqual(seen(http2(segment: segment)), wholeHTTP2, "HTTP/2, segments of \(segment)")
            XCTAssertEqual(seen(http1(segment: segment)), wholeHTTP1, "HTTP/1.1, segments of \(segment)")
        }
    }
}
