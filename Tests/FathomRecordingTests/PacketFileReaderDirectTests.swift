import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// Reading ahead with direct I/O hands out exactly what buffered reads do, whatever the blocks' positions relative to
/// the chunks: small chunks and headroom here, so blocks straddle chunks, and some are longer than the headroom (the
/// spill path) or than several chunks.
final class PacketFileReaderDirectTests: XCTestCase {
    private struct Record: Equatable {
        var packet: TestPacket
        var fileOffset: UInt64
    }

    private struct Outcome: Equatable {
        var records: [Record]
        var validLength: UInt64
        var tornTail: TornTail?
    }

    private func read(_ path: String, direct: Bool) throws -> Outcome {
        let reader = try PacketFileReader(path: path)
        if direct {
            guard reader.readAheadDirectly(chunkSize: 8192, headroom: 4096) else {
                throw XCTSkip("the file system of \(path) refuses direct I/O")
            }
        }
        var records: [Record] = []
        while let record = try reader.next() {
            records.append(Record(
                packet: TestPacket(metadata: record.metadata, bytes: Array(record.bytes)), fileOffset: record.fileOffset))
        }
        return Outcome(records: records, validLength: reader.validLength, tornTail: reader.tornTail)
    }

    /// Packets from empty to 40 KB: most fit a chunk, some straddle two, some outgrow the headroom and several chunks.
    private func pcapng() -> [UInt8] {
        var file = FileBuilder(bigEndian: false)
        file.sectionHeader()
        file.interface(linkType: 1, options: file.option(9, [9]))
        var random = SplitMix64(state: 7)
        for k in 0..<600 {
            let size = k % 50 == 49 ? Int(random.next() % 40_000) : Int(random.next() % 1_500)
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ k) }
            file.enhancedPacket(interface: 0, timestamp: UInt64(k) * 1_000, data: data)
        }
        return file.bytes
    }

    private func write(_ bytes: [UInt8], in directory: TemporaryDirectory, name: String) throws -> String {
        let path = directory.path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testDirectReadAheadHandsOutWhatBufferedReadsDo() throws {
        let directory = try TemporaryDirectory()
        let path = try write(pcapng(), in: directory, name: "mixed.pcapng")
        let buffered = try read(path, direct: false)
        XCTAssertEqual(buffered.records.count, 600)
        XCTAssertEqual(try read(path, direct: true), buffered)
    }

    func testDirectReadAheadOfClassicPcap() throws {
        var file = FileBuilder(bigEndian: true)
        file.pcapHeader(nanoseconds: true, linkType: 1)
        for k in 0..<300 {
            file.pcapRecord(seconds: UInt32(k), fraction: 5, data: [UInt8](repeating: UInt8(k & 0xff), count: k * 37))
        }
        let directory = try TemporaryDirectory()
        let path = try write(file.bytes, in: directory, name: "classic.pcap")
        let buffered = try read(path, direct: false)
        XCTAssertEqual(buffered.records.count, 300)
        XCTAssertEqual(try read(path, direct: true), buffered)
    }

    func testTornTailAtEveryChunkPositionIsReportedAsBufferedReadsReportIt() throws {
        let bytes = pcapng()
        let directory = try TemporaryDirectory()
        // Cut inside blocks, at chunk boundaries and off them.
        for cut in [bytes.count - 1, bytes.count - 13, 8192 * 3, 8192 * 3 + 1, 8192 * 5 - 7] {
            let path = try write(Array(bytes[0..<cut]), in: directory, name: "torn-\(cut).pcapng")
            let buffered = try read(path, direct: false)
            XCTAssertNotNil(buffered.tornTail, "cut at \(cut)")
            XCTAssertEqual(try read(path, direct: true), buffered, "cut at \(cut)")
        }
    }

    func testReadAheadIsRefusedOnceReadingStartedAndForBytesInMemory() throws {
        let bytes = pcapng()
        let directory = try TemporaryDirectory()
        let path = try write(bytes, in: directory, name: "started.pcapng")
        let reader = try PacketFileReader(path: path)
        XCTAssertNotNil(try reader.next())
        XCTAssertFalse(reader.readAheadDirectly())
        var rest = 1
        while try reader.next() != nil { rest += 1 }
        XCTAssertEqual(rest, 600)
        XCTAssertFalse(try PacketFileReader(bytes: bytes).readAheadDirectly())
    }

    func testReaderLeftBeforeTheEndStopsItsThread() throws {
        let directory = try TemporaryDirectory()
        let path = try write(pcapng(), in: directory, name: "left.pcapng")
        for _ in 0..<20 {
            let reader = try PacketFileReader(path: path)
            guard reader.readAheadDirectly(chunkSize: 8192, headroom: 4096) else {
                throw XCTSkip("the file system of \(path) refuses direct I/O")
            }
            XCTAssertNotNil(try reader.next())
        }
    }
}
