import FathomModel
import XCTest

@testable import FathomRecording

final class PcapngRoundTripTests: XCTestCase {
    func testEveryPacketAndAllMetadataSurviveWriteThenRead() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/round-trip.pcapng"
        let packets = makePackets(20_000)
        try writePcapng(packets, to: path)

        let (read, reader) = try readAllPackets(path)
        XCTAssertEqual(reader.format, .pcapng)
        XCTAssertNil(reader.tornTail)
        XCTAssertEqual(read.count, packets.count)
        for (index, (got, want)) in zip(read, packets).enumerated() where got != want {
            XCTFail("packet \(index) differs: got \(got.metadata), want \(want.metadata)")
            break
        }
    }

    func testPacketLargerThanTheBufferIsWrittenWhole() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/big.pcapng"
        let packets = makePackets(3, sizes: 60...60) + makePackets(1, seed: 2, sizes: 200_000...200_000)
            + makePackets(3, seed: 3, sizes: 60...60)
        try writePcapng(packets, to: path, bufferCapacity: 4096)
        XCTAssertEqual(try readAllPackets(path).packets, packets)
    }

    func testFileLengthMatchesTheBlocksWritten() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/lengths.pcapng"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        let writer = PcapngWriter(fileDescriptor: fd, bufferCapacity: 8192)
        let packets = makePackets(500)
        for packet in packets { try packet.bytes.withUnsafeBytes { try writer.append(packet.metadata, $0) } }
        try writer.flush()
        XCTAssertEqual(writer.committedPackets, 500)
        XCTAssertEqual(writer.committedPacketBytes, UInt64(packets.reduce(0) { $0 + $1.bytes.count }))
        XCTAssertEqual(writer.committedLastTimestamp, packets.last?.metadata.timestampNanoseconds)
        XCTAssertEqual(try fileBytes(path).count, Int(writer.committedBytes))
    }

    func testReaderOverMemoryMatchesReaderOverFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/memory.pcapng"
        let packets = makePackets(300)
        try writePcapng(packets, to: path)
        let reader = try PacketFileReader(bytes: try fileBytes(path))
        var read: [TestPacket] = []
        try reader.forEach { read.append(TestPacket(metadata: $0, bytes: Array($1))) }
        XCTAssertEqual(read, packets)
    }

    func testProcessIDSurvivesAndOnlyCostsBytesWhenKnown() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/process.pcapng"
        var packets = makePackets(200)
        for index in packets.indices where index % 2 == 1 { packets[index].metadata.processID = UInt32(1000 + index) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        let writer = PcapngWriter(fileDescriptor: fd, bufferCapacity: 8192)
        for packet in packets { try packet.bytes.withUnsafeBytes { try writer.append(packet.metadata, $0) } }
        try writer.flush()
        XCTAssertEqual(try fileBytes(path).count, Int(writer.committedBytes))
        XCTAssertEqual(try readAllPackets(path).packets, packets)
        XCTAssertEqual(
            PcapngWriter.blockLength(capturedLength: 100, withProcess: true) - PcapngWriter.blockLength(capturedLength: 100),
            16)
    }
}
