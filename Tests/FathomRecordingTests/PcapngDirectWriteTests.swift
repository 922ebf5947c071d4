import FathomModel
import Foundation
import XCTest

@testable import FathomRecording

/// Segments are written with O_DIRECT where the file system allows it: whole pages directly, the last partial page
/// through the page cache and again, whole, with the next direct write. Readers must never see the difference.
final class PcapngDirectWriteTests: XCTestCase {
    private func openDirect(_ path: String) throws -> (fd: Int32, direct: Int32) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let direct = POSIX.openForDirectWriting(path)
        if direct < 0 && ProcessInfo.processInfo.environment["CI"] != "true" {
            close(fd)
            throw XCTSkip("\(path): this file system refuses O_DIRECT")
        }
        XCTAssertGreaterThanOrEqual(direct, 0, "O_DIRECT refused on \(path)")
        return (fd, direct)
    }

    func testEveryFlushLeavesTheWholeFileReadableOnABlockBoundary() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/direct.pcapng"
        let (fd, direct) = try openDirect(path)
        defer { close(fd); close(direct) }
        var written: [(offset: UInt64, bytes: [UInt8])] = []
        let writer = PcapngWriter(fileDescriptor: fd, directFileDescriptor: direct, bufferCapacity: 8192) {
            written.append(($1, Array($0)))
        }
        // Small batches (flushes that leave a partial page), batches larger than the buffer, and a packet larger
        // than the buffer while a partial page is carried.
        let packets = makePackets(40, sizes: 20...90) + makePackets(300, seed: 2, sizes: 0...1600)
            + makePackets(1, seed: 3, sizes: 100_000...100_000) + makePackets(200, seed: 4, sizes: 0...700)
        var appended = 0
        for batch in [3, 1, 17, 19, 150, 1, 1, 149, 1, 60, 139] {
            for packet in packets[appended..<appended + batch] {
                try packet.bytes.withUnsafeBytes { try writer.append(packet.metadata, $0) }
            }
            appended += batch
            try writer.flush()
            XCTAssertTrue(writer.writesDirectly)
            XCTAssertEqual(try fileBytes(path).count, Int(writer.committedBytes))
            XCTAssertEqual(try readAllPackets(path).packets, Array(packets[..<appended]), "after \(appended) packets")
        }
        XCTAssertEqual(appended, packets.count)
        XCTAssertEqual(writer.committedPackets, UInt64(packets.count))
        // What the tap was shown is the file, in order, each byte once.
        var expectedOffset: UInt64 = 0
        for write in written {
            XCTAssertEqual(write.offset, expectedOffset)
            expectedOffset += UInt64(write.bytes.count)
        }
        XCTAssertEqual(written.flatMap(\.bytes), try fileBytes(path))
    }

    func testSegmentStoreWritesDirectlyAndSaysSo() throws {
        let directory = try TemporaryDirectory()
        let probe = directory.path + "/probe"
        _ = try openDirect(probe)
        var configuration = SegmentStore.Configuration(directory: directory.path)
        configuration.writeBufferBytes = 16 << 10
        let store = try SegmentStore(configuration: configuration)
        let packets = makePackets(2_000, sizes: 0...900)
        for packet in packets { packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) } }
        store.flush()
        XCTAssertTrue(store.statistics.snapshot().isWritingDirectly)
        store.close()
        XCTAssertEqual(try readSegments(directory.path), packets)

        configuration.directWrites = false
        let other = try TemporaryDirectory()
        configuration.directory = other.path
        let buffered = try SegmentStore(configuration: configuration)
        for packet in packets.prefix(10) { packet.bytes.withUnsafeBytes { buffered.append(packet.metadata, $0) } }
        buffered.flush()
        XCTAssertFalse(buffered.statistics.snapshot().isWritingDirectly)
    }

    /// The writers of successive segments share their buffers: a buffer a file was written from is reused for the next
    /// file, and must leave no trace of it. The same packets give the same bytes through reused and fresh buffers.
    func testWritersOfSuccessiveFilesShareBuffersWithoutCarryingBytesOver() throws {
        let directory = try TemporaryDirectory()
        let pool = PcapngWriter.bufferPool(bufferCapacity: 8192)
        func write(_ packets: [TestPacket], to name: String, buffers: IOBufferPool?) throws -> [UInt8] {
            let path = directory.path + "/" + name
            let (fd, direct) = try openDirect(path)
            defer { close(fd); close(direct) }
            let writer = PcapngWriter(fileDescriptor: fd, directFileDescriptor: direct, bufferCapacity: 8192,
                                      buffers: buffers)
            for (index, packet) in packets.enumerated() {
                try packet.bytes.withUnsafeBytes { try writer.append(packet.metadata, $0) }
                if index % 97 == 0 { try writer.flush() }
            }
            try writer.flush()
            XCTAssertEqual(try readAllPackets(path).packets, packets, name)
            return try fileBytes(path)
        }
        // The first file fills the pool's buffers with its bytes; the second has other sizes (other padding) and a
        // packet larger than a buffer, which gives that writer larger buffers of its own.
        _ = try write(makePackets(500, seed: 7, sizes: 0...1600), to: "first.pcapng", buffers: pool)
        let second = makePackets(300, seed: 8, sizes: 1...61) + makePackets(1, seed: 9, sizes: 20_000...20_000)
            + makePackets(200, seed: 10, sizes: 0...900)
        let reused = try write(second, to: "second.pcapng", buffers: pool)
        let fresh = try write(second, to: "fresh.pcapng", buffers: nil)
        let firstDifference = zip(reused, fresh).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertTrue(reused == fresh, "\(reused.count) and \(fresh.count) bytes, first difference at \(firstDifference ?? -1)")
    }

    /// The pool hands back what it was given, newest first, and keeps no more idle buffers than its limit.
    func testBufferPoolReusesBuffersUpToItsLimit() {
        let pool = IOBufferPool(byteCount: 4096, limit: 2)
        let buffers = (0..<3).map { _ in pool.take() }
        XCTAssertEqual(Set(buffers).count, 3)
        for buffer in buffers { pool.give(buffer) }  // the third is freed: two are kept
        let again = [pool.take(), pool.take()]
        XCTAssertEqual(again, [buffers[1], buffers[0]])
        for buffer in again { pool.give(buffer) }
    }
}
