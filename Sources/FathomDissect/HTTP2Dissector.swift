import FathomModel

/// HTTP/2 (prior-knowledge h2c, or after `Upgrade: h2c`): frames, HPACK per direction, one call per stream, gRPC
/// recognised from the content type.
final class HTTP2Dissector: StreamDissector {
    /// The HTTP/1.1 request that upgraded the connection; it becomes stream 1.
    struct UpgradeRequest {
        var method: String
        var path: String
        var query: String
        var host: String
        var headers: [Header]
        var startNanoseconds: UInt64
    }

    static let preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    /// A class: the table hands out a reference to update in place, where a struct would be moved out of the
    /// dictionary and back on every frame.
    private final class Stream {
        var startNanoseconds: UInt64
        var endNanoseconds: UInt64 = 0
        var requestHeaders: [Header] = []
        var responseHeaders: [Header] = []
        var requestTrailers: [Header] = []
        var responseTrailers: [Header] = []
        var requestBody: BodyCollector
        var responseBody: BodyCollector
        var requestSize = 0
        var responseSize = 0
        var requestGRPC = GRPCMessageCounter()
        var responseGRPC = GRPCMessageCounter()
        var resetCode: UInt32?
        var gap = false
        /// The response ended before the request was seen (directions arrive out of order): waits for it.
        var responseEnded = false

        init(startNanoseconds: UInt64, cap: Int) {
            self.startNanoseconds = startNanoseconds
            requestBody = BodyCollector(cap: cap)
            responseBody = BodyCollector(cap: cap)
        }
    }

    /// A header block split over HEADERS/PUSH_PROMISE and CONTINUATION frames.
    private struct PendingBlock {
        var streamID: UInt32
        var endStream: Bool
        var isPushPromise: Bool
        var fragment: [UInt8]
    }

    private let cap: Int
    private let maxStreams: Int
    private var decoders = [HPACKDecoder(), HPACKDecoder()]
    private var streams: [UInt32: Stream] = [:]
    private var pendingBlocks: [PendingBlock?] = [nil, nil]
    private var prefaceSeen = false
    /// After an HPACK failure a direction's header blocks cannot be decoded any more.
    private var lost = [false, false]
    /// After a gap, bytes are skipped until a plausible frame boundary.
    private var resynchronising = [false, false]
    /// After a gap the HPACK table may miss entries: every call decoded from then on is marked.
    private var afterGap = [false, false]

    init(configuration: DissectionConfiguration, upgradeRequest: UpgradeRequest? = nil) {
        cap = configuration.bodyPreviewLimit
        maxStreams = max(configuration.maxPendingMessagesPerConnection, 1)
        if let upgradeRequest {
            let stream = Stream(startNanoseconds: upgradeRequest.startNanoseconds, cap: cap)
            var headers = [
                Header(name: ":method", value: upgradeRequest.method),
                Header(name: ":path", value: upgradeRequest.query.isEmpty ? upgradeRequest.path : "\(upgradeRequest.path)?\(upgradeRequest.query)"),
                Header(name: ":authority", value: upgradeRequest.host),
            ]
            headers += upgradeRequest.headers
            stream.requestHeaders = headers
            streams[1] = stream
        }
    }

    static func probe(_ bytes: UnsafeRawBufferPointer) -> ProbeResult {
        let length = min(bytes.count, preface.utf8CodeUnitCount)
        for k in 0..<length where bytes[k] != preface.utf8Start[k] { return .noMatch }
        return length == preface.utf8CodeUnitCount ? .senderIsClient : .needMoreData
    }

    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int {
        let s = side.rawValue
        if lost[s] {
            session.countUnparsable(bytes.count, protocolName: "http2")
            return bytes.count
        }
        var offset = 0
        if resynchronising[s] {
            guard let boundary = HTTP2Dissector.frameBoundary(bytes) else {
                // Keep enough for a frame header and the largest default frame to be recognised next time.
                let skip = max(bytes.count - (9 + 16384 + 9), 0)
                session.countUnparsable(skip, protocolName: "http2")
                return skip
            }
            session.countUnparsable(boundary, protocolName: "http2")
            offset = boundary
            resynchronising[s] = false
            prefaceSeen = true
        }
        if side == .client, !prefaceSeen {
            switch HTTP2Dissector.probe(bytes) {
            case .needMoreData: return 0
            case .senderIsClient: offset = HTTP2Dissector.preface.utf8CodeUnitCount
            default: break  // picked up after the preface
            }
            prefaceSeen = true
        }
        while let length = bytes.u24(offset), let type = bytes.u8(offset + 3), let flags = bytes.u8(offset + 4),
            let rawStreamID = bytes.u32(offset + 5)
        {
            guard let payload = bytes.slice(offset + 9, Int(length)) else { break }
            let frameStart = offset
            offset += 9 + Int(length)
            handleFrame(
                type: type, flags: flags, streamID: rawStreamID & 0x7fff_ffff, payload: payload, side: side,
                session: session, atStart: frameStart == 0)
            if lost[s] {
                session.countUnparsable(bytes.count - offset, protocolName: "http2")
                return bytes.count
            }
        }
        return offset
    }

    private func handleFrame(
        type: UInt8, flags: UInt8, streamID: UInt32, payload: UnsafeRawBufferPointer, side: StreamSide,
        session: ConnectionSession, atStart: Bool
    ) {
        let s = side.rawValue
        let now = atStart ? session.firstByteNanoseconds : session.nowNanoseconds
        if pendingBlocks[s] != nil, type != 9 {
            lose(side, session)  // a header block must continue with CONTINUATION
            return
        }
        switch type {
        case 0:  // DATA
            guard let data = unpadded(payload, flags: flags) else { return lose(side, session) }
            guard let stream = streams[streamID] else {
                session.countUnparsable(payload.count, protocolName: "http2")
                return
            }
            if side == .client {
                stream.requestBody.append(data)
                stream.requestGRPC.consume(data)
                stream.requestSize += payload.count
            } else {
                stream.responseBody.append(data)
                stream.responseGRPC.consume(data)
                stream.responseSize += payload.count
            }
            if flags & 0x1 != 0, side == .server { responseEnded(streamID, session) }
        case 1, 5:  // HEADERS, PUSH_PROMISE
            guard var fragment = unpadded(payload, flags: flags) else { return lose(side, session) }
            var promised: UInt32?
            if type == 1, flags & 0x20 != 0 {
                guard fragment.count >= 5 else { return lose(side, session) }
                fragment = fragment.suffix(from: 5)
            } else if type == 5 {
                guard let id = fragment.u32(0) else { return lose(side, session) }
                promised = id & 0x7fff_ffff
                fragment = fragment.suffix(from: 4)
            }
            if type == 1, streams[streamID] == nil, side == .client { openStream(streamID, start: now, session) }
            let block = PendingBlock(
                streamID: promised ?? streamID, endStream: type == 1 && flags & 0x1 != 0, isPushPromise: type == 5,
                fragment: Array(fragment))
            if flags & 0x4 != 0 {
                headerBlockDone(block, side: side, session: session)
            } else {
                pendingBlocks[s] = block
            }
        case 9:  // CONTINUATION
            guard var block = pendingBlocks[s], block.streamID == streamID || block.isPushPromise else {
                return lose(side, session)
            }
            block.fragment.append(contentsOf: payload)
            guard block.fragment.count <= 1 << 20 else { return lose(side, session) }
            if flags & 0x4 != 0 {
                pendingBlocks[s] = nil
                headerBlockDone(block, side: side, session: session)
            } else {
                pendingBlocks[s] = block
            }
        case 3:  // RST_STREAM
            guard let stream = streams[streamID] else { return }
            stream.resetCode = payload.u32(0) ?? 0
            complete(streamID, session)
        case 7:  // GOAWAY: streams above the last one the sender processed will not be answered
            if let last = payload.u32(0) {
                let unanswered = streams.keys.filter { $0 > last & 0x7fff_ffff && ($0 & 1 == 1) == (side == .server) }
                for id in unanswered.sorted() { complete(id, session) }
            }
        default:
            break  // SETTINGS, PING, PRIORITY, WINDOW_UPDATE and unknown frames carry nothing for calls
        }
    }

    private func headerBlockDone(_ block: PendingBlock, side: StreamSide, session: ConnectionSession) {
        let headers: [Header]
        do {
            headers = try block.fragment.withUnsafeBytes { raw throws(HPACKDecoder.Failure) in
                try decoders[side.rawValue].decode(raw)
            }
        } catch {
            return lose(side, session)
        }
        if block.isPushPromise { return }  // decoded only to keep the table in step
        let id = block.streamID
        // A stream the server answers whose request was not seen (capture started later) opens here.
        let stream = streams[id] ?? openStream(id, start: session.nowNanoseconds, session)
        let size = block.fragment.count + 9
        if afterGap[side.rawValue] { stream.gap = true }
        if side == .client {
            if stream.requestHeaders.isEmpty {
                stream.requestHeaders = headers
                // A stream the response opened started when its request was sent, which may be earlier.
                stream.startNanoseconds = min(stream.startNanoseconds, session.nowNanoseconds)
            } else {
                stream.requestTrailers = headers
            }
            stream.requestSize += size
            if stream.responseEnded { complete(id, session) }
        } else {
            let informational = headers.first { $0.name == ":status" }.map { $0.value.hasPrefix("1") } ?? false
            if informational { return }
            if stream.responseHeaders.isEmpty {
                stream.responseHeaders = headers
            } else {
                stream.responseTrailers = headers
            }
            stream.responseSize += size
            if block.endStream { responseEnded(id, session) }
        }
    }

    /// Opens a stream; at the bound the oldest open stream is emitted as it stands.
    @discardableResult
    private func openStream(_ id: UInt32, start: UInt64, _ session: ConnectionSession) -> Stream {
        if streams.count >= maxStreams, let oldest = streams.keys.min() { complete(oldest, session) }
        let stream = Stream(startNanoseconds: start, cap: cap)
        streams[id] = stream
        return stream
    }

    /// DATA/HEADERS payload without its padding, nil when the padding is inconsistent.
    private func unpadded(_ payload: UnsafeRawBufferPointer, flags: UInt8) -> UnsafeRawBufferPointer? {
        guard flags & 0x8 != 0 else { return payload }
        guard let padLength = payload.u8(0), Int(padLength) < payload.count else { return nil }
        return payload.slice(1, payload.count - 1 - Int(padLength))
    }

    /// Whether a frame header at `offset` is plausible: known type, default maximum size, stream id and length
    /// consistent with the type. CONTINUATION is never a place to start.
    private static func plausibleFrame(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard let length = bytes.u24(offset), let type = bytes.u8(offset + 3), let id = bytes.u32(offset + 5),
            length <= 16384, id & 0x8000_0000 == 0
        else { return nil }
        let connectionLevel = id == 0
        switch type {
        case 0, 1, 5: guard !connectionLevel else { return nil }
        case 2: guard !connectionLevel, length == 5 else { return nil }
        case 3: guard !connectionLevel, length == 4 else { return nil }
        case 4: guard connectionLevel, length % 6 == 0 else { return nil }
        case 6: guard connectionLevel, length == 8 else { return nil }
        case 7: guard connectionLevel, length >= 8 else { return nil }
        case 8: guard length == 4 else { return nil }
        default: return nil
        }
        return 9 + Int(length)
    }

    /// The first offset where a plausible frame starts and is followed by another one (or by the end of the bytes).
    static func frameBoundary(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var offset = 0
        while offset + 9 <= bytes.count {
            if let size = plausibleFrame(bytes, at: offset) {
                let next = offset + size
                if next == bytes.count || (next + 9 <= bytes.count && plausibleFrame(bytes, at: next) != nil) {
                    return offset
                }
            }
            offset += 1
        }
        return nil
    }

    private func lose(_ side: StreamSide, _ session: ConnectionSession) {
        lost[side.rawValue] = true
        pendingBlocks[side.rawValue] = nil
        for stream in streams.values { stream.gap = true }
    }

    func gap(from side: StreamSide, length: Int, session: ConnectionSession) {
        resynchronising[side.rawValue] = true
        afterGap[side.rawValue] = true
        pendingBlocks[side.rawValue] = nil
        for stream in streams.values { stream.gap = true }
    }

    func finish(session: ConnectionSession) {
        for id in streams.keys.sorted() { complete(id, session) }
    }

    // MARK: Calls

    /// The server ended the stream: the call is complete unless its request has not been seen yet.
    private func responseEnded(_ id: UInt32, _ session: ConnectionSession) {
        guard let stream = streams[id], stream.requestHeaders.isEmpty, !lost[StreamSide.client.rawValue] else {
            return complete(id, session)
        }
        stream.responseEnded = true
    }

    private func complete(_ id: UInt32, _ session: ConnectionSession) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        stream.endNanoseconds = session.nowNanoseconds
        session.emit(call(stream, session))
    }

    private func call(_ stream: Stream, _ session: ConnectionSession) -> Call {
        func pseudo(_ headers: [Header], _ name: String) -> String? { headers.first { $0.name == name }?.value }
        let request = stream.requestHeaders
        let response = stream.responseHeaders
        let contentType = request.first { $0.name.equalsIgnoringASCIICase("content-type") }?.value ?? ""
        let isGRPC = contentType.hasPrefix("application/grpc")
        var call = session.makeCall(proto: isGRPC ? "grpc" : "http2", startNanoseconds: stream.startNanoseconds)
        call.method = pseudo(request, ":method") ?? ""
        let target = pseudo(request, ":path") ?? ""
        // Split at the first "?" byte, as HTTP/1 targets are (a Character search costs grapheme breaking).
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            call.path = String(target[..<question])
            call.query = String(target[target.utf8.index(after: question)...])
        } else {
            call.path = target
        }
        call.requestSize = stream.requestSize
        call.responseSize = stream.responseSize
        let hasRequest = !request.isEmpty
        let hasResponse = !response.isEmpty
        call.flags.noRequest = !hasRequest
        call.flags.noResponse = !hasResponse
        call.flags.gap = stream.gap
        if hasResponse { call.latencyMs = milliseconds(from: stream.startNanoseconds, to: stream.endNanoseconds) }
        let httpStatus = Int(pseudo(response, ":status") ?? "") ?? 0
        var info = HTTPInfo(version: "HTTP/2", host: pseudo(request, ":authority") ?? "")
        func message(_ headers: [Header], _ trailers: [Header], _ body: BodyCollector) -> Message {
            // gRPC payloads are kept raw: always base64.
            if isGRPC { return BodyPreview.base64Message(headers: headers, trailers: trailers, body: body) }
            let encoding = headers.first { $0.name.equalsIgnoringASCIICase("content-encoding") }?.value ?? ""
            return BodyPreview.message(
                headers: headers, trailers: trailers, body: body, contentEncoding: encoding, cap: cap)
        }
        let requestMessage = message(request, stream.requestTrailers, stream.requestBody)
        let responseMessage = message(response, stream.responseTrailers, stream.responseBody)
        if isGRPC {
            let trailers = stream.responseTrailers.isEmpty ? response : stream.responseTrailers
            let grpcStatus = trailers.first { $0.name == "grpc-status" }.flatMap { Int($0.value) }
            call.status = grpcStatus ?? 0
            if grpcStatus == nil, hasResponse, httpStatus != 200 {
                call.status = 2  // UNKNOWN: the HTTP layer failed (RFC: map non-200 to a gRPC code)
            }
            let parts = call.path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
            call.grpc = GRPCInfo(
                service: parts.count >= 2 ? String(Substring(parts[parts.count - 2])) : "",
                method: parts.last.map { String(Substring($0)) } ?? "", status: call.status,
                message: percentDecoded(trailers.first { $0.name == "grpc-message" }?.value ?? ""),
                requestMessages: stream.requestGRPC.messages, responseMessages: stream.responseGRPC.messages)
        } else {
            call.status = httpStatus
        }
        if let code = stream.resetCode, !hasResponse || stream.responseTrailers.isEmpty {
            info.statusText = "RST_STREAM \(code)"
        }
        call.flags.truncated = requestMessage.bodyTruncated || responseMessage.bodyTruncated
        call.request = hasRequest ? requestMessage : nil
        call.response = hasResponse ? responseMessage : nil
        call.http = info
        return call
    }
}

extension DissectorRegistration {
    /// HTTP/2 with prior knowledge (h2c), detected from the client preface.
    public static let http2 = DissectorRegistration(
        name: "http2", portHints: [80, 8080, 50051], probe: HTTP2Dissector.probe,
        make: { HTTP2Dissector(configuration: $0) })
}
