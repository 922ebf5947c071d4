import FathomDissect
import FathomModel
import FathomStore
import Logging
import XCTest

@testable import FathomAgent
@testable import FathomRecording

/// Live dissection follows the recording from its files (the feed is not installed here, so nothing comes from memory).
final class LiveDissectionTests: XCTestCase {
    private let client = IPAddress("10.1.0.1")!
    private let server = IPAddress("10.1.0.2")!

    private func packet(_ bytes: [UInt8], at nanoseconds: UInt64, into store: SegmentStore) {
        let metadata = PacketMetadata(
            timestampNanoseconds: nanoseconds, originalLength: UInt32(bytes.count), linkType: 1, source: .ebpf)
        bytes.withUnsafeBytes { store.append(metadata, $0) }
    }

    /// The recording publishes its catalog on every flush, while the background thread may still be writing a new
    /// segment's first bytes. Listed and opened then, the file was too short to read, and live dissection skipped the
    /// segment with every call in it: a segment is listed only once bytes are in its file.
    func testASegmentIsListedOnceItsFileHasBytesAndItsCallsAreRead() throws {
        let directory = try TemporaryDirectory()
        let store = try SegmentStore(configuration: SegmentStore.Configuration(directory: directory.path + "/recording"))
        let calls = try CallsDatabase(path: directory.path + "/calls.db")
        let dissection = LiveDissection(
            catalog: store.catalog, recording: store.statistics, calls: calls, node: "test",
            ownEndpoint: ("127.0.0.1", 1), readsDirectly: true, logger: Logger(label: "test"))

        let start: UInt64 = 1_763_715_402_000_000_000
        let request = Array("GET /first HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
        packet(SyntheticPacket.tcp(from: client, 40000, to: server, 80, sequence: 1, flags: [.ack, .psh], payload: request),
               at: start, into: store)
        store.publish()  // as a flush does while its write is under way
        XCTAssertEqual(store.segments(), [], "nothing in the file yet")
        dissection.start()
        Thread.sleep(forTimeInterval: 0.3)  // a few passes of the dissection thread over the empty file

        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        packet(SyntheticPacket.tcp(from: server, 80, to: client, 40000, sequence: 1, acknowledgment: UInt32(1 + request.count),
                                   flags: [.ack, .psh], payload: response), at: start + 1_000_000, into: store)
        store.flush()
        dissection.stop()
        store.close()

        let page = try calls.calls(CallQuery(limit: 10))
        XCTAssertEqual(page.calls.map(\.path), ["/first"])
        XCTAssertEqual(page.calls.first?.status, 200)
        XCTAssertEqual(dissection.counters.unreadableSegments.load(ordering: .relaxed), 0)
    }
}
