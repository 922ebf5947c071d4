import FathomModel

/// DNS over UDP: pairs queries and responses by transaction id within a 5-tuple. One per engine.
final class DNSDissector {
    static let portHints: Set<UInt16> = [53, 5353, 5355]

    private struct PendingKey: Hashable {
        var flow: FlowKey
        var id: UInt16
    }

    private struct PendingQuery {
        var message: DNSMessage
        var nanoseconds: UInt64
        var session: ConnectionSession
    }

    private var pending: [PendingKey: PendingQuery] = [:]
    private let maxPending: Int

    init(maxPending: Int) {
        self.maxPending = max(maxPending, 1)
    }

    /// Whether a datagram is DNS: true for a query, false for a response, nil when it is not DNS. Without a port
    /// hint only a message with exactly one question counts.
    static func probe(_ bytes: UnsafeRawBufferPointer, portHinted: Bool) -> Bool? {
        guard let message = DNSMessage.parse(bytes) else { return nil }
        if !portHinted, message.questions.count != 1 || message.opcode != 0 { return nil }
        return !message.isResponse
    }

    func datagram(_ bytes: UnsafeRawBufferPointer, key: FlowKey, session: ConnectionSession) {
        guard let message = DNSMessage.parse(bytes) else {
            session.countUnparsable(bytes.count, protocolName: "dns")
            return
        }
        let pendingKey = PendingKey(flow: key, id: message.id)
        if !message.isResponse {
            // A retransmitted query keeps the first one's time.
            if pending[pendingKey] == nil {
                if pending.count >= maxPending, let oldest = pending.min(by: { $0.value.nanoseconds < $1.value.nanoseconds }) {
                    pending.removeValue(forKey: oldest.key)
                    oldest.value.session.emit(
                        DNSCall.make(
                            query: oldest.value.message, queryNanoseconds: oldest.value.nanoseconds, response: nil,
                            responseNanoseconds: 0, session: oldest.value.session))
                }
                pending[pendingKey] = PendingQuery(message: message, nanoseconds: session.nowNanoseconds, session: session)
            }
            return
        }
        let query = pending.removeValue(forKey: pendingKey)
        session.emit(
            DNSCall.make(
                query: query?.message, queryNanoseconds: query?.nanoseconds ?? 0, response: message,
                responseNanoseconds: session.nowNanoseconds, session: session))
    }

    /// Emits queries older than `timeout` as unanswered, oldest first.
    func expire(now: UInt64, timeout: UInt64) {
        let old = pending.filter { now >= $0.value.nanoseconds &+ timeout || now == .max }
        guard !old.isEmpty else { return }
        for (key, query) in old.sorted(by: { $0.value.nanoseconds < $1.value.nanoseconds }) {
            pending.removeValue(forKey: key)
            query.session.emit(
                DNSCall.make(
                    query: query.message, queryNanoseconds: query.nanoseconds, response: nil, responseNanoseconds: 0,
                    session: query.session))
        }
    }
}

/// DNS over TCP: two-byte length prefixed messages, paired by transaction id.
final class DNSOverTCPDissector: StreamDissector {
    private var pending: [UInt16: (DNSMessage, UInt64)] = [:]
    private var order: [UInt16] = []
    private var resynchronising = [false, false]

    static func probe(_ bytes: UnsafeRawBufferPointer) -> ProbeResult {
        guard let length = bytes.u16(0) else { return .needMoreData }
        guard length >= 12 else { return .noMatch }
        // One question (the count at body offset 4) is what every real query and answer carries.
        if let questions = bytes.u16(6), questions != 1 { return .noMatch }
        guard let body = bytes.slice(2, Int(length)) else { return .needMoreData }
        guard let message = DNSMessage.parse(body), message.questions.count == 1 else { return .noMatch }
        return message.isResponse ? .senderIsServer : .senderIsClient
    }

    func parse(_ bytes: UnsafeRawBufferPointer, from side: StreamSide, session: ConnectionSession) -> Int {
        // After a gap the framing is lost: the rest of that direction cannot be trusted.
        if resynchronising[side.rawValue] {
            session.countUnparsable(bytes.count, protocolName: "dns")
            return bytes.count
        }
        var offset = 0
        while let length = bytes.u16(offset), let body = bytes.slice(offset + 2, Int(length)) {
            offset += 2 + Int(length)
            guard let message = DNSMessage.parse(body) else {
                session.countUnparsable(body.count + 2, protocolName: "dns")
                continue
            }
            if side == .client, !message.isResponse {
                if pending[message.id] == nil, pending.count < session.configuration.maxPendingMessagesPerConnection {
                    pending[message.id] = (message, session.firstByteNanoseconds)
                    order.append(message.id)
                }
            } else {
                let query = pending.removeValue(forKey: message.id)
                order.removeAll { $0 == message.id }
                var call = DNSCall.make(
                    query: query?.0, queryNanoseconds: query?.1 ?? 0, response: message,
                    responseNanoseconds: session.nowNanoseconds, session: session)
                call.flags.gap = resynchronising[0]
                session.emit(call)
            }
        }
        return offset
    }

    func gap(from side: StreamSide, length: Int, session: ConnectionSession) {
        resynchronising[side.rawValue] = true
    }

    func finish(session: ConnectionSession) {
        for id in order {
            guard let (query, time) = pending[id] else { continue }
            var call = DNSCall.make(
                query: query, queryNanoseconds: time, response: nil, responseNanoseconds: 0, session: session)
            call.flags.gap = resynchronising[1]
            session.emit(call)
        }
        pending.removeAll()
        order.removeAll()
    }
}

extension DissectorRegistration {
    /// DNS over TCP (port 53 hinted).
    public static let dnsOverTCP = DissectorRegistration(
        name: "dns", portHints: [53], probe: DNSOverTCPDissector.probe, make: { _ in DNSOverTCPDissector() })
}
