import FathomDissect
import FathomModel
import XCTest

/// Long-lived connections are reported while open, so a store upserting by flow id shows them before they end.
final class OpenFlowUpdateTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    private func engine(interval: UInt64) -> (DissectionEngine, CollectingSink) {
        var configuration = DissectionConfiguration()
        configuration.openFlowUpdateNanoseconds = interval
        let sink = CollectingSink()
        return (DissectionEngine(configuration, node: "n1", sink: sink), sink)
    }

    private func feed(_ engine: DissectionEngine, _ conversation: Conversation, from first: Int = 0) {
        for packet in conversation.packets[first...] { packet.bytes.withUnsafeBytes { engine.process(packet.metadata, $0) } }
    }

    func testOpenConnectionIsReportedAfterTheIntervalThenOnlyWhenItGrew() {
        let (engine, sink) = engine(interval: 10 * second)
        var conversation = Conversation()
        conversation.handshake()
        conversation.send(fromClient: true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        feed(engine, conversation)
        engine.flush(nowNanoseconds: conversation.time + 5 * second)
        XCTAssertTrue(sink.flows.isEmpty, "not before the interval")
        engine.flush(nowNanoseconds: conversation.time + 11 * second)
        XCTAssertEqual(sink.flows.count, 1)
        let update = sink.flows[0]
        XCTAssertEqual(update.endReason, "", "an update of an open flow has no end reason")
        XCTAssertEqual(update.bytesSent, 27)
        XCTAssertEqual(update.handshakeRttMs, 2)

        engine.flush(nowNanoseconds: conversation.time + 30 * second)
        XCTAssertEqual(sink.flows.count, 1, "no new packets: no new update")

        let sent = conversation.packets.count
        conversation.time += 31 * second
        conversation.send(fromClient: false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        feed(engine, conversation, from: sent)
        engine.flush(nowNanoseconds: conversation.time + 41 * second)
        XCTAssertEqual(sink.flows.count, 2)
        XCTAssertEqual(sink.flows[1].id, update.id, "updates keep the flow id")
        XCTAssertEqual(sink.flows[1].bytesReceived, 38)

        let more = conversation.packets.count
        conversation.close()
        feed(engine, conversation, from: more)
        engine.finish()
        XCTAssertEqual(sink.flows.last?.endReason, "fin")
        XCTAssertEqual(sink.flows.last?.id, update.id)
        XCTAssertEqual(engine.statistics.flowsEmitted, 1, "updates are not counted as flows")
    }

    func testUpdatesAreOffByDefault() {
        let (engine, sink) = engine(interval: 0)
        var conversation = Conversation()
        conversation.handshake()
        feed(engine, conversation)
        engine.flush(nowNanoseconds: conversation.time + 60 * second)
        XCTAssertTrue(sink.flows.isEmpty)
    }
}
