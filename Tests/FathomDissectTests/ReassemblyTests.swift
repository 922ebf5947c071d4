import FathomModel
import XCTest

@testable import FathomDissect

final class ReassemblyTests: XCTestCase {
    private let request = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    private func response(_ body: String) -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
    private let body = String(repeating: "0123456789", count: 500)

    private func exchange(segment: Int = 700) -> Conversation {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        conversation.send(fromClient: false, response(body), segment: segment)
        conversation.send(fromClient: true, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("second"))
        conversation.close()
        return conversation
    }

    func testOutOfOrderAndRetransmittedSegmentsGiveTheSameCalls() {
        var conversation = exchange()
        var packets = conversation.packets
        // Reverse the body segments and repeat two of them.
        let bodyRange = 4..<12
        packets.replaceSubrange(bodyRange, with: packets[bodyRange].reversed())
        packets.insert(packets[5], at: 9)
        packets.insert(packets[6], at: 12)
        conversation.packets = packets
        let (sink, engine) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/a", "/b"])
        XCTAssertEqual(sink.calls.first?.response?.body, body)
        XCTAssertEqual(engine.statistics.retransmissions, 2)
        XCTAssertEqual(sink.flows.first?.retransmissions, 2)
        XCTAssertGreaterThan(engine.statistics.outOfOrderSegments, 0)
        XCTAssertEqual(engine.statistics.gaps, 0)
        XCTAssertEqual(engine.statistics.bufferedBytes, 0)
    }

    func testOverlappingSegmentsKeepTheBytesOnce() {
        var conversation = Conversation()
        conversation.handshake()
        let text = request
        let bytes = Array(text.utf8)
        let start = conversation.clientSequence
        conversation.append(fromClient: true, flags: .ack, sequence: start, ack: 0, payload: Array(bytes[0..<10]))
        conversation.append(fromClient: true, flags: .ack, sequence: start &+ 5, ack: 0, payload: Array(bytes[5..<20]))
        conversation.append(fromClient: true, flags: .ack, sequence: start &+ 15, ack: 0, payload: Array(bytes[15...]))
        conversation.clientSequence &+= UInt32(bytes.count)
        conversation.send(fromClient: false, response("ok"))
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/a"])
        XCTAssertEqual(sink.calls.first?.status, 200)
    }

    func testLostBodySegmentIsAGapOnThatCallOnly() {
        var conversation = exchange()
        conversation.packets.remove(at: 6)  // inside the first body
        let (sink, engine) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/a", "/b"])
        XCTAssertEqual(sink.calls.map(\.flags.gap), [true, false])
        XCTAssertEqual(sink.calls.first?.response?.bodySize, body.utf8.count)
        XCTAssertEqual(sink.calls.last?.response?.body, "second")
        XCTAssertEqual(engine.statistics.gaps, 1)
        XCTAssertEqual(engine.statistics.gapBytes, 700)
        XCTAssertEqual(sink.flows.first?.gapBytes, 700)
    }

    func testAHoleTheReceiverAcknowledgedIsDeclaredAtOnce() {
        // Keep-alive, one response segment missing from the capture; the client's next request acknowledges it.
        // A third exchange comes 150 ms later: well inside the 1 s reorder timeout, past the acknowledged hole's wait.
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        let lost = conversation.send(fromClient: false, response(body), segment: 700)[2]
        conversation.send(fromClient: true, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("second"))
        conversation.time += 150_000_000
        conversation.send(fromClient: true, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("third"))
        conversation.packets.remove(at: lost)
        let sink = CollectingSink()
        let engine = DissectionEngine(DissectionConfiguration(), node: "n1", sink: sink)
        for packet in conversation.packets { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
        // No finish, no timeout: the calls are out because the acknowledgment proved the bytes were lost.
        XCTAssertEqual(sink.calls.map(\.path), ["/a", "/b", "/c"])
        XCTAssertEqual(sink.calls.map(\.flags.gap), [true, false, false])
        XCTAssertEqual(engine.statistics.acknowledgedHoles, 1)
        XCTAssertEqual(engine.statistics.gapBytes, 700)
        XCTAssertEqual(engine.statistics.bufferedBytes, 0)
    }

    func testAnOutOfOrderSegmentNotYetAcknowledgedStillWaits() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        let segments = conversation.send(fromClient: false, response(body), segment: 700)
        conversation.packets.swapAt(segments[2], segments[3])
        let sink = CollectingSink()
        let engine = DissectionEngine(DissectionConfiguration(), node: "n1", sink: sink)
        for packet in conversation.packets { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
        XCTAssertEqual(sink.calls.first?.response?.body, body)
        XCTAssertEqual(engine.statistics.gaps, 0)
        XCTAssertEqual(engine.statistics.acknowledgedHoles, 0)
    }

    func testLostRequestHeadResynchronisesAtTheNextRequest() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "GET /lost HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("first"))
        conversation.send(fromClient: true, "GET /kept HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("kept"))
        conversation.send(fromClient: true, "GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("third"))
        conversation.packets.remove(at: 5)  // the /kept request
        let (sink, engine) = dissect(conversation.packets)
        XCTAssertEqual(engine.statistics.gaps, 1)
        XCTAssertEqual(sink.calls.first?.path, "/lost")
        XCTAssertEqual(sink.calls.last?.path, "/third")
        XCTAssertTrue(sink.calls.contains { $0.flags.gap })
    }

    func testConnectionPickedUpMidStream() {
        var conversation = exchange()
        // Drop the handshake, the first request and part of its response.
        conversation.packets.removeFirst(6)
        let (sink, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/b"])
        XCTAssertEqual(sink.calls.first?.src.port, 40000)
        XCTAssertEqual(sink.flows.first?.midStream, true)
        XCTAssertEqual(sink.flows.first?.src.port, 40000)
        XCTAssertEqual(sink.flows.first?.handshakeRttMs, 0)
    }

    func testFlowRecordCountsBothDirectionsAndHandshake() {
        let conversation = exchange()
        let (sink, _) = dissect(conversation.packets)
        let flow = sink.flows.first
        XCTAssertEqual(sink.flows.count, 1)
        XCTAssertEqual(flow?.src, Endpoint(ip: "10.0.0.1", port: 40000))
        XCTAssertEqual(flow?.dst, Endpoint(ip: "10.0.0.2", port: 80))
        XCTAssertEqual(flow?.bytesSent, request.utf8.count + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n".utf8.count)
        XCTAssertEqual(flow?.bytesReceived, response(body).utf8.count + response("second").utf8.count)
        XCTAssertEqual(flow?.packetsSent, 2 + 2 + 2)  // SYN, ACK, two requests, FIN, last ACK
        XCTAssertEqual(flow?.handshakeRttMs, 2)  // packets are 1 ms apart
        XCTAssertEqual(flow?.endReason, "fin")
        XCTAssertEqual(flow?.transport, "tcp")
        XCTAssertEqual(flow?.proto, "http")
        XCTAssertEqual(sink.calls.first?.connectionID, flow?.id)
    }

    func testResetEndsTheConnectionAndEmitsTheUnansweredRequest() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        conversation.reset(fromClient: false)
        let sink = CollectingSink()
        let engine = DissectionEngine(node: "n1", sink: sink)
        for packet in conversation.packets { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
        XCTAssertEqual(sink.calls.map(\.flags.noResponse), [true])
        engine.flush(nowNanoseconds: conversation.time + 3_000_000_000)
        XCTAssertEqual(sink.flows.map(\.endReason), ["rst"])
        XCTAssertEqual(sink.flows.first?.resets, 1)
        XCTAssertEqual(engine.trackedFlows, 0)
    }

    func testIdleConnectionTimesOut() {
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        var configuration = DissectionConfiguration()
        configuration.tcpIdleTimeoutNanoseconds = 10_000_000_000
        let sink = CollectingSink()
        let engine = DissectionEngine(configuration, node: "n1", sink: sink)
        for packet in conversation.packets { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
        engine.flush(nowNanoseconds: conversation.time + 5_000_000_000)
        XCTAssertTrue(sink.flows.isEmpty)
        engine.flush(nowNanoseconds: conversation.time + 11_000_000_000)
        XCTAssertEqual(sink.flows.map(\.endReason), ["timeout"])
        XCTAssertEqual(sink.calls.map(\.flags.noResponse), [true])
        XCTAssertEqual(engine.statistics.connectionsTimedOut, 1)
    }

    /// eBPF sees traffic between two local sockets twice (once per socket): each call and byte counts once.
    func testBothCopiesOfLocalTrafficCountOnce() {
        let conversation = exchange()
        var doubled: [TestPcapFile.Packet] = []
        for (index, packet) in conversation.packets.enumerated() {
            let fromClient = packet.bytes[26...29] == [10, 0, 0, 1]
            var sender = packet
            sender.metadata.source = .ebpf
            sender.metadata.direction = .outbound
            sender.metadata.socketCookie = fromClient ? 111 : 222
            var receiver = sender
            receiver.metadata.direction = .inbound
            receiver.metadata.socketCookie = fromClient ? 222 : 111
            receiver.metadata.timestampNanoseconds += 1000
            // Per-CPU buffers may deliver the receiver's copy first.
            doubled += index % 3 == 0 ? [receiver, sender] : [sender, receiver]
        }
        let (sink, engine) = dissect(doubled)
        let (single, _) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.map(\.path), ["/a", "/b"])
        XCTAssertEqual(sink.calls.first?.response?.body, body)
        XCTAssertEqual(sink.flows.count, 1)
        XCTAssertEqual(sink.flows.first?.bytesSent, single.flows.first?.bytesSent)
        XCTAssertEqual(sink.flows.first?.bytesReceived, single.flows.first?.bytesReceived)
        XCTAssertEqual(sink.flows.first?.packetsSent, single.flows.first?.packetsSent)
        XCTAssertEqual(sink.flows.first?.retransmissions, 0)
        XCTAssertEqual(engine.statistics.duplicateCopies, conversation.packets.count)
        XCTAssertEqual(engine.statistics.retransmissions, 0)
        XCTAssertEqual(sink.calls.first?.captureSource, .ebpf)
    }

    func testMemoryBoundsDropAndCountInsteadOfGrowing() {
        var configuration = DissectionConfiguration()
        configuration.maxBufferedBytesPerDirection = 4096
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, request)
        let indexes = conversation.send(fromClient: false, response(String(repeating: "x", count: 40000)), segment: 1000)
        conversation.send(fromClient: true, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        conversation.send(fromClient: false, response("second"))
        // The first body segment is lost: everything behind it queues up against the bound.
        conversation.packets.remove(at: indexes[1])
        let sink = CollectingSink()
        let engine = DissectionEngine(configuration, node: "n1", sink: sink)
        var peak = 0
        for packet in conversation.packets {
            packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) }
            peak = max(peak, engine.statistics.bufferedBytes)
        }
        engine.finish()
        XCTAssertLessThanOrEqual(peak, 4096 * 2)
        XCTAssertGreaterThan(engine.statistics.gaps, 0)
        XCTAssertEqual(sink.calls.map(\.path), ["/a", "/b"])
        XCTAssertEqual(sink.calls.first?.flags.gap, true)
        XCTAssertEqual(sink.calls.last?.response?.body, "second")
        XCTAssertEqual(engine.statistics.bufferedBytes, 0)
    }

    func testTotalMemoryBoundDropsSegmentsWithACounter() {
        var reassembler = TCPStreamReassembler()
        reassembler.start(at: 0)
        let payload = [UInt8](repeating: 1, count: 100)
        var dropped = 0
        payload.withUnsafeBytes { bytes in
            for k in 1...10 {
                let outcome = reassembler.receive(
                    sequence: UInt32(k * 1000), payload: bytes, missingTail: 0, now: 0, allowance: 350 - reassembler.queuedBytes
                ) { _ in }
                if outcome == .dropped { dropped += 1 }
            }
        }
        XCTAssertEqual(reassembler.queuedBytes, 300)
        XCTAssertEqual(dropped, 7)
    }

    func testSequenceNumbersWrapAround() {
        var conversation = Conversation()
        conversation.clientSequence = UInt32.max - 10
        conversation.serverSequence = UInt32.max - 100
        conversation.handshake()
        conversation.send(fromClient: true, request, segment: 7)
        conversation.send(fromClient: false, response(body), segment: 300)
        let (sink, engine) = dissect(conversation.packets)
        XCTAssertEqual(sink.calls.first?.response?.body, body)
        XCTAssertEqual(engine.statistics.gaps, 0)
    }
}
