import FathomModel
import Foundation
import Synchronization
import XCTest

@testable import FathomRecording

final class SegmentStoreTests: XCTestCase {
    private func makeStore(_ directory: String, _ configure: (inout SegmentStore.Configuration) -> Void = { _ in })
        throws -> SegmentStore
    {
        var configuration = SegmentStore.Configuration(directory: directory)
        configure(&configuration)
        return try SegmentStore(configuration: configuration)
    }

    private func append(_ packets: [TestPacket], to store: SegmentStore) {
        for packet in packets { packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) } }
    }

    private func diskBytes(_ directory: String) throws -> UInt64 {
        try segmentFiles(directory).reduce(0) { $0 + UInt64(try fileBytes($1).count) }
    }

    func testSegmentNamesEncodeTimeAndSequenceAndSortInTimeOrder() {
        let name = SegmentName.make(firstPacketNanoseconds: 1_763_715_402_123_456_789, sequence: 42)
        XCTAssertEqual(name, "20251121T085642.123456789Z-0000000042.pcapng")
        XCTAssertEqual(SegmentName.parse(name)?.firstPacketNanoseconds, 1_763_715_402_123_456_789)
        XCTAssertEqual(SegmentName.parse(name)?.sequence, 42)
        for bad in ["", "x.pcapng", "20251321T085642.123456789Z-0000000042.pcapng",
                    "20251121T085642.123456789Z-000000004x.pcapng", "20251121T085642.123456789Z-0000000042.pcap"] {
            XCTAssertNil(SegmentName.parse(bad), bad)
        }
        var random = SplitMix64(state: 7)
        let keys = (0..<500).map { _ in (random.next() % 16_000_000_000_000_000_000, random.next() % 1000) }
        let names = keys.map { SegmentName.make(firstPacketNanoseconds: $0.0, sequence: $0.1) }
        XCTAssertEqual(names.sorted(), keys.sorted { $0 < $1 }.map { SegmentName.make(firstPacketNanoseconds: $0.0, sequence: $0.1) })
        for (name, key) in zip(names, keys) {
            XCTAssertEqual(SegmentName.parse(name)?.firstPacketNanoseconds, key.0)
        }
    }

    func testRotatesBySizeAndKeepsEveryPacketInOrder() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory.path) { $0.segmentBytes = 64 << 10 }
        let packets = makePackets(2000, sizes: 0...600)
        append(packets, to: store)
        store.close()

        let files = try segmentFiles(directory.path)
        XCTAssertGreaterThan(files.count, 10)
        for file in files { XCTAssertLessThanOrEqual(try fileBytes(file).count, 64 << 10, file) }
        XCTAssertEqual(try readSegments(directory.path), packets)

        let segments = store.segments()
        XCTAssertEqual(segments.map(\.path), files)
        XCTAssertEqual(segments.map(\.sequence), Array(0..<UInt64(files.count)))
        XCTAssertEqual(segments.compactMap(\.packetCount).reduce(0, +), 2000)
        XCTAssertFalse(segments.contains { $0.isOpen })
        var index = 0
        for segment in segments {
            let count = Int(segment.packetCount ?? 0)
            XCTAssertEqual(segment.firstPacketNanoseconds, packets[index].metadata.timestampNanoseconds)
            XCTAssertEqual(segment.lastPacketNanoseconds, packets[index + count - 1].metadata.timestampNanoseconds)
            XCTAssertEqual(segment.bytes, UInt64(try fileBytes(segment.path).count))
            index += count
        }

        let statistics = store.statistics.snapshot()
        XCTAssertEqual(statistics.packetsWritten, 2000)
        XCTAssertEqual(statistics.bytesWritten, UInt64(packets.reduce(0) { $0 + $1.bytes.count }))
        XCTAssertEqual(statistics.packetsDropped, 0)
        XCTAssertEqual(statistics.segmentsCreated, UInt64(files.count))
        XCTAssertEqual(statistics.segmentCount, UInt64(files.count))
        XCTAssertEqual(statistics.bytesOnDisk, try diskBytes(directory.path))
        XCTAssertEqual(statistics.oldestPacketNanoseconds, packets.first?.metadata.timestampNanoseconds)
        XCTAssertEqual(statistics.newestPacketNanoseconds, packets.last?.metadata.timestampNanoseconds)
        XCTAssertTrue(statistics.isWriting)
    }

    func testRotatesByAgeOnTickAndByPacketTime() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory.path) { $0.segmentSeconds = 1 }
        let start: UInt64 = 1_763_715_402_000_000_000
        let packets = makePackets(4, start: start, sizes: 10...10)
        let first = packets[0].metadata.timestampNanoseconds
        append([packets[0]], to: store)
        store.tick(nowNanoseconds: first + 500_000_000)
        store.settle()  // the tick's write finishes in the background; the segment is listed once it has
        XCTAssertEqual(store.segments().map(\.isOpen), [true])
        store.tick(nowNanoseconds: first + 1_000_000_000)
        XCTAssertEqual(store.segments().map(\.isOpen), [false])

        // A packet a second younger than its segment's first one starts a new segment without any tick.
        var late = packets[1]
        late.metadata.timestampNanoseconds = first + 1_200_000_000
        var later = packets[2]
        later.metadata.timestampNanoseconds = first + 2_300_000_000
        append([late, later], to: store)
        store.close()
        XCTAssertEqual(store.segments().map(\.packetCount), [1, 1, 1])
        XCTAssertEqual(store.segments().map(\.firstPacketNanoseconds),
                       [first, first + 1_200_000_000, first + 2_300_000_000])
        XCTAssertEqual(try readSegments(directory.path), [packets[0], late, later])
    }

    func testTickFlushesAtLeastEveryHundredMillisecondsOnBlockBoundaries() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory.path)
        let packets = makePackets(30, sizes: 50...300)
        let now = packets[0].metadata.timestampNanoseconds
        append(Array(packets[..<10]), to: store)
        XCTAssertEqual(try diskBytes(directory.path), 0, "nothing written before the buffer fills or a tick")
        // A tick starts the write; with direct I/O it finishes on the writes' own thread: `settle` waits for it.
        store.tick(nowNanoseconds: now)
        store.settle()
        XCTAssertEqual(try readSegments(directory.path), Array(packets[..<10]))
        append(Array(packets[10...]), to: store)
        store.tick(nowNanoseconds: now + 50_000_000)
        store.settle()
        XCTAssertEqual(try readSegments(directory.path).count, 10, "flushed again before the interval")
        store.tick(nowNanoseconds: now + 100_000_000)
        store.settle()
        XCTAssertEqual(try readSegments(directory.path), packets)
        XCTAssertEqual(store.statistics.snapshot().packetsWritten, 30)
        XCTAssertEqual(store.segments().first?.isOpen, true)
    }

    func testRetentionDeletesOldestFirstAndNeverExceedsBudgetByMoreThanOneSegment() throws {
        let directory = try TemporaryDirectory()
        let segmentBytes: UInt64 = 32 << 10
        let retentionBytes: UInt64 = 128 << 10
        let store = try makeStore(directory.path) {
            $0.segmentBytes = segmentBytes
            $0.retentionBytes = retentionBytes
        }
        let packets = makePackets(6000, sizes: 100...300)
        for (index, packet) in packets.enumerated() {
            packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) }
            if index % 50 == 49 {
                store.tick(nowNanoseconds: packet.metadata.timestampNanoseconds)
                store.settle()
                let onDisk = try diskBytes(directory.path)
                XCTAssertLessThanOrEqual(onDisk, retentionBytes + segmentBytes, "after packet \(index)")
                XCTAssertEqual(store.statistics.snapshot().bytesOnDisk, onDisk)
            }
        }
        store.close()
        XCTAssertLessThanOrEqual(try diskBytes(directory.path), retentionBytes + segmentBytes)

        // What is left is the newest segments, contiguous, holding exactly the last packets.
        let segments = store.segments()
        let statistics = store.statistics.snapshot()
        XCTAssertGreaterThan(statistics.segmentsDeleted, 0)
        XCTAssertEqual(statistics.segmentsCreated - statistics.segmentsDeleted, UInt64(segments.count))
        XCTAssertEqual(segments.map(\.sequence), Array(statistics.segmentsDeleted..<statistics.segmentsCreated))
        let kept = try readSegments(directory.path)
        XCTAssertEqual(kept, Array(packets.suffix(kept.count)))
        XCTAssertEqual(statistics.oldestPacketNanoseconds, kept.first?.metadata.timestampNanoseconds)
    }

    func testRestartAdoptsEarlierSegmentsAndContinuesTheSequence() throws {
        let directory = try TemporaryDirectory()
        let packets = makePackets(600, sizes: 100...200)
        do {
            let store = try makeStore(directory.path) { $0.segmentBytes = 32 << 10 }
            append(Array(packets[..<300]), to: store)
            store.close()
        }
        let before = try segmentFiles(directory.path)
        let store = try makeStore(directory.path) {
            $0.segmentBytes = 32 << 10
            $0.retentionBytes = 1 << 30
        }
        XCTAssertEqual(store.segments().map(\.path), before)
        XCTAssertEqual(store.statistics.snapshot().repairs, 0)
        XCTAssertEqual(store.statistics.snapshot().segmentCount, UInt64(before.count))
        XCTAssertEqual(store.segments().last?.packetCount.map { $0 > 0 }, true, "the newest is re-read whole")
        XCTAssertEqual(store.segments().last?.lastPacketNanoseconds, packets[299].metadata.timestampNanoseconds)
        XCTAssertEqual(store.segments().first?.lastPacketNanoseconds,
                       try readAllPackets(before[0]).packets.last?.metadata.timestampNanoseconds)
        append(Array(packets[300...]), to: store)
        store.close()
        XCTAssertEqual(store.segments()[before.count].sequence, UInt64(before.count))
        XCTAssertEqual(try readSegments(directory.path), packets)
    }

    /// What `kill -9` leaves: the newest segment cut anywhere in its last blocks. A restart keeps every complete
    /// packet, and the repaired file reads cleanly with tshark's rules (no torn tail).
    func testRepairKeepsEveryCompleteBlockWhereverTheLastSegmentIsTorn() throws {
        let source = try TemporaryDirectory()
        let packets = makePackets(50, sizes: 0...90)
        let store = try makeStore(source.path) { $0.segmentBytes = 4096 }
        append(packets, to: store)
        store.close()
        let files = try segmentFiles(source.path)
        XCTAssertGreaterThan(files.count, 1)
        let older = try files.dropLast().map { try fileBytes($0) }
        let newest = try fileBytes(files[files.count - 1])
        let newestPackets = try readAllPackets(files[files.count - 1]).packets
        let earlierCount = packets.count - newestPackets.count
        // End offsets of the newest segment's packet blocks.
        let reader = try PacketFileReader(bytes: newest)
        var ends: [Int] = []
        while try reader.next() != nil { ends.append(Int(reader.validLength)) }

        let firstCut = ends.count >= 4 ? ends[ends.count - 4] : 0
        for cut in Array(0..<40) + Array(firstCut...newest.count) {
            let directory = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: directory.path + "/segments", withIntermediateDirectories: true)
            for (path, bytes) in zip(files, older + [Array(newest[..<cut])]) {
                try Data(bytes).write(to: URL(fileURLWithPath: directory.path + "/segments/" + (path as NSString).lastPathComponent))
            }
            let repaired = try makeStore(directory.path)
            let complete = ends.filter { $0 <= cut }.count
            // Torn unless the cut falls on a block boundary (an IDB may end after the last complete packet).
            let torn = complete == 0 || !blockEnds(newest).contains(cut)
            XCTAssertEqual(repaired.statistics.snapshot().repairs, torn ? 1 : 0, "cut at \(cut)")
            XCTAssertEqual(try readSegments(directory.path), Array(packets[..<(earlierCount + complete)]), "cut at \(cut)")
            XCTAssertEqual(repaired.segments().count, files.count - (complete == 0 ? 1 : 0), "cut at \(cut)")
            if complete > 0 { XCTAssertEqual(repaired.segments().last?.packetCount, UInt64(complete), "cut at \(cut)") }
            XCTAssertEqual(try diskBytes(directory.path), repaired.statistics.snapshot().bytesOnDisk)
        }
    }

    /// End offsets of the blocks of a little-endian pcapng file.
    private func blockEnds(_ bytes: [UInt8]) -> Set<Int> {
        var ends: Set<Int> = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let length = bytes.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)) }
            offset += length
            ends.insert(offset)
        }
        return ends
    }

    func testStatisticsAndSegmentsAreReadableWhileAppending() throws {
        let directory = try TemporaryDirectory()
        let store = try makeStore(directory.path) { $0.segmentBytes = 64 << 10 }
        let statistics = store.statistics
        let catalog = store.catalog
        let done = Atomic(false)
        let reader = Thread {
            var last: UInt64 = 0
            for _ in 0..<100_000 where !done.load(ordering: .relaxed) {
                let written = statistics.snapshot().packetsWritten
                XCTAssertGreaterThanOrEqual(written, last)
                last = written
                _ = catalog.segments().count
            }
        }
        reader.start()
        let packets = makePackets(3000, sizes: 60...200)
        for (index, packet) in packets.enumerated() {
            packet.bytes.withUnsafeBytes { store.append(packet.metadata, $0) }
            if index % 100 == 0 { store.tick(nowNanoseconds: packet.metadata.timestampNanoseconds) }
        }
        store.close()
        done.store(true, ordering: .relaxed)
        XCTAssertEqual(statistics.snapshot().packetsWritten, 3000)
    }

}
