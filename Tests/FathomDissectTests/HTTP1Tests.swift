import FathomModel
import XCTest

@testable import FathomDissect

final class HTTP1Tests: XCTestCase {
    func testPipelinedRequestsPairInOrder() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2?q=v HTTP/1.1\r\nHost: h\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        conversation.send(
            fromClient: false,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                + "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\nX-Trailer: t\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", segment: 17)
        conversation.close()
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/1", "/2", "/3"])
        XCTAssertEqual(sink.calls.map(\.status), [200, 404, 200])
        XCTAssertEqual(sink.calls[1].query, "q=v")
        XCTAssertEqual(sink.calls.map { $0.response?.body }, ["one", "two", ""])
        XCTAssertEqual(sink.calls[1].response?.trailers, [Header(name: "X-Trailer", value: "t")])
        XCTAssertEqual(sink.calls[1].http?.statusText, "Not Found")
        XCTAssertTrue(sink.calls.allSatisfy { !$0.flags.noResponse && !$0.flags.truncated })
    }

    func testBodyPreviewIsCappedAndMarked() {
        var configuration = DissectionConfiguration()
        configuration.bodyPreviewLimit = 16
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "POST /up HTTP/1.1\r\nContent-Length: 40\r\n\r\n" + String(repeating: "b", count: 40))
        conversation.send(fromClient: false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        let (sink, _) = dissect(conversation.packets, configuration: configuration)
        XCTAssertEqual(sink.calls.count, 1)
        XCTAssertEqual(sink.calls.first?.status, 201)
        XCTAssertEqual(sink.calls.first?.request?.body, String(repeating: "b", count: 16))
        XCTAssertEqual(sink.calls.first?.request?.bodySize, 40)
        XCTAssertEqual(sink.calls.first?.request?.bodyTruncated, true)
        XCTAssertEqual(sink.calls.first?.flags.truncated, true)
    }

    func testResponseUntilCloseAndBinaryBodyAsBase64() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "GET /bin HTTP/1.0\r\n\r\n")
        conversation.send(fromClient: false, Array("HTTP/1.0 200 OK\r\n\r\n".utf8) + [0xff, 0xfe, 0x00, 0x01])
        conversation.close()
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.first?.response?.body, "//4AAQ==")
        XCTAssertEqual(sink.calls.first?.response?.bodyEncoding, "base64")
        XCTAssertEqual(sink.calls.first?.http?.version, "HTTP/1.0")
    }

    func testWebSocketUpgradeSummarisesMessages() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        conversation.send(fromClient: false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        let mask: [UInt8] = [1, 2, 3, 4]
        let text = Array("hi there".utf8)
        conversation.send(fromClient: true, [0x81, 0x80 | UInt8(text.count)] + mask + text.enumerated().map { $0.1 ^ mask[$0.0 & 3] })
        conversation.send(fromClient: false, [0x02, 3, 9, 9, 9, 0x80, 2, 7, 7])  // binary in two fragments
        conversation.send(fromClient: false, [0x88, 2, 0x03, 0xe8])
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.proto), ["http", "websocket", "websocket", "websocket"])
        XCTAssertEqual(sink.calls.first?.status, 101)
        XCTAssertEqual(sink.calls.first?.http?.upgrade, "websocket")
        XCTAssertEqual(sink.calls[1].method, "text")
        XCTAssertEqual(sink.calls[1].request?.body, "hi there")
        XCTAssertEqual(sink.calls[1].path, "/chat")
        XCTAssertEqual(sink.calls[2].method, "binary")
        XCTAssertEqual(sink.calls[2].response?.bodySize, 5)
        XCTAssertEqual(sink.calls[2].src.port, 80)
        XCTAssertEqual(sink.calls[3].method, "close")
        XCTAssertEqual(sink.calls[3].status, 1000)
    }

    func testH2CUpgradeContinuesAsHTTP2() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(
            fromClient: true,
            "GET /up?x=1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        conversation.send(
            fromClient: false,
            Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8) + HTTP2Frames.settings
                + HTTP2Frames.headers(stream: 1, endStream: false, [(":status", "200")])
                + HTTP2Frames.data(stream: 1, endStream: true, Array("upgraded body".utf8)))
        conversation.send(
            fromClient: true,
            HTTP2Frames.preface + HTTP2Frames.settings
                + HTTP2Frames.headers(stream: 3, endStream: true, [(":method", "GET"), (":path", "/next"), (":authority", "h")]))
        conversation.send(fromClient: false, HTTP2Frames.headers(stream: 3, endStream: true, [(":status", "404")]))
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.proto), ["http", "http2", "http2"])
        XCTAssertEqual(sink.calls.first?.http?.upgrade, "h2c")
        XCTAssertEqual(sink.calls[1].path, "/up")
        XCTAssertEqual(sink.calls[1].query, "x=1")
        XCTAssertEqual(sink.calls[1].response?.body, "upgraded body")
        XCTAssertEqual(sink.calls[2].path, "/next")
        XCTAssertEqual(sink.calls[2].status, 404)
    }

    func testGraphQLOperationFromQueryText() {
        XCTAssertEqual(GraphQL.describe(query: "mutation AddUser($n: String) { add(n: $n) }"), "AddUser")
        XCTAssertEqual(GraphQL.describe(query: "  { users { id } }"), "query")
        XCTAssertEqual(
            GraphQL.operation(path: "/api", contentType: "application/json", body: Message(body: #"{"query":"subscription { ticks }"}"#)),
            "subscription")
        XCTAssertNil(GraphQL.operation(path: "/api", contentType: "application/json", body: Message(body: #"{"name":"x"}"#)))
    }

    func testGarbageBeforeARequestIsSkippedAndCounted() {
        var conversation = Conversation()
        conversation.send(fromClient: true, "xx\r\nGET /after HTTP/1.1\r\n\r\n")
        conversation.send(fromClient: false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        let (sink, engine) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/after"])
        XCTAssertGreaterThan(engine.statistics.unrecognisedBytes + (engine.statistics.unparsableBytes["http"] ?? 0), 0)
    }
}

final class PendingBoundTests: XCTestCase {
    /// Requests that are never answered cannot pile up: past the bound the oldest goes out unanswered.
    func testUnansweredPipelinedRequestsAreBounded() {
        var configuration = DissectionConfiguration()
        configuration.maxPendingMessagesPerConnection = 4
        var conversation = Conversation()
        conversation.handshake()
        for n in 0..<10 { conversation.send(fromClient: true, "GET /\(n) HTTP/1.1\r\nHost: h\r\n\r\n") }
        let sink = CollectingSink()
        let engine = DissectionEngine(configuration, node: "n1", sink: sink)
        for packet in conversation.packets { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
        XCTAssertEqual(sink.calls.map(\.path), ["/0", "/1", "/2", "/3", "/4", "/5"])
        XCTAssertTrue(sink.calls.allSatisfy(\.flags.noResponse))
        engine.finish()
        XCTAssertEqual(sink.calls.count, 10)
    }

    func testOpenHTTP2StreamsAreBounded() {
        var configuration = DissectionConfiguration()
        configuration.maxPendingMessagesPerConnection = 3
        var conversation = Conversation()
        conversation.handshake()
        var bytes = HTTP2Frames.preface + HTTP2Frames.settings
        for stream in stride(from: UInt32(1), through: 11, by: 2) {
            bytes += HTTP2Frames.headers(stream: stream, endStream: true, [(":method", "GET"), (":path", "/s\(stream)")])
        }
        conversation.send(fromClient: true, bytes)
        conversation.send(fromClient: false, HTTP2Frames.headers(stream: 11, endStream: true, [(":status", "204")]))
        let (sink, _) = dissect(conversation.packets, configuration: configuration)
        XCTAssertEqual(sink.calls.count, 6)
        XCTAssertEqual(sink.calls.filter { $0.status == 204 }.map(\.path), ["/s11"])
        XCTAssertEqual(sink.calls.filter(\.flags.noResponse).count, 5)
    }

    func testHTTP2ResetStreamEndsTheCall() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(
            fromClient: true,
            HTTP2Frames.preface + HTTP2Frames.headers(stream: 1, endStream: true, [(":method", "GET"), (":path", "/slow")]))
        conversation.send(fromClient: true, HTTP2Frames.frame(type: 3, flags: 0, stream: 1, [0, 0, 0, 8]))
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/slow"])
        XCTAssertEqual(sink.calls.first?.http?.statusText, "RST_STREAM 8")
        XCTAssertEqual(sink.calls.first?.flags.noResponse, true)
    }
}

final class HTTP2GapTests: XCTestCase {
    /// A lost segment inside a DATA frame: the stream it hit is marked, parsing resumes at the next frame.
    func testGapResynchronisesAtTheNextFrame() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(
            fromClient: true,
            HTTP2Frames.preface + HTTP2Frames.settings
                + HTTP2Frames.headers(stream: 1, endStream: false, [(":method", "POST"), (":path", "/upload")]))
        let body = conversation.send(
            fromClient: true, HTTP2Frames.data(stream: 1, endStream: true, [UInt8](repeating: 7, count: 3000)), segment: 1000)
        conversation.send(
            fromClient: true,
            HTTP2Frames.headers(stream: 3, endStream: true, [(":method", "GET"), (":path", "/after")]))
        conversation.send(
            fromClient: false,
            HTTP2Frames.settings + HTTP2Frames.headers(stream: 1, endStream: true, [(":status", "201")])
                + HTTP2Frames.headers(stream: 3, endStream: true, [(":status", "200")]))
        conversation.packets.remove(at: body[1])
        let (sink, engine) = dissect(conversation.packets)
        // /upload is answered before the hole in its body is known; /after is decoded after the gap and marked.
        XCTAssertEqual(sink.calls.map(\.path), ["/upload", "/after"])
        XCTAssertEqual(sink.calls.map(\.status), [201, 200])
        XCTAssertEqual(sink.calls.last?.flags.gap, true)
        XCTAssertEqual(sink.calls.last?.flags.noRequest, false)
        XCTAssertEqual(engine.statistics.gaps, 1)
    }
}
