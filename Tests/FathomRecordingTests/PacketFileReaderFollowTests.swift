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
}
