import FathomModel

/// HTTP/1.0 and 1.1: keep-alive, pipelining (requests and responses paired first in, first out), Content-Length,
/// chunked, read-until-close, bodiless HEAD/1xx/204/304 responses, and upgrades to WebSocket and h2c.
final class HTTP1Dissector: StreamDissector {
    /// One request or response being parsed or waiting for its partner. A class: it goes from the side parsing it to
    /// the queue of requests and into the call by reference, where a struct would copy its head's strings each time.
    final class Exchange {
        var head: HTTPHead
        var body: BodyCollector
        var trailers: [Header] = []
        var startNanoseconds: UInt64
        var endNanoseconds: UInt64 = 0
        /// Wire bytes: head, framing and body.
        var size: Int
        var gap: Bool
        /// The message ended before its framing said it would (connection closed or lost).
        var incomplete = false

        init(head: HTTPHead, body: BodyCollector, startNanoseconds: UInt64, size: Int, gap: Bool) {
            self.head = head
            self.body = body
            self.startNanoseconds = startNanoseconds
            self.size = size
            self.gap = gap
        }
    }

    enum Framing: Equatable {
        case head
        case length(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// A request asked to upgrade: its side waits for the response to tell which protocol follows.
        case awaitingUpgrade
    }

    struct SideState {
        var framing = Framing.head
        var message: Exchange?
        /// Bytes are skipped until a message start.
        var resynchronising = false
        /// The next message follows a gap.
        var gapPending = false
    }

    static let maxHeadBytes = 64 * 1024
    static let maxChunkLine = 1024

    private var sides = [SideState(), SideState()]
    private var requests: [Exchange] = []
    /// Responses parsed before their request: the two directions can arrive out of order (per-CPU capture
    /// buffers). Paired with the next request that started before they ended.
    private var orphanResponses: [Exchange] = []
    private var upgraded: (any StreamDissector)?
    private let cap: Int
    private let maxPending: Int

    init(configuration: DissectionConfiguration) {
        cap = configuration.bodyPreviewLimit
        maxPending = max(configuration.maxPendingMessagesPerConnection, 1)
    }

    static func probe(_ bytes: UnsafeRawBufferPointer) -> ProbeResult {
        if HTTPHead.looksLikeStart(bytes, request: true) { return .senderIsClient }
        if bytes.count >= 12, HTTPHead.looksLikeStart(bytes, request: false) { return .senderIsServer }
        if bytes.count < 12 {
            // A prefix of a method or of "HTTP/1.x NNN" may still become one.
            let candidates: [StaticString] = HTTPHead.methods + ["HTTP/1.1 200"]
            let isPrefix = candidates.contains { candidate in
                var k = 0
                while k < bytes.count, k < candidate.utf8CodeUnitCount, bytes[k] == candidate.utf8Start[k] { k += 1 }
                return k == bytes.count && k < candidate.utf8CodeUnitCount
            }
            if isPrefix { return .needMoreData }
        }
        return .noMatch
    }

    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int {
        let s = side.rawValue
        var offset = 0
        while offset < bytes.count {
            if let upgraded {
                return offset + upgraded.parse(bytes.suffix(from: offset), from: side, session: session)
            }
            let rest = bytes.count - offset
            if sides[s].resynchronising {
                guard let start = findStart(bytes, from: offset, request: side == .client) else {
                    // A start line may straddle the next packet: keep a few bytes.
                    let skip = max(rest - 16, 0)
                    session.countUnparsable(skip, protocolName: "http")
                    return offset + skip
                }
                session.countUnparsable(start - offset, protocolName: "http")
                offset = start
                sides[s].resynchronising = false
                continue
            }
            switch sides[s].framing {
            case .awaitingUpgrade:
                return offset
            case .head:
                guard let end = HTTPHead.endOfHead(bytes, from: offset) else {
                    let view = bytes.suffix(from: offset)
                    let plausible = view.count < 8 || HTTPHead.looksLikeStart(view, request: side == .client)
                    if rest > HTTP1Dissector.maxHeadBytes || !plausible { startResync(s, skipping: 1, session, &offset) }
                    else { return offset }
                    continue
                }
                let headBytes = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
                guard HTTPHead.looksLikeStart(headBytes, request: side == .client),
                    let head = HTTPHead.parse(headBytes, request: side == .client)
                else {
                    startResync(s, skipping: 1, session, &offset)
                    continue
                }
                sides[s].message = Exchange(
                    head: head, body: BodyCollector(cap: cap),
                    startNanoseconds: offset == 0 ? session.firstByteNanoseconds : session.nowNanoseconds,
                    size: head.size, gap: sides[s].gapPending)
                sides[s].gapPending = false
                offset = end
                let framing = bodyFraming(head)
                sides[s].framing = framing
                if framing == .head { complete(side, session) }
            case .length(let remaining), .chunkData(let remaining):
                let n = min(remaining, rest)
                sides[s].message?.body.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
                sides[s].message?.size += n
                offset += n
                let isChunk = sides[s].framing != .length(remaining)
                if n == remaining {
                    if isChunk { sides[s].framing = .chunkDataEnd } else { complete(side, session) }
                } else {
                    sides[s].framing = isChunk ? .chunkData(remaining - n) : .length(remaining - n)
                }
            case .chunkSize:
                guard let lineEnd = lineFeed(bytes, from: offset, within: HTTP1Dissector.maxChunkLine) else {
                    if rest > HTTP1Dissector.maxChunkLine { abandonMessage(s, side, session, &offset) }
                    else { return offset }
                    continue
                }
                guard let size = chunkSize(UnsafeRawBufferPointer(rebasing: bytes[offset..<lineEnd])) else {
                    abandonMessage(s, side, session, &offset)
                    continue
                }
                sides[s].message?.size += lineEnd + 1 - offset
                offset = lineEnd + 1
                sides[s].framing = size == 0 ? .trailers : .chunkData(size)
            case .chunkDataEnd:
                guard rest >= 2 || bytes[offset] != 13 else { return offset }
                // CRLF after the chunk data; a lone LF is tolerated.
                let step = bytes[offset] == 13 ? 2 : (bytes[offset] == 10 ? 1 : 0)
                guard step > 0 else {
                    abandonMessage(s, side, session, &offset)
                    continue
                }
                sides[s].message?.size += step
                offset += step
                sides[s].framing = .chunkSize
            case .trailers:
                if bytes[offset] == 13 || bytes[offset] == 10 {
                    guard let lineEnd = lineFeed(bytes, from: offset, within: 2) else { return offset }
                    sides[s].message?.size += lineEnd + 1 - offset
                    offset = lineEnd + 1
                    complete(side, session)
                    continue
                }
                // Trailer fields end with an empty line, like a head.
                guard let end = HTTPHead.endOfHead(bytes, from: offset) else {
                    if rest > HTTP1Dissector.maxHeadBytes { abandonMessage(s, side, session, &offset) } else { return offset }
                    continue
                }
                sides[s].message?.trailers = HTTPHead.headerLines(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                sides[s].message?.size += end - offset
                offset = end
                complete(side, session)
            case .untilClose:
                sides[s].message?.body.append(bytes.suffix(from: offset))
                sides[s].message?.size += rest
                offset = bytes.count
            }
        }
        return offset
    }

    func gap(from side: StreamSide, length: Int, session: ConnectionSession) {
        if let upgraded {
            upgraded.gap(from: side, length: length, session: session)
            return
        }
        let s = side.rawValue
        switch sides[s].framing {
        case .length(let remaining) where length <= remaining, .chunkData(let remaining) where length <= remaining:
            // The hole lies inside a body of known length: skip it and stay in step.
            sides[s].message?.body.skip(length)
            sides[s].message?.size += length
            sides[s].message?.gap = true
            if length == remaining {
                if case .length = sides[s].framing { complete(side, session) } else { sides[s].framing = .chunkDataEnd }
            } else {
                sides[s].framing = sides[s].framing == .length(remaining) ? .length(remaining - length) : .chunkData(remaining - length)
            }
        case .untilClose:
            sides[s].message?.body.skip(length)
            sides[s].message?.size += length
            sides[s].message?.gap = true
        default:
            if sides[s].message != nil {
                sides[s].message?.gap = true
                sides[s].message?.incomplete = true
                complete(side, session)
            }
            sides[s].framing = .head
            sides[s].resynchronising = true
            sides[s].gapPending = true
        }
    }

    func finish(session: ConnectionSession) {
        if let upgraded { upgraded.finish(session: session) }
        for side in [StreamSide.client, .server] where sides[side.rawValue].message != nil {
            if sides[side.rawValue].framing != .untilClose { sides[side.rawValue].message?.incomplete = true }
            complete(side, session)
        }
        for request in requests { emit(request: request, response: nil, session) }
        requests.removeAll()
        for orphan in orphanResponses { emit(request: nil, response: orphan, session) }
        orphanResponses.removeAll()
    }

    // MARK: Messages

    private func bodyFraming(_ head: HTTPHead) -> Framing {
        if head.isRequest {
            if head.chunked { return .chunkSize }
            if let length = head.contentLength, length > 0 { return .length(length) }
            return .head
        }
        let status = head.status
        if requests.first?.head.method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
            return .head
        }
        if head.chunked { return .chunkSize }
        if let length = head.contentLength { return length > 0 ? .length(length) : .head }
        return .untilClose
    }

    /// The message on `side` is complete: queue a request, or pair a response with the oldest request.
    private func complete(_ side: StreamSide, _ session: ConnectionSession) {
        let s = side.rawValue
        guard let message = sides[s].message.take() else { return }
        message.endNanoseconds = session.nowNanoseconds
        if side == .client {
            let upgrading = !message.head.upgrade.isEmpty && !message.incomplete
            sides[s].framing = upgrading ? .awaitingUpgrade : .head
            while let orphan = orphanResponses.first, orphan.endNanoseconds < message.startNanoseconds {
                // Ended before this request began: its request was never seen.
                orphanResponses.removeFirst()
                emit(request: nil, response: orphan, session)
            }
            if !orphanResponses.isEmpty, requests.isEmpty {
                emit(request: message, response: orphanResponses.removeFirst(), session)
                if sides[s].framing == .awaitingUpgrade { sides[s].framing = .head }
                return
            }
            if requests.count >= maxPending { emit(request: requests.removeFirst(), response: nil, session) }
            requests.append(message)
            return
        }
        sides[s].framing = .head
        let status = message.head.status
        if (100..<200).contains(status), status != 101 { return }  // interim (100 Continue): the final one follows
        guard !requests.isEmpty else {
            if orphanResponses.count >= maxPending { emit(request: nil, response: orphanResponses.removeFirst(), session) }
            orphanResponses.append(message)
            return
        }
        let request = requests.removeFirst()
        emit(request: request, response: message, session)
        if sides[StreamSide.client.rawValue].framing == .awaitingUpgrade {
            sides[StreamSide.client.rawValue].framing = .head
        }
        if status == 101 {
            switch message.head.upgrade.isEmpty ? request.head.upgrade : message.head.upgrade {
            case "websocket":
                upgraded = WebSocketDissector(path: request.head.path, configuration: session.configuration)
            case "h2c":
                upgraded = HTTP2Dissector(
                    configuration: session.configuration,
                    upgradeRequest: HTTP2Dissector.UpgradeRequest(
                        method: request.head.method, path: request.head.path, query: request.head.query,
                        host: request.head.host, headers: request.head.headers,
                        startNanoseconds: request.startNanoseconds))
            default:
                break
            }
        }
    }

    private func emit(request: Exchange?, response: Exchange?, _ session: ConnectionSession) {
        let start = request?.startNanoseconds ?? response?.startNanoseconds ?? session.nowNanoseconds
        var call = session.makeCall(proto: "http", startNanoseconds: start)
        var info = HTTPInfo(version: request?.head.version ?? response?.head.version ?? "")
        if let request {
            call.method = request.head.method
            call.path = request.head.path
            call.query = request.head.query
            call.requestSize = request.size
            let message = BodyPreview.message(
                headers: request.head.headers, trailers: request.trailers, body: request.body,
                contentEncoding: request.head.contentEncoding, cap: cap)
            info.host = request.head.host
            info.upgrade = request.head.upgrade
            if let operation = GraphQL.operation(
                path: request.head.path, contentType: request.head.contentType, body: message)
            {
                call.proto = "graphql"
                info.graphqlOperation = operation
            }
            call.flags.truncated = message.bodyTruncated || request.incomplete
            call.request = message
        } else {
            call.flags.noRequest = true
        }
        if let response {
            call.status = response.head.status
            call.responseSize = response.size
            info.statusText = response.head.statusText
            let message = BodyPreview.message(
                headers: response.head.headers, trailers: response.trailers, body: response.body,
                contentEncoding: response.head.contentEncoding, cap: cap)
            call.flags.truncated = call.flags.truncated || message.bodyTruncated || response.incomplete
            call.response = message
            if let request { call.latencyMs = milliseconds(from: request.startNanoseconds, to: response.endNanoseconds) }
        } else {
            call.flags.noResponse = true
        }
        call.flags.gap = (request?.gap ?? false) || (response?.gap ?? false)
        call.http = info
        session.emit(call)
    }

    // MARK: Framing helpers

    /// Gives up on the message being framed on side `s`: it is emitted as incomplete and parsing resynchronises.
    private func abandonMessage(_ s: Int, _ side: StreamSide, _ session: ConnectionSession, _ offset: inout Int) {
        if sides[s].message != nil {
            sides[s].message?.incomplete = true
            complete(side, session)
        }
        startResync(s, skipping: 1, session, &offset)
    }

    private func startResync(_ s: Int, skipping: Int, _ session: ConnectionSession, _ offset: inout Int) {
        session.countUnparsable(skipping, protocolName: "http")
        offset += skipping
        sides[s].framing = .head
        sides[s].resynchronising = true
    }

    /// The next offset ≥ `from` where a message starts: at `from` itself or right after a line feed.
    private func findStart(_ bytes: UnsafeRawBufferPointer, from: Int, request: Bool) -> Int? {
        var position = from
        while position < bytes.count {
            if position == from || bytes[position - 1] == 10 {
                let view = bytes.suffix(from: position)
                if HTTPHead.looksLikeStart(view, request: request) { return position }
            }
            position += 1
        }
        return nil
    }

    private func lineFeed(_ bytes: UnsafeRawBufferPointer, from: Int, within: Int) -> Int? {
        var index = from
        let end = min(bytes.count, from + within)
        while index < end {
            if bytes[index] == 10 { return index }
            index += 1
        }
        return nil
    }

    /// The hexadecimal size of a chunk line ("1a2;ext=1\r"), nil when malformed.
    private func chunkSize(_ line: UnsafeRawBufferPointer) -> Int? {
        var size = 0
        var digits = 0
        for c in line {
            let value: Int
            switch c {
            case 48...57: value = Int(c - 48)
            case 65...70: value = Int(c - 55)
            case 97...102: value = Int(c - 87)
            case 59, 13, 32, 9: return digits > 0 ? size : nil
            default: return nil
            }
            guard digits < 15 else { return nil }
            size = size << 4 | value
            digits += 1
        }
        return digits > 0 ? size : nil
    }
}

extension HTTPHead {
    /// Header fields of a trailer block (lines up to the empty line).
    static func headerLines(_ bytes: UnsafeRawBufferPointer) -> [Header] {
        var holder = HTTPHead(isRequest: false)
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != 10 { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart, bytes[contentEnd - 1] == 13 { contentEnd -= 1 }
            if contentEnd > lineStart { holder.addHeader(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<contentEnd])) }
            lineStart = lineEnd + 1
        }
        return holder.headers
    }
}

extension DissectorRegistration {
    /// HTTP/1.x.
    public static let http1 = DissectorRegistration(
        name: "http", portHints: [80, 8080, 8000, 3000, 5000, 8081, 8888], probe: HTTP1Dissector.probe,
        make: { HTTP1Dissector(configuration: $0) })
}
