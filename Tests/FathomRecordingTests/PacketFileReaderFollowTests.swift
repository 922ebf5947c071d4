import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// Live dissection tails the segment being written: the reader must pick up blocks appended after it reached the
/// end, including a block it first saw half-written.
final class PacketFileReaderFollowTests: XCTestCase {
    func testFollowsAGrowingFileAcrossATornBlock() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("follow-\(UUID()).pcapng").path
        defer { unlink(path) }
        let packets = makePackets(300, seed: 7)
        try writePcapng(packets, to: path)
        let whole = try fileBytes(path)
        // The file as a reader might first find it: the first 100 packets' worth, then half of a block.
        let reader = try PacketFileReader(path: path)
        try Data(whole.prefix(whole.count / 3)).write(to: URL(fileURLWithPath: path))
        var seen: [TestPacket] = []
        while let record = try reader.next() { seen.append(TestPacket(metadata: record.metadata, bytes: Array(record.bytes))) }
        XCTAssertNotNil(reader.tornTail, "a third of the file ends inside a block")
        XCTAssertLessThan(seen.count, packets.count)

        reader.resumeAtEnd()
        XCTAssertNil(try reader.next(), "nothing was appended yet")
        try Data(whole).write(to: URL(fileURLWithPath: path))
        reader.resumeAtEnd()
        while let record = try reader.next() { seen.append(TestPacket(metadata: record.metadata, bytes: Array(record.bytes))) }
        XCTAssertNil(reader.tornTail)
        XCTAssertEqual(seen, packets)
    }

    /// Live dissection follows segments written with direct I/O by reading them directly too: refills then start
    /// on page boundaries, re-reading the partial page they already hold. Whatever the cut points of the appends and
    /// whether a part came from the file or from memory (`supply`), every packet comes out once, in order.
    func testFollowsAGrowingFileReadingDirectly() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/direct.pcapng"
        let packets = makePackets(500, seed: 11, sizes: 0...20_000)
        try writePcapng(packets, to: path)
        let whole = try fileBytes(path)
        let fd = open(path, O_WRONLY | O_TRUNC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }

        var random = SplitMix64(state: 5)
        var written = 0
        func append(_ length: Int) -> ArraySlice<UInt8> {
            let part = whole[written..<min(written + length, whole.count)]
            part.withUnsafeBytes { XCTAssertEqual(pwrite(fd, $0.baseAddress, $0.count, off_t(written)), $0.count) }
            written += part.count
            return part
        }
        _ = append(1_000)
        let reader = try PacketFileReader(path: path)
        XCTAssertTrue(reader.readDirectly(chunkSize: 8192))
        XCTAssertFalse(reader.readDirectly(), "only once, before reading")
        var seen: [TestPacket] = []
        func drain() throws {
            while let record = try reader.next() {
                seen.append(TestPacket(metadata: record.metadata, bytes: Array(record.bytes)))
            }
        }
        try drain()
        var step = 0
        while written < whole.count {
            let offset = UInt64(written)
            let part = append(Int(random.next() % 30_000) + 1)
            step += 1
            if step % 3 == 0, part.withUnsafeBytes({ reader.supply($0, at: offset) }) {
                // from memory
            } else {
                reader.resumeAtEnd()
            }
            try drain()
        }
        XCTAssertEqual(seen.count, packets.count)
        XCTAssertEqual(seen, packets)
        XCTAssertNil(reader.tornTail)
        XCTAssertEqual(reader.validLength, UInt64(whole.count))
        XCTAssertTrue(reader.readsDirectly, "the file system allowed every direct read")
    }
}
