import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// Live dissection follows the recording from the writes the segment store hands its tap, and falls back to the file
/// for writes it did not get: together they must yield every packet once, in order.
final class RecordingTapTests: XCTestCase {
    /// Keeps a copy of every write it is shown.
    final class CollectingTap: RecordingTap {
        struct Write {
            var sequence: UInt64
            var path: String
            var offset: UInt64
            var bytes: [UInt8]
        }
        var writes: [Write] = []

        func recorded(_ bytes: UnsafeRawBufferPointer, segment sequence: UInt64, path: String, offset: UInt64) {
            writes.append(Write(sequence: sequence, path: path, offset: offset, bytes: Array(bytes)))
        }
    }

    private func record(_ packets: [TestPacket], in directory: String, tap: CollectingTap) throws {
        var configuration = SegmentStore.Configuration(directory: directory)
        configuration.segmentBytes = 48 << 10
        configuration.writeBufferBytes = 4096
        let store = try SegmentStore(configuration: configuration)
        store.tap = tap
        for packet in packets { packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) } }
        store.close()
    }

    func testTheTapSeesEveryWriteOfEverySegmentInFileOrder() throws {
        let directory = try TemporaryDirectory()
        let tap = CollectingTap()
        try record(makePackets(600, sizes: 0...400), in: directory.path, tap: tap)
        let files = try segmentFiles(directory.path)
        XCTAssertGreaterThan(files.count, 2)
        XCTAssertEqual(Set(tap.writes.map(\.path)).sorted(), files)
        XCTAssertEqual(tap.writes.map(\.sequence), tap.writes.map(\.sequence).sorted(), "segments in sequence order")
        for path in files {
            let writes = tap.writes.filter { $0.path == path }
            var offset: UInt64 = 0
            for write in writes {
                XCTAssertEqual(write.offset, offset, "writes of \(path) follow on from each other")
                offset += UInt64(write.bytes.count)
            }
            XCTAssertEqual(writes.flatMap(\.bytes), try fileBytes(path), "the writes are the file")
        }
    }

    func testAReaderFedFromMemoryNeedsNoFileReadsAndFillsGapsFromTheFile() throws {
        let directory = try TemporaryDirectory()
        let tap = CollectingTap()
        let packets = makePackets(400, sizes: 0...300)
        var configuration = SegmentStore.Configuration(directory: directory.path)
        configuration.writeBufferBytes = 4096
        let store = try SegmentStore(configuration: configuration)
        store.tap = tap
        for packet in packets { packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) } }
        store.close()
        let path = try XCTUnwrap(segmentFiles(directory.path).first)
        XCTAssertGreaterThan(tap.writes.count, 10)

        func read(_ reader: PacketFileReader, into seen: inout [TestPacket]) throws {
            while let record = try reader.next() {
                seen.append(TestPacket(metadata: record.metadata, bytes: Array(record.bytes)))
            }
        }

        // Every write handed over: the file's bytes are never needed (it is emptied after the reader opened it).
        let original = try fileBytes(path)
        let memoryOnly = try PacketFileReader(path: path)
        try Data().write(to: URL(fileURLWithPath: path))
        var seen: [TestPacket] = []
        for write in tap.writes {
            XCTAssertTrue(write.bytes.withUnsafeBytes { memoryOnly.supply($0, at: write.offset) })
            try read(memoryOnly, into: &seen)
        }
        XCTAssertEqual(seen, packets)
        try Data(original).write(to: URL(fileURLWithPath: path))

        // Every third write left out: the reader refuses the write after a gap, reads the file instead, and takes
        // only the unread part of later writes (here: nothing, the file was read to its end).
        let withGaps = try PacketFileReader(path: path)
        seen = []
        for (index, write) in tap.writes.enumerated() where index % 3 != 1 {
            if !write.bytes.withUnsafeBytes({ withGaps.supply($0, at: write.offset) }) {
                withGaps.resumeAtEnd()
            }
            try read(withGaps, into: &seen)
        }
        XCTAssertEqual(seen, packets, "every packet once, in order")

        // A write overlapping what was read is taken from where reading stopped.
        let overlapping = try PacketFileReader(path: path)
        seen = []
        let half = original.count / 2
        XCTAssertTrue(Array(original[..<half]).withUnsafeBytes { overlapping.supply($0, at: 0) })
        try read(overlapping, into: &seen)
        XCTAssertTrue(original.withUnsafeBytes { overlapping.supply($0, at: 0) })
        try read(overlapping, into: &seen)
        XCTAssertEqual(seen, packets)
    }
}
