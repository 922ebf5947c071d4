import FathomModel

/// Sees each packet the engine decoded, before the engine acts on it, so a consumer of the same packets (attribution
/// noting socket owners) need not decode them again.
public protocol DecodedPacketObserver: AnyObject {
    func observe(_ metadata: PacketMetadata, _ packet: DecodedPacket)
}

/// Turns packets into calls and connection records: decode, track flows, reassemble TCP, detect the protocol and
/// run its dissector. Not thread-safe: one engine per capture thread.
public final class DissectionEngine {
    public let configuration: DissectionConfiguration
    public let node: String
    let emitter: CallEmitter
    var connections: [FlowKey: TCPConnection] = [:]
    var conversations: [FlowKey: UDPConversation] = [:]
    let dns: DNSDissector
    private var connectionSequence: UInt64 = 0
    private var lastSweepNanoseconds: UInt64 = 0
    /// Packet time of the newest packet.
    private var nowNanoseconds: UInt64 = 0
    /// The flow of the previous TCP and UDP packet: a train of packets of one flow skips hashing its key. Cleared
    /// wherever flows are removed.
    private var lastConnection: TCPConnection?
    private var lastConversation: UDPConversation?
    /// Called with every decoded packet before it is processed.
    public let packetObserver: (any DecodedPacketObserver)?

    /// An engine for `node` delivering calls and flows to `sink`, showing each decoded packet to `packetObserver`.
    /// Call ids are "<idPrefix>-<n>" and connection ids "<idPrefix>-c<n>"; the prefix defaults to the node, and a
    /// store that outlives one engine (the agent's, across restarts) gives each engine a prefix of its own.
    public init(
        _ configuration: DissectionConfiguration = DissectionConfiguration(), node: String, idPrefix: String? = nil,
        sink: any DissectionSink, packetObserver: (any DecodedPacketObserver)? = nil
    ) {
        self.configuration = configuration
        self.node = node
        self.packetObserver = packetObserver
        emitter = CallEmitter(node: node, idPrefix: idPrefix ?? node, sink: sink)
        dns = DNSDissector(maxPending: configuration.maxPendingDNSQueries)
    }

    /// The counters so far.
    public var statistics: DissectionStatistics { emitter.statistics }

    /// Connections and conversations tracked right now.
    public var trackedFlows: Int { connections.count + conversations.count }

    /// Takes one packet; `packet` is only read during the call.
    public func process(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {
        emitter.statistics.packets += 1
        emitter.statistics.bytes += packet.count
        let now = metadata.timestampNanoseconds
        if now > nowNanoseconds { nowNanoseconds = now }
        switch PacketDecoder.decode(packet, linkType: metadata.linkType) {
        case .success(let decoded):
            packetObserver?.observe(metadata, decoded)
            let payload = UnsafeRawBufferPointer(
                rebasing: packet[decoded.payloadOffset..<(decoded.payloadOffset + decoded.payloadLength)])
            switch decoded.transport {
            case .tcp:
                emitter.statistics.tcpPackets += 1
                processTCP(metadata, decoded, payload)
            case .udp:
                emitter.statistics.udpPackets += 1
                processUDP(metadata, decoded, payload)
            }
        case .failure(.fragment): emitter.statistics.fragments += 1
        case .failure(.truncated): emitter.statistics.malformedPackets += 1
        case .failure(.unsupportedLinkType): emitter.statistics.unsupportedLinkType += 1
        case .failure(.notIP), .failure(.otherTransport): emitter.statistics.otherPackets += 1
        }
        if nowNanoseconds >= lastSweepNanoseconds &+ 1_000_000_000 { flush(nowNanoseconds: nowNanoseconds) }
    }

    /// Expires idle connections, lingering closed ones, old stream holes and unanswered DNS queries as of `now`.
    public func flush(nowNanoseconds now: UInt64) {
        lastSweepNanoseconds = now
        lastConnection = nil
        lastConversation = nil
        var expired: [FlowKey] = []
        for (key, connection) in connections {
            if connection.closedNanoseconds != 0, now >= connection.closedNanoseconds &+ configuration.closedLingerNanoseconds {
                expired.append(key)
            } else if now >= connection.lastNanoseconds &+ configuration.tcpIdleTimeoutNanoseconds {
                connection.endReason = "timeout"
                emitter.statistics.connectionsTimedOut += 1
                expired.append(key)
            } else {
                skipStaleHoles(connection, now: now)
            }
        }
        for key in expired {
            if let connection = connections.removeValue(forKey: key) { finalize(connection) }
        }
        var idle: [FlowKey] = []
        for (key, conversation) in conversations
        where now >= conversation.lastNanoseconds &+ configuration.udpIdleTimeoutNanoseconds {
            idle.append(key)
        }
        for key in idle {
            if let conversation = conversations.removeValue(forKey: key) {
                emitter.statistics.flowsEmitted += 1
                emitter.sink.emit(flow: conversation.flow(node: node, endReason: "timeout"))
            }
        }
        dns.expire(now: now, timeout: configuration.dnsResponseTimeoutNanoseconds)
        reportOpenFlows(now: now)
    }

    /// Emits open connections and conversations that had packets since their last report, at most once per
    /// `openFlowUpdateNanoseconds` each: a consumer upserting by flow id sees long-lived flows grow.
    private func reportOpenFlows(now: UInt64) {
        let interval = configuration.openFlowUpdateNanoseconds
        guard interval > 0 else { return }
        func due(_ first: UInt64, _ reported: UInt64, _ last: UInt64, _ reportedLast: UInt64) -> Bool {
            last != reportedLast && now >= max(first, reported) &+ interval
        }
        for connection in connections.values where connection.closedNanoseconds == 0
            && due(connection.firstNanoseconds, connection.reportedNanoseconds, connection.lastNanoseconds,
                   connection.reportedLastNanoseconds)
        {
            connection.reportedNanoseconds = now
            connection.reportedLastNanoseconds = connection.lastNanoseconds
            emitter.sink.emit(flow: connection.flow(node: node))
        }
        for conversation in conversations.values
        where due(conversation.firstNanoseconds, conversation.reportedNanoseconds, conversation.lastNanoseconds,
                  conversation.reportedLastNanoseconds)
        {
            conversation.reportedNanoseconds = now
            conversation.reportedLastNanoseconds = conversation.lastNanoseconds
            emitter.sink.emit(flow: conversation.flow(node: node, endReason: ""))
        }
    }

    /// End of input: closes every connection ("capture_end" unless it had already ended) and emits what is pending.
    public func finish() {
        lastConnection = nil
        lastConversation = nil
        for connection in connections.values.sorted(by: { $0.firstNanoseconds < $1.firstNanoseconds }) {
            if connection.endReason.isEmpty { connection.endReason = "capture_end" }
            finalize(connection)
        }
        connections.removeAll()
        for conversation in conversations.values.sorted(by: { $0.firstNanoseconds < $1.firstNanoseconds }) {
            emitter.statistics.flowsEmitted += 1
            emitter.sink.emit(flow: conversation.flow(node: node, endReason: "capture_end"))
        }
        conversations.removeAll()
        dns.expire(now: .max, timeout: 0)
    }

    func nextConnectionID() -> String {
        connectionSequence += 1
        return "\(emitter.idPrefix)c\(connectionSequence)"
    }

    // MARK: TCP

    private func processTCP(_ metadata: PacketMetadata, _ packet: DecodedPacket, _ payload: UnsafeRawBufferPointer) {
        let now = metadata.timestampNanoseconds
        let (key, direction) = FlowKey.of(packet, source: metadata.source)
        let isSyn = packet.flags.contains(.syn)
        let isAck = packet.flags.contains(.ack)
        var existing = lastConnection.flatMap { $0.key == key ? $0 : nil } ?? connections[key]
        if let old = existing, old.closedNanoseconds != 0, isSyn, !isAck {
            // The port pair is reused by a new connection.
            connections.removeValue(forKey: key)
            finalize(old)
            existing = nil
        }
        let connection: TCPConnection
        if let existing {
            connection = existing
        } else {
            guard let session = openSession(key, metadata, tracked: connections.count) else { return }
            connection = TCPConnection(key: key, session: session, now: now)
            connection.primaryCookie = metadata.socketCookie
            connections[key] = connection
        }
        lastConnection = connection
        let isMirror = metadata.socketCookie != 0 && connection.primaryCookie != 0
            && metadata.socketCookie != connection.primaryCookie
        if isMirror {
            emitter.statistics.duplicateCopies += 1
        } else {
            connection.packets[direction] += 1
            connection.bytes[direction] += packet.wirePayloadLength
        }
        if now > connection.lastNanoseconds { connection.lastNanoseconds = now }
        connection.session.nowNanoseconds = now

        if isSyn {
            connection.sawSyn = true
            if !isAck {
                if connection.clientDirection == nil { connection.setClientDirection(direction) }
                if connection.synNanoseconds == 0 { connection.synNanoseconds = now }
            } else {
                if connection.clientDirection == nil { connection.setClientDirection(1 - direction) }
                if connection.synAckNanoseconds == 0 { connection.synAckNanoseconds = now }
            }
            if !connection.streams[direction].started {
                connection.streams[direction].start(at: packet.sequence &+ 1)
            }
        } else if isAck, connection.handshakeNanoseconds == 0, connection.synAckNanoseconds != 0,
            direction == connection.clientDirection
        {
            connection.handshakeNanoseconds = now
        }

        let missingTail = packet.wirePayloadLength - packet.payloadLength
        if connection.finished {
            // Data after the dissector finished (after a RST, or a FIN both ways) has nowhere to go.
            emitter.statistics.unrecognisedBytes += payload.count
        } else if payload.count + missingTail > 0 {
            if !connection.streams[direction].started, !connection.sawSyn { connection.midStream = true }
            let sequence = isSyn ? packet.sequence &+ 1 : packet.sequence
            var seenByPrimary = isMirror
            if !isMirror {
                let end = sequence &+ UInt32(truncatingIfNeeded: payload.count + missingTail)
                if let previous = connection.primaryEnd[direction] {
                    seenByPrimary = Int32(bitPattern: end &- previous) <= 0
                    if !seenByPrimary { connection.primaryEnd[direction] = end }
                } else {
                    connection.primaryEnd[direction] = end
                }
            }
            receive(
                connection, direction: direction, sequence: sequence, payload: payload, missingTail: missingTail,
                now: now, isRetransmission: !isMirror && seenByPrimary)
        }
        if isAck { connection.streams[1 - direction].noteAcknowledgment(packet.acknowledgment, now: now) }
        skipStaleHoles(connection, now: now)
        if connection.closedNanoseconds != 0, !connection.finished, connection.streamsComplete {
            finishDissector(connection)  // the late segments the close waited for have arrived
        }

        if packet.flags.contains(.rst) {
            if !isMirror { connection.resets += 1 }
            close(connection, reason: "rst", now: now)
        } else if packet.flags.contains(.fin) {
            connection.finSeen[direction] = true
            connection.finSequence[direction] = packet.sequence &+ UInt32(truncatingIfNeeded: packet.wirePayloadLength)
            if connection.finSeen[0], connection.finSeen[1] { close(connection, reason: "fin", now: now) }
        }
    }

    private func receive(
        _ connection: TCPConnection, direction: Int, sequence: UInt32, payload: UnsafeRawBufferPointer,
        missingTail: Int, now: UInt64, isRetransmission: Bool
    ) {
        for attempt in 0..<2 {
            let heldBefore = connection.heldBytes(0) + connection.heldBytes(1)
            let allowance = min(
                configuration.maxBufferedBytesPerDirection - connection.heldBytes(direction),
                configuration.maxBufferedBytesTotal - emitter.statistics.bufferedBytes)
            let outcome = connection.streams[direction].receive(
                sequence: sequence, payload: payload, missingTail: missingTail, now: now, allowance: allowance
            ) { chunk in self.deliver(chunk, connection, direction) }
            emitter.statistics.bufferedBytes += connection.heldBytes(0) + connection.heldBytes(1) - heldBefore
            switch outcome {
            case .delivered:
                return
            case .duplicate:
                if isRetransmission {
                    emitter.statistics.retransmissions += 1
                    connection.retransmissions += 1
                }
                return
            case .queued:
                emitter.statistics.outOfOrderSegments += 1
                return
            case .dropped:
                if attempt == 0 {
                    // Over the bound: the oldest hole is declared lost to make room, then the segment is retried.
                    skipHole(connection, direction: direction, now: now)
                } else {
                    emitter.statistics.bytesDroppedOverMemoryBound += payload.count
                }
            }
        }
    }

    private func skipHole(_ connection: TCPConnection, direction: Int, now: UInt64) {
        let before = connection.heldBytes(0) + connection.heldBytes(1)
        connection.streams[direction].skipHole(now: now) { chunk in self.deliver(chunk, connection, direction) }
        emitter.statistics.bufferedBytes += connection.heldBytes(0) + connection.heldBytes(1) - before
    }

    /// Declares lost the holes that waited out the reorder timeout, or the shorter wait for a hole the receiver has
    /// acknowledged: bytes that reached it will not come again, and waiting the full timeout would only hold back
    /// (and, past the memory bound, lose) everything behind the hole.
    private func skipStaleHoles(_ connection: TCPConnection, now: UInt64) {
        for direction in 0..<2 {
            let acknowledged = connection.streams[direction].holeAcknowledgedSinceNanoseconds
            let since = connection.streams[direction].holeSinceNanoseconds
            if acknowledged != 0, now >= acknowledged &+ configuration.acknowledgedHoleTimeoutNanoseconds {
                emitter.statistics.acknowledgedHoles += 1
                skipHole(connection, direction: direction, now: now)
            } else if since != 0, now >= since &+ configuration.reorderTimeoutNanoseconds {
                skipHole(connection, direction: direction, now: now)
            }
        }
    }

    private func close(_ connection: TCPConnection, reason: String, now: UInt64) {
        guard connection.closedNanoseconds == 0 else { return }
        connection.closedNanoseconds = now
        connection.endReason = reason
        emitter.statistics.connectionsClosed += 1
        // With no hole left the calls go out now; otherwise late retransmissions get the linger time to fill it.
        if connection.streamsComplete { finishDissector(connection) }
    }

    private func finishDissector(_ connection: TCPConnection) {
        guard !connection.finished else { return }
        connection.finished = true
        let before = connection.heldBytes(0) + connection.heldBytes(1)
        for direction in 0..<2 {
            _ = connection.streams[direction].flushAll(now: nowNanoseconds) { chunk in
                self.deliver(chunk, connection, direction)
            }
            // Bytes the FIN shows were sent but never arrived.
            if let fin = connection.finSequence[direction], connection.streams[direction].started {
                let missing = Int(Int32(bitPattern: fin &- connection.streams[direction].nextSequence))
                if missing > 0 { deliver(.gap(missing), connection, direction) }
            }
        }
        emitter.statistics.bufferedBytes += connection.heldBytes(0) + connection.heldBytes(1) - before
        if let dissector = connection.dissector {
            dissector.finish(session: connection.session)
        }
        for direction in 0..<2 {
            let leftover = connection.buffers[direction].count
            if leftover > 0 {
                if connection.dissector == nil {
                    emitter.statistics.unrecognisedBytes += leftover
                } else {
                    connection.session.countUnparsable(leftover, protocolName: connection.protocolName)
                }
                emitter.statistics.bufferedBytes -= leftover
                connection.buffers[direction].clear()
            }
        }
    }

    private func finalize(_ connection: TCPConnection) {
        finishDissector(connection)
        emitter.statistics.flowsEmitted += 1
        emitter.sink.emit(flow: connection.flow(node: node))
    }

    // MARK: Stream delivery and protocol detection

    private func deliver(_ chunk: StreamChunk, _ connection: TCPConnection, _ direction: Int) {
        switch chunk {
        case .data(let bytes):
            switch connection.detection {
            case .failed:
                emitter.statistics.unrecognisedBytes += bytes.count
            case .pending:
                connection.buffers[direction].append(bytes, now: connection.session.nowNanoseconds)
                detect(connection, direction: direction)
            case .detected:
                feed(bytes, connection, direction)
            }
        case .gap(let length):
            emitter.statistics.gaps += 1
            emitter.statistics.gapBytes += length
            connection.gapBytes += length
            let lost = connection.buffers[direction].count
            connection.buffers[direction].clear()
            if let dissector = connection.dissector {
                dissector.gap(from: connection.side(of: direction), length: length + lost, session: connection.session)
            } else {
                emitter.statistics.unrecognisedBytes += lost
            }
        }
    }

    private func feed(_ bytes: UnsafeRawBufferPointer, _ connection: TCPConnection, _ direction: Int) {
        guard let dissector = connection.dissector else { return }
        let side = connection.side(of: direction)
        let session = connection.session
        if connection.buffers[direction].isEmpty {
            // The common case: parse straight from the packet; keep only an incomplete tail.
            session.firstByteNanoseconds = session.nowNanoseconds
            let consumed = min(max(dissector.parse(bytes, from: side, session: session), 0), bytes.count)
            if consumed < bytes.count {
                connection.buffers[direction].append(bytes.suffix(from: consumed), now: session.nowNanoseconds)
            }
        } else {
            connection.buffers[direction].append(bytes, now: session.nowNanoseconds)
            session.firstByteNanoseconds = connection.buffers[direction].firstByteNanoseconds
            let consumed = connection.buffers[direction].withBytes { dissector.parse($0, from: side, session: session) }
            connection.buffers[direction].consume(consumed)
        }
        let held = connection.buffers[direction].count
        if held > configuration.maxBufferedBytesPerDirection {
            // The dissector waits for more than the bound allows: drop what it holds and let it resynchronise.
            emitter.statistics.bytesDroppedOverMemoryBound += held
            connection.buffers[direction].clear()
            dissector.gap(from: side, length: held, session: session)
        }
    }

    private func detect(_ connection: TCPConnection, direction: Int) {
        let registrations = configuration.streamDissectors
        var chosen: (DissectorRegistration, ProbeResult)?
        var wantsMore = false
        var skip = 0
        let ports = (connection.key.lowPort, connection.key.highPort)
        let hinted = registrations.filter { $0.portHints.contains(ports.0) || $0.portHints.contains(ports.1) }
        let ordered = hinted + registrations.filter { r in !hinted.contains { $0.name == r.name } }
        connection.buffers[direction].withBytes { bytes in
            // Mid-stream the bytes may start inside a message: text protocols get another try after each line feed.
            var start = 0
            while start < bytes.count {
                let view = bytes.suffix(from: start)
                for registration in ordered {
                    let result = registration.probe(view)
                    switch result {
                    case .senderIsClient, .senderIsServer:
                        chosen = (registration, result)
                        skip = start
                        return
                    case .needMoreData:
                        wantsMore = wantsMore || start == 0
                    case .noMatch:
                        continue
                    }
                }
                guard connection.midStream, let lineFeed = view.firstIndex(of: 10) else { return }
                start += lineFeed + 1
            }
        }
        if skip > 0 {
            emitter.statistics.unrecognisedBytes += skip
            connection.buffers[direction].consume(skip)
        }
        if let (registration, result) = chosen {
            if connection.clientDirection == nil {
                connection.setClientDirection(result == .senderIsClient ? direction : 1 - direction)
            }
            connection.dissector = registration.make(configuration)
            connection.protocolName = registration.name
            connection.detection = .detected
            // Hand over what waited, the earlier direction first.
            let order =
                connection.buffers[1].isEmpty
                    || (!connection.buffers[0].isEmpty
                        && connection.buffers[0].firstByteNanoseconds <= connection.buffers[1].firstByteNanoseconds)
                ? [0, 1] : [1, 0]
            for d in order where !connection.buffers[d].isEmpty {
                var waiting = connection.buffers[d]
                connection.buffers[d] = StreamBuffer()
                let saved = connection.session.nowNanoseconds
                connection.session.nowNanoseconds = waiting.firstByteNanoseconds
                waiting.withBytes { feed($0, connection, d) }
                connection.session.nowNanoseconds = saved
                waiting.clear()
            }
            return
        }
        let held = connection.buffers[direction].count
        if wantsMore, held < configuration.maxDetectionBytes { return }
        connection.rejected[direction] = true
        if connection.midStream {
            // Picked up mid-stream, the first bytes may be the middle of a message: skip them, try the next ones.
            connection.buffers[direction].clear()
            emitter.statistics.unrecognisedBytes += held
            connection.detectionSkippedBytes += held
            if connection.detectionSkippedBytes <= 4 * configuration.maxDetectionBytes { return }
        } else if !connection.rejected[1 - direction], held < configuration.maxDetectionBytes {
            // The server may speak first (HTTP/2 SETTINGS, greetings): keep the bytes and wait for the client.
            return
        }
        connection.detection = .failed
        for d in 0..<2 {
            emitter.statistics.unrecognisedBytes += connection.buffers[d].count
            connection.buffers[d].clear()
        }
    }

    // MARK: UDP

    /// A session for a new TCP connection or UDP conversation, or nil (counted) when `tracked` is at the bound.
    private func openSession(_ key: FlowKey, _ metadata: PacketMetadata, tracked: Int) -> ConnectionSession? {
        guard tracked < configuration.maxConnections else {
            emitter.statistics.connectionsNotTracked += 1
            return nil
        }
        emitter.statistics.connectionsOpened += 1
        return ConnectionSession(
            connectionID: nextConnectionID(), client: key.sender(of: key.likelyClientDirection),
            server: key.sender(of: 1 - key.likelyClientDirection), captureSource: metadata.source,
            configuration: configuration, emitter: emitter)
    }

    private func processUDP(_ metadata: PacketMetadata, _ packet: DecodedPacket, _ payload: UnsafeRawBufferPointer) {
        let now = metadata.timestampNanoseconds
        let (key, direction) = FlowKey.of(packet, source: metadata.source)
        let conversation: UDPConversation
        if let last = lastConversation, last.key == key {
            conversation = last
        } else if let existing = conversations[key] {
            conversation = existing
            lastConversation = existing
        } else {
            guard let session = openSession(key, metadata, tracked: conversations.count) else { return }
            conversation = UDPConversation(key: key, session: session, now: now)
            conversation.primaryCookie = metadata.socketCookie
            conversations[key] = conversation
            lastConversation = conversation
        }
        if metadata.socketCookie != 0, conversation.primaryCookie != 0, metadata.socketCookie != conversation.primaryCookie {
            // The other local socket's copy of the same datagram.
            emitter.statistics.duplicateCopies += 1
            return
        }
        conversation.packets[direction] += 1
        conversation.bytes[direction] += packet.wirePayloadLength
        if now > conversation.lastNanoseconds { conversation.lastNanoseconds = now }
        guard conversation.protocolName != "unknown" else {
            emitter.statistics.unrecognisedBytes += payload.count
            return
        }
        let hinted = DNSDissector.portHints.contains(packet.sourcePort)
            || DNSDissector.portHints.contains(packet.destinationPort)
        if let isQuery = DNSDissector.probe(payload, portHinted: hinted) {
            if conversation.clientDirection == nil {
                conversation.setClientDirection(isQuery ? direction : 1 - direction)
            }
            conversation.protocolName = "dns"
            conversation.session.nowNanoseconds = now
            conversation.session.firstByteNanoseconds = now
            dns.datagram(payload, key: key, session: conversation.session)
        } else if conversation.protocolName.isEmpty {
            conversation.protocolName = "unknown"
            emitter.statistics.unrecognisedBytes += payload.count
        }
    }
}

extension DissectionEngine: PacketSink {
    /// `PacketSink`: the live path hands every captured packet here.
    public func append(_ metadata: PacketMetadata, _ packet: UnsafeRawBufferPointer) {
        process(metadata, packet)
    }

    /// `PacketSink`: the capture thread's timer.
    public func tick(nowNanoseconds: UInt64) {
        flush(nowNanoseconds: nowNanoseconds)
    }
}
