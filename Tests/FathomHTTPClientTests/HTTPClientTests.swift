import FathomHTTPClient
import Foundation
import NIOCore
import NIOPosix
import XCTest

final class HTTPClientTests: XCTestCase {
    func testSendsTheRequestAndCollectsTheBody() async throws {
        let server = try await CannedServer.start(response: "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Answer: yes\r\n\r\nhello")
        defer { server.stop() }
        let client = HTTPClient(host: "127.0.0.1", port: server.port)
        let response = try await client.send(
            .POST, "/calls?kfl=a%2Bb", headers: ["Authorization": "Bearer t"], body: ByteBuffer(string: "{}"))
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(response.headers.first(name: "X-Answer"), "yes")
        let body = try await response.collect(limit: 100)
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "hello")

        let request = try XCTUnwrap(server.request())
        XCTAssertTrue(request.hasPrefix("POST /calls?kfl=a%2Bb HTTP/1.1\r\n"), request)
        XCTAssertTrue(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"), request)
        XCTAssertTrue(request.contains("\r\nAuthorization: Bearer t\r\n"), request)
        XCTAssertTrue(request.contains("\r\nConnection: close\r\n"), request)
        XCTAssertTrue(request.contains("\r\nContent-Length: 2\r\n"), request)
    }

    func testAnIPv6URLHostLosesItsBracketsAndIsAnAddress() async throws {
        let client = HTTPClient(host: "[::1]", port: 8421)
        XCTAssertEqual(client.host, "::1")
        XCTAssertTrue(client.hostIsAddress)
        XCTAssertFalse(HTTPClient(host: "agent.local", port: 80).hostIsAddress)
    }

    func testABodyOverTheLimitIsRefused() async throws {
        let server = try await CannedServer.start(response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        defer { server.stop() }
        let response = try await HTTPClient(host: "127.0.0.1", port: server.port).send(.GET, "/")
        do {
            _ = try await response.collect(limit: 9)
            XCTFail("a 10-byte body passed a 9-byte limit")
        } catch HTTPClientError.bodyTooLarge(let limit) {
            XCTAssertEqual(limit, 9)
        }
    }

    func testADownloadStreamsAChunkedBodyIntoTheFile() async throws {
        let chunks = (0..<50).map { String(repeating: Character(UnicodeScalar(UInt8(65 + $0 % 26))), count: 1000 + $0) }
        let chunked = chunks.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" }.joined() + "0\r\n\r\n"
        let server = try await CannedServer.start(response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        defer { server.stop() }
        let directory = try temporaryDirectory()
        let file = directory.appendingPathComponent("out.pcapng").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: file))

        let response = try await HTTPClient(host: "127.0.0.1", port: server.port).send(.GET, "/pcap")
        let written = try await response.write(toFile: file)
        XCTAssertEqual(written, Int64(chunks.joined().utf8.count))
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), chunks.joined())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["out.pcapng"])
    }

    func testATruncatedDownloadLeavesTheOldFileAndNoPartialOne() async throws {
        // The server promises 100 bytes, sends 10 and closes.
        let server = try await CannedServer.start(response: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        defer { server.stop() }
        let directory = try temporaryDirectory()
        let file = directory.appendingPathComponent("out.pcapng").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: file))

        let response = try await HTTPClient(host: "127.0.0.1", port: server.port).send(.GET, "/pcap")
        do {
            _ = try await response.write(toFile: file)
            XCTFail("a truncated body was written as complete")
        } catch {}
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["out.pcapng"])
    }

    func testASilentServerTimesOut() async throws {
        let server = try await CannedServer.start(response: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", close: false)
        defer { server.stop() }
        let response = try await HTTPClient(host: "127.0.0.1", port: server.port)
            .send(.GET, "/", idleTimeout: .milliseconds(200))
        do {
            _ = try await response.collect(limit: 1000)
            XCTFail("a silent server's body ended")
        } catch HTTPClientError.idleTimeout {}
    }

    func testARefusedConnectionThrows() async throws {
        // A port that was just free: nothing listens there.
        let server = try await CannedServer.start(response: "")
        let port = server.port
        server.stop()
        do {
            _ = try await HTTPClient(host: "127.0.0.1", port: port).send(.GET, "/")
            XCTFail("a connection to a closed port succeeded")
        } catch {}
    }

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fathom-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }
}

/// A loopback server that answers every connection with the same bytes once it has read a request head (and its
/// Content-Length body), then closes unless told not to; it keeps the last request it read.
final class CannedServer: Sendable {
    let channel: any Channel
    let port: Int
    let recorder: RequestRecorder

    private init(channel: any Channel, recorder: RequestRecorder) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.recorder = recorder
    }

    static func start(response: String, close: Bool = true) async throws -> CannedServer {
        let recorder = RequestRecorder()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        CannedResponder(response: response, close: close, recorder: recorder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return CannedServer(channel: channel, recorder: recorder)
    }

    func request() -> String? { recorder.last }

    func stop() { try? channel.close().wait() }
}

final class RequestRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    var last: String? { lock.withLock { stored } }
    func record(_ request: String) { lock.withLock { stored = request } }
}

private final class CannedResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let response: String
    let close: Bool
    let recorder: RequestRecorder
    var received = ""
    var answered = false

    init(response: String, close: Bool, recorder: RequestRecorder) {
        self.response = response
        self.close = close
        self.recorder = recorder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        guard !answered, let end = received.range(of: "\r\n\r\n") else { return }
        let head = received[..<end.lowerBound]
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        guard received.utf8.count - received[..<end.upperBound].utf8.count >= length else { return }
        answered = true
        recorder.record(received)
        let write = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)))
        if close { write.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }
}
